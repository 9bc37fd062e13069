"""Task families: sets of related environments, each member named by a task descriptor.

A descriptor is a small JSON-able dict (``{"goal": [0.1, -0.3]}``, ``{"pole_length": 1.5, ...}``).
Every family offers the same API, which multi-task learners, transfer, meta-learners and lifelong task
streams all use::

    family = get_family("cartpole")            # or "goal-grid", "pointnav", or the env id
    tasks = family.tasks(4, seed=0)            # n descriptors, the same for the same seed
    task = family.sample(rng)                  # one descriptor from a numpy Generator
    env = family.make(task, append_task=True)  # gymnasium.make(family.env_id, **family.to_env_kwargs(task))
    family.from_env_kwargs(family.to_env_kwargs(task)) == task
    family.vector(task)                        # the descriptor as a float vector (what append_task appends)

The environments put the descriptor in ``info["task"]`` at every reset and step, accept it as keyword
arguments (so ``--env-arg`` selects a task on the command line) and switch tasks in place with
``env.unwrapped.set_task(task)``.
"""

from __future__ import annotations

import itertools
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any

import numpy as np

from llmagentos.core.errors import UsageError
from llmagentos.core.seeding import make_rng


class TaskFamily(ABC):
    """A parameterised set of environments registered under one Gymnasium id."""

    #: the family's name for ``get_family``
    name: str = ""
    #: the Gymnasium id of its environments
    env_id: str = ""
    #: fixed env keyword arguments shared by every task of this family instance (not part of descriptors)
    fixed_kwargs: dict[str, Any]

    @abstractmethod
    def default(self) -> dict[str, Any]:
        """The descriptor an env made without task arguments has."""

    @abstractmethod
    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        """One descriptor drawn from the family's task distribution with ``rng``."""

    @abstractmethod
    def vector(self, task: dict[str, Any]) -> np.ndarray:
        """The descriptor as a float32 vector of length :attr:`vector_size` (the features ``append_task`` appends)."""

    @abstractmethod
    def validate(self, task: dict[str, Any]) -> dict[str, Any]:
        """The canonical form of ``task`` (defaults filled in, types fixed) or UsageError naming what is wrong."""

    @property
    def vector_size(self) -> int:
        return int(len(self.vector(self.default())))

    def tasks(self, n: int, seed: int = 0) -> list[dict[str, Any]]:
        """``n`` descriptors drawn with ``seed`` (distinct where the family is finite and large enough)."""
        if n <= 0:
            raise UsageError(f"the number of tasks must be positive, got {n}")
        rng = make_rng(seed)
        return [self.sample(rng) for _ in range(n)]

    def to_env_kwargs(self, task: dict[str, Any]) -> dict[str, Any]:
        """Keyword arguments for ``gymnasium.make(self.env_id, ...)`` that build the task."""
        return {**self.fixed_kwargs, **self.validate(task)}

    def from_env_kwargs(self, kwargs: dict[str, Any]) -> dict[str, Any]:
        """The descriptor of the env that ``kwargs`` build (keys that are not task parameters are dropped)."""
        keys = set(self.default())
        return self.validate({k: v for k, v in kwargs.items() if k in keys})

    def make(self, task: dict[str, Any] | None = None, append_task: bool = False, **kwargs: Any) -> Any:
        """``gymnasium.make`` of one task (default task when ``task`` is None), with its time limit."""
        import gymnasium as gym

        import llmagentos.envs  # noqa: F401  (registers the ids)

        task = self.default() if task is None else task
        return gym.make(self.env_id, **self.to_env_kwargs(task), append_task=append_task, **kwargs)

    def key(self, task: dict[str, Any]) -> str:
        """A short readable name for a task (table rows, plot labels)."""
        return ",".join(f"{k}={_short(v)}" for k, v in self.validate(task).items())


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(_short(v) for v in value) + "]"
    return str(value)


# -- CartPole -----------------------------------------------------------------------------------------

