"""One forward pass of a small MLP in numpy, for acting: the fast path every deep learner acts through.

Acting calls the network once per environment step on one observation or a small batch, where torch's
per-call overhead (~30 µs) is many times the arithmetic (~5 µs in numpy for a 64×64 MLP). A
:class:`NumpyMLP` reads the parameters' own storage (``detach().numpy()`` views: optimiser steps and
``load_state_dict`` write in place, so the views are never stale) and rebuilds them only when a module is
replaced or a parameter's storage moves. Policies (:mod:`~llmagentos.learners.policy_gradient`) and
Q-networks (:mod:`~llmagentos.learners.dqn`) both act through it; anything that is not a plain MLP of
``Linear`` and tanh/ReLU layers (CNNs, encoders, one-hot inputs) returns ``None`` and the learner uses torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from torch import nn


def _relu(x: np.ndarray) -> np.ndarray:
    return np.maximum(x, 0.0)


_ACTIVATIONS: dict[type, Callable[[np.ndarray], np.ndarray]] = {nn.Tanh: np.tanh, nn.ReLU: _relu}

#: one step of a numpy MLP: a (W, b) pair or an activation
Layer = Any


def numpy_layers(*modules: nn.Module) -> list[Layer] | None:
    """The (W, b) and activation steps of ``modules`` applied in order (each a ``Linear``, an activation, or an
    ``nn.Sequential`` of them; ``Flatten``/``Identity`` are skipped) as numpy views; None if any is something else."""
    layers: list[Layer] = []
    for module in modules:
        for m in (list(module) if isinstance(module, nn.Sequential) else [module]):
            if type(m) is nn.Linear and m.bias is not None:
                layers.append((m.weight.detach().numpy(), m.bias.detach().numpy()))
            elif type(m) in _ACTIVATIONS:
                layers.append(_ACTIVATIONS[type(m)])
            elif type(m) not in (nn.Flatten, nn.Identity):
                return None
    return layers


def numpy_forward(layers: Sequence[Layer], x: np.ndarray) -> np.ndarray:
    """The MLP's output for one observation (1-D: W h + b per layer) or a batch (2-D: x Wᵀ + b)."""
    if x.ndim == 1:
        for layer in layers:
            x = layer[0] @ x + layer[1] if isinstance(layer, tuple) else layer(x)
        return x
    for layer in layers:
        x = x @ layer[0].T + layer[1] if isinstance(layer, tuple) else layer(x)
    return x


class NumpyMLP:
    """Numpy views of some parts of a network, rebuilt when the parts or their parameters' storage change.

    ``parts()`` returns the modules to view (e.g. ``(net.trunk, net.policy_head)``); :meth:`get` returns one
    layer list per part, or None when any part is not a plain MLP.
    """

    def __init__(self, parts: Callable[[], Sequence[nn.Module]]) -> None:
        self.parts = parts
        self._key: tuple | None = None
        self._params: list[nn.Parameter] = []
        self._layers: list[list[Layer]] | None = None

    def get(self) -> list[list[Layer]] | None:
        parts = tuple(self.parts())
        # cheap to compute at every step: module.parameters() costs more than the forward pass itself
        key = tuple(map(id, parts)) + tuple(p.data_ptr() for p in self._params)
        if key != self._key:
            self._params = [p for m in parts for p in m.parameters()]
            self._key = tuple(map(id, parts)) + tuple(p.data_ptr() for p in self._params)
            layers = [numpy_layers(m) for m in parts]
            self._layers = None if any(part is None for part in layers) else layers  # type: ignore[assignment]
        return self._layers
