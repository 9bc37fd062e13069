"""The sinusoid regression family of Finn et al. (2017), the standard few-shot meta-learning benchmark.

A task is y = A sin(x − φ) with amplitude A ~ U[0.1, 5] and phase φ ~ U[0, π]; its inputs are
x ~ U[−5, 5]. A learner sees K support points of a new task and is scored on fresh query points.
This module needs numpy only (benchmarks load it by path into peer venvs to share the exact tasks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SinusoidFamily:
    """A distribution over sinusoid regression tasks; every draw comes from a caller-owned numpy Generator."""

    amplitude: tuple[float, float] = (0.1, 5.0)
    phase: tuple[float, float] = (0.0, math.pi)
    x_range: tuple[float, float] = (-5.0, 5.0)

    def sample_tasks(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n`` tasks as (amplitudes, phases), each of shape (n,)."""
        amplitude = rng.uniform(*self.amplitude, size=n)
        phase = rng.uniform(*self.phase, size=n)
        return amplitude, phase

    def sample_points(self, amplitude: np.ndarray, phase: np.ndarray, k: int,
                      rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``k`` labelled points per task: x and y of shape (tasks, k, 1), float32."""
        x = rng.uniform(*self.x_range, size=(len(amplitude), k, 1))
        y = amplitude[:, None, None] * np.sin(x - phase[:, None, None])
        return x.astype(np.float32), y.astype(np.float32)

    def batch(self, n: int, k_support: int, k_query: int, rng: np.random.Generator
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """A meta-batch: support (x, y) and query (x, y) of ``n`` fresh tasks, shapes (n, k, 1)."""
        amplitude, phase = self.sample_tasks(n, rng)
        xs, ys = self.sample_points(amplitude, phase, k_support, rng)
        xq, yq = self.sample_points(amplitude, phase, k_query, rng)
        return xs, ys, xq, yq

    def mixture(self, n: int, k: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        """``n × k`` points pooled over ``n`` fresh tasks (what a pretrained, non-meta baseline fits)."""
        amplitude, phase = self.sample_tasks(n, rng)
        x, y = self.sample_points(amplitude, phase, k, rng)
        return x.reshape(-1, 1), y.reshape(-1, 1)
