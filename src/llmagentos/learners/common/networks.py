"""Network builders with sensible initialisation: an MLP for vectors, the Nature CNN and a small CNN for frames.

Which of them a learner gets for its observation space is decided in :mod:`llmagentos.learners.common.encoders`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

ACTIVATIONS = {"relu": nn.ReLU, "tanh": nn.Tanh, "elu": nn.ELU, "gelu": nn.GELU}


def orthogonal_init(module: nn.Module, gain: float = math.sqrt(2)) -> nn.Module:
    """Orthogonal weights and zero biases (the initialisation PPO and DQN implementations converge on)."""
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        nn.init.orthogonal_(module.weight, gain)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    return module


def mlp(in_dim: int, out_dim: int | None, hidden: Sequence[int] = (64, 64), activation: str = "tanh",
        out_gain: float = 1.0) -> nn.Sequential:
    """in → hidden... → out (no activation after the last layer; ``out_dim=None`` ends at the last hidden layer)."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")
    layers: list[nn.Module] = []
    last = in_dim
    for width in hidden:
        layers += [orthogonal_init(nn.Linear(last, width)), ACTIVATIONS[activation]()]
        last = width
    if out_dim is not None:
        layers.append(orthogonal_init(nn.Linear(last, out_dim), out_gain))
    return nn.Sequential(*layers)


class _FrameCNN(nn.Module):
    """Convolutions, then one dense ReLU layer, over stored frames of ``observation_shape``.

    The network reads the frame as it was stored: uint8 values are scaled to [0, 1] here (``scale``), and a
    height × width × channel frame (``channels_last``) is turned channel-first here, so buffers keep the
    env's compact layout and a CHW and an HWC copy of the same frames give the same output.
    """

    def __init__(self, observation_shape: Sequence[int], convs: nn.Sequential, features: int, channels_last: bool,
                 scale: bool) -> None:
        super().__init__()
        self.observation_shape = tuple(int(d) for d in observation_shape)
        self.channels_last = channels_last
        self.scale = scale
        self.convs = convs
        with torch.no_grad():
            n_flat = self.convs(torch.zeros(1, *self.channel_first_shape)).shape[1]
        self.head = nn.Sequential(orthogonal_init(nn.Linear(n_flat, features)), nn.ReLU())
        self.out_dim = features

    @property
    def channel_first_shape(self) -> tuple[int, ...]:
        if not self.channels_last:
            return self.observation_shape
        height, width, channels = self.observation_shape
        return (channels, height, width)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.reshape(x.shape[0], *self.observation_shape).float()
        if self.scale:
            x = x / 255.0
        if self.channels_last:
            x = x.permute(0, 3, 1, 2)
        # one memory layout whatever the input's strides, so the convolutions sum in one order: HWC == CHW exactly
        return self.head(self.convs(x.contiguous()))


class NatureCNN(_FrameCNN):
    """The three-convolution encoder of Mnih et al. (2015), for frames of at least 36 pixels a side."""

    def __init__(self, observation_shape: Sequence[int], features: int = 512, channels_last: bool = False,
                 scale: bool = True) -> None:
        channels = observation_shape[-1] if channels_last else observation_shape[0]
        convs = nn.Sequential(
            orthogonal_init(nn.Conv2d(channels, 32, 8, stride=4)), nn.ReLU(),
            orthogonal_init(nn.Conv2d(32, 64, 4, stride=2)), nn.ReLU(),
            orthogonal_init(nn.Conv2d(64, 64, 3, stride=1)), nn.ReLU(), nn.Flatten())
        super().__init__(observation_shape, convs, features, channels_last, scale)


class SmallCNN(_FrameCNN):
    """One 3×3 convolution of 16 channels, stride 1, then a dense layer: the MinAtar network (Young & Tian, 2019)
    for small grids such as MinAtar's 10×10 and MiniGrid's 7×7 views."""

    def __init__(self, observation_shape: Sequence[int], features: int = 128, channels_last: bool = False,
                 scale: bool = True) -> None:
        channels = observation_shape[-1] if channels_last else observation_shape[0]
        convs = nn.Sequential(orthogonal_init(nn.Conv2d(channels, 16, 3, stride=1)), nn.ReLU(), nn.Flatten())
        super().__init__(observation_shape, convs, features, channels_last, scale)


_ACTIVATIONS = {nn.ReLU: torch.relu, nn.Tanh: torch.tanh}


def sequential_forward(body: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``body(x)`` for an MLP ``nn.Sequential``, calling the functional ops directly.

    Same result as ``body(x)``; it skips the per-module call machinery (hooks), which costs more
    than the arithmetic itself for networks this small, and falls back to ``body(x)`` otherwise. A layer
    with a forward hook (plasticity diagnostics and remedies watch activations) is called as a module.
    """
    if type(body) is not nn.Sequential:
        return body(x)
    for layer in body:
        kind = type(layer)
        if layer._forward_hooks:
            x = layer(x)
        elif kind is nn.Linear:
            x = F.linear(x, layer.weight, layer.bias)
        elif kind in _ACTIVATIONS:
            x = _ACTIVATIONS[kind](x)
        else:
            x = layer(x)
    return x
