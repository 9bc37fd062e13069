"""Confidence intervals over seeds, in one place: every report, table and plot of the project draws on these.

- :func:`normal_half_width`: 1.96 · SE, the normal 95 % half-width (learning-curve bands, MAML's held-out errors);
- :func:`t_half_width`: the Student-t half-width for a few seeds (sweep reports, transfer metrics);
- :func:`bootstrap_ci`: the percentile bootstrap interval of the mean (lifelong metrics, whose per-seed values
  are far from normal).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np


def normal_half_width(values: Any, axis: int = 0) -> np.ndarray:
    """1.96 · SE of the mean over ``axis`` (the sample standard deviation, ddof = 1, over √n)."""
    values = np.asarray(values, dtype=float)
    return 1.96 * values.std(axis=axis, ddof=1) / math.sqrt(values.shape[axis])


def mean_ci95(values: Any) -> tuple[np.ndarray, np.ndarray]:
    """Mean over the first axis and the half-width of its 95 % normal confidence interval (1.96 · SE)."""
    values = np.asarray(values, dtype=float)
    return values.mean(axis=0), normal_half_width(values)


def t_half_width(values: np.ndarray, level: float = 0.95) -> float:
    """Half-width of the Student-t confidence interval of the mean of ``values`` (at least two of them)."""
    from scipy import stats

    n = len(values)
    return float(stats.t.ppf(0.5 + level / 2, n - 1) * values.std(ddof=1) / math.sqrt(n))


def bootstrap_ci(values: Sequence[float], level: float = 0.95, resamples: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean over seeds (one value per seed)."""
    values = np.asarray(values, dtype=float)
    if values.size == 0:
        raise ValueError("bootstrap needs at least one value")
    if values.size == 1:
        return float(values[0]), float(values[0])
    rng = np.random.default_rng(seed)
    means = values[rng.integers(values.size, size=(resamples, values.size))].mean(axis=1)
    alpha = (1.0 - level) / 2.0
    return float(np.quantile(means, alpha)), float(np.quantile(means, 1.0 - alpha))
