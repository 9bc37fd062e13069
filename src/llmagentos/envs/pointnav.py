"""2-D point navigation (Finn et al., 2017, §5.3): a point starts at the origin and must reach a goal.

Observation: the point's position (x, y). Action: a displacement, clipped to [−0.1, 0.1] per axis.
Reward: −‖position − goal‖ after the move. The episode ends when the point is within 0.01 of the goal
on both axes (as in the MAML code) or after 100 steps (the registered time limit). Each task is a goal
in [−0.5, 0.5]²; ``info["task"]`` holds the descriptor ``{"goal": [gx, gy]}``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from llmagentos.core.errors import UsageError

#: the largest displacement per step and axis
MAX_STEP = 0.1
#: goals of the family lie in [−GOAL_BOUND, GOAL_BOUND]²
GOAL_BOUND = 0.5
#: the registered time limit; it also bounds how far the point can wander (100 × 0.1 = 10)
HORIZON = 100
DEFAULT_GOAL = (0.25, 0.25)


class PointNav(gym.Env):
    """A point moving in the plane toward ``goal``; ``append_task=True`` appends the goal to the observation."""

    metadata = {"render_modes": ["ansi"], "render_fps": 10}

    def __init__(self, goal: Sequence[float] = DEFAULT_GOAL, append_task: bool = False,
                 render_mode: str | None = None) -> None:
        self.append_task = bool(append_task)
        self.render_mode = render_mode
        bound = MAX_STEP * HORIZON
        low, high = [-bound, -bound], [bound, bound]
        if self.append_task:
            low, high = low + [-GOAL_BOUND] * 2, high + [GOAL_BOUND] * 2
        self.observation_space = spaces.Box(np.array(low, np.float32), np.array(high, np.float32), dtype=np.float32)
        self.action_space = spaces.Box(-MAX_STEP, MAX_STEP, shape=(2,), dtype=np.float32)
        self.position = np.zeros(2)
        self.set_task({"goal": goal})

    def set_task(self, task: dict[str, Any]) -> None:
        """Switch to another goal (takes effect immediately; meta-learners call it between episodes)."""
        goal = task.get("goal") if isinstance(task, dict) else None
        if goal is None or len(goal) != 2:
            raise UsageError(f"PointNav's goal must be [x, y], got {goal!r}")
        goal = np.array([float(goal[0]), float(goal[1])])
        if not np.all(np.abs(goal) <= GOAL_BOUND + 1e-12):
            raise UsageError(f"PointNav's goal must lie in [-{GOAL_BOUND}, {GOAL_BOUND}]², got {goal.tolist()}")
        self.goal = goal
        self.task = {"goal": goal.tolist()}

    def _obs(self) -> np.ndarray:
        obs = self.position if not self.append_task else np.concatenate([self.position, self.goal])
        return obs.astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self.position = np.zeros(2)
        return self._obs(), {"task": dict(self.task)}

    def step(self, action):
        step = np.clip(np.asarray(action, dtype=np.float64).reshape(2), -MAX_STEP, MAX_STEP)
        self.position = self.position + step
        dx, dy = self.position - self.goal
        reward = -float(np.sqrt(dx * dx + dy * dy))  # r = −‖p − g‖
        terminated = bool(abs(dx) < 0.01 and abs(dy) < 0.01)
        return self._obs(), reward, terminated, False, {"task": dict(self.task)}

    def render(self):
        if self.render_mode != "ansi":
            return None
        return f"position ({self.position[0]:+.3f}, {self.position[1]:+.3f})  goal ({self.goal[0]:+.3f}, {self.goal[1]:+.3f})\n"
