"""MAML-RL (Finn, Abbeel & Levine, 2017, §5.3): REINFORCE-with-baseline inner steps on each task, a
policy-gradient outer step through them, on PointNav (Gaussian policy) and the goal grid (softmax policy), which
share one loop (:func:`rl_experiment`) and differ only in the policy head. The return on held-out tasks after
0..k adaptation steps is reported for MAML, a policy pretrained on the task mixture and a random init.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, vmap

from llmagentos.core.config import param
from llmagentos.core.errors import UsageError
from llmagentos.core.statistics import mean_ci95
from llmagentos.learners.maml import Checkpoint, MAML, MAMLConfig, Params, TaskLoss, inner_adapt, meta_train


class GaussianPolicy(nn.Module):
    """π_θ(a|s) = N(μ_θ(s), diag σ²) with a state-independent, learned log σ (continuous actions)."""

    def __init__(self, obs_dim: int, act_dim: int, hidden: list[int], init_std: float) -> None:
        super().__init__()
        from llmagentos.learners.common.networks import mlp

        self.mean = mlp(obs_dim, act_dim, hidden, "tanh", out_gain=0.01)
        self.log_std = nn.Parameter(torch.full((act_dim,), math.log(init_std)))

    def forward(self, obs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.mean(obs), self.log_std.expand(*obs.shape[:-1], -1)

    @staticmethod
    def sample(out: tuple[torch.Tensor, torch.Tensor], generator: torch.Generator) -> torch.Tensor:
        mean, log_std = out
        return mean + log_std.exp() * torch.randn(mean.shape, generator=generator)

    @staticmethod
    def log_prob(out: tuple[torch.Tensor, torch.Tensor], actions: torch.Tensor) -> torch.Tensor:
        mean, log_std = out
        return (-0.5 * ((actions - mean) / log_std.exp()) ** 2 - log_std - 0.5 * math.log(2 * math.pi)).sum(-1)


class CategoricalPolicy(nn.Module):
    """π_θ(a|s) = softmax(f_θ(s))_a over a discrete action set (``hidden=[]``: a linear softmax policy)."""

    def __init__(self, obs_dim: int, n_actions: int, hidden: list[int]) -> None:
        super().__init__()
        from llmagentos.learners.common.networks import mlp

        self.logits = mlp(obs_dim, n_actions, hidden, "tanh", out_gain=0.01)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.logits(obs)

    @staticmethod
    def sample(logits: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        probs = torch.softmax(logits, -1).reshape(-1, logits.shape[-1])
        return torch.multinomial(probs, 1, generator=generator).reshape(logits.shape[:-1])

    @staticmethod
    def log_prob(logits: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(logits, -1).gather(-1, actions.unsqueeze(-1)).squeeze(-1)


def policy_gradient_loss(policy: nn.Module) -> TaskLoss:
    """REINFORCE with a baseline: L(θ, D) = −Σ_t log π_θ(a_t|s_t) Â_t / #steps over a batch of episodes."""

    def loss(params: Params, data: Any) -> torch.Tensor:
        obs, actions, advantages, mask = data
        log_prob = policy.log_prob(functional_call(policy, params, (obs,)), actions)
        return -(log_prob * advantages * mask).sum() / mask.sum()

    return loss


