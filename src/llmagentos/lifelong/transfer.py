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
from llmagentos.core.seeding import make_rng, rng_state, set_rng_state

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
    from scipy import stats

    v = np.asarray([x for x in values if x is not None and np.isfinite(x)], dtype=float)
    if len(v) == 0:
        return float("nan"), float("nan"), float("nan")
    mean = float(v.mean())
    if len(v) == 1:
        return mean, mean, mean
    half = float(stats.t.ppf(0.5 + level / 2, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))
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
