"""``ewc``: online elastic weight consolidation (Kirkpatrick et al., 2017; the online form of Schwarz et al., 2018).

F* ← γ F* + F_t and θ* ← θ_t at the end of each task, penalty (λ/2) Σ_i F*_i (θ_i − θ*_i)², with the diagonal
Fisher on the agent's own states: of the softmax policy for policy-gradient learners (plus a unit-Gaussian Fisher
of V(s), so the value head is protected too), of unit-Gaussian outputs for DQN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from llmagentos.core.config import param
from llmagentos.lifelong.strategies.base import Consolidation, NetworkView, log_policy

#: Jacobian entries (states × outputs × weights) computed at once, 512 MB of float32: every shipped config fits its
#: Fisher states in one chunk (the MinAtar CNN's 100 states included), and 500 MinAtar states, which took about
#: 2.5 GB at once, now go in chunks of about 100
FISHER_CHUNK_ENTRIES = 2 ** 27


@dataclass
class EWCFields:
    ewc_lambda: float = param(100.0, "EWC penalty strength λ", ge=0)
    fisher: Literal["auto", "output", "policy"] = param("auto", "EWC's Fisher: of a unit Gaussian on the network's outputs (Q-values, Gaussian means), of the softmax policy softmax(outputs/τ), or auto: the policy's for policy-gradient learners with discrete actions, the outputs' otherwise")
    ewc_gamma: float = param(1.0, "online EWC decay γ of the accumulated Fisher (1 sums the tasks' Fishers)")
    fisher_states: int = param(500, "states from the task used to estimate the diagonal Fisher", gt=0)


def diagonal_fisher(view: NetworkView, states: np.ndarray, temperature: float = 1.0,
                    kind: str = "policy", chunk: int | None = None) -> dict[str, torch.Tensor]:
    """The diagonal of the Fisher information at the current weights, averaged over ``states``.

    ``kind="policy"``: F_i = E_s Σ_a π(a|s) (∂ log π(a|s) / ∂θ_i)², π = softmax(outputs/τ), exact in a.
    ``kind="output"``: the outputs are the means of a unit-variance Gaussian, F_i = E_s Σ_k (∂f_k(s) / ∂θ_i)²
    (the natural choice for Q-values, whose greedy policy a softmax describes poorly).
    Per-state Jacobians come from ``torch.func`` (vmap of jacrev), ``chunk`` states at a time (default: as many
    as :data:`FISHER_CHUNK_ENTRIES` allows). States that fit in one chunk are averaged in one batch, as always;
    more are summed chunk by chunk, which equals the one-batch mean up to float rounding (batched products round
    differently for different batch sizes).
    """
    from torch.func import functional_call, jacrev, vmap

    module = view.module
    params = {n: p.detach() for n, p in module.named_parameters()}
    x = view.preprocess(np.asarray(states)).detach()
    with torch.no_grad():
        out = module(x)
        weights = torch.softmax(out / temperature, dim=-1) if kind == "policy" else torch.ones_like(out)  # (B, K)
    if chunk is None:
        chunk = max(1, FISHER_CHUNK_ENTRIES // (out.shape[-1] * sum(p.numel() for p in params.values())))

    def output_one(p: dict[str, torch.Tensor], xi: torch.Tensor) -> torch.Tensor:
        out = functional_call(module, p, (xi.unsqueeze(0),))
        return (log_policy(out, temperature) if kind == "policy" else out)[0]

    def per_state(lo: int, hi: int) -> dict[str, torch.Tensor]:
        """Σ_k w_k (∂ out_k / ∂θ_i)² for states lo..hi-1: name -> (hi − lo, *shape)."""
        jac = vmap(jacrev(output_one), in_dims=(None, 0))(params, x[lo:hi])  # name -> (B, K, *shape)
        w = weights[lo:hi]
        return {name: (w.reshape(w.shape + (1,) * (j.dim() - 2)) * j.pow(2)).sum(dim=1).detach()
                for name, j in jac.items()}

    n = len(x)
    if n <= chunk:  # every state at once: the mean over one batch
        fisher = {name: terms.mean(dim=0) for name, terms in per_state(0, n).items()}
    else:  # running sums over chunks: memory bounded whatever n (equal to the one-batch mean up to float rounding)
        sums = {name: torch.zeros_like(p) for name, p in params.items()}
        for lo in range(0, n, chunk):
            for name, terms in per_state(lo, min(lo + chunk, n)).items():
                sums[name] += terms.sum(dim=0)
        fisher = {name: total / n for name, total in sums.items()}
    if view.value_module is not None:
        # V(s) as the mean of a unit-variance Gaussian: F_i += E_s (∂V(s) / ∂θ_i)², so the value head is kept too
        value = NetworkView(_Unsqueezed(view.value_module), view.preprocess)
        for name, f in diagonal_fisher(value, states, kind="output", chunk=chunk).items():
            fisher[name.removeprefix("inner.")] = fisher[name.removeprefix("inner.")] + f
    return fisher


class _Unsqueezed(nn.Module):
    """A module's (B,) output as (B, 1), so a scalar output is one more output column."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x).unsqueeze(-1)


def fisher_kind(config: Any, view: NetworkView) -> str:
    """EWC's Fisher for this learner: the configured one, or (auto) the policy's for discrete actor-critics."""
    if not view.discrete:
        return "output"
    if config.fisher == "auto":
        return "policy" if view.value_module is not None else "output"
    return config.fisher


class EWC(Consolidation):
    name = "ewc"
    summary = "online EWC"
    Fields = EWCFields

    def __init__(self, view: NetworkView, config: Any, seed: int = 0) -> None:
        super().__init__(view, config, seed)
        self.fisher: dict[str, torch.Tensor] = {}
        self.anchor: dict[str, torch.Tensor] = {}

    def penalty(self) -> torch.Tensor | None:
        if not self.fisher:
            return None
        total = torch.zeros(())
        for name, p in self.view.module.named_parameters():
            total = total + (self.fisher[name] * (p - self.anchor[name]).pow(2)).sum()
        return 0.5 * self.config.ewc_lambda * total  # (λ/2) Σ_i F*_i (θ_i − θ*_i)²

    def end_task(self, task: int, states: np.ndarray, tasks_left: int | None = None, steps: int = 0,
                 outputs: np.ndarray | None = None) -> None:
        states = states[-self.config.fisher_states:]
        if len(states) == 0:
            return
        new = diagonal_fisher(self.view, states, self.config.temperature, fisher_kind(self.config, self.view))
        for name, f in new.items():
            self.fisher[name] = self.config.ewc_gamma * self.fisher[name] + f if name in self.fisher else f  # F* ← γF* + F_t
        self.anchor = {n: p.detach().clone() for n, p in self.view.module.named_parameters()}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "fisher": dict(self.fisher), "anchor": dict(self.anchor)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.fisher = {k: v.clone() for k, v in state["fisher"].items()}
        self.anchor = {k: v.clone() for k, v in state["anchor"].items()}
