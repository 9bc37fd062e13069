"""Evolution strategies over a network's flat weight vector: separable NES and OpenAI-ES.

- **SNES** (separable natural evolution strategies; Wierstra et al., 2014, JMLR §4.2): a Gaussian search
  distribution N(μ, diag σ²) over the weights, rank-based fitness shaping (utilities), and natural-gradient
  updates of μ and σ. The defaults are the paper's (Table 1; also Schaul's reference snes.py and EvoTorch's
  SNES): λ = 4 + ⌊3 ln d⌋, η_μ = 1, η_σ = (3 + ln d)/(5√d), utilities with the 1/λ baseline subtracted, ties
  ranked in sample order. One addition, on by default: mirrored sampling (s, −s) (Brockhoff et al., 2010),
  which cuts the noise of the mean's step; ``mirrored=False`` is the paper's Algorithm 6 exactly.
- **OpenAI-ES** (Salimans et al., 2017): a fixed isotropic σ, mirrored sampling θ ± σε, centred ranks, and
  Adam on the mean with weight decay.

The learner only proposes weight vectors (:meth:`ES.ask`) and digests their fitness (:meth:`ES.tell`); who
evaluates them is the caller's business. :meth:`ES.step` takes an ``evaluate(population) -> fitness`` callable,
so a job runner can spread a generation's evaluations over processes or a Ray cluster (the learner never
imports the kernel). Fitness is maximised. Same seed, same proposals — whatever evaluated them.

Fitness of a policy (:func:`policy_fitness`) is the mean return over a set of tasks (one env, or several
members of a task family) and episodes, so the same code does policy search and meta-learning of an
initialisation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from llmagentos.core.config import check_bounds, param
from llmagentos.core.errors import UsageError
from llmagentos.core.limits import check_finite
from llmagentos.core.seeding import make_rng, rng_state, set_rng_state

Evaluate = Callable[[np.ndarray], Sequence[float]]


@dataclass
class NESConfig:
    """Evolution-strategy hyper-parameters; ``None`` picks the method's published default for the dimension d."""

    method: Literal["snes", "openai-es"] = param("snes", "snes: separable NES (μ and per-weight σ); openai-es: fixed σ, mirrored, Adam")
    population: int | None = param(None, "λ: samples per generation (None: 4 + ⌊3 ln d⌋, Wierstra's default; openai-es rounds up to even)")
    sigma_init: float = param(1.0, "σ₀: initial search standard deviation (openai-es keeps it fixed)", gt=0)
    center_lr: float | None = param(None, "η_μ: step size of the mean (None: 1.0 for snes, 0.01 Adam step for openai-es)")
    sigma_lr: float | None = param(None, "η_σ: step size of log σ in snes (None: (3 + ln d) / (5 √d))")
    mirrored: bool = param(True, "snes: samples in mirrored pairs s, −s (Brockhoff et al., 2010); false: Algorithm 6 exactly")
    weight_decay: float = param(0.005, "openai-es: L2 coefficient pulling the mean toward 0", ge=0)
    generations: int = param(50, "generations to run at most", gt=0)
    hidden: list[int] = param([], "hidden layer widths of the policy MLP ([] = a linear policy)")
    episodes: int = param(5, "episodes per task that make up one fitness evaluation", gt=0)
    eval_episodes: int = param(10, "episodes of the centre μ's evaluation after each generation", gt=0)
    threshold: float | None = param(None, "stop when the centre's mean return reaches this (None: the env's reward threshold)")
    init: Literal["zeros", "network"] = param("zeros", "the first centre μ: all zeros, or the policy network's own initial weights")

    METHODS: ClassVar[tuple[str, ...]] = ("snes", "openai-es")
    #: how check_bounds words a field outside its bounds: "nes config: generations must be positive, got 0"
    BOUNDS_PREFIX: ClassVar[str] = "nes config: "
    BOUNDS_POSITIVE: ClassVar[str] = "positive"

    def validate(self) -> None:
        if self.method not in self.METHODS:
            raise UsageError(f"nes config: method must be one of {', '.join(self.METHODS)}, got {self.method!r}")
        if self.population is not None and self.population < 2:
            raise UsageError(f"nes config: population must be at least 2, got {self.population}")
        # the fields' declared bounds: a config built in code (tests, scripts) never passes apply_overrides
        check_bounds(self)
        check_finite(self.sigma_init, "nes config: sigma_init")
        for name in ("center_lr", "sigma_lr"):
            value = getattr(self, name)
            if value is not None and not (value > 0 and math.isfinite(value)):
                raise UsageError(f"nes config: {name} must be a positive number or null, got {value}")
        if self.init not in ("zeros", "network"):
            raise UsageError(f"nes config: init must be zeros or network, got {self.init!r}")
        if any(h <= 0 for h in self.hidden):
            raise UsageError(f"nes config: hidden must list positive layer widths, got {self.hidden}")


