"""Dynamic programming on a finite MDP (Sutton & Barto ch. 4): policy evaluation, policy iteration, value iteration.

Each algorithm takes a :class:`~llmagentos.core.mdp.FiniteMDP` and does whole sweeps as matrix products
(dense numpy or scipy sparse, whichever the model holds). Terminated transitions contribute their reward
and nothing after, so γ = 1 converges on episodic MDPs whose policies end.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from llmagentos.core.config import apply_overrides, check_bounds, param
from llmagentos.core.errors import UsageError
from llmagentos.core.mdp import FiniteMDP


@dataclass
class PlanningConfig:
    gamma: float = param(0.99, "discount γ in [0, 1] (1 is allowed on episodic MDPs)", ge=0, le=1)
    theta: float = param(1e-8, "stop a sweep loop when the largest change max_s |V_new(s) − V(s)| is below θ", gt=0)
    max_iterations: int = param(100_000, "most sweeps of one evaluation or of value iteration before giving up")
    max_policy_iterations: int = param(10_000, "most improvement steps of policy iteration before giving up")
    tie_tolerance: float = param(1e-9, "policy iteration keeps its current action unless another beats it by more than this")

    def validate(self) -> None:
        if self.max_iterations <= 0 or self.max_policy_iterations <= 0:
            raise UsageError("max_iterations and max_policy_iterations must be positive")
        if self.tie_tolerance < 0:
            raise UsageError(f"tie_tolerance must be ≥ 0, got {self.tie_tolerance}")


@dataclass
class PlanningResult:
    """What a planning algorithm returns.

    ``iterations`` counts sweeps for policy evaluation and value iteration, and improvement steps for
    policy iteration (whose evaluation sweeps are in ``sweeps``). ``converged`` is False when a cap stopped it.
    """

    values: np.ndarray
    policy: np.ndarray
    q: np.ndarray
    iterations: int
    sweeps: int
    converged: bool
    seconds: float
    extra: dict[str, Any] = field(default_factory=dict)


def _config(config: PlanningConfig | None, overrides: dict[str, Any]) -> PlanningConfig:
    config = config or PlanningConfig()
    config = apply_overrides(config, overrides, owner="planning config") if overrides else config
    check_bounds(config)
    config.validate()
    return config


def uniform_policy(mdp: FiniteMDP) -> np.ndarray:
    """π(a|s) = 1/|A| for every state."""
    return np.full((mdp.n_states, mdp.n_actions), 1.0 / mdp.n_actions)


def check_policy(mdp: FiniteMDP, policy: Any) -> np.ndarray:
    """A policy as an array: one action per state ``(S,)`` or probabilities ``(S, A)``; wrong shapes raise UsageError."""
    S, A = mdp.n_states, mdp.n_actions
    array = np.asarray(policy)
    if array.shape == (S,) and np.issubdtype(array.dtype, np.number) and np.all(array == np.round(array)):
        if array.min(initial=0) < 0 or array.max(initial=0) >= A:
            raise UsageError(f"policy actions must be integers in [0, {A - 1}], got values from {array.min()} to {array.max()}")
        return array.astype(np.int64)
    if array.shape == (S, A) and np.issubdtype(array.dtype, np.number):
        if np.any(array < 0) or not np.allclose(array.sum(axis=1), 1.0, atol=1e-6):
            raise UsageError("a stochastic policy needs non-negative probabilities π(a|s) summing to 1 in every state")
        return array.astype(np.float64)
    raise UsageError(f"a policy is one action per state ({S} integers in [0, {A - 1}]) or a {S}x{A} table of "
                     f"probabilities; got shape {array.shape}")


def greedy(q: np.ndarray) -> np.ndarray:
    """argmax_a Q(s, a) per state, lowest action on ties (deterministic, so results repeat)."""
    return np.argmax(q, axis=1)


def _evaluate(mdp: FiniteMDP, policy: np.ndarray, gamma: float, theta: float, max_sweeps: int,
              V: np.ndarray | None = None) -> tuple[np.ndarray, int, bool]:
    """Synchronous sweeps V ← R_π + γ P_π V from ``V`` (zeros by default) until max |ΔV| < θ."""
    P_pi, R_pi = mdp.policy_matrix(policy)
    V = np.zeros(mdp.n_states) if V is None else V.copy()
    for sweep in range(1, max_sweeps + 1):
        V_new = R_pi + gamma * (P_pi @ V)  # v(s) ← Σ_a π(a|s) [r(s,a) + γ Σ_s' p(s'|s,a) v(s')]
        delta = float(np.max(np.abs(V_new - V))) if V.size else 0.0
        V = V_new
        if delta < theta:
            return V, sweep, True
    return V, max_sweeps, False


def policy_evaluation(mdp: FiniteMDP, policy: Any = None, config: PlanningConfig | None = None,
                      **overrides: Any) -> PlanningResult:
    """Iterative policy evaluation of ``policy`` (the uniform-random policy when ``None``).

    Returns v_π, the greedy policy with respect to v_π, and Q_π.
    """
    config = _config(config, overrides)
    pi = uniform_policy(mdp) if policy is None else check_policy(mdp, policy)
    start = time.perf_counter()
    V, sweeps, converged = _evaluate(mdp, pi, config.gamma, config.theta, config.max_iterations)
    q = mdp.q_values(V, config.gamma)
    return PlanningResult(V, greedy(q), q, sweeps, sweeps, converged, time.perf_counter() - start)


def policy_iteration(mdp: FiniteMDP, config: PlanningConfig | None = None, policy: Any = None,
                     **overrides: Any) -> PlanningResult:
    """Policy iteration: evaluate, improve greedily, repeat until the policy is stable.

    It starts from ``policy`` (default: the uniform-random policy, which ends from every state of an
    episodic MDP, so that γ = 1 evaluations converge). Each evaluation starts from the previous values.
    An action is replaced only when another beats it by more than ``tie_tolerance``, so equally good
    actions cannot flip-flop forever.
    """
    config = _config(config, overrides)
    pi: np.ndarray = uniform_policy(mdp) if policy is None else check_policy(mdp, policy)
    start = time.perf_counter()
    states = np.arange(mdp.n_states)
    V = None
    total_sweeps = 0
    converged = False
    improvements = 0
    for improvements in range(1, config.max_policy_iterations + 1):
        V, sweeps, evaluated = _evaluate(mdp, pi, config.gamma, config.theta, config.max_iterations, V)
        total_sweeps += sweeps
        q = mdp.q_values(V, config.gamma)
        new_pi = greedy(q)  # π'(s) = argmax_a [r(s,a) + γ Σ_s' p(s'|s,a) v_π(s')]
        if pi.ndim == 1:
            keep = q[states, pi] >= q[states, new_pi] - config.tie_tolerance
            new_pi = np.where(keep, pi, new_pi)
            stable = bool(np.all(new_pi == pi))
        else:
            stable = False
        pi = new_pi
        if stable and evaluated:
            converged = True
            break
    assert V is not None
    q = mdp.q_values(V, config.gamma)
    return PlanningResult(V, pi, q, improvements, total_sweeps, converged, time.perf_counter() - start)


def value_iteration(mdp: FiniteMDP, config: PlanningConfig | None = None, **overrides: Any) -> PlanningResult:
    """Value iteration: V ← max_a Q(·, a) until the largest change is below θ; returns V and the greedy policy."""
    config = _config(config, overrides)
    gamma, theta = config.gamma, config.theta
    start = time.perf_counter()
    V = np.zeros(mdp.n_states)
    converged = False
    sweep = 0
    for sweep in range(1, config.max_iterations + 1):
        V_new = mdp.q_values(V, gamma).max(axis=1)  # v(s) ← max_a [r(s,a) + γ Σ_s' p(s'|s,a) v(s')]
        delta = float(np.max(np.abs(V_new - V))) if V.size else 0.0
        V = V_new
        if delta < theta:
            converged = True
            break
    q = mdp.q_values(V, gamma)
    return PlanningResult(V, greedy(q), q, sweep, sweep, converged, time.perf_counter() - start)


# -- the command line's entry point ---------------------------------------------------------------

def parse_policy(text: Any) -> Any:
    """``--policy``: 'random' (None), or a JSON list of one action per state (or of per-state probability lists)."""
    if text is None or (isinstance(text, str) and text.strip().lower() in ("random", "uniform", "")):
        return None
    if not isinstance(text, str):
        return text
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise UsageError(f"--policy must be 'random' or a JSON list of actions such as [0,1,1,2], got {text!r}") from None
    if not isinstance(value, list):
        raise UsageError(f"--policy must be 'random' or a JSON list of actions such as [0,1,1,2], got {text!r}")
    return value


def plan(env_id: str, algo: str = "value-iteration", gamma: float = 0.99, theta: float = 1e-8,
         policy: Any = "random", env_args: dict[str, Any] | None = None, **overrides: Any) -> dict[str, Any]:
    """Solve ``env_id``'s transition table with a planning algorithm; the JSON contract of ``llmagentos plan``.

    Returns ``{"env", "algo", "gamma", "values", "policy", "iterations", "seconds"}``: V(s) and the greedy
    action for every state, the algorithm's iteration count and its wall time (the model conversion excluded).
    Bad input (an unknown or non-planning algorithm, an env without a transition table, γ outside [0, 1],
    θ ≤ 0, a malformed policy, no convergence) raises UsageError.
    """
    from llmagentos.learners import registry

    if algo in registry.ALGORITHMS and registry.ALGORITHMS[algo].kind != "planning":
        planners = [n for n, e in registry.ALGORITHMS.items() if e.kind == "planning"]
        raise UsageError(f"{algo} is not a planning algorithm (use llmagentos train); plan with one of: {', '.join(planners)}")
    entry = registry.get(algo, kinds=("planning",))
    config = _config(PlanningConfig(), {"gamma": gamma, "theta": theta, **overrides})
    parsed = parse_policy(policy)
    if parsed is not None and algo != "policy-evaluation":
        raise UsageError(f"--policy applies to policy-evaluation only; {algo} finds its own policy")
    # the algorithms themselves see only a FiniteMDP; making the env by id is the command line's convenience
    from llmagentos.core.errors import arguments_refused_as_usage
    from llmagentos.envs.make import make_env

    with arguments_refused_as_usage(f"environment {env_id}"):
        env = make_env(env_id, env_args or {})
    try:
        mdp = FiniteMDP.from_gym_env(env)
    finally:
        env.close()
    function = registry.load(entry.target)
    if parsed is not None:
        result = function(mdp, policy=check_policy(mdp, parsed), config=config)
    else:
        result = function(mdp, config=config)
    if not result.converged:
        raise UsageError(f"{algo} on {env_id} did not converge within its iteration cap (γ = {config.gamma}); "
                         "γ = 1 needs a policy that ends every episode — try γ < 1 or a larger θ")
    return {"env": env_id, "algo": algo, "gamma": config.gamma,
            "values": [float(v) for v in result.values], "policy": [int(a) for a in result.policy],
            "iterations": int(result.iterations), "seconds": round(result.seconds, 6)}
