"""What a deep learner lets other layers attach to its updates: extra loss terms and after-update hooks.

Consolidation (EWC, SI, LwF, replay), soft parameter sharing and diagnostics add to a learner's loss or
watch its optimiser steps through these two lists instead of replacing the learner's methods.
"""

from __future__ import annotations

from typing import Any, Callable

import torch

LossTerm = Callable[[], "torch.Tensor | None"]
UpdateHook = Callable[[], None]


class UpdateHooks:
    """Loss terms added to every update and callbacks run after every optimiser step (mixed into deep agents)."""

    def _init_hooks(self) -> None:
        self._loss_terms: list[LossTerm] = []
        self._update_hooks: list[UpdateHook] = []

    def add_loss_term(self, term: LossTerm) -> None:
        """Add ``term()`` (a scalar tensor with gradients into the learner's network, or None) to every update's loss."""
        self._loss_terms.append(term)

    def add_update_hook(self, hook: UpdateHook) -> None:
        """Call ``hook()`` after every optimiser step (the gradients of that step are still in ``.grad``)."""
        self._update_hooks.append(hook)

    def _extra_terms(self, zero: Any) -> Any:
        """The sum of the registered loss terms, or ``zero`` itself when none adds anything."""
        total = zero
        for term in self._loss_terms:
            value = term()
            if value is not None:
                total = value if total is zero else total + value
        return total

    def _after_update(self) -> None:
        for hook in self._update_hooks:
            hook()
