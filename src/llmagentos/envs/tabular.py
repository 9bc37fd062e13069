"""A Gymnasium env defined by its transition table, in the toy-text convention.

``P[s][a]`` is a list of ``(probability, next_state, reward, terminated)`` — the same table that
FrozenLake, CliffWalking and Taxi expose as ``env.unwrapped.P``, so planning code reads every
tabular world the same way.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

TransitionTable = dict[int, dict[int, list[tuple[float, int, float, bool]]]]


class TabularEnv(gym.Env):
    """Discrete states and actions, stepping by sampling the transition table."""

    metadata = {"render_modes": ["ansi"], "render_fps": 4}

    def __init__(self, P: TransitionTable, initial_distribution: np.ndarray, render_mode: str | None = None) -> None:
        self.P = P
        self.nS = len(P)
        self.nA = len(P[0])
        self.initial_distribution = np.asarray(initial_distribution, dtype=np.float64)
        self.observation_space = spaces.Discrete(self.nS)
        self.action_space = spaces.Discrete(self.nA)
        self.render_mode = render_mode
        self.s = 0
        self.lastaction: int | None = None

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.s = int(self.np_random.choice(self.nS, p=self.initial_distribution))
        self.lastaction = None
        return self.s, {"prob": 1.0}

    def step(self, action):
        outcomes = self.P[self.s][int(action)]
        if len(outcomes) == 1:
            i = 0
        else:
            i = int(self.np_random.choice(len(outcomes), p=[o[0] for o in outcomes]))
        prob, next_state, reward, terminated = outcomes[i]
        self.s = int(next_state)
        self.lastaction = int(action)
        return self.s, float(reward), bool(terminated), False, {"prob": prob}

    def render(self):
        """ANSI text: the state index and, for grid worlds, the grid with the agent marked."""
        if self.render_mode != "ansi":
            return None
        shape = getattr(self, "shape", None)
        if shape is None:
            return f"state {self.s}\n"
        rows, cols = shape
        cells = ["x" if i == self.s else "." for i in range(rows * cols)]
        return "\n".join("".join(cells[r * cols:(r + 1) * cols]) for r in range(rows)) + "\n"
