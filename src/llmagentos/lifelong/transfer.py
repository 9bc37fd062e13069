"""Transfer: start a learner on a target task from what a source agent learned, and measure the gain.

Four ways to carry knowledge (``mode``):

- ``full``: the target starts with all of the source's network weights (or, for tabular learners, its
  Q table, read through a state mapping ``Q_target[s] = Q_source[map(s)]``);
- ``trunk``: every weight but the output layers (the head), which start fresh;
- ``prior``: the target learns from scratch, but its exploration follows the source's greedy policy
  with a probability ψ that decays linearly to 0 (π-reuse, Fernández & Veloso, 2006);
- ``scratch``: nothing (the reference arm).

Metrics (Taylor & Stone, 2009, §2.1), on learning curves y(x) of greedy return against environment
steps, for a transfer arm T and a scratch arm S:

- jumpstart             J = y_T(x_0) − y_S(x_0), the initial performance gain (x_0 = 0, before learning);
- asymptotic gain       mean of the last ``tail`` points of y_T minus that of y_S;
- total reward          area under the curve, A = ∫ (y − b) dx / (x_N − x_0) (trapezoid; b a baseline return);
  ``total_reward_gain`` = A_T − A_S;
- transfer ratio        r = (A_T − A_S) / A_S;
- time to threshold     the first x with y(x) ≥ threshold, for each arm.

The area is measured above a baseline ``b`` so that the ratio means something when returns can be
negative: ``b = 0`` when every point is ≥ 0, otherwise the lowest point of both curves.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmagentos.core.agent import Agent, Transition
from llmagentos.core.errors import UsageError
from llmagentos.core.loop import Interaction, evaluate
from llmagentos.core.schedules import Every
from llmagentos.core.seeding import make_rng, rng_state, set_rng_state
from llmagentos.core.statistics import t_half_width

MODES = ("full", "trunk", "prior", "scratch")


# -- metrics --------------------------------------------------------------------------------------------

def jumpstart(transfer: Sequence[float], scratch: Sequence[float]) -> float:
    """J = y_T(x_0) − y_S(x_0)."""
    return float(transfer[0]) - float(scratch[0])


def asymptotic_performance(curve: Sequence[float], tail: int = 1) -> float:
    """The mean of the curve's last ``tail`` points."""
    values = np.asarray(curve, dtype=float)
    tail = max(1, min(int(tail), len(values)))
    return float(values[-tail:].mean())


def area_under_curve(steps: Sequence[float], curve: Sequence[float], baseline: float = 0.0) -> float:
    """A = ∫ (y − b) dx / (x_N − x_0) by the trapezoid rule: the mean return above ``baseline`` over the run."""
    x = np.asarray(steps, dtype=float)
    y = np.asarray(curve, dtype=float) - baseline
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(f"steps and curve must have the same positive length, got {len(x)} and {len(y)}")
    if len(x) == 1:
        return float(y[0])
    return float(np.sum((y[1:] + y[:-1]) / 2.0 * np.diff(x)) / (x[-1] - x[0]))


def default_baseline(*curves: Sequence[float]) -> float:
    """0 when every return is ≥ 0, else the lowest return of all ``curves``."""
    low = min(float(np.min(c)) for c in curves)
    return 0.0 if low >= 0 else low


def transfer_ratio(steps: Sequence[float], transfer: Sequence[float], scratch: Sequence[float],
                   baseline: float | None = None) -> float:
    """r = (A_T − A_S) / A_S (infinite when A_S = 0 < A_T, 0 when both are 0)."""
    b = default_baseline(transfer, scratch) if baseline is None else baseline
    a_t, a_s = area_under_curve(steps, transfer, b), area_under_curve(steps, scratch, b)
    if a_s == 0:
        return 0.0 if a_t == 0 else float(np.sign(a_t) * np.inf)
    return (a_t - a_s) / a_s


