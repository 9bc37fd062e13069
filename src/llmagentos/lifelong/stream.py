"""Task streams: the order in which a lifelong agent meets the tasks of a family, and worlds that drift.

A :class:`TaskStream` is an ordered list of task descriptors from one family with a step budget per
task and known boundaries (the agent is told when a task ends). A :class:`DriftingWorld` is one
Gymnasium env whose task changes without notice: abruptly at unannounced steps (the new task starts
with the first episode after the switch step), or gradually (numeric task parameters move linearly
from one descriptor to the next over each segment). The world logs when each change took effect, so
detection delays can be measured against the truth.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import gymnasium as gym
import numpy as np

from llmagentos.core.errors import UsageError
from llmagentos.envs.families import TaskFamily, get_family


@dataclass
class TaskStream:
    """``tasks`` (descriptors of ``family``) met in order, ``steps_per_task`` environment steps each."""

    family: str
    tasks: list[dict[str, Any]]
    steps_per_task: int
    family_options: dict[str, Any] = field(default_factory=dict)
    append_task: bool = False
    env_kwargs: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.tasks) < 1:
            raise UsageError("a task stream needs at least one task")
        if self.steps_per_task <= 0:
            raise UsageError(f"steps_per_task must be positive, got {self.steps_per_task}")
        fam = self.family_object()
        self.tasks = [fam.validate(t) for t in self.tasks]

    @classmethod
    def sample(cls, family: str, n_tasks: int, steps_per_task: int, seed: int = 0,
               family_options: dict[str, Any] | None = None, **kwargs: Any) -> "TaskStream":
        """``n_tasks`` tasks drawn from the family with ``seed`` (the same seed gives the same stream)."""
        fam = get_family(family, **(family_options or {}))
        return cls(family, fam.tasks(n_tasks, seed), steps_per_task, dict(family_options or {}), **kwargs)

    def family_object(self) -> TaskFamily:
        return get_family(self.family, **self.family_options)

    def __len__(self) -> int:
        return len(self.tasks)

    def make_env(self, index: int, num_envs: int = 1) -> gym.Env:
        """A fresh env of task ``index`` (a same-step-autoreset vector env of ``num_envs`` copies when > 1)."""
        fam = self.family_object()
        if num_envs > 1:
            from gymnasium.vector import AutoresetMode

            import llmagentos.envs  # noqa: F401  (registers the ids)

            return gym.make_vec(fam.env_id, num_envs=num_envs, vectorization_mode="sync",
                                vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP},
                                **fam.to_env_kwargs(self.tasks[index]), append_task=self.append_task, **self.env_kwargs)
        return fam.make(self.tasks[index], append_task=self.append_task, **self.env_kwargs)

    def vector(self, index: int) -> np.ndarray:
        return self.family_object().vector(self.tasks[index])

    def boundaries(self) -> list[int]:
        """The global step at which each task starts."""
        return [i * self.steps_per_task for i in range(len(self.tasks))]

    def label(self, index: int) -> str:
        return self.family_object().key(self.tasks[index])


def _interpolate(a: dict[str, Any], b: dict[str, Any], w: float) -> dict[str, Any]:
    """Numeric entries (and lists of numbers) move from a to b by weight w; others switch at w ≥ 0.5."""
    out = {}
    for k in a:
        x, y = a[k], b[k]
        if isinstance(x, (int, float)) and not isinstance(x, bool) and isinstance(y, (int, float)):
            out[k] = type(x)((1 - w) * x + w * y) if isinstance(x, float) else (x if w < 0.5 else y)
        elif isinstance(x, list) and x and all(isinstance(v, float) for v in x) and len(x) == len(y):
            out[k] = [(1 - w) * u + w * v for u, v in zip(x, y)]
        else:
            out[k] = x if w < 0.5 else y
    return out


class DriftingWorld(gym.Env):
    """One env of ``family`` whose task changes without notice every ``steps_per_task`` steps.

    ``mode="abrupt"``: the task switches to the next descriptor at the first reset after each switch step.
    ``mode="gradual"``: at every reset the task is the interpolation between the segment's descriptor and
    the next one, by the fraction of the segment elapsed. ``switch_log`` holds (step, task index) each time
    a new descriptor took effect (abrupt) or a new segment began (gradual). The cycle repeats after the last task.
    """

    metadata = {"render_modes": []}

    def __init__(self, stream: TaskStream, mode: Literal["abrupt", "gradual"] = "abrupt") -> None:
        if mode not in ("abrupt", "gradual"):
            raise UsageError(f"drift mode must be 'abrupt' or 'gradual', got {mode!r}")
        self.stream = stream
        self.mode = mode
        self.family = stream.family_object()
        self.inner = stream.make_env(0)
        self.observation_space = self.inner.observation_space
        self.action_space = self.inner.action_space
        self.spec = self.inner.spec
        self.steps = 0
        self.current = 0
        self.task = dict(stream.tasks[0])
        self.switch_log: list[tuple[int, int]] = [(0, 0)]

    def _segment(self) -> tuple[int, float]:
        n = self.steps // self.stream.steps_per_task
        return n, (self.steps % self.stream.steps_per_task) / self.stream.steps_per_task

    def _apply(self) -> None:
        n, frac = self._segment()
        tasks = self.stream.tasks
        if self.mode == "abrupt":
            task = tasks[n % len(tasks)]
        else:
            task = _interpolate(tasks[n % len(tasks)], tasks[(n + 1) % len(tasks)], frac)
        if n != self.current:
            self.current = n
            self.switch_log.append((self.steps, n % len(tasks)))
        if task != self.task:
            self.task = task
            self.inner.unwrapped.set_task(self.family.validate(task))

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        self._apply()
        obs, info = self.inner.reset(seed=seed, options=options)
        return obs, info

    def step(self, action: Any):
        self.steps += 1
        return self.inner.step(action)

    def switch_steps(self) -> list[int]:
        """Steps at which a new task took effect (excluding the start)."""
        return [s for s, _ in self.switch_log[1:]]

    def state(self) -> dict[str, Any]:
        return {"steps": self.steps, "current": self.current, "task": self.task, "switch_log": [list(x) for x in self.switch_log]}

    def close(self) -> None:
        self.inner.close()
