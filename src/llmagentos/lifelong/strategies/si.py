"""``si``: synaptic intelligence (Zenke et al., 2017).

Each weight's contribution to the fall of the loss along the optimiser's path, ω_k = −Σ_t g_k(t) Δθ_k(t), becomes
at the end of a task Ω_k ← Ω_k + ω_k / (Δ_k² + ξ), Δ_k the task's total change of θ_k; penalty c Σ_k Ω_k (θ_k − θ*_k)².
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from llmagentos.core.config import param
from llmagentos.lifelong.strategies.base import Consolidation, NetworkView


@dataclass
class SIFields:
    si_c: float = param(1.0, "synaptic intelligence's penalty strength c", ge=0)
    si_xi: float = param(0.1, "synaptic intelligence's damping ξ of the importance ω_k / (Δ_k² + ξ)", gt=0)


class SynapticIntelligence(Consolidation):
    """Synaptic intelligence: importance from the path integral of each weight's share in the loss's fall.

    ``g`` is the gradient the learner's optimiser stepped with (the task loss plus any penalty, as the
    reference implementations do); ω is integrated after every optimiser step from the change it made.
    """

    name = "si"
    summary = "synaptic intelligence"
    Fields = SIFields

    def __init__(self, view: NetworkView, config: Any, seed: int = 0) -> None:
        super().__init__(view, config, seed)
        self.omega: dict[str, torch.Tensor] = {}  # Ω_k, the consolidated importance
        self.anchor: dict[str, torch.Tensor] = {}  # θ*_k at the end of the last task
        self.path: dict[str, torch.Tensor] = {n: torch.zeros_like(p) for n, p in view.parameters().items()}  # ω_k
        self.start = self._snapshot()  # θ_k when the task began
        self.previous = self._snapshot()  # θ_k before the last optimiser step

    def _snapshot(self) -> dict[str, torch.Tensor]:
        return {n: p.detach().clone() for n, p in self.view.parameters().items()}

    def penalty(self) -> torch.Tensor | None:
        if not self.omega:
            return None
        total = torch.zeros(())
        for name, p in self.view.parameters().items():
            total = total + (self.omega[name] * (p - self.anchor[name]).pow(2)).sum()
        return self.config.si_c * total  # c Σ_k Ω_k (θ_k − θ*_k)²

    def after_update(self) -> None:
        with torch.no_grad():
            for name, p in self.view.parameters().items():
                if p.grad is not None:
                    self.path[name] -= p.grad * (p - self.previous[name])  # ω_k −= g_k Δθ_k
                self.previous[name].copy_(p)

    def begin_task(self) -> None:
        self.start = self._snapshot()
        self.previous = self._snapshot()
        self.path = {n: torch.zeros_like(p) for n, p in self.start.items()}

    def end_task(self, task: int, states: np.ndarray, tasks_left: int | None = None, steps: int = 0,
                 outputs: np.ndarray | None = None) -> None:
        now = self._snapshot()
        for name, theta in now.items():
            delta = theta - self.start[name]
            # Ω_k ← Ω_k + ω_k / (Δ_k² + ξ); a weight whose path raised the loss gains no importance
            new = (self.path[name] / (delta.pow(2) + self.config.si_xi)).clamp(min=0.0)
            self.omega[name] = self.omega[name] + new if name in self.omega else new
        self.anchor = now
        self.begin_task()

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "omega": dict(self.omega), "anchor": dict(self.anchor), "path": dict(self.path),
                "start": dict(self.start), "previous": dict(self.previous)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        for name in ("omega", "anchor", "path", "start", "previous"):
            setattr(self, name, {k: v.clone() for k, v in state[name].items()})
