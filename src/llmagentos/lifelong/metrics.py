"""Continual-learning metrics over an evaluation matrix, with bootstrap confidence intervals over seeds.

``R[i, j]`` is the greedy return on task ``j`` after training through task ``i`` (rows: training stages,
columns: tasks), normalised per task so that 0 is a uniformly random policy and 1 is a learner trained
on that task alone with the same budget. The definitions follow Continual World (Wołczyk et al., 2021)
and GEM (Lopez-Paz & Ranzato, 2017):

- average performance  A = 1/N Σ_j R[N−1, j]                     (performance at the end of the stream)
- forgetting           F = 1/N Σ_j (R[j, j] − R[N−1, j])        (CW averages over all N tasks; the last adds 0)
- backward transfer    BWT = 1/(N−1) Σ_{j<N−1} (R[N−1, j] − R[j, j])
- forward transfer     FT = 1/N Σ_j (AUC_j − AUC_j^b) / (1 − AUC_j^b), AUC the mean normalised
  performance on task j while it is being learned, ``b`` the single-task reference learner (Continual World).
- forward transfer     FT_GEM = 1/(N−1) Σ_{i≥1} (R[i−1, i] − b_i), the zero-shot performance on task i just
  (GEM)                before it is learned, against b_i, a freshly initialised learner's (GEM's definition).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from llmagentos.core.statistics import bootstrap_ci

#: forward transfer's AUCs use performance clipped to [0, 1], Continual World's success-rate range
FT_CLIP = (0.0, 1.0)


def normalise(raw: np.ndarray, random_returns: Sequence[float], single_task_returns: Sequence[float]) -> np.ndarray:
    """(raw − random_j) / (single_j − random_j), column by column (the last axis indexes tasks).

    A task on which the single-task learner does no better than random gets a denominator of 1
    (return units), so that the matrix stays finite and a return above random stays positive instead of
    changing sign; :func:`references_below_random` names those tasks, so that a summary reports them.
    """
    raw = np.asarray(raw, dtype=float)
    lo = np.asarray(random_returns, dtype=float)
    hi = np.asarray(single_task_returns, dtype=float)
    span = hi - lo
    span = np.where(span < 1e-9, 1.0, span)
    return (raw - lo) / span


def references_below_random(random_returns: Sequence[float], single_task_returns: Sequence[float]) -> list[int]:
    """The tasks whose single-task reference did no better than a random policy (normalised in return units)."""
    lo = np.asarray(random_returns, dtype=float)
    hi = np.asarray(single_task_returns, dtype=float)
    return [int(j) for j in np.flatnonzero(hi - lo < 1e-9)]


def _check_square(R: np.ndarray) -> np.ndarray:
    R = np.asarray(R, dtype=float)
    if R.ndim != 2 or R.shape[0] != R.shape[1]:
        raise ValueError(f"the evaluation matrix must be square (stages × tasks), got shape {R.shape}")
    return R


def average_performance(R: np.ndarray) -> float:
    """A = 1/N Σ_j R[N−1, j]."""
    R = _check_square(R)
    return float(R[-1].mean())


def forgetting(R: np.ndarray) -> float:
    """F = 1/N Σ_j (R[j, j] − R[N−1, j]); positive when tasks were forgotten."""
    R = _check_square(R)
    return float(np.mean(np.diag(R) - R[-1]))


def backward_transfer(R: np.ndarray) -> float:
    """BWT = 1/(N−1) Σ_{j<N−1} (R[N−1, j] − R[j, j]); negative when later tasks hurt earlier ones."""
    R = _check_square(R)
    n = R.shape[0]
    if n < 2:
        return 0.0
    return float(np.mean(R[-1, :-1] - np.diag(R)[:-1]))


def auc(curve: Sequence[float]) -> float:
    """Mean of a performance curve sampled at equal intervals over a task's training (area / length)."""
    curve = np.clip(np.asarray(curve, dtype=float), *FT_CLIP)
    if curve.size == 0:
        raise ValueError("a learning curve needs at least one point")
    if curve.size == 1:
        return float(curve[0])
    return float(np.trapezoid(curve) / (curve.size - 1))


def forward_transfer(curves: Sequence[Sequence[float]], reference_curves: Sequence[Sequence[float]]) -> float:
    """FT = 1/N Σ_j (AUC_j − AUC_j^b) / (1 − AUC_j^b) (Continual World).

    ``curves[j]``: normalised performance on task j during its training in the stream;
    ``reference_curves[j]``: the same for a learner trained on task j alone from scratch.
    A reference that is already perfect throughout (AUC^b = 1) leaves nothing to transfer: its term is 0.
    """
    if len(curves) != len(reference_curves):
        raise ValueError("one reference curve per task is needed")
    terms = []
    for c, b in zip(curves, reference_curves):
        a, ab = auc(c), auc(b)
        terms.append(0.0 if 1.0 - ab < 1e-9 else (a - ab) / (1.0 - ab))
    return float(np.mean(terms))


def forward_transfer_gem(R: np.ndarray, initial: Sequence[float]) -> float:
    """FT_GEM = 1/(N−1) Σ_{i=1}^{N−1} (R[i−1, i] − b_i) (Lopez-Paz & Ranzato, 2017).

    ``initial[i]`` is b_i, the (normalised) performance on task i of a freshly initialised learner, such as
    the first point of the single-task reference's learning curve. One task has no transfer: 0.
    """
    R = _check_square(R)
    n = R.shape[0]
    if len(initial) != n:
        raise ValueError(f"one initial performance per task is needed, got {len(initial)} for {n} tasks")
    if n < 2:
        return 0.0
    b = np.asarray(initial, dtype=float)
    return float(np.mean([R[i - 1, i] - b[i] for i in range(1, n)]))


METRICS = ("average_performance", "forgetting", "forward_transfer", "forward_transfer_gem", "backward_transfer")


def summarise(matrices: Sequence[np.ndarray], curves: Sequence[Sequence[Sequence[float]]] | None = None,
              reference_curves: Sequence[Sequence[Sequence[float]]] | None = None) -> dict[str, Any]:
    """Every metric's mean over seeds with its bootstrap 95 % interval, plus the mean matrix.

    ``matrices[s]`` is seed s's normalised R; ``curves[s][j]`` / ``reference_curves[s][j]`` its learning
    curves (forward transfer is None without them).
    """
    per_seed: dict[str, list[float]] = {m: [] for m in METRICS}
    for s, R in enumerate(matrices):
        per_seed["average_performance"].append(average_performance(R))
        per_seed["forgetting"].append(forgetting(R))
        per_seed["backward_transfer"].append(backward_transfer(R))
        if curves is not None and reference_curves is not None:
            per_seed["forward_transfer"].append(forward_transfer(curves[s], reference_curves[s]))
            per_seed["forward_transfer_gem"].append(forward_transfer_gem(R, [c[0] for c in reference_curves[s]]))
    out: dict[str, Any] = {}
    for name, values in per_seed.items():
        if not values:
            out[name] = None
            out[name + "_ci"] = None
            continue
        out[name] = float(np.mean(values))
        out[name + "_ci"] = list(bootstrap_ci(values))
        out[name + "_per_seed"] = [float(v) for v in values]
    out["matrix"] = np.mean(np.asarray(matrices, dtype=float), axis=0).tolist()
    out["seeds"] = len(matrices)
    return out
