"""Plasticity diagnostics: how much of a network can still learn.

A network trained on a long stream of tasks can lose the ability to learn new ones (Dohare et al., Nature
2024). Three symptoms are measured here, on a fixed probe batch, for any torch network:

- **dormant units** (Sokar et al., ICML 2023): unit i of a hidden layer with H units is τ-dormant when its
  score s_i = E_x|h_i(x)| / ((1/H) Σ_k E_x|h_k(x)|) ≤ τ; :func:`dormant_fraction` is the share of such
  units over all hidden layers;
- **effective rank** (Kumar et al., ICLR 2021): srank_δ(Φ) = min{k : Σ_{i≤k} σ_i / Σ_i σ_i ≥ 1 − δ} of the
  last hidden layer's features Φ (probe batch × units), σ its singular values in decreasing order;
- **weight and gradient norms** per layer (growing weights go with lost plasticity, Lyle et al. 2023).

The hidden layers are found by tracing one forward pass (:func:`trace_hidden_layers`): an activation whose
input is a ``Linear`` layer's output is a hidden layer, and the ``Linear`` layers that read its output are
where its units' outgoing weights live. That is all a remedy (:mod:`~llmagentos.lifelong.remedies`) needs to
reinitialise a unit, and it works for any network built of ``Linear`` layers and activation modules (the
project's MLP trunks and heads, DQN's Q-network, the actor-critics with or without a shared trunk).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn

#: activation modules that end a hidden layer
ACTIVATION_TYPES = (nn.ReLU, nn.LeakyReLU, nn.Tanh, nn.ELU, nn.GELU, nn.SiLU, nn.Sigmoid)


@dataclass
class HiddenLayer:
    """One hidden layer: ``activation(incoming(x))``, read by the ``outgoing`` layers (input columns = units)."""

    name: str
    incoming: nn.Linear
    activation: nn.Module
    outgoing: list[nn.Linear] = field(default_factory=list)

    @property
    def width(self) -> int:
        return self.incoming.out_features


def trace_hidden_layers(root: nn.Module, forward: Callable[[], Any]) -> list[HiddenLayer]:
    """The hidden layers of ``root`` in the order ``forward()`` (a pass through ``root``) computes them.

    A unit's producer and readers are matched by tensor identity, so a layer counts only when an activation
    really consumes a ``Linear`` output; calling ``forward`` through several outputs (policy and value)
    merges their readers.
    """
    names = {id(m): n for n, m in root.named_modules()}
    produced: dict[int, nn.Linear] = {}    # id(output tensor) -> Linear that produced it
    readers: dict[int, list[nn.Linear]] = {}  # id(input tensor) -> Linears that read it
    calls: list[tuple[nn.Module, int, int]] = []
    keep: list[torch.Tensor] = []  # tensors stay alive during the trace, so their ids stay unique

    def on_linear(module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        keep.extend([inputs[0], output])
        produced[id(output)] = module  # type: ignore[assignment]
        readers.setdefault(id(inputs[0]), []).append(module)  # type: ignore[arg-type]

    def on_activation(module: nn.Module, inputs: tuple[Any, ...], output: torch.Tensor) -> None:
        keep.extend([inputs[0], output])
        calls.append((module, id(inputs[0]), id(output)))

    handles = []
    for module in root.modules():
        if isinstance(module, nn.Linear):
            handles.append(module.register_forward_hook(on_linear))
        elif isinstance(module, ACTIVATION_TYPES):
            handles.append(module.register_forward_hook(on_activation))
    try:
        with torch.no_grad():
            forward()
    finally:
        for h in handles:
            h.remove()
    layers: dict[int, HiddenLayer] = {}
    for act, source, out in calls:
        incoming = produced.get(source)
        if incoming is None:
            continue
        layer = layers.setdefault(id(act), HiddenLayer(names.get(id(incoming), "?"), incoming, act))
        for reader in readers.get(out, []):
            if all(reader is not r for r in layer.outgoing):
                layer.outgoing.append(reader)
    return list(layers.values())


def capture_activations(layers: Sequence[HiddenLayer], forward: Callable[[], Any]) -> list[torch.Tensor]:
    """Each layer's activations h (batch × units) during ``forward()`` (the last call when one runs twice)."""
    seen: dict[int, torch.Tensor] = {}
    handles = [layer.activation.register_forward_hook(
        lambda m, i, o, k=k: seen.__setitem__(k, o.detach().reshape(o.shape[0], -1))) for k, layer in enumerate(layers)]
    try:
        with torch.no_grad():
            forward()
    finally:
        for h in handles:
            h.remove()
    return [seen[k] for k in range(len(layers)) if k in seen]


def dormant_scores(h: torch.Tensor) -> torch.Tensor:
    """s_i = E_x|h_i(x)| / ((1/H) Σ_k E_x|h_k(x)|) for activations ``h`` (batch × H); all zeros if the layer is silent."""
    mean_abs = h.abs().mean(dim=0)
    layer_mean = mean_abs.mean()
    return mean_abs / layer_mean if layer_mean > 0 else torch.zeros_like(mean_abs)


def dormant_fraction(activations: Sequence[torch.Tensor], tau: float) -> float:
    """Share of τ-dormant units (s_i ≤ τ) over all the layers' units."""
    flags = [dormant_scores(h) <= tau for h in activations]
    total = sum(int(f.numel()) for f in flags)
    return float(sum(int(f.sum()) for f in flags)) / total if total else 0.0