@dataclass
class RLMAMLConfig(MAMLConfig):
    """MAML-RL on a task family: policy-gradient inner steps, a policy-gradient (Adam) outer step."""

    #: the task family the config's experiment runs on (get_family name)
    family: ClassVar[str] = ""

    meta_batch_size: int = param(10, "N: tasks per meta-update", gt=0)
    meta_iterations: int = param(150, "meta-updates to run", gt=0)
    hidden: list[int] = param([64, 64], "hidden layer widths of the policy network (tanh)")
    episodes: int = param(10, "episodes per task and adaptation step (the inner and outer batch)", gt=0)
    gamma: float = param(0.99, "γ: discount of the returns-to-go the policy gradient weighs", gt=0, le=1)
    eval_tasks: int = param(40, "held-out tasks the final returns are averaged over", gt=0)
    eval_steps: int = param(3, "adaptation steps at evaluation; returns are reported after 0..this many", gt=0)
    eval_seed: int = param(2017, "seed of the held-out tasks and of their action noise")
    pretrain_iterations: int | None = param(None, "REINFORCE updates of the pretrained baseline on the task mixture (None: meta_iterations)")
    log_every: int = param(10, "meta-iterations between logged meta-losses and returns", gt=0)
    checkpoint_every: int = param(25, "meta-updates between checkpoints a killed job resumes from exactly (0: none)", ge=0)

    def validate(self) -> None:
        super().validate()
        if self.pretrain_iterations is not None and self.pretrain_iterations < 0:
            raise UsageError(f"maml config: pretrain_iterations must be ≥ 0, got {self.pretrain_iterations}")

    def make_family(self) -> Any:
        from llmagentos.envs.families import get_family

        return get_family(self.family)

    def make_eval_family(self) -> Any:
        """The family the evaluation's tasks come from (the training family unless tasks are held out)."""
        return self.make_family()

    def env_kwargs(self) -> dict[str, Any]:
        """Extra ``family.make`` arguments (observation encoding, time limit)."""
        return {}

    def make_policy(self, obs_dim: int, action_space: Any) -> nn.Module:
        """A softmax policy over a discrete action set (families with continuous actions override this)."""
        return CategoricalPolicy(obs_dim, int(action_space.n), self.hidden)


@dataclass
class PointNavMAMLConfig(RLMAMLConfig):
    """MAML-RL on PointNav goals (continuous actions: a Gaussian policy)."""

    family: ClassVar[str] = "pointnav"

    inner_lr: float = param(0.05, "α: step size of the inner policy-gradient steps", gt=0)
    meta_lr: float = param(0.003, "β: Adam step size of the meta-update (and of the pretrained baseline); 0.01 collapsed after ~90 iterations", gt=0)
    init_std: float = param(0.1, "initial standard deviation of the policy's actions", gt=0)

    def make_policy(self, obs_dim: int, action_space: Any) -> nn.Module:
        return GaussianPolicy(obs_dim, int(np.prod(action_space.shape)), self.hidden, self.init_std)


@dataclass
class GoalGridMAMLConfig(RLMAMLConfig):
    """MAML-RL on the goal grid: the goal cell is the task, the one-hot cell the observation (discrete actions)."""

    family: ClassVar[str] = "goal-grid"

    inner_lr: float = param(10.0, "α: step size of the inner policy-gradient steps (large: a one-hot cell sees few visits)", gt=0)
    meta_lr: float = param(0.01, "β: Adam step size of the meta-update (and of the pretrained baseline)", gt=0)
    hidden: list[int] = param([], "hidden layer widths of the softmax policy ([]: linear in the one-hot cell)")
    size: int = param(5, "the grid is size × size, start in the top-left corner, every other cell a goal", ge=2)
    max_steps: int = param(20, "time limit of an episode", gt=0)
    meta_iterations: int = param(400, "meta-updates to run", gt=0)
    eval_tasks: int = param(24, "distinct goals the final returns are averaged over (at most size² − 1, or held_out)", gt=0)
    held_out: int = param(0, "goals (drawn with eval_seed) kept out of meta-training and pretraining, the evaluation's "
                             "goals; 0: evaluate on goals that training also drew from")

    def validate(self) -> None:
        super().validate()
        goals = self.size ** 2 - 1
        if not 0 <= self.held_out < goals:
            raise UsageError(f"maml config: held_out must lie in [0, {goals - 1}] (training needs a goal), got {self.held_out}")
        most = self.held_out or goals
        if self.eval_tasks > most:
            raise UsageError(f"maml config: eval_tasks must be at most {most} (the distinct "
                             f"{'held-out ' if self.held_out else ''}goals), got {self.eval_tasks}")

    def _goals(self, held_out: bool) -> list[list[int]] | None:
        """The training goals (``held_out=False``) or the held-out ones; None: every goal."""
        from llmagentos.core.seeding import make_rng

        if not self.held_out:
            return None
        cells = [[r, c] for r in range(self.size) for c in range(self.size) if (r, c) != (0, 0)]
        kept_out = set(make_rng(self.eval_seed).permutation(len(cells))[:self.held_out].tolist())
        return [cell for i, cell in enumerate(cells) if (i in kept_out) == held_out]

    def make_family(self) -> Any:
        from llmagentos.envs.families import get_family

        return get_family(self.family, size=self.size, goals=self._goals(held_out=False))

    def make_eval_family(self) -> Any:
        from llmagentos.envs.families import get_family

        return get_family(self.family, size=self.size, goals=self._goals(held_out=True))

    def env_kwargs(self) -> dict[str, Any]:
        return {"one_hot": True, "max_episode_steps": self.max_steps}


