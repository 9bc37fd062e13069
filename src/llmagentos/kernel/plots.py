"""PNG plots for people: learning curves with shaded spread across seeds."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from llmagentos.core.statistics import normal_half_width


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def learning_curves(curves: dict[str, tuple[np.ndarray, np.ndarray]], path: str | Path, title: str,
                    xlabel: str, ylabel: str, ylim: Sequence[float] | None = None,
                    vlines: Sequence[float] = ()) -> Path:
    """One line per label: ``curves[label] = (x, Y)`` with Y of shape (seeds, len(x)); the band is ±1.96 SE."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=110)
    for label, (x, ys) in curves.items():
        ys = np.atleast_2d(np.asarray(ys, dtype=float))
        mean = ys.mean(axis=0)
        half = normal_half_width(ys) if ys.shape[0] > 1 else np.zeros_like(mean)
        ax.plot(x, mean, label=label, linewidth=1.6)
        ax.fill_between(x, mean - half, mean + half, alpha=0.25)
    for v in vlines:
        ax.axvline(v, color="grey", linestyle=":", linewidth=1)
    if ylim is not None:
        ax.set_ylim(*ylim)
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)
    return path


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Trailing moving average (the first points average what exists so far)."""
    values = np.asarray(values, dtype=float)
    cumsum = np.cumsum(np.insert(values, 0, 0.0))
    out = np.empty_like(values)
    for i in range(len(values)):
        lo = max(0, i + 1 - window)
        out[i] = (cumsum[i + 1] - cumsum[lo]) / (i + 1 - lo)
    return out
