"""MAML's sinusoid regression experiment (Finn, Abbeel & Levine, 2017, §5.1): meta-train on the sinusoid family,
then compare the held-out tasks' errors after k adaptation steps from MAML's θ, from a net pretrained on the task
mixture, and from a random initialisation (:func:`sinusoid_experiment`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from llmagentos.core.config import param
from llmagentos.core.errors import UsageError
from llmagentos.core.statistics import mean_ci95
from llmagentos.learners.maml import Checkpoint, MAML, MAMLConfig, adaptation_errors, meta_train, mse_loss


#: weight initialisations of the sinusoid net (see SinusoidMAMLConfig.init)
SINUSOID_INITS = ("orthogonal", "torch", "finn", "spread")


@dataclass
class SinusoidMAMLConfig(MAMLConfig):
    """MAML on the sinusoid family, with the pretrained and random-initialisation baselines scored alike."""

    hidden: list[int] = param([40, 40], "hidden layer widths of the ReLU MLP 1 → hidden → 1")
    init: str = param("orthogonal", "weight initialisation: orthogonal (the project's), torch (nn.Linear's default) "
                      "or finn (truncated normal, std 0.01, zero biases: Finn et al.'s code)")
    k_support: int = param(10, "K: support points per task (the adaptation data)", gt=0)
    k_query: int = param(10, "query points per task (the meta-objective's and the evaluation's data)", gt=0)
    eval_tasks: int = param(600, "held-out tasks the final errors are averaged over")
    eval_steps: int = param(10, "adaptation steps at evaluation; errors are reported after 0, 1 and this many", gt=0)
    eval_seed: int = param(2017, "seed of the held-out tasks (the same tasks for every training seed)")
    pretrain_iterations: int | None = param(None, "Adam steps of the pretrained baseline on the task mixture (None: meta_iterations)")
    log_every: int = param(500, "meta-iterations between logged meta-losses", gt=0)

    def validate(self) -> None:
        super().validate()
        if self.eval_tasks < 2:
            raise UsageError("maml config: eval_tasks must be at least 2 (a confidence interval needs two tasks)")
        if not self.hidden or any(h <= 0 for h in self.hidden):
            raise UsageError(f"maml config: hidden must list positive layer widths, got {self.hidden}")
        if self.pretrain_iterations is not None and self.pretrain_iterations < 0:
            raise UsageError(f"maml config: pretrain_iterations must be ≥ 0, got {self.pretrain_iterations}")
        if self.init not in SINUSOID_INITS:
            raise UsageError(f"maml config: init must be one of {', '.join(SINUSOID_INITS)}, got {self.init!r}")


def _finite_or_none(values: np.ndarray) -> list[float | None]:
    """JSON-safe floats: a diverged adaptation (Meta-SGD's learned α applied past its trained steps) becomes None."""
    return [float(v) if math.isfinite(v) else None for v in values]


def _sinusoid_net(hidden: list[int], init: str = "orthogonal", x_range: tuple[float, float] = (-5.0, 5.0)) -> nn.Module:
    from llmagentos.learners.common.networks import mlp

    net = mlp(1, 1, hidden, "relu")
    for layer in net:
        if not isinstance(layer, nn.Linear):
            continue
        if init == "torch":
            layer.reset_parameters()
        elif init == "finn":  # tf.truncated_normal(stddev=0.01): redrawn beyond two standard deviations
            nn.init.trunc_normal_(layer.weight, std=0.01, a=-0.02, b=0.02)
            nn.init.zeros_(layer.bias)
    if init == "spread":  # orthogonal weights; the first layer's kinks −b_j/w_j uniform over the input range, not all at 0
        first = net[0]
        with torch.no_grad():
            first.bias.copy_(-first.weight[:, 0] * torch.empty(first.out_features).uniform_(*x_range))
    return net


def _tensors(*arrays: np.ndarray) -> tuple[torch.Tensor, ...]:
    return tuple(torch.from_numpy(a) for a in arrays)


def pretrain_on_mixture(net: nn.Module, family: Any, config: SinusoidMAMLConfig, iterations: int,
                        rng: np.random.Generator) -> None:
    """The non-meta baseline: fit ``net`` by Adam to points pooled over fresh tasks (as many points per step as MAML sees)."""
    optimizer = torch.optim.Adam(net.parameters(), lr=config.meta_lr)
    for _ in range(iterations):
        x, y = _tensors(*family.mixture(config.meta_batch_size, config.k_support + config.k_query, rng))
        loss = ((net(x) - y) ** 2).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def sinusoid_experiment(config: SinusoidMAMLConfig, seed: int = 0,
                        on_log: Callable[[int, dict[str, float]], None] | None = None,
                        resume: dict[str, Any] | None = None, on_checkpoint: Checkpoint | None = None) -> dict[str, Any]:
    """Meta-train on sinusoids, then score MAML, the pretrained baseline and a random init on held-out tasks.

    Returns ``{"mse": {"maml"|"pretrained"|"random": [after 0, 1, eval_steps]}, "ci95": {...}, "curves":
    {name: [after 0..eval_steps]}, "meta_iterations", "meta_iteration_ms", ...}``; ``on_log(iteration, values)``
    receives the meta-loss every ``log_every`` meta-iterations; ``on_checkpoint`` and ``resume`` as in :func:`meta_train`.
    """
    from llmagentos.core.seeding import derive_seed, make_rng
    from llmagentos.envs.sinusoid import SinusoidFamily

    config.validate()
    family = SinusoidFamily()
    torch.manual_seed(derive_seed(seed, "maml-init"))
    net = _sinusoid_net(config.hidden, config.init, family.x_range)
    random_init = {k: v.detach().clone() for k, v in net.named_parameters()}
    maml = MAML(net, mse_loss(net), config)
    rng = make_rng(derive_seed(seed, "meta-train-tasks"))

    def step() -> float:
        xs, ys, xq, yq = _tensors(*family.batch(config.meta_batch_size, config.k_support, config.k_query, rng))
        return maml.meta_step((xs, ys), (xq, yq))

    meta_seconds = meta_train(maml, config, step, "meta_loss", {"tasks": rng}, on_log, resume, on_checkpoint)

    torch.manual_seed(derive_seed(seed, "pretrain-init"))
    pretrained = _sinusoid_net(config.hidden, config.init, family.x_range)
    pretrain_iterations = config.meta_iterations if config.pretrain_iterations is None else config.pretrain_iterations
    pretrain_on_mixture(pretrained, family, config, pretrain_iterations, make_rng(derive_seed(seed, "pretrain-tasks")))

    xs, ys, xq, yq = _tensors(*family.batch(config.eval_tasks, config.k_support, config.k_query, make_rng(config.eval_seed)))
    support, query = (xs, ys), (xq, yq)
    alpha = {k: config.inner_lr for k in random_init}
    errors = {
        "maml": maml.evaluate(support, query, config.eval_steps),
        "pretrained": adaptation_errors(mse_loss(pretrained), dict(pretrained.named_parameters()), alpha,
                                        support, query, config.eval_steps),
        "random": adaptation_errors(mse_loss(net), random_init, alpha, support, query, config.eval_steps),
    }
    reported = [0, 1, config.eval_steps]
    mse, ci95, curves, curves_ci95 = {}, {}, {}, {}
    for name, per_task in errors.items():
        mean, half = (_finite_or_none(v) for v in mean_ci95(per_task.numpy()))
        mse[name] = [mean[s] for s in reported]
        ci95[name] = [half[s] for s in reported]
        curves[name], curves_ci95[name] = mean, half
    return {"mse": mse, "ci95": ci95, "steps_reported": reported, "curves": curves, "curves_ci95": curves_ci95,
            "meta_iterations": maml.iterations, "meta_iteration_ms": round(1000 * meta_seconds / maml.iterations, 4),
            "meta_seconds": round(meta_seconds, 3), "pretrain_iterations": pretrain_iterations,
            "eval_tasks": config.eval_tasks, "model": maml}