class TaskRollouts:
    """Episodes on N tasks × E copies at once: one batched policy call per time step, each env stepped as is.

    A finite family's envs (the goal grid's) are kept per task and reused when the task comes back, because
    rebuilding a grid's transition table costs more than its episodes; a continuous family's (PointNav's)
    switch task in place.
    """

    def __init__(self, family: Any, tasks: list[dict[str, Any]], episodes: int, gamma: float,
                 env_kwargs: dict[str, Any] | None = None, seed: int = 0) -> None:
        self.family, self.episodes, self.env_kwargs, self.seed = family, episodes, env_kwargs or {}, seed
        self.made = 0
        self.cache: dict[tuple[str, int], list[Any]] | None = {} if hasattr(family, "all_tasks") else None
        self.envs: list[list[Any]] = []
        if self.cache is None:
            self.envs = [self._make(task) for task in tasks]
        self.set_tasks(tasks)
        first = self.envs[0][0]
        spec = first.spec
        self.horizon = int(spec.max_episode_steps) if spec is not None and spec.max_episode_steps else 100
        self.obs_shape = first.observation_space.shape
        discrete = first.action_space.shape == ()
        self.action_shape, self.action_dtype = first.action_space.shape, (np.int64 if discrete else np.float32)
        self.gamma = gamma

    def _make(self, task: dict[str, Any]) -> list[Any]:
        row = [self.family.make(task, **self.env_kwargs) for _ in range(self.episodes)]
        # seeded once, in creation order. Checkpoints do not save env states: PointNav and the goal grid MAML uses
        # (no slip, one start cell) are deterministic given the actions, so a resumed job still repeats exactly.
        for env in row:
            env.reset(seed=(self.seed + self.made) % 2**31)
            self.made += 1
        return row

    def set_tasks(self, tasks: list[dict[str, Any]]) -> TaskRollouts:
        """Point row i of envs at ``tasks[i]``."""
        if self.cache is None:
            for row, task in zip(self.envs, tasks, strict=True):
                for env in row:
                    env.unwrapped.set_task(task)
        else:
            seen: dict[str, int] = {}
            self.envs = []
            for task in tasks:
                name = json.dumps(task, sort_keys=True)
                key = (name, seen.get(name, 0))  # a task drawn twice in one batch gets a second set of envs
                seen[name] = key[1] + 1
                if key not in self.cache:
                    self.cache[key] = self._make(task)
                self.envs.append(self.cache[key])
        self.worlds = [[env.unwrapped for env in row] for row in self.envs]  # stepped directly, inside the time limit
        return self

    def sample(self, policy: nn.Module, params: Params, batched: bool, generator: torch.Generator) -> tuple[Any, np.ndarray]:
        """Episodes of π_params on every task: the data tuple for :func:`policy_gradient_loss` and each task's mean return."""
        n, e, horizon = len(self.envs), len(self.envs[0]), self.horizon
        obs = np.zeros((n, e, horizon, *self.obs_shape), np.float32)
        actions = np.zeros((n, e, horizon, *self.action_shape), self.action_dtype)
        rewards = np.zeros((n, e, horizon), np.float64)
        mask = np.zeros((n, e, horizon), np.float32)
        current = np.stack([np.stack([world.reset()[0] for world in row]) for row in self.worlds]).astype(np.float32)
        alive = np.ones((n, e), bool)
        params = {k: v.detach() for k, v in params.items()}
        forward = vmap(lambda p, o: functional_call(policy, p, (o,)), in_dims=(0 if batched else None, 0))
        for t in range(horizon):
            with torch.no_grad():
                action = policy.sample(forward(params, torch.from_numpy(current)), generator).numpy()
            obs[:, :, t], actions[:, :, t], mask[:, :, t] = current, action, alive
            for i, row in enumerate(self.worlds):
                for j, world in enumerate(row):
                    if alive[i, j]:
                        current[i, j], rewards[i, j, t], terminated, _, _ = world.step(action[i, j])
                        alive[i, j] = not terminated
            if not alive.any():
                break
        returns_to_go = np.zeros_like(rewards)
        running = np.zeros((n, e))
        for t in reversed(range(horizon)):
            running = rewards[:, :, t] + self.gamma * running * mask[:, :, t]
            returns_to_go[:, :, t] = running
        # b_t: the mean return-to-go of the task's episodes at step t; Â = (G_t − b_t) / std
        advantages = returns_to_go - returns_to_go.mean(axis=1, keepdims=True)
        advantages = advantages / (advantages.std(axis=(1, 2), keepdims=True) + 1e-8)
        data = (torch.from_numpy(obs), torch.from_numpy(actions), torch.from_numpy(advantages.astype(np.float32)),
                torch.from_numpy(mask))
        return data, rewards.sum(axis=2).mean(axis=1)