def default_population(dim: int) -> int:
    """λ = 4 + ⌊3 ln d⌋ (Wierstra et al., 2014, Table 1)."""
    return 4 + int(math.floor(3 * math.log(max(dim, 1))))


def nes_utilities(fitness: np.ndarray) -> np.ndarray:
    """Rank-based fitness shaping: u_k = max(0, ln(λ/2 + 1) − ln k) / Σ_j max(0, ln(λ/2 + 1) − ln j) − 1/λ, k = rank (1 = best)."""
    lam = len(fitness)
    ranks = np.empty(lam, dtype=np.int64)
    ranks[np.argsort(-np.asarray(fitness), kind="stable")] = np.arange(1, lam + 1)
    raw = np.maximum(0.0, math.log(lam / 2 + 1) - np.log(ranks))
    return raw / raw.sum() - 1.0 / lam


def centered_ranks(fitness: np.ndarray) -> np.ndarray:
    """Ranks scaled to [−0.5, 0.5] (Salimans et al., 2017): the worst gets −0.5, the best +0.5."""
    fitness = np.asarray(fitness).ravel()
    ranks = np.empty(len(fitness), dtype=np.float64)
    ranks[np.argsort(fitness, kind="stable")] = np.arange(len(fitness))
    return ranks / (len(fitness) - 1) - 0.5


