"""Supervised task streams long enough to show loss of plasticity, and the online learner that lives through them.

- :class:`SlowlyChangingRegression`: Dohare et al.'s problem (Nature 2024, "slowly-changing regression", also
  called bit-flipping): the input is m bits, f of which change slowly (one of them flips at every task
  boundary, every T examples) and m − f of which are fresh random bits at every example; the target is the
  output of a fixed random network of LTU units. Generated, no download. How hard a task is depends on its slow
  bits, so the first and the last tasks of a stream can differ in difficulty. Its ``permute`` variant makes every
  task exactly as hard as every other: all m bits are fresh random bits at every example, and each task shows
  them to the teacher through its own fixed random permutation (permuted digits, on generated bits).
- :class:`PermutedDigits`: scikit-learn's 8×8 handwritten digits with a new pixel permutation per task (the
  small cousin of Permuted MNIST).

:func:`run_online` trains one MLP online through a stream (one SGD/Adam step per example batch) with a
remedy attached and returns, per task, the performance reached within the task's budget (higher is better:
the negative mean squared error, or the accuracy) and the network's plasticity diagnostics at the task's end.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from llmagentos.core.config import param
from llmagentos.core.errors import UsageError
from llmagentos.lifelong.plasticity import capture_activations, dormant_fraction, effective_rank, trace_hidden_layers
from llmagentos.lifelong.remedies import RemedyConfig, make_remedy


class SlowlyChangingRegression:
    """x = (f slowly-flipping bits, m − f random bits, a constant 1); y = Σ_i v_i LTU_i(x) from a fixed random teacher.

    With ``permute``: x = (m random bits, 1) and y = Σ_i v_i LTU_i(P_t x), P_t task t's fixed random permutation of
    the bits (``flipping`` is then unused).
    """

    kind = "regression"

    def __init__(self, tasks: int, bits: int = 20, flipping: int = 15, teacher_units: int = 100, beta: float = 0.7,
                 seed: int = 0, permute: bool = False) -> None:
        if not permute and not 0 < flipping <= bits:
            raise UsageError(f"flipping bits must be in 1..bits ({bits}), got {flipping}")
        rng = np.random.default_rng(seed)
        self.tasks, self.bits, self.flipping = tasks, bits, flipping
        self.inputs = bits + 1
        self.outputs = 1
        # teacher: weights ±1; LTU_i(x) = 1 if w_i·x > θ_i with θ_i = (m + 1) β − S_i (S_i: its negative weights)
        self.w = rng.choice([-1.0, 1.0], size=(teacher_units, self.inputs))
        self.theta = self.inputs * beta - (self.w < 0).sum(axis=1)
        self.v = rng.choice([-1.0, 1.0], size=teacher_units)
        # the slow bits of every task: start random, one (chosen at random) flips at each boundary
        slow = rng.integers(0, 2, size=flipping).astype(float)
        self.slow = []
        for _ in range(tasks):
            self.slow.append(slow.copy())
            i = rng.integers(flipping)
            slow[i] = 1.0 - slow[i]
        # the permuted variant's permutations come from a generator of their own: teacher and flips stay as they are
        order = np.random.default_rng([seed, 1])
        self.permutations = [order.permutation(bits) for _ in range(tasks)] if permute else None
        self.seed = seed

    def loss(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return ((prediction - target) ** 2).mean()

    def performance(self, prediction: torch.Tensor, target: torch.Tensor) -> float:
        """Higher is better: the negative squared error."""
        return -float(((prediction - target) ** 2).mean())

    def batches(self, task: int, steps: int, batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, task, seed])
        if self.permutations is not None:
            bits = rng.integers(0, 2, size=(steps, batch, self.bits)).astype(float)
            ones = np.ones((steps, batch, 1))
            seen = np.concatenate([bits[..., self.permutations[task]], ones], axis=2)  # P_t x: what the teacher reads
            y = ((seen @ self.w.T > self.theta).astype(float) @ self.v)[..., None]
            x = np.concatenate([bits, ones], axis=2)
            return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)
        fast = rng.integers(0, 2, size=(steps, batch, self.bits - self.flipping)).astype(float)
        slow = np.broadcast_to(self.slow[task], (steps, batch, self.flipping))
        x = np.concatenate([slow, fast, np.ones((steps, batch, 1))], axis=2)
        y = ((x @ self.w.T > self.theta).astype(float) @ self.v)[..., None]
        return torch.as_tensor(x, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32)


class PermutedDigits:
    """scikit-learn's 8×8 digits (pixels scaled to [0, 1]), one fixed random pixel permutation per task."""

    kind = "classification"

    def __init__(self, tasks: int, seed: int = 0) -> None:
        try:
            from sklearn.datasets import load_digits
        except ImportError:
            raise UsageError("the digits stream needs scikit-learn: pip install 'llmagentos[plasticity]'") from None
        data = load_digits()
        self.x = np.asarray(data.data, dtype=np.float32) / 16.0
        self.y = np.asarray(data.target, dtype=np.int64)
        self.tasks, self.inputs, self.outputs, self.seed = tasks, self.x.shape[1], 10, seed
        rng = np.random.default_rng(seed)
        self.permutations = [rng.permutation(self.inputs) for _ in range(tasks)]

    def batches(self, task: int, steps: int, batch: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        rng = np.random.default_rng([self.seed, task, seed])
        rows = rng.integers(0, len(self.y), size=(steps, batch))
        return torch.as_tensor(self.x[rows][..., self.permutations[task]]), torch.as_tensor(self.y[rows])

    def loss(self, prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return nn.functional.cross_entropy(prediction, target)

    def performance(self, prediction: torch.Tensor, target: torch.Tensor) -> float:
        """Higher is better: the accuracy."""
        return float((prediction.argmax(dim=1) == target).float().mean())


@dataclass
class OnlineConfig:
    """How the online learner of a supervised plasticity stream is built and trained."""

    hidden: tuple[int, ...] = param((5,), "hidden layer widths")
    activation: str = param("relu", "hidden activation (relu, tanh, elu, gelu)")
    optimizer: str = param("sgd", "sgd or adam")
    learning_rate: float = param(0.01, "step size")
    batch: int = param(1, "examples per update")
    steps_per_task: int = param(1000, "updates per task")
    tau: float = param(0.025, "τ of the dormant-unit score")
    probe: int = param(256, "inputs of the probe batch the diagnostics look at")


def build_mlp(inputs: int, outputs: int, hidden: tuple[int, ...], activation: str) -> nn.Sequential:
    """in → hidden... → out with PyTorch's default Linear initialisation (what the remedies redraw from)."""
    from llmagentos.learners.common.networks import ACTIVATIONS

    layers: list[nn.Module] = []
    last = inputs
    for width in hidden:
        layers += [nn.Linear(last, width), ACTIVATIONS[activation]()]
        last = width
    layers.append(nn.Linear(last, outputs))
    return nn.Sequential(*layers)


def run_online(stream: Any, config: OnlineConfig, strategy: str, remedies: RemedyConfig, seed: int,
               tasks: list[int] | None = None) -> dict[str, Any]:
    """One network through ``stream`` (or only ``tasks``) under ``strategy``; per task: performance and diagnostics.

    Performance is prequential: every batch is scored before the network learns from it, and a task's
    figure is the mean over its budget (Dohare et al.'s online error per task).
    """
    torch.manual_seed(seed)
    net = build_mlp(stream.inputs, stream.outputs, tuple(config.hidden), config.activation)
    params = list(net.parameters())
    optimizer = (torch.optim.Adam(params, lr=config.learning_rate) if config.optimizer == "adam"
                 else torch.optim.SGD(params, lr=config.learning_rate))
    order = list(range(stream.tasks)) if tasks is None else list(tasks)
    probe_x, _ = stream.batches(order[0], 1, config.probe, seed=10**9)
    layers = trace_hidden_layers(net, lambda: net(probe_x[0]))
    remedy = make_remedy(strategy, remedies, layers, params, optimizer, seed)
    out: dict[str, Any] = {"tasks": order, "performance": [], "dormant_fraction": [], "effective_rank": []}
    for task in order:
        xs, ys = stream.batches(task, config.steps_per_task, config.batch, seed)
        scores = []
        for x, y in zip(xs, ys):
            prediction = net(x)
            scores.append(stream.performance(prediction.detach(), y))
            loss = stream.loss(prediction, y)
            extra = remedy.penalty()
            if extra is not None:
                loss = loss + extra
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            remedy.after_update()
        remedy.end_task()
        probe_x, _ = stream.batches(task, 1, config.probe, seed=10**9)
        acts = capture_activations(layers, lambda: net(probe_x[0]))
        out["performance"].append(float(np.mean(scores)))
        out["dormant_fraction"].append(dormant_fraction(acts, config.tau))
        out["effective_rank"].append(effective_rank(acts[-1]))
    out["remedy"] = remedy.state_dict()
    return out
