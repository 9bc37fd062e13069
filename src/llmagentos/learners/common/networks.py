"""Network builders with sensible initialisation: an MLP for vector observations, a small CNN for images."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import torch
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


class NatureCNN(nn.Module):
    """The three-convolution encoder of Mnih et al. (2015) for (C, H, W) images scaled to [0, 1]."""

    def __init__(self, observation_shape: Sequence[int], features: int = 512) -> None:
        super().__init__()
        channels = observation_shape[0]
        self.convs = nn.Sequential(
            orthogonal_init(nn.Conv2d(channels, 32, 8, stride=4)), nn.ReLU(),
            orthogonal_init(nn.Conv2d(32, 64, 4, stride=2)), nn.ReLU(),
            orthogonal_init(nn.Conv2d(64, 64, 3, stride=1)), nn.ReLU(), nn.Flatten())
        with torch.no_grad():
            n_flat = self.convs(torch.zeros(1, *observation_shape)).shape[1]
        self.head = nn.Sequential(orthogonal_init(nn.Linear(n_flat, features)), nn.ReLU())
        self.out_dim = features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.convs(x.float() / 255.0))


def flat_dim(space) -> int:
    """Number of inputs a vector observation space gives a network."""
    from gymnasium import spaces

    if isinstance(space, spaces.Discrete):
        return int(space.n)
    return int(np.prod(space.shape))


def is_image_space(space) -> bool:
    from gymnasium import spaces

    return isinstance(space, spaces.Box) and len(space.shape) == 3 and space.dtype == np.uint8


def encoder(space, hidden: Sequence[int], activation: str) -> tuple[nn.Module, int]:
    """A feature extractor for ``space`` and its output width: CNN for uint8 images, MLP otherwise."""
    if is_image_space(space):
        cnn = NatureCNN(space.shape)
        return cnn, cnn.out_dim
    body = mlp(flat_dim(space), None, hidden, activation)
    return body, (hidden[-1] if hidden else flat_dim(space))