def search_gradient(weights: np.ndarray, noise: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Σ_k w_k s_k and Σ_k w_k (s_k² − 1): the search gradients of E[f(μ + σ ⊙ s)] in SNES's local coordinates.

    With w_k = f(z_k)/λ these are Monte-Carlo estimates of σ ⊙ ∇_μ J and σ ⊙ ∇_σ J; for the quadratic
    f(z) = −‖z − c‖² their expectations are −2σ ⊙ (μ − c) and −2σ². SNES puts utilities in place of f/λ.
    """
    return weights @ noise, weights @ (noise**2 - 1.0)


class ES:
    """A separable-NES or OpenAI-ES search distribution over ``dim`` weights, started at ``center``."""

    def __init__(self, dim: int, config: NESConfig | None = None, seed: int = 0, center: np.ndarray | None = None) -> None:
        self.config = config or NESConfig()
        self.config.validate()
        if dim <= 0:
            raise UsageError(f"an evolution strategy needs at least one weight, got dim={dim}")
        cfg = self.config
        self.dim = dim
        self.rng = make_rng(seed)
        self.mu = np.zeros(dim) if center is None else np.asarray(center, dtype=np.float64).copy()
        self.sigma = np.full(dim, cfg.sigma_init)
        lam = cfg.population or default_population(dim)
        self.population = lam + (lam % 2 if cfg.method == "openai-es" else 0)
        self.center_lr = cfg.center_lr if cfg.center_lr is not None else (1.0 if cfg.method == "snes" else 0.01)
        self.sigma_lr = cfg.sigma_lr if cfg.sigma_lr is not None else (3 + math.log(dim)) / (5 * math.sqrt(dim))
        self.adam_m = np.zeros(dim)
        self.adam_v = np.zeros(dim)
        self.generation = 0
        self._noise: np.ndarray | None = None

    def ask(self) -> np.ndarray:
        """The next generation's weight vectors, shape (population, dim)."""
        if self.config.method == "snes" and not self.config.mirrored:
            self._noise = self.rng.standard_normal((self.population, self.dim))
        elif self.config.method == "snes":
            half = self.rng.standard_normal((self.population // 2, self.dim))
            rest = self.rng.standard_normal((self.population % 2, self.dim))
            self._noise = np.concatenate([half, -half, rest])
        else:  # mirrored sampling: ε and −ε
            half = self.rng.standard_normal((self.population // 2, self.dim))
            self._noise = np.concatenate([half, -half])
        return self.mu + self.sigma * self._noise

    def tell(self, fitness: Sequence[float]) -> dict[str, float]:
        """Update the distribution from the fitness of the last :meth:`ask`'s samples (higher is better)."""
        if self._noise is None:
            raise UsageError("ES.tell needs the fitness of the samples of a preceding ES.ask")
        fitness = np.asarray(fitness, dtype=np.float64)
        if fitness.shape != (self.population,) or not np.all(np.isfinite(fitness)):
            raise UsageError(f"ES.tell needs {self.population} finite fitness values, got shape {fitness.shape}")
        s, cfg = self._noise, self.config
        if cfg.method == "snes":
            grad_mu, grad_sigma = search_gradient(nes_utilities(fitness), s)
            # μ ← μ + η_μ σ ⊙ ∇_μ J;  σ ← σ ⊙ exp(η_σ/2 ∇_σ J)   (natural gradients in local coordinates)
            self.mu = self.mu + self.center_lr * self.sigma * grad_mu
            self.sigma = self.sigma * np.exp(0.5 * self.sigma_lr * grad_sigma)
        else:
            n = self.population // 2
            ranks = centered_ranks(fitness)
            # g = 1/(2nσ) Σ_k (F(θ + σε_k) − F(θ − σε_k)) ε_k  − λ_wd θ   (ascent direction)
            g = (ranks[:n] - ranks[n:]) @ s[:n] / (2 * n * self.sigma) - cfg.weight_decay * self.mu
            self.adam_m = 0.9 * self.adam_m + 0.1 * g
            self.adam_v = 0.999 * self.adam_v + 0.001 * g * g
            t = self.generation + 1
            m_hat, v_hat = self.adam_m / (1 - 0.9**t), self.adam_v / (1 - 0.999**t)
            self.mu = self.mu + self.center_lr * m_hat / (np.sqrt(v_hat) + 1e-8)
        self.generation += 1
        self._noise = None
        return {"fitness_mean": float(fitness.mean()), "fitness_max": float(fitness.max()),
                "sigma_mean": float(self.sigma.mean())}

    def step(self, evaluate: Evaluate) -> dict[str, float]:
        """One generation: ask, evaluate (possibly on other machines), tell."""
        population = self.ask()
        return self.tell(evaluate(population))

    def state_dict(self) -> dict[str, Any]:
        return {"mu": self.mu.copy(), "sigma": self.sigma.copy(), "adam_m": self.adam_m.copy(),
                "adam_v": self.adam_v.copy(), "generation": self.generation, "rng": rng_state(self.rng)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.mu, self.sigma = np.asarray(state["mu"], float).copy(), np.asarray(state["sigma"], float).copy()
        self.adam_m, self.adam_v = np.asarray(state["adam_m"], float).copy(), np.asarray(state["adam_v"], float).copy()
        self.generation = int(state["generation"])
        set_rng_state(self.rng, state["rng"])


def evolve(es: ES, evaluate: Callable[[np.ndarray, int], Sequence[float]],
           evaluate_center: Callable[[np.ndarray, int], float], generations: int, threshold: float | None = None,
           on_generation: Callable[[dict[str, Any]], None] | None = None) -> dict[str, Any]:
    """Run ``es`` until the centre's score reaches ``threshold`` or ``generations`` pass.

    ``evaluate(population, generation)`` returns one fitness per row (the caller may farm the rows out to
    workers); ``evaluate_center(μ, generation)`` scores the centre after each update, so generation g's
    score is that of the centre moved by g populations (EvoTorch's ``step()`` evaluates population g but
    reports the centre before that population's update, one update behind). Returns
    ``{"solved_at_generation", "curve": [{"generation", "mean_return", "wall_seconds", ...}], "center"}``.
    """
    import time

    started = time.perf_counter()
    curve: list[dict[str, Any]] = []
    solved = None
    for _ in range(generations):
        generation = es.generation
        stats = es.step(lambda population: evaluate(population, generation))
        score = float(evaluate_center(es.mu.copy(), generation))
        point = {"generation": es.generation, "mean_return": score,
                 "wall_seconds": round(time.perf_counter() - started, 4), **stats}
        curve.append(point)
        if on_generation is not None:
            on_generation(point)
        if threshold is not None and score >= threshold:
            solved = es.generation
            break
    return {"solved_at_generation": solved, "curve": curve, "center": es.mu.tolist(),
            "wall_seconds": round(time.perf_counter() - started, 4)}


# -- policies as flat weight vectors ------------------------------------------------------------------

def policy_network(obs_dim: int, act_dim: int, hidden: Sequence[int]) -> Any:
    """The torch policy whose flat weight vector (``parameters_to_vector``) the search runs over."""
    from llmagentos.learners.common.networks import mlp

    return mlp(obs_dim, act_dim, list(hidden), "tanh")


def unflatten(theta: np.ndarray, obs_dim: int, act_dim: int, hidden: Sequence[int]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(W, b) per layer of :func:`policy_network` from its flat vector, in ``parameters_to_vector`` order."""
    expected = num_weights(obs_dim, act_dim, hidden)
    if len(theta) != expected:
        raise UsageError(f"a policy {obs_dim}-{'-'.join(map(str, hidden))}{'-' if hidden else ''}{act_dim} has "
                         f"{expected} weights, got {len(theta)}")
    layers, offset, last = [], 0, obs_dim
    for width in list(hidden) + [act_dim]:
        w = theta[offset:offset + width * last].reshape(width, last)
        offset += width * last
        b = theta[offset:offset + width]
        offset += width
        layers.append((w, b))
        last = width
    return layers


def num_weights(obs_dim: int, act_dim: int, hidden: Sequence[int]) -> int:
    sizes = [obs_dim] + list(hidden) + [act_dim]
    return sum(sizes[i + 1] * (sizes[i] + 1) for i in range(len(sizes) - 1))


def act(layers: list[tuple[np.ndarray, np.ndarray]], obs: np.ndarray, discrete: bool, low=None, high=None):
    """The deterministic action of the MLP (tanh hidden layers): argmax for discrete spaces, clipped outputs otherwise."""
    h = np.asarray(obs, dtype=np.float64).ravel()
    for w, b in layers[:-1]:
        h = np.tanh(w @ h + b)
    w, b = layers[-1]
    out = w @ h + b
    return int(np.argmax(out)) if discrete else np.clip(out, low, high)


def policy_fitness(job: dict[str, Any]) -> dict[str, Any]:
    """Mean return of the flat-vector policy ``job["theta"]`` over ``job["tasks"]`` × ``job["episodes"]`` (a scheduler job).

    ``job``: {"theta": [...], "env_id": str, "hidden": [...], "tasks": [task descriptor or None, ...],
    "family": family name or None, "episodes": int, "seed": int}. Episode e of task t resets with seed
    ``seed + 1000 t + e``, so the result depends on the job alone, not on which worker runs it.
    """
    returns = _returns(job, np.asarray(job["theta"], dtype=np.float64)[None, :])[0]
    return {"mean_return": float(np.mean(returns)), "episodes": len(returns)}


def population_fitness(job: dict[str, Any]) -> dict[str, Any]:
    """:func:`policy_fitness` of every row of ``job["thetas"]`` (shape (n, d)) in one job: ``{"mean_returns": [...]}``.

    A scheduler sends a worker its share of a generation at once, and the worker makes each task's env once
    for all its rows. Row k's value equals ``policy_fitness`` of that row alone (same episode seeds).
    """
    returns = _returns(job, np.asarray(job["thetas"], dtype=np.float64).reshape(len(job["thetas"]), -1))
    return {"mean_returns": [float(np.mean(r)) for r in returns], "episodes": len(returns[0]) if returns else 0}


def _returns(job: dict[str, Any], thetas: np.ndarray) -> list[list[float]]:
    """Per row of ``thetas``: the return of each episode of each task, episodes reset with ``seed + 1000 t + e``."""
    from gymnasium import spaces

    import llmagentos.envs  # noqa: F401  (registers the project's worlds)

    tasks = job.get("tasks") or [None]
    returns: list[list[float]] = [[] for _ in thetas]
    for t, task in enumerate(tasks):
        env = make_task_env(job["env_id"], job.get("family"), task)
        discrete = isinstance(env.action_space, spaces.Discrete)
        obs_dim = int(np.prod(env.observation_space.shape))
        act_dim = int(env.action_space.n) if discrete else int(np.prod(env.action_space.shape))
        low, high = (None, None) if discrete else (env.action_space.low, env.action_space.high)
        limit = env.spec.max_episode_steps if env.spec is not None and env.spec.max_episode_steps else 10**9
        world = env.unwrapped  # the registered time limit is applied here; the checker wrappers only cost time
        for k, theta in enumerate(thetas):
            layers = unflatten(theta, obs_dim, act_dim, job.get("hidden", []))
            for e in range(int(job["episodes"])):
                obs, _ = env.reset(seed=int(job["seed"]) + 1000 * t + e)
                total = 0.0
                for _ in range(limit):
                    obs, reward, terminated, truncated, _ = world.step(act(layers, obs, discrete, low, high))
                    total += float(reward)
                    if terminated or truncated:
                        break
                returns[k].append(total)
        env.close()
    return returns


def make_task_env(env_id: str, family: str | None = None, task: dict[str, Any] | None = None) -> Any:
    """``gymnasium.make(env_id)``, or the member ``task`` of the task family ``family``."""
    import gymnasium as gym

    if family is None or task is None:
        return gym.make(env_id)
    from llmagentos.envs.families import get_family

    return get_family(family).make(task)