class CartPoleFamily(TaskFamily):
    """CartPole physics: each parameter uniform in ``[low, high]`` (ranges ⊂ positive reals, CartPole-v1 inside).

    A descriptor may also give a negative ``force_mag`` (the push direction reversed; never drawn by ``sample``).

    Args:
        ranges: parameter -> ``[low, high]``; a parameter left out stays at CartPole-v1's value.
    """

    name = "cartpole"
    env_id = "llmagentos/CartPoleFamily-v0"
    #: default ranges: pole length ×0.5–2, masses ×0.5–2, gravity ×0.5–1.5, force ×0.5–1.5 around CartPole-v1
    RANGES: dict[str, tuple[float, float]] = {"pole_length": (0.5, 2.0), "pole_mass": (0.05, 0.2),
                                              "cart_mass": (0.5, 2.0), "gravity": (4.9, 14.7), "force_mag": (5.0, 15.0)}

    def __init__(self, ranges: dict[str, Sequence[float]] | None = None) -> None:
        from llmagentos.envs.cartpole_family import DEFAULTS

        self.defaults = dict(DEFAULTS)
        self.ranges = {k: (float(v[0]), float(v[1])) for k, v in (self.RANGES if ranges is None else ranges).items()}
        for k, (lo, hi) in self.ranges.items():
            if k not in DEFAULTS:
                raise UsageError(f"the cartpole family has no parameter {k!r}; its parameters are {', '.join(DEFAULTS)}")
            if not 0 < lo <= hi:
                raise UsageError(f"the range of {k} must satisfy 0 < low <= high, got [{lo}, {hi}]")
        self.fixed_kwargs = {}

    def default(self) -> dict[str, Any]:
        return dict(self.defaults)

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        task = self.default()
        for k in self.defaults:  # fixed key order keeps draws reproducible whatever order ranges came in
            if k in self.ranges:
                lo, hi = self.ranges[k]
                task[k] = float(rng.uniform(lo, hi))
        return task

    def validate(self, task: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(task, dict):
            raise UsageError(f"a cartpole task is a mapping of {', '.join(self.defaults)}, got {task!r}")
        unknown = set(task) - set(self.defaults)
        if unknown:
            raise UsageError(f"the cartpole family has no parameter {sorted(unknown)[0]!r}; its parameters are "
                             f"{', '.join(self.defaults)}")
        from llmagentos.envs.cartpole_family import SIGNED

        out = {}
        for k, v in self.defaults.items():
            value = task.get(k, v)
            number = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
            if k in SIGNED and not (number and value != 0):  # a negative force reverses the push direction
                raise UsageError(f"cartpole task parameter {k} must be a non-zero number (negative reverses the push), got {value!r}")
            if k not in SIGNED and not (number and value > 0):
                raise UsageError(f"cartpole task parameter {k} must be a positive number, got {value!r}")
            out[k] = float(value)
        return out

    def vector(self, task: dict[str, Any]) -> np.ndarray:
        from llmagentos.envs.cartpole_family import task_vector

        return task_vector(self.validate(task))


# -- PointNav -----------------------------------------------------------------------------------------

class PointNavFamily(TaskFamily):
    """Goals uniform in [−0.5, 0.5]² (MAML's 2-D navigation)."""

    name = "pointnav"
    env_id = "llmagentos/PointNav-v0"

    def __init__(self) -> None:
        self.fixed_kwargs = {}

    def default(self) -> dict[str, Any]:
        from llmagentos.envs.pointnav import DEFAULT_GOAL

        return {"goal": list(DEFAULT_GOAL)}

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        from llmagentos.envs.pointnav import GOAL_BOUND

        return {"goal": [float(v) for v in rng.uniform(-GOAL_BOUND, GOAL_BOUND, size=2)]}

    def validate(self, task: dict[str, Any]) -> dict[str, Any]:
        from llmagentos.envs.pointnav import GOAL_BOUND

        if not isinstance(task, dict) or set(task) - {"goal"}:
            raise UsageError(f"a pointnav task is {{'goal': [x, y]}}, got {task!r}")
        goal = task.get("goal", self.default()["goal"])
        if not isinstance(goal, (list, tuple, np.ndarray)) or len(goal) != 2:
            raise UsageError(f"a pointnav goal must be [x, y], got {goal!r}")
        goal = [float(goal[0]), float(goal[1])]
        if max(abs(goal[0]), abs(goal[1])) > GOAL_BOUND:
            raise UsageError(f"a pointnav goal must lie in [-{GOAL_BOUND}, {GOAL_BOUND}]², got {goal}")
        return {"goal": goal}

    def vector(self, task: dict[str, Any]) -> np.ndarray:
        return np.array(self.validate(task)["goal"], dtype=np.float32)


# -- goal grid ------------------------------------------------------------------------------------------

class GoalGridFamily(TaskFamily):
    """Grid worlds of one size and start whose tasks differ in goal cell (and, if given, walls and slip).

    Args:
        size: grid size (int or [rows, cols]).
        start: the start cell shared by all tasks.
        goals: the goal cells tasks draw from (default: every free cell but the start).
        wall_sets: the wall layouts tasks draw from (default: one layout, no walls).
        slips: the slip probabilities tasks draw from.
        step_penalty: reward per move shared by all tasks.
    """

    name = "goal-grid"
    env_id = "llmagentos/GoalGrid-v0"

    def __init__(self, size: int | Sequence[int] = 5, start: Sequence[int] = (0, 0),
                 goals: Sequence[Sequence[int]] | None = None, wall_sets: Sequence[Sequence[Sequence[int]]] = ((),),
                 slips: Sequence[float] = (0.0,), step_penalty: float = -0.01) -> None:
        from llmagentos.envs.goal_grid import grid_shape

        self.shape = grid_shape(size)
        self.start = [int(start[0]), int(start[1])]
        self.wall_sets = [sorted([int(w[0]), int(w[1])] for w in walls) for walls in wall_sets]
        self.slips = [float(s) for s in slips]
        if not self.wall_sets or not self.slips:
            raise UsageError("a goal-grid family needs at least one wall layout and one slip value")
        rows, cols = self.shape
        if goals is None:
            goals = [[r, c] for r in range(rows) for c in range(cols) if [r, c] != self.start]
        self.goals = [[int(g[0]), int(g[1])] for g in goals]
        self.fixed_kwargs = {"size": list(self.shape), "start": list(self.start), "step_penalty": float(step_penalty)}
        self._all = [{"goal": list(g), "walls": [list(w) for w in walls], "slip": s}
                     for g, walls, s in itertools.product(self.goals, self.wall_sets, self.slips) if g not in walls]
        if not self._all:
            raise UsageError("this goal-grid family has no task (every goal is a wall)")
        for task in self._all:
            self.validate(task)

    def default(self) -> dict[str, Any]:
        rows, cols = self.shape
        return {"goal": [rows - 1, cols - 1], "walls": [], "slip": 0.0}

    def all_tasks(self) -> list[dict[str, Any]]:
        """Every task of this (finite) family, in a fixed order."""
        return [dict(t) for t in self._all]

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        return dict(self._all[int(rng.integers(len(self._all)))])

    def tasks(self, n: int, seed: int = 0) -> list[dict[str, Any]]:
        """``n`` distinct tasks in a seeded random order (UsageError if the family has fewer)."""
        if n <= 0:
            raise UsageError(f"the number of tasks must be positive, got {n}")
        if n > len(self._all):
            raise UsageError(f"this goal-grid family has only {len(self._all)} tasks, {n} were asked for")
        order = make_rng(seed).permutation(len(self._all))[:n]
        return [dict(self._all[i]) for i in order]

    def validate(self, task: dict[str, Any]) -> dict[str, Any]:
        if not isinstance(task, dict) or set(task) - {"goal", "walls", "slip"}:
            raise UsageError(f"a goal-grid task is {{'goal': [r, c], 'walls': [[r, c], ...], 'slip': p}}, got {task!r}")
        rows, cols = self.shape
        goal = task.get("goal", self.default()["goal"])
        if not isinstance(goal, (list, tuple)) or len(goal) != 2:
            raise UsageError(f"a goal-grid goal must be [row, col], got {goal!r}")
        goal = [int(goal[0]), int(goal[1])]
        walls = sorted([int(w[0]), int(w[1])] for w in task.get("walls", []))
        for cell, what in [(goal, "goal")] + [(w, "wall") for w in walls]:
            if not (0 <= cell[0] < rows and 0 <= cell[1] < cols):
                raise UsageError(f"the {what} {cell} lies outside the {rows}x{cols} grid")
        if goal == self.start or goal in walls:
            raise UsageError(f"the goal {goal} cannot be the start cell or a wall")
        slip = float(task.get("slip", 0.0))
        if not 0.0 <= slip <= 1.0:
            raise UsageError(f"slip must be a probability in [0, 1], got {slip}")
        return {"goal": goal, "walls": walls, "slip": slip}

    def vector(self, task: dict[str, Any]) -> np.ndarray:
        from llmagentos.envs.goal_grid import task_vector

        return task_vector(self.validate(task), self.shape)


# -- Continual MinAtar -----------------------------------------------------------------------------------

class MinAtarFamily(TaskFamily):
    """The five MinAtar games as tasks (``{"game": "breakout"}``), frames padded to one channel count and the
    full action set (:mod:`llmagentos.envs.continual_minatar`); ``tasks(n)`` is the first n games in order."""

    name = "minatar"
    env_id = "llmagentos/ContinualMinAtar-v0"

    def __init__(self, sticky_action_prob: float = 0.1) -> None:
        self.fixed_kwargs = {"sticky_action_prob": float(sticky_action_prob)}

    def default(self) -> dict[str, Any]:
        return {"game": "breakout"}

    def sample(self, rng: np.random.Generator) -> dict[str, Any]:
        from llmagentos.envs.continual_minatar import GAMES

        return {"game": GAMES[int(rng.integers(len(GAMES)))]}

    def tasks(self, n: int, seed: int = 0) -> list[dict[str, Any]]:
        """The first ``n`` games in the stream's fixed order (the seed does not reorder them)."""
        from llmagentos.envs.continual_minatar import GAMES

        if not 1 <= n <= len(GAMES):
            raise UsageError(f"Continual MinAtar has {len(GAMES)} games, {n} were asked for")
        return [{"game": g} for g in GAMES[:n]]

    def validate(self, task: dict[str, Any]) -> dict[str, Any]:
        from llmagentos.envs.continual_minatar import check_game

        if not isinstance(task, dict) or set(task) != {"game"}:
            raise UsageError(f"a minatar task is {{'game': NAME}}, got {task!r}")
        return {"game": check_game(task["game"])}

    def vector(self, task: dict[str, Any]) -> np.ndarray:
        from llmagentos.envs.continual_minatar import GAMES

        return np.eye(len(GAMES), dtype=np.float32)[GAMES.index(self.validate(task)["game"])]


#: family name -> class; ``get_family`` also accepts the env id
FAMILIES: dict[str, type[TaskFamily]] = {"cartpole": CartPoleFamily, "pointnav": PointNavFamily, "goal-grid": GoalGridFamily,
                                         "minatar": MinAtarFamily}


def get_family(name: str, **options: Any) -> TaskFamily:
    """The family called ``name`` (or whose env id is ``name``), or ``module:Class`` naming a user's
    :class:`TaskFamily` subclass (the only thing of such a module ever called), built with ``options``."""
    cls = next((c for key, c in FAMILIES.items() if name in (key, c.env_id)), None)
    if cls is None and isinstance(name, str) and ":" in name:
        cls = _user_family(name)
    if cls is None:
        raise UsageError(f"unknown task family {name!r}; choose one of {', '.join(FAMILIES)} or give module:Class "
                         "naming a TaskFamily subclass")
    try:
        return cls(**options)
    except TypeError as err:
        raise UsageError(f"the {name} family does not accept those options ({err})") from None


def _user_family(name: str) -> type[TaskFamily]:
    import inspect

    from llmagentos.envs.resolve import import_named

    module_name, _, attribute = name.partition(":")
    target = getattr(import_named(module_name, f"task family {name!r}: cannot import {module_name}"), attribute, None)
    if not (inspect.isclass(target) and issubclass(target, TaskFamily)):
        raise UsageError(f"task family {name!r}: {attribute} is not a subclass of llmagentos.envs.families.TaskFamily")
    return target


def family_of_env(env_id: str) -> TaskFamily | None:
    """The default family whose environments are ``env_id``, or None if the env is no family's."""
    for cls in FAMILIES.values():
        if cls.env_id == env_id:
            return cls()
    return None
