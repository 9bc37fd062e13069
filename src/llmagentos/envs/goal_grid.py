"""A family of grid worlds that differ in their goal cell, their walls and their slip probability.

Built on :class:`~llmagentos.envs.gridworld.GridWorld` (one goal with reward +1, a step penalty,
start in the top-left corner). ``info["task"]`` holds the descriptor ``{"goal": [r, c], "walls":
[[r, c], ...], "slip": p}``. The observation is the cell index (tabular learners use it as is); with
``append_task=True`` it becomes a float vector: the one-hot cell followed by the task vector
(goal row and column scaled to [0, 1], slip, and the wall mask), so one network can serve all tasks;
``one_hot=True`` alone gives the one-hot cell as a float vector (for learners that need a Box).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from gymnasium import spaces

from llmagentos.core.errors import UsageError
from llmagentos.envs.gridworld import GridWorld


def grid_shape(size: int | Sequence[int]) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        return int(size), int(size)
    if len(size) != 2:
        raise UsageError(f"size must be an int or [rows, cols], got {list(size)}")
    return int(size[0]), int(size[1])


def task_vector(task: dict[str, Any], shape: tuple[int, int]) -> np.ndarray:
    """Goal (row, col) scaled to [0, 1], slip, then one 0/1 per cell marking walls."""
    rows, cols = shape
    walls = np.zeros(rows * cols, dtype=np.float32)
    for r, c in task["walls"]:
        walls[int(r) * cols + int(c)] = 1.0
    goal = [task["goal"][0] / max(rows - 1, 1), task["goal"][1] / max(cols - 1, 1)]
    return np.concatenate([np.array(goal + [task["slip"]], dtype=np.float32), walls])


class GoalGrid(GridWorld):
    """One task of the goal-grid family: reach ``goal`` from ``start`` around ``walls``, slipping with prob. ``slip``."""

    def __init__(self, size: int | Sequence[int] = 5, goal: Sequence[int] = (4, 4), walls: Sequence[Sequence[int]] = (),
                 slip: float = 0.0, start: Sequence[int] = (0, 0), step_penalty: float = -0.01, goal_reward: float = 1.0,
                 append_task: bool = False, one_hot: bool = False, render_mode: str | None = None) -> None:
        self.one_hot = bool(one_hot) or bool(append_task)
        self._grid_args = {"size": grid_shape(size), "start": [int(start[0]), int(start[1])],
                           "step_penalty": float(step_penalty), "goal_reward": float(goal_reward)}
        self.append_task = bool(append_task)
        self._render_mode = render_mode
        self.set_task({"goal": goal, "walls": walls, "slip": slip})

    def set_task(self, task: dict[str, Any]) -> None:
        """Rebuild the transition table for another goal / walls / slip on the same grid."""
        unknown = set(task) - {"goal", "walls", "slip"}
        if unknown:
            raise UsageError(f"GoalGrid has no task parameter {sorted(unknown)[0]!r}; its parameters are goal, walls, slip")
        goal = task.get("goal", (4, 4))
        if goal is None or len(goal) != 2:
            raise UsageError(f"GoalGrid's goal must be [row, col], got {goal!r}")
        walls = [[int(w[0]), int(w[1])] for w in task.get("walls", ())]
        goal = [int(goal[0]), int(goal[1])]
        args = self._grid_args
        super().__init__(size=args["size"], walls=walls, start=args["start"],
                         goals=[[goal[0], goal[1], args["goal_reward"]]], slip=float(task.get("slip", 0.0)),
                         step_penalty=args["step_penalty"], render_mode=self._render_mode)
        self.task = {"goal": goal, "walls": sorted(walls), "slip": float(task.get("slip", 0.0))}
        self._vector = task_vector(self.task, self.shape)
        if self.one_hot:
            extra = len(self._vector) if self.append_task else 0
            self.observation_space = spaces.Box(0.0, 1.0, shape=(self.nS + extra,), dtype=np.float32)

    def _obs(self, s: int):
        if not self.one_hot:
            return s
        one_hot = np.zeros(self.nS, dtype=np.float32)
        one_hot[s] = 1.0
        return np.concatenate([one_hot, self._vector]) if self.append_task else one_hot

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        s, info = super().reset(seed=seed, options=options)
        return self._obs(s), {**info, "task": self._task_copy()}

    def step(self, action):
        s, reward, terminated, truncated, info = super().step(action)
        return self._obs(s), reward, terminated, truncated, {**info, "task": self._task_copy()}

    def _task_copy(self) -> dict[str, Any]:
        return {"goal": list(self.task["goal"]), "walls": [list(w) for w in self.task["walls"]], "slip": self.task["slip"]}
