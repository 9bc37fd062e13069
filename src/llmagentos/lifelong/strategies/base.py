"""What every consolidation strategy shares: the view of the learner's network it protects, and its five moments.

A strategy sees the learner's network through a :class:`NetworkView`, built from the learner's documented
accessors (the module whose outputs carry the knowledge — Q-values for DQN, action logits or Gaussian means
for policy-gradient learners — its value module, its input preparation, its replay memory and TD loss where
it has them) and acts at five moments: the start of a task, a penalty added to every learner update
(``add_loss_term``), a step after each update (``add_update_hook``), the end of a task, and evaluation on a
given task.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Iterator

import numpy as np
import torch
from torch import nn

from llmagentos.core.seeding import make_rng, rng_state, set_rng_state


@dataclass
class NetworkView:
    """The part of a learner that consolidation protects: ``module(preprocess(obs))`` gives its outputs."""

    module: nn.Module
    #: observations (numpy batch) -> the module's input tensor (one-hot, scaling ...), without gradients
    preprocess: Callable[[np.ndarray], torch.Tensor]
    #: whether the outputs score discrete actions (Q-values, logits); False for Gaussian means
    discrete: bool = True
    #: V(s) of the same inputs, with parameters named as ``module``'s (actor-critic learners); None for DQN
    value_module: nn.Module | None = None
    #: (n, rng, recent) -> up to n distinct transitions (ReplayBatch fields as arrays) drawn from the learner's
    #: ``recent`` most recently stored ones; None when the learner keeps no replay memory
    transitions: Callable[[int, np.random.Generator, int], dict[str, np.ndarray] | None] | None = None
    #: transitions -> the learner's own RL loss on them (DQN's TD loss), with gradients into ``module``
    td_loss: Callable[[dict[str, np.ndarray]], torch.Tensor | None] | None = None
    #: tell the learner its weights were changed from outside (DQN re-syncs its target network)
    weights_changed: Callable[[], None] = lambda: None
    #: (n, rng) -> up to n states of the task being learned now (None before any), for LwF's distillation
    current_states: Callable[[int, np.random.Generator], np.ndarray | None] | None = None

    def outputs(self, observations: np.ndarray) -> torch.Tensor:
        """Network outputs (B, K) for a batch of observations, with gradients."""
        return self.module(self.preprocess(np.asarray(observations)))

    def parameters(self) -> dict[str, nn.Parameter]:
        return dict(self.module.named_parameters())


def log_policy(outputs: torch.Tensor, temperature: float) -> torch.Tensor:
    return torch.log_softmax(outputs / temperature, dim=-1)


def distillation_kl(old: torch.Tensor, new: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(softmax(old/T) ‖ softmax(new/T)) averaged over the batch."""
    old_logp = log_policy(old, temperature)
    return (old_logp.exp() * (old_logp - log_policy(new, temperature))).sum(-1).mean()  # Σ_a π_old (log π_old − log π_θ)


class Consolidation:
    """Base class of the strategies: no penalty, nothing kept (what fine-tuning is).

    A strategy sets :attr:`name` (what specs and ``--set strategy=`` call it), :attr:`summary` and, when it has hyperparameters,
    :attr:`Fields`: a dataclass of ``param`` fields that becomes part of the consolidation config.
    """

    #: the strategy's name in specs, ``lifelong.strategies`` and ``strategy=``
    name: ClassVar[str] = ""
    #: a few words on what it keeps (the ``strategy`` field's doc lists them)
    summary: ClassVar[str] = ""
    #: a dataclass with the strategy's own config fields (None: it has none)
    Fields: ClassVar[type | None] = None
    #: whether the lifelong agent must record the network's behaviour-time outputs with the states it keeps
    wants_outputs: ClassVar[bool] = False

    def __init__(self, view: NetworkView, config: Any, seed: int = 0) -> None:
        self.view = view
        self.config = config
        self.rng = make_rng(seed)

    def penalty(self) -> torch.Tensor | None:
        """Added to the learner's loss at every update (None: nothing to add)."""
        return None

    def after_update(self) -> None:
        """Called after every learner update (PackNet re-freezes weights here, SI integrates its path)."""

    def begin_task(self) -> None:
        """Called when a task starts, after transfer chose its starting weights."""

    def end_task(self, task: int, states: np.ndarray, tasks_left: int | None = None, steps: int = 0,
                 outputs: np.ndarray | None = None) -> None:
        """Called when task ``task`` ends, with states the agent saw on it, the outputs the network gave on them
        when it acted there (when :attr:`wants_outputs`), and the number of ``steps`` it lived there."""

    @contextlib.contextmanager
    def evaluating(self, task: int, current: int) -> Iterator[None]:
        """The network as it should act on task ``task`` while ``current`` is being learned."""
        yield

    def state_dict(self) -> dict[str, Any]:
        return {"rng": rng_state(self.rng)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        set_rng_state(self.rng, state["rng"])
