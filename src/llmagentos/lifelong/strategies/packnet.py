"""``packnet``: parameter isolation (Mallya & Lazebnik, 2018).

At the end of each task the largest free weights are kept for it, the rest are zeroed and left to later tasks, the
kept weights are retrained alone — on the task's transitions with the learner's TD loss (DQN, whose target network
is then re-synced), or by distilling the unpruned network's outputs on the task's states (policy gradient) — and
then frozen; evaluating task j uses only the weights of tasks ≤ j.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import torch

from llmagentos.core.config import param
from llmagentos.lifelong.strategies.base import Consolidation, NetworkView, distillation_kl


@dataclass
class PackNetFields:
    packnet_keep: float = param(0.5, "share of free weights PackNet keeps for a task when the number of tasks is unknown", gt=0, lt=1)
    packnet_retrain_steps: int = param(500, "gradient steps PackNet retrains a task's kept weights after pruning (0: no retraining)", ge=0)
    packnet_retrain_lr: float = param(3e-4, "Adam step size of PackNet's retraining", gt=0)
    packnet_retrain_batch: int = param(128, "transitions per retraining step", gt=0)


class PackNet(Consolidation):
    """Weights (tensors of rank ≥ 2) are owned by the task that kept them (−1: free); biases freeze after task 0."""

    name = "packnet"
    summary = "PackNet"
    Fields = PackNetFields

    def __init__(self, view: NetworkView, config: Any, seed: int = 0) -> None:
        super().__init__(view, config, seed)
        self.owner = {n: torch.full_like(p, -1, dtype=torch.int64) for n, p in view.module.named_parameters()}
        self.frozen = {n: p.detach().clone() for n, p in view.module.named_parameters()}

    def after_update(self) -> None:
        with torch.no_grad():
            for name, p in self.view.module.named_parameters():
                kept = self.owner[name] >= 0
                p[kept] = self.frozen[name][kept]

    def end_task(self, task: int, states: np.ndarray, tasks_left: int | None = None, steps: int = 0,
                 outputs: np.ndarray | None = None) -> None:
        share = 1.0 / tasks_left if tasks_left else self.config.packnet_keep
        teacher = self._teacher(states)  # the unpruned network's outputs, what retraining restores without a TD loss
        with torch.no_grad():
            for name, p in self.view.module.named_parameters():
                owner = self.owner[name]
                free = owner < 0
                if p.dim() < 2:
                    owner[free] = task  # biases: trained on the first task, then shared and frozen
                    continue
                n_free = int(free.sum())
                n_keep = int(round(share * n_free))
                if n_keep <= 0 or n_free == 0:
                    continue
                magnitude = torch.where(free, p.abs(), torch.full_like(p, -1.0))
                threshold = torch.topk(magnitude.flatten(), n_keep).values[-1]
                keep = free & (magnitude >= threshold)
                owner[keep] = task
                p[free & ~keep] = 0.0  # pruned: free for later tasks, starting from zero
        self._retrain(task, steps, teacher)
        self.frozen = {n: p.detach().clone() for n, p in self.view.module.named_parameters()}
        self.view.weights_changed()  # DQN: θ⁻ ← the pruned, retrained θ

    def _teacher(self, states: np.ndarray) -> tuple[np.ndarray, torch.Tensor, torch.Tensor | None] | None:
        """States of the task with the unpruned network's outputs (and values) on them, for distillation."""
        view = self.view
        if (view.td_loss is not None and view.transitions is not None) or len(states) == 0:
            return None
        states = np.asarray(states)
        with torch.no_grad():
            x = view.preprocess(states)
            values = view.value_module(x) if view.value_module is not None else None
            return states, view.module(x), values

    def _retrain_loss(self, steps: int, teacher: tuple | None) -> torch.Tensor | None:
        """One retraining batch's loss: the TD loss on the task's transitions, or distillation of the teacher."""
        c, view = self.config, self.view
        if teacher is None:
            batch = view.transitions(c.packnet_retrain_batch, self.rng, steps) if steps > 0 else None
            return view.td_loss(batch) if batch is not None else None
        states, outputs, values = teacher
        idx = self.rng.integers(len(states), size=c.packnet_retrain_batch)
        x = view.preprocess(states[idx])
        out, old = view.module(x), outputs[torch.as_tensor(idx)]
        loss = distillation_kl(old, out, c.temperature) if view.discrete else (out - old).pow(2).sum(-1).mean()
        if values is not None:
            loss = loss + (view.value_module(x) - values[torch.as_tensor(idx)]).pow(2).mean()
        return loss

    def _retrain(self, task: int, steps: int, teacher: tuple | None) -> None:
        """After pruning, train only the weights just kept for ``task`` (PackNet's retraining)."""
        c, view = self.config, self.view
        if c.packnet_retrain_steps <= 0 or (teacher is None and (view.transitions is None or view.td_loss is None)):
            return
        params = dict(view.module.named_parameters())
        mine = {n: (self.owner[n] == task) for n in params}
        held = {n: p.detach().clone() for n, p in params.items()}  # pruned weights stay 0, older tasks' stay put
        optimizer = torch.optim.Adam(params.values(), lr=c.packnet_retrain_lr)
        for _ in range(c.packnet_retrain_steps):
            loss = self._retrain_loss(steps, teacher)
            if loss is None:
                return
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                for n, p in params.items():
                    p[~mine[n]] = held[n][~mine[n]]

    @contextlib.contextmanager
    def evaluating(self, task: int, current: int) -> Iterator[None]:
        if task >= current:
            yield
            return
        saved = {n: p.detach().clone() for n, p in self.view.module.named_parameters()}
        with torch.no_grad():
            for name, p in self.view.module.named_parameters():
                owner = self.owner[name]
                p[(owner > task) | (owner < 0)] = 0.0  # only the weights of tasks ≤ j act on task j
        try:
            yield
        finally:
            with torch.no_grad():
                for name, p in self.view.module.named_parameters():
                    p.copy_(saved[name])

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "owner": dict(self.owner), "frozen": dict(self.frozen)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.owner = {k: v.clone() for k, v in state["owner"].items()}
        self.frozen = {k: v.clone() for k, v in state["frozen"].items()}
