"""One forward pass of a small MLP in numpy, for acting: the fast path every deep learner acts through.

Acting calls the network once per environment step on one observation or a small batch, where torch's
per-call overhead (~30 µs) is many times the arithmetic (~5 µs in numpy for a 64×64 MLP). A
:class:`NumpyMLP` reads the parameters' own storage (``detach().numpy()`` views: optimiser steps and
``load_state_dict`` write in place, so the views are never stale) and rebuilds them only when a module is
replaced or a parameter's storage moves. Policies (:mod:`~llmagentos.learners.policy_gradient`) and
Q-networks (:mod:`~llmagentos.learners.dqn`) both act through it. The MinAtar paper's small CNN
(:class:`~llmagentos.learners.common.networks.SmallCNN`: one 3×3 convolution, a dense layer) has a numpy form
too (:class:`NumpySmallCNN`, for one frame at a time: ~2× faster than torch on a 10×10 frame; on batches numpy's
multi-threaded BLAS is many times slower than torch on one thread when the cores are busy); anything else (the
Nature CNN, encoders, one-hot inputs) returns ``None`` and the learner uses torch.
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


class NumpySmallCNN:
    """A :class:`~llmagentos.learners.common.networks.SmallCNN`'s features of a batch of stored frames, in numpy.

    The convolution is one matrix product over the 3×3 windows of every position (im2col). Both layouts are
    turned height × width × channel first, so an HWC and a CHW copy of the same frames take the same arithmetic.
    """

    def __init__(self, cnn: nn.Module) -> None:
        conv, dense = cnn.convs[0], cnn.head[0]
        self.shape, self.channels_last, self.scale = cnn.observation_shape, cnn.channels_last, cnn.scale
        # (C·3·3, 16) with rows in the windows' (channel, row, column) order
        self.kernel = conv.weight.detach().numpy().reshape(conv.out_channels, -1).T
        self.conv_bias = conv.bias.detach().numpy()
        self.dense = (dense.weight.detach().numpy(), dense.bias.detach().numpy())

    def __call__(self, x: np.ndarray) -> np.ndarray:
        from numpy.lib.stride_tricks import sliding_window_view

        n = len(x)
        frames = x.reshape(n, *self.shape).astype(np.float32)
        if self.scale:
            frames = frames / 255.0
        if not self.channels_last:
            frames = frames.transpose(0, 2, 3, 1)
        windows = sliding_window_view(frames, (3, 3), axis=(1, 2))  # (n, H-2, W-2, C, 3, 3)
        h, w = windows.shape[1:3]
        conv = windows.reshape(n * h * w, -1) @ self.kernel + self.conv_bias
        # ReLU, then torch's Flatten order (channel, row, column)
        flat = np.maximum(conv, 0.0).reshape(n, h, w, -1).transpose(0, 3, 1, 2).reshape(n, -1)
        return np.maximum(flat @ self.dense[0].T + self.dense[1], 0.0)


def _small_cnn(module: nn.Module) -> NumpySmallCNN | None:
    from llmagentos.learners.common.networks import SmallCNN

    plain = [nn.Conv2d, nn.ReLU, nn.Flatten, nn.Linear, nn.ReLU]
    layers = [*module.convs, *module.head] if type(module) is SmallCNN else []
    if [type(m) for m in layers] != plain or any(m._forward_hooks or m._forward_pre_hooks for m in module.modules()):
        return None  # a changed or watched network (plasticity diagnostics hook layers) goes through torch
    conv = layers[0]
    if conv.kernel_size != (3, 3) or conv.stride != (1, 1) or conv.padding != (0, 0) or conv.dilation != (1, 1) \
            or conv.groups != 1 or conv.bias is None:
        return None
    return NumpySmallCNN(module)


def numpy_layers(*modules: nn.Module, small_cnn: bool = False) -> list[Layer] | None:
    """The (W, b) and activation steps of ``modules`` applied in order (each a ``Linear``, an activation, or an
    ``nn.Sequential`` of them; ``Flatten``/``Identity`` are skipped) as numpy views; None if any is something else.
    With ``small_cnn`` a :class:`~llmagentos.learners.common.networks.SmallCNN` is one step
    (:class:`NumpySmallCNN`) that reads a batch of one frame."""
    layers: list[Layer] = []
    for module in modules:
        cnn = _small_cnn(module) if small_cnn else None
        if cnn is not None:
            layers.append(cnn)
            continue
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

    def __init__(self, parts: Callable[[], Sequence[nn.Module]], small_cnn: bool = False) -> None:
        self.parts = parts
        self.small_cnn = small_cnn  # the caller sends the MinAtar small CNN one frame at a time (see numpy_layers)
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
            layers = [numpy_layers(m, small_cnn=self.small_cnn) for m in parts]
            self._layers = None if any(part is None for part in layers) else layers  # type: ignore[assignment]
        return self._layers
