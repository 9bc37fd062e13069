"""The agent contract: the kernel owns the loop, the agent only acts, observes and remembers.

Because the loop lives outside the agent, one agent class can be trained alone, beside other
agents, across a stream of tasks, or inside a meta-learner's outer loop without change.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from llmagentos.core.errors import UsageError


@dataclass(slots=True)  # slots: one is built per env step, and slots build and read faster
class Transition:
    """One environment step (s, a, r, s', terminated, truncated), or a batch of them from a vector env.

    ``terminated`` means s' is terminal (no value beyond it); ``truncated`` means the episode was cut
    by a time limit and s' still has value, so targets bootstrap from it.
    """

    observation: Any
    action: Any
    reward: Any
    next_observation: Any
    terminated: Any
    truncated: Any
    info: dict[str, Any] = field(default_factory=dict)


class Agent:
    """Base class of every learner that interacts with an environment.

    Subclasses set ``algo`` (the registry name: ``algo = RegisteredName()`` reads it from the class's line in
    ``learners/registry.py``) and ``Config`` (a dataclass of hyperparameters), and
    implement :meth:`act` and :meth:`observe`. ``state_dict`` must return everything needed to
    continue exactly where the agent stopped, as numpy arrays, torch tensors and JSON values only.
    """

    algo: ClassVar[str] = ""
    Config: ClassVar[type]
    #: whether the agent accepts batches from a Gymnasium vector env in act/observe
    supports_vector_env: ClassVar[bool] = False
    #: whether the agent keeps a replay memory and a TD loss that learns from old transitions
    #: (``recent_transitions`` / ``td_loss``), so that consolidation can replay them
    learns_off_policy: ClassVar[bool] = False

    def __init__(self, observation_space: Any, action_space: Any, config: Any, seed: int = 0) -> None:
        self.observation_space = observation_space
        self.action_space = action_space
        self.config = config
        self.seed = seed

    def act(self, observation: Any, explore: bool = True) -> Any:
        """An action for ``observation``: exploratory when ``explore``, greedy otherwise."""
        raise NotImplementedError

    def observe(self, transition: Transition) -> dict[str, float]:
        """Learn from one step; returns scalar training metrics (losses, ε, ...) worth logging, often empty."""
        raise NotImplementedError

    def end_episode(self) -> None:
        """Called by the loop after a single env's episode ends (vector agents see ends in transitions)."""

    def state_dict(self) -> dict[str, Any]:
        raise NotImplementedError

    def load_state_dict(self, state: dict[str, Any]) -> None:
        raise NotImplementedError

    def train_metrics(self) -> dict[str, float]:
        """Scalars describing the agent's current state (ε, learning rate ...), logged at each evaluation."""
        return {}

    # -- task boundaries (lifelong streams; a single-task run is a life of one task) --------------------
    def begin_task(self, task: Any = None, budget: int | None = None, restart_schedules: bool = True,
                   clear_memory: bool = False) -> None:
        """A task starts: ``task`` its descriptor (or None), ``budget`` its environment steps when known.

        With ``restart_schedules`` the agent's schedules (ε, step size, clip range ...) start again from
        their first value and run over ``budget`` where the user gave them no horizon; without, they
        continue on the clock of the agent's whole life. ``clear_memory`` empties the agent's own replay
        memory. The default (tabular agents without schedules) does nothing.
        """

    def end_task(self) -> dict[str, float]:
        """The current task ends: learn from or drop what would otherwise span the boundary (an unfinished
        rollout, a partial episode, open n-step windows), so that nothing links two tasks. Returns metrics."""
        return {}

    def parameter_groups(self) -> dict[str, list[Any]]:
        """A deep agent's trainable parameters by role (``trunk``, ``heads``, ``value``); empty for agents without
        a network. Deep agents also document ``output_module``, ``value_module``, ``prepare_observations``,
        ``add_loss_term``, ``add_update_hook``, ``recent_transitions``, ``td_loss`` and ``weights_changed``."""
        return {}

    def weights(self, trunk_only: bool = False) -> dict[str, Any]:
        """The knowledge a task leaves behind, as tensors or arrays: network weights or a value table
        (``trunk_only``: all but the output layers); empty for an agent that keeps none."""
        return {}

    def load_weights(self, weights: dict[str, Any], trunk_only: bool = False) -> None:
        """Load :meth:`weights` of this kind of agent (``trunk_only``: all but the output layers)."""
        if weights:
            raise UsageError(f"{self.algo} keeps no weights to load (got {', '.join(sorted(weights))})")


def space_text(space: Any) -> str:
    """``str(space)`` without memory addresses (MiniGrid's MissionSpace prints its function's), so the same space
    reads the same in every process: checkpoints and stored agents compare spaces by this text."""
    import re

    return re.sub(r" at 0x[0-9a-fA-F]+", "", str(space))


def is_discrete(space: Any) -> bool:
    from gymnasium import spaces

    return isinstance(space, spaces.Discrete)


def greedy_index(row: list[float], rng: np.random.Generator) -> int:
    """:func:`greedy_argmax` of a short row given as a Python list (what tabular agents pass every step)."""
    top = max(row)
    if row.count(top) == 1:
        return row.index(top)
    tied = [i for i, v in enumerate(row) if v == top]
    return tied[int(rng.integers(len(tied)))]


def greedy_argmax(values: np.ndarray, rng: np.random.Generator) -> int:
    """argmax with ties broken uniformly at random by ``rng`` (the agent's own generator)."""
    if values.ndim == 1 and values.size <= 64:
        # small rows (tabular agents, every step): list operations beat numpy's per-call overhead
        return greedy_index(values.tolist(), rng)
    best = np.flatnonzero(values == values.max())
    if len(best) == 1:
        return int(best[0])
    return int(best[rng.integers(len(best))])
