"""``lwf``: learning without forgetting (Li & Hoiem, 2017).

The network as it was when the last task ended is kept, and every update on the new task adds the distillation of
its outputs on the new task's own states (``replay_batch`` of them), T² KL(softmax(q_old/T) ‖ softmax(q_θ/T))
(squared error for Gaussian means), plus ‖V − V_old‖² for actor-critics and ‖q_θ − q_old‖² for DQN's Q-values.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from llmagentos.core.config import param
from llmagentos.lifelong.strategies.base import Consolidation, NetworkView, distillation_kl


@dataclass
class LwFFields:
    lwf_lambda: float = param(1.0, "weight of learning without forgetting's distillation loss", ge=0)
    lwf_temperature: float = param(2.0, "distillation temperature T of learning without forgetting (Li & Hoiem use 2)", gt=0)


class LearningWithoutForgetting(Consolidation):
    """Learning without forgetting: distil the network as the last task left it, on the new task's states."""

    name = "lwf"
    summary = "learning without forgetting"
    Fields = LwFFields

    def __init__(self, view: NetworkView, config: Any, seed: int = 0) -> None:
        super().__init__(view, config, seed)
        self.old: dict[str, torch.Tensor] | None = None  # θ_old, the weights when the last task ended

    def penalty(self) -> torch.Tensor | None:
        from torch.func import functional_call

        view, c = self.view, self.config
        if self.old is None or view.current_states is None:
            return None
        states = view.current_states(c.replay_batch, self.rng)
        if states is None or len(states) == 0:
            return None
        x = view.preprocess(states)
        with torch.no_grad():
            old = functional_call(view.module, self.old, (x,))
        new = view.module(x)
        if view.discrete:  # T² KL(softmax(q_old/T) ‖ softmax(q_θ/T)), Hinton et al.'s scaling of the soft targets
            loss = c.lwf_temperature ** 2 * distillation_kl(old, new, c.lwf_temperature)
        else:
            loss = (new - old).pow(2).sum(-1).mean()
        if view.value_module is not None:
            with torch.no_grad():
                old_value = functional_call(view.value_module, self.old, (x,))
            loss = loss + (view.value_module(x) - old_value).pow(2).mean()  # ‖V_θ(s) − V_old(s)‖²
        elif view.discrete:  # Q-values are values too: their gaps are too small for the softmax alone to keep
            loss = loss + (new - old).pow(2).sum(-1).mean()  # ‖q_θ(s) − q_old(s)‖²
        return c.lwf_lambda * loss

    def end_task(self, task: int, states: np.ndarray, tasks_left: int | None = None, steps: int = 0,
                 outputs: np.ndarray | None = None) -> None:
        self.old = {n: p.detach().clone() for n, p in self.view.parameters().items()}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), **({"old": dict(self.old)} if self.old is not None else {})}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.old = {k: v.clone() for k, v in state["old"].items()} if state.get("old") is not None else None