def effective_rank(features: torch.Tensor, delta: float = 0.01) -> int:
    """srank_δ(Φ) = min{k : Σ_{i≤k} σ_i / Σ_i σ_i ≥ 1 − δ} (0 for an all-zero Φ)."""
    sigma = torch.linalg.svdvals(features.double())
    total = float(sigma.sum())
    if total <= 0.0:
        return 0
    cumulative = torch.cumsum(sigma, 0) / total
    # the small tolerance keeps an exact 1 − δ from being missed by rounding
    return int(torch.searchsorted(cumulative, torch.tensor(1.0 - delta - 1e-12, dtype=torch.float64))) + 1


def layer_norms(root: nn.Module) -> dict[str, float]:
    """``weight_norm/NAME`` (‖W‖_F) and, when a gradient is held, ``grad_norm/NAME`` (‖∇W‖_F) of every Linear/Conv layer."""
    out: dict[str, float] = {}
    for name, module in root.named_modules():
        if isinstance(module, (nn.Linear, nn.Conv2d)):
            label = name or "layer"
            out[f"weight_norm/{label}"] = float(module.weight.detach().norm())
            if module.weight.grad is not None:
                out[f"grad_norm/{label}"] = float(module.weight.grad.norm())
    return out


def network_diagnostics(root: nn.Module, forward: Callable[[], Any], tau: float = 0.025,
                        delta: float = 0.01) -> dict[str, float]:
    """``dormant_fraction``, ``effective_rank`` (of the last hidden layer), ``feature_width`` and the per-layer norms."""
    layers = trace_hidden_layers(root, forward)
    acts = capture_activations(layers, forward)
    out: dict[str, float] = {"dormant_fraction": dormant_fraction(acts, tau) if acts else 0.0}
    if acts:
        out["effective_rank"] = float(effective_rank(acts[-1], delta))
        out["feature_width"] = float(acts[-1].shape[1])
    out.update(layer_norms(root))
    return out


def probe_observations(env: Any, n: int, seed: int) -> np.ndarray:
    """``n`` observations of ``env`` under a uniformly random policy (episodes reset with seed, seed+1, ...).

    The same seed gives the same batch, so diagnostics at every evaluation look at the same states.
    """
    space = copy.deepcopy(env.action_space)
    space.seed(seed)
    obs, _ = env.reset(seed=seed)
    batch, episode = [obs], 0
    while len(batch) < n:
        obs, _, terminated, truncated, _ = env.step(space.sample())
        if terminated or truncated:
            episode += 1
            obs, _ = env.reset(seed=seed + episode)
        batch.append(obs)
    return np.asarray(batch)


def agent_diagnostics(agent: Any, observations: np.ndarray, tau: float = 0.025) -> dict[str, float] | None:
    """The diagnostics of a deep learner's network(s) on ``observations``; None for agents without a network.

    Uses only the agent contract's documented accessors: ``parameter_groups``, ``output_module``,
    ``value_module`` and ``prepare_observations``.
    """
    groups = getattr(agent, "parameter_groups", None)
    if groups is None or not groups():
        return None
    x = agent.prepare_observations(observations)
    out = network_diagnostics(agent.output_module(), lambda: agent.output_module()(x), tau)
    value = agent.value_module()
    if value is not None:
        for key, v in network_diagnostics(value, lambda: value(x), tau).items():
            if key.startswith(("weight_norm/", "grad_norm/")):
                out.setdefault(key, v)
            else:
                out[f"value_{key}"] = v
    return out


def probe_batch(agent: Any, make_env: Callable[[], Any], seed: int, probe: int = 256) -> np.ndarray | None:
    """``probe`` random-policy observations (:func:`probe_observations`) of an env of their own, ``make_env()``,
    closed afterwards: no env the run trains or evaluates on is stepped, so nothing it keeps (an episode in
    progress, a normalising wrapper's statistics) moves. None for agents without a network and for observations
    that are not arrays (Dict and Tuple spaces)."""
    from gymnasium import spaces

    groups = getattr(agent, "parameter_groups", None)
    if groups is None or not groups():
        return None
    env = make_env()
    try:
        if not isinstance(getattr(env, "observation_space", None), (spaces.Box, spaces.Discrete)):
            return None
        return probe_observations(env, probe, seed)
    finally:
        env.close()


def task_diagnostics(agent: Any, make_env: Callable[[], Any], seed: int, tau: float = 0.025,
                     probe: int = 256) -> dict[str, float] | None:
    """:func:`agent_diagnostics` on a :func:`probe_batch` of ``make_env()``; None without a network."""
    batch = probe_batch(agent, make_env, seed, probe)
    return agent_diagnostics(agent, batch, tau) if batch is not None else None


def plasticity_record(agent: Any, env: Any, seed: int, tau: float = 0.025, probe: int = 256) -> dict[str, float] | None:
    """:func:`agent_diagnostics` on a fixed batch of random-policy states of ``env`` (which this steps; the
    kernel's trainer and the lifelong stream use :func:`probe_batch` on an env of its own instead).

    None for agents without a network and for observations that are not arrays (Dict and Tuple spaces).
    """
    from gymnasium import spaces

    groups = getattr(agent, "parameter_groups", None)
    if groups is None or not groups() or not isinstance(getattr(env, "observation_space", None), (spaces.Box, spaces.Discrete)):
        return None
    return agent_diagnostics(agent, probe_observations(env, probe, seed), tau)