def time_to_threshold(steps: Sequence[float], curve: Sequence[float], threshold: float) -> float | None:
    """The first x with y(x) ≥ threshold, or None when the curve never gets there."""
    for x, y in zip(steps, curve):
        if y >= threshold:
            return float(x)
    return None


def default_threshold(scratch_curves: Sequence[Sequence[float]], tail: int = 1) -> float:
    """90 % of the way from the scratch arm's mean first point to its mean asymptote."""
    start = float(np.mean([c[0] for c in scratch_curves]))
    end = float(np.mean([asymptotic_performance(c, tail) for c in scratch_curves]))
    return start + 0.9 * (end - start)


def transfer_metrics(steps: Sequence[float], transfer: Sequence[float], scratch: Sequence[float], threshold: float,
                     tail: int = 1, baseline: float | None = None) -> dict[str, Any]:
    """All of Taylor & Stone's metrics for one pair of curves (one seed)."""
    b = default_baseline(transfer, scratch) if baseline is None else baseline
    return {
        "jumpstart": jumpstart(transfer, scratch),
        "asymptotic_gain": asymptotic_performance(transfer, tail) - asymptotic_performance(scratch, tail),
        "total_reward_gain": area_under_curve(steps, transfer, b) - area_under_curve(steps, scratch, b),
        "transfer_ratio": transfer_ratio(steps, transfer, scratch, b),
        "time_to_threshold": {"transfer": time_to_threshold(steps, transfer, threshold),
                              "scratch": time_to_threshold(steps, scratch, threshold)},
        "baseline": b,
    }


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and Student-t confidence interval over seeds (the interval collapses to the mean for one seed)."""
    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(v.mean())
    if len(v) == 1:
        return mean, mean, mean
    half = t_half_width(v, level)
    return mean, mean - half, mean + half


def summarise(steps: Sequence[float], transfer_curves: Sequence[Sequence[float]], scratch_curves: Sequence[Sequence[float]],
              threshold: float | None = None, tail: int | None = None, baseline: float | None = None) -> dict[str, Any]:
    """Per-seed metrics (curve k of each arm is seed k) averaged with 95 % CIs: the JSON of ``llmagentos transfer``."""
    if len(transfer_curves) != len(scratch_curves) or not transfer_curves:
        raise ValueError("both arms need one curve per seed, on the same seeds")
    tail = tail or max(1, len(steps) // 10)
    threshold = default_threshold(scratch_curves, tail) if threshold is None else threshold
    if baseline is None:
        baseline = default_baseline(*transfer_curves, *scratch_curves)
    per_seed = [transfer_metrics(steps, t, s, threshold, tail, baseline) for t, s in zip(transfer_curves, scratch_curves)]
    out: dict[str, Any] = {}
    for key in ("jumpstart", "asymptotic_gain", "total_reward_gain", "transfer_ratio"):
        mean, lo, hi = mean_ci([m[key] for m in per_seed])
        out[key] = mean
        out[f"{key}_ci"] = [lo, hi]
    times: dict[str, Any] = {}
    for arm in ("transfer", "scratch"):
        reached = [m["time_to_threshold"][arm] for m in per_seed if m["time_to_threshold"][arm] is not None]
        times[arm] = float(np.mean(reached)) if reached else None
        times[f"{arm}_reached"] = f"{len(reached)}/{len(per_seed)}"
        times[f"{arm}_per_seed"] = [m["time_to_threshold"][arm] for m in per_seed]
    out["time_to_threshold"] = times
    out["threshold"] = threshold
    out["baseline"] = baseline
    out["tail"] = tail
    out["curves"] = {"steps": [float(x) for x in steps],
                     "transfer": {"mean": np.mean(transfer_curves, axis=0).tolist(), "per_seed": [list(map(float, c)) for c in transfer_curves]},
                     "scratch": {"mean": np.mean(scratch_curves, axis=0).tolist(), "per_seed": [list(map(float, c)) for c in scratch_curves]}}
    out["per_seed"] = [{k: v for k, v in m.items()} for m in per_seed]
    return out


# -- carrying knowledge from a source agent -----------------------------------------------------------

def _copy_network(source: Agent, target: Agent, trunk_only: bool) -> list[str]:
    """Copy the source network's weights into the target's (all, or all but the heads); returns the copied keys."""
    if not source.parameter_groups():
        raise UsageError(f"cannot transfer network weights from a {source.algo} agent to a {target.algo} agent")
    src, dst = source.weights(trunk_only), target.weights(trunk_only)
    if {k for k in src if not k.startswith("obs_norm.")} - set(dst) or \
            {k for k in dst if not k.startswith("obs_norm.")} - set(src):
        raise UsageError(f"cannot transfer network weights from a {source.algo} agent to a {target.algo} agent")
    for key, value in dst.items():
        if key in src and tuple(src[key].shape) != tuple(value.shape):
            raise UsageError(f"the source network's {key} has shape {tuple(src[key].shape)}, the target needs "
                             f"{tuple(value.shape)}: transfer needs the same observation and action spaces and network sizes")
    # the copied weights expect the source's observation scaling: its statistics travel with them
    target.load_weights(src, trunk_only=trunk_only)
    return [k for k in src if not k.startswith("obs_norm.")]


def _copy_table(source: Agent, target: Agent, state_map: Sequence[int] | None) -> None:
    q_src, q_dst = np.asarray(source.weights()["q"]), np.asarray(target.weights()["q"])
    if q_src.shape[1] != q_dst.shape[1]:
        raise UsageError(f"the source has {q_src.shape[1]} actions and the target {q_dst.shape[1]}; tabular transfer needs the same actions")
    if state_map is None:
        if q_src.shape[0] != q_dst.shape[0]:
            raise UsageError(f"the source has {q_src.shape[0]} states and the target {q_dst.shape[0]}; give a state map "
                             "(one source state per target state)")
        state_map = list(range(q_dst.shape[0]))
    mapping = np.asarray(state_map, dtype=np.int64)
    if mapping.shape != (q_dst.shape[0],) or mapping.min() < 0 or mapping.max() >= q_src.shape[0]:
        raise UsageError(f"the state map must list one source state in [0, {q_src.shape[0]}) for each of the "
                         f"{q_dst.shape[0]} target states")
    target.load_weights({"q": q_src[mapping]})  # Q_target(s, a) = Q_source(map(s), a)


def transfer_agent(source: Agent, target: Agent, mode: str, state_map: Sequence[int] | None = None,
                   prior_steps: int = 10_000, prior_probability: float = 1.0, seed: int = 0) -> Agent:
    """Start ``target`` (a fresh agent for the target task) from ``source``; returns the agent to train.

    ``full`` copies the whole network (or Q table through ``state_map``), ``trunk`` all but the output
    layers, ``prior`` wraps ``target`` in :class:`PolicyReuse`, ``scratch`` returns ``target`` unchanged.
    """
    if mode not in MODES:
        raise UsageError(f"unknown transfer mode {mode!r}; choose one of {', '.join(MODES)}")
    if mode == "scratch":
        return target
    if mode == "prior":
        if source.action_space != target.action_space:
            raise UsageError(f"the source acts in {source.action_space}, the target in {target.action_space}: "
                             "a policy prior needs the same actions")
        return PolicyReuse(target, source, prior_steps, prior_probability, seed=seed)
    if not target.parameter_groups():  # a table
        if mode == "trunk":
            raise UsageError("a Q table has no trunk; use --mode full (with a state map) or prior for tabular learners")
        if source.parameter_groups() or "q" not in source.weights():
            raise UsageError(f"cannot transfer a {source.algo} agent into a tabular {target.algo} agent")
        _copy_table(source, target, state_map)
        return target
    _copy_network(source, target, trunk_only=(mode == "trunk"))
    return target


class PolicyReuse(Agent):
    """π-reuse: with probability ψ_t = ψ₀ (1 − t/T)⁺ an exploratory step follows the source's greedy policy.

    The learner observes every transition (off-policy learners learn from the source's actions; A2C/PPO
    re-evaluate such an action's log-probability under their own policy). Greedy actions are the learner's.
    """

    def __init__(self, learner: Agent, source: Agent, steps: int, probability: float = 1.0, seed: int = 0) -> None:
        if steps <= 0 or not 0.0 <= probability <= 1.0:
            raise UsageError(f"the prior needs positive steps and a probability in [0, 1], got {steps} and {probability}")
        super().__init__(learner.observation_space, learner.action_space, learner.config, seed)
        self.algo = learner.algo
        self.Config = learner.Config
        self.learner, self.source = learner, source
        self.steps, self.probability = int(steps), float(probability)
        self.rng = make_rng(seed)
        self.t = 0

    def psi(self) -> float:
        return self.probability * max(0.0, 1.0 - self.t / self.steps)

    def act(self, observation: Any, explore: bool = True) -> Any:
        if not explore:
            return self.learner.act(observation, explore)
        batch = np.ndim(observation) > len(getattr(self.observation_space, "shape", ()) or ())
        if not batch:
            if self.rng.random() < self.psi():
                return self.source.act(observation, explore=False)
            return self.learner.act(observation, explore)
        # a vector env's batch: one coin per sub-env (the learner re-evaluates rows it did not choose)
        own = self.learner.act(observation, explore)
        reuse = self.rng.random(len(own)) < self.psi()
        if not reuse.any():
            return own
        prior = np.asarray(self.source.act(observation, explore=False))
        return np.where(reuse.reshape((-1,) + (1,) * (np.ndim(own) - 1)), prior, own)

    def observe(self, transition: Transition) -> dict[str, float]:
        self.t += int(np.size(transition.terminated))  # ψ decays per environment step, n per vector-env call
        return self.learner.observe(transition)

    def begin_task(self, task: Any = None, budget: int | None = None, restart_schedules: bool = True,
                   clear_memory: bool = False) -> None:
        self.learner.begin_task(task, budget, restart_schedules, clear_memory)

    def end_task(self) -> dict[str, float]:
        return self.learner.end_task()

    def end_episode(self) -> None:
        self.learner.end_episode()

    def train_metrics(self) -> dict[str, float]:
        return {**self.learner.train_metrics(), "prior_probability": self.psi()}

    def state_dict(self) -> dict[str, Any]:
        return {"learner": self.learner.state_dict(), "t": self.t, "rng": rng_state(self.rng)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.learner.load_state_dict(state["learner"])
        self.t = int(state["t"])
        set_rng_state(self.rng, state["rng"])


# -- learning curves ------------------------------------------------------------------------------------

@dataclass
class Curve:
    """Greedy return (mean over evaluation episodes) after ``steps[k]`` environment steps."""

    steps: list[int]
    returns: list[float]


def learning_curve(agent: Agent, env: Any, eval_env: Any, steps: int, eval_every: int, eval_episodes: int,
                   seed: int, on_step: Callable[[int], None] | None = None) -> Curve:
    """Train ``agent`` on ``env`` for ``steps`` steps, evaluating greedily at 0, every ``eval_every`` steps and at the end."""
    from llmagentos.core.seeding import derive_seed

    loop = Interaction(agent, env, seed=derive_seed(seed, "env"))
    eval_seed = derive_seed(seed, "eval")
    curve = Curve([0], [float(np.mean(evaluate(agent, eval_env, eval_episodes, seed=eval_seed)))])
    evals = Every(eval_every)
    while loop.steps < steps:
        loop.step()
        if evals.due(loop.steps) or loop.steps >= steps:
            curve.steps.append(loop.steps)
            curve.returns.append(float(np.mean(evaluate(agent, eval_env, eval_episodes, seed=eval_seed))))
            evals.done(loop.steps)
        if on_step is not None:
            on_step(loop.steps)
    return curve