def adaptation_returns(policy: nn.Module, task_loss: TaskLoss, params: Params, step_sizes: dict[str, Any],
                       rollouts: TaskRollouts, steps: int, generator: torch.Generator) -> np.ndarray:
    """Mean return per task after 0..``steps`` policy-gradient adaptation steps from ``params``: shape (tasks, steps + 1)."""
    n = len(rollouts.envs)
    current = {k: v.detach().unsqueeze(0).expand(n, *v.shape).clone() for k, v in params.items()}
    step_sizes = {k: (v.detach() if torch.is_tensor(v) else v) for k, v in step_sizes.items()}
    curve = []
    for step in range(steps + 1):
        data, returns = rollouts.sample(policy, current, True, generator)
        curve.append(returns)
        if step < steps:
            current = vmap(lambda p, d: inner_adapt(task_loss, p, step_sizes, d, 1))(current, data)
            current = {k: v.detach() for k, v in current.items()}
    return np.stack(curve, axis=1)


def rl_experiment(config: RLMAMLConfig, seed: int = 0,
                  on_log: Callable[[int, dict[str, float]], None] | None = None,
                  resume: dict[str, Any] | None = None, on_checkpoint: Checkpoint | None = None) -> dict[str, Any]:
    """MAML-RL on ``config.family``, then return after 0..eval_steps adaptation steps for MAML, pretrained and random inits.

    Returns ``{"return": {"maml"|"pretrained"|"random": [after 0, 1, ..., eval_steps]}, "ci95": {...},
    "meta_iterations", "meta_iteration_ms", ...}``; ``on_log``, ``on_checkpoint`` and ``resume`` as in :func:`meta_train`.
    """
    from llmagentos.core.seeding import derive_seed, make_rng

    config.validate()
    family = config.make_family()
    env_kwargs = config.env_kwargs()
    rollouts = TaskRollouts(family, family.tasks(config.meta_batch_size), config.episodes, config.gamma, env_kwargs,
                            seed=derive_seed(seed, "envs") % 2**31)
    probe = rollouts.envs[0][0]
    obs_dim = int(np.prod(probe.observation_space.shape))

    torch.manual_seed(derive_seed(seed, "maml-init"))
    policy = config.make_policy(obs_dim, probe.action_space)
    random_init = {k: v.detach().clone() for k, v in policy.named_parameters()}
    loss = policy_gradient_loss(policy)
    maml = MAML(policy, loss, config)
    rng = make_rng(derive_seed(seed, "meta-train-goals"))
    generator = torch.Generator().manual_seed(derive_seed(seed, "actions"))

    def step() -> float:
        rollouts.set_tasks([family.sample(rng) for _ in range(config.meta_batch_size)])
        support, _ = rollouts.sample(policy, maml.params, False, generator)
        adapted = maml.adapt_batch(support)
        query, returns = rollouts.sample(policy, adapted, True, generator)
        # outer: (1/N) Σ_i L_Ti(π_θ'_i, D_i^val), D_i^val sampled with θ'_i
        maml.outer_update(vmap(loss)(adapted, query).mean())
        return float(returns.mean())

    rngs = {"tasks": rng, "actions": generator}
    meta_seconds = meta_train(maml, config, step, "adapted_return", rngs, on_log, resume, on_checkpoint)

    torch.manual_seed(derive_seed(seed, "pretrain-init"))
    pretrained = config.make_policy(obs_dim, probe.action_space)
    pretrain_loss = policy_gradient_loss(pretrained)
    optimizer = torch.optim.Adam(pretrained.parameters(), lr=config.meta_lr)
    pretrain_iterations = config.meta_iterations if config.pretrain_iterations is None else config.pretrain_iterations
    pretrain_rng = make_rng(derive_seed(seed, "pretrain-goals"))
    pretrain_params = dict(pretrained.named_parameters())
    for _ in range(pretrain_iterations):
        rollouts.set_tasks([family.sample(pretrain_rng) for _ in range(config.meta_batch_size)])
        data, _ = rollouts.sample(pretrained, pretrain_params, False, generator)
        objective = vmap(pretrain_loss, in_dims=(None, 0))(pretrain_params, data).mean()
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        optimizer.step()

    family = config.make_eval_family()
    tasks = family.tasks(config.eval_tasks, seed=config.eval_seed)
    alpha = {k: config.inner_lr for k in random_init}
    inits = {"maml": (policy, loss, maml.params, maml.step_sizes),
             "pretrained": (pretrained, pretrain_loss, pretrain_params, alpha),
             "random": (policy, loss, random_init, alpha)}
    returns, ci95, curves = {}, {}, {}
    for name, (net, task_loss, params, step_sizes) in inits.items():
        # every init meets the same tasks, env seeds and action noise
        rollouts = TaskRollouts(family, tasks, config.episodes, config.gamma, env_kwargs, seed=config.eval_seed)
        per_task = adaptation_returns(net, task_loss, params, step_sizes, rollouts,
                                      config.eval_steps, torch.Generator().manual_seed(config.eval_seed))
        mean, half = mean_ci95(per_task)
        returns[name], ci95[name], curves[name] = mean.tolist(), half.tolist(), mean.tolist()
    return {"return": returns, "ci95": ci95, "steps_reported": list(range(config.eval_steps + 1)), "curves": curves,
            "meta_iterations": maml.iterations, "meta_iteration_ms": round(1000 * meta_seconds / max(maml.iterations, 1), 3),
            "meta_seconds": round(meta_seconds, 3), "pretrain_iterations": pretrain_iterations,
            "eval_tasks": config.eval_tasks, "family": config.family, "model": maml}


#: the PointNav experiment is the generic one with a PointNavMAMLConfig
pointnav_experiment = rl_experiment
