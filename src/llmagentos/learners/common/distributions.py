"""Action distributions for policy gradients, lean enough to call at every environment step.

``torch.distributions`` validates its arguments and builds helper objects on every call; these
classes do only the arithmetic, and sample with a ``torch.Generator`` the agent owns so that runs
repeat exactly and resume exactly.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

_LOG_SQRT_2PI = 0.5 * math.log(2.0 * math.pi)


class Categorical:
    """π(a|s) = softmax(logits)_a over a Discrete action space; batch dimensions lead."""

    def __init__(self, logits: torch.Tensor) -> None:
        self.log_probs = torch.log_softmax(logits, dim=-1)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        # inverse CDF: the first action whose cumulative probability exceeds u ~ U(0, 1)
        probs = self.log_probs.exp()
        u = torch.rand(probs.shape[:-1] + (1,), generator=generator, dtype=probs.dtype)
        index = (probs.cumsum(-1) < u).sum(-1)
        return index.clamp_(max=probs.shape[-1] - 1)

    def mode(self) -> torch.Tensor:
        return self.log_probs.argmax(-1)

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        return self.log_probs.gather(-1, actions.long().unsqueeze(-1)).squeeze(-1)

    def entropy(self) -> torch.Tensor:
        # H = −Σ_a π(a|s) log π(a|s)
        return -(self.log_probs.exp() * self.log_probs).sum(-1)


class DiagGaussian:
    """π(a|s) = N(μ(s), diag(σ²)) with a state-independent log σ; log-probs sum over action dimensions."""

    def __init__(self, mean: torch.Tensor, log_std: torch.Tensor) -> None:
        self.mean = mean
        self.log_std = log_std.expand_as(mean)

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        noise = torch.randn(self.mean.shape, generator=generator, dtype=self.mean.dtype)
        return self.mean + self.log_std.exp() * noise

    def mode(self) -> torch.Tensor:
        return self.mean

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        # log N(a; μ, σ) = −(a − μ)²/(2σ²) − log σ − log √(2π), summed over dimensions
        z = (actions - self.mean) / self.log_std.exp()
        return (-0.5 * z.pow(2) - self.log_std - _LOG_SQRT_2PI).sum(-1)

    def entropy(self) -> torch.Tensor:
        # H = Σ_d (log σ_d + ½ log(2πe))
        return (self.log_std + 0.5 + _LOG_SQRT_2PI).sum(-1)


class MultiCategorical:
    """π(a|s) = Π_j softmax(logits_j)_{a_j} over a MultiDiscrete action space: one categorical per component."""

    def __init__(self, logits: torch.Tensor, nvec: tuple[int, ...]) -> None:
        self.parts = [Categorical(chunk) for chunk in torch.split(logits, list(nvec), dim=-1)]

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.stack([part.sample(generator) for part in self.parts], dim=-1)

    def mode(self) -> torch.Tensor:
        return torch.stack([part.mode() for part in self.parts], dim=-1)

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        # log π(a|s) = Σ_j log π_j(a_j|s)
        return sum(part.log_prob(actions[..., j]) for j, part in enumerate(self.parts))

    def entropy(self) -> torch.Tensor:
        return sum(part.entropy() for part in self.parts)


class Bernoulli:
    """π(a|s) = Π_j p_j^{a_j} (1 − p_j)^{1 − a_j}, p = sigmoid(logits), over a MultiBinary action space."""

    def __init__(self, logits: torch.Tensor) -> None:
        self.logits = logits

    def sample(self, generator: torch.Generator | None = None) -> torch.Tensor:
        u = torch.rand(self.logits.shape, generator=generator, dtype=self.logits.dtype)
        return (u < torch.sigmoid(self.logits)).long()

    def mode(self) -> torch.Tensor:
        return (self.logits > 0).long()

    def log_prob(self, actions: torch.Tensor) -> torch.Tensor:
        # log p = a log σ(l) + (1 − a) log σ(−l), summed over components
        a = actions.to(self.logits.dtype)
        return (a * F.logsigmoid(self.logits) + (1.0 - a) * F.logsigmoid(-self.logits)).sum(-1)

    def entropy(self) -> torch.Tensor:
        p = torch.sigmoid(self.logits)
        return -(p * F.logsigmoid(self.logits) + (1.0 - p) * F.logsigmoid(-self.logits)).sum(-1)


# -- the same sampling on numpy outputs, for the fast acting path (common/fast_mlp.py) --------------------

def sample_categorical_numpy(logits: np.ndarray, generator: torch.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(actions, log π(a|s)) for rows of logits, drawn with the same uniform numbers and inverse CDF as
    :meth:`Categorical.sample`, so acting in numpy or torch follows one stream of the agent's generator."""
    z = logits - logits.max(-1, keepdims=True)
    e = np.exp(z)
    total = e.sum(-1, keepdims=True)
    u = torch.rand((len(logits), 1), generator=generator).numpy()
    # the first action whose cumulative probability exceeds u
    actions = np.minimum((e.cumsum(-1) < u * total).sum(-1), logits.shape[-1] - 1)
    log_prob = np.take_along_axis(z - np.log(total), actions[:, None], -1)[:, 0]  # log softmax(logits)_a
    return actions, log_prob


def sample_gaussian_numpy(mean: np.ndarray, log_std: np.ndarray, generator: torch.Generator
                          ) -> tuple[np.ndarray, np.ndarray]:
    """(actions, log N(a; μ, σ)) for rows of means: a = μ + σ ε with ε ~ N(0, I) from the agent's generator."""
    noise = torch.randn(mean.shape, generator=generator).numpy()
    actions = mean + np.exp(log_std) * noise
    log_prob = (-0.5 * noise**2 - log_std - _LOG_SQRT_2PI).sum(-1, dtype=np.float32)
    return actions, log_prob
