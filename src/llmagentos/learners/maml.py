"""Model-Agnostic Meta-Learning (Finn, Abbeel & Levine, 2017), first-order MAML and Meta-SGD (Li et al., 2017).

MAML learns an initialisation θ from which a few gradient steps on a new task's support set D^tr give
a good model for that task. Everything here is functional (``torch.func``): the model's parameters are
a dict of tensors passed to ``functional_call``, the inner loop builds new dicts instead of editing
parameters in place, and a meta-batch of tasks is adapted at once with ``vmap``. Because ``torch.func.grad``
is itself differentiable, backpropagating the meta-objective through the inner steps gives the exact
second-order meta-gradient; ``first_order`` drops those second derivatives.

    inner:  θ'_i = θ − α ⊙ ∇θ L_Ti(f_θ, D_i^tr)            (repeated ``inner_steps`` times)
    outer:  θ ← θ − β ∇θ (1/N) Σ_i L_Ti(f_θ'_i, D_i^val)   (Adam with step size β)

First-order MAML replaces ∇θ L(θ'_i) = (I − α ∇²L(θ)) ∇θ' L(θ'_i) by ∇θ' L(θ'_i): the gradient of the
query loss at the adapted parameters, used as if it were taken at θ. Meta-SGD also learns α, one step
size per parameter entry, with the same outer optimiser.

``meta_train`` runs the meta-updates of any experiment, logs them and hands out checkpoints a killed job resumes
from exactly. The experiments live beside it: sinusoid regression (§5.1) in :mod:`llmagentos.learners.maml_sinusoid`,
MAML-RL on PointNav (§5.3) and the goal grid in :mod:`llmagentos.learners.maml_rl`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch
from torch import nn
from torch.func import functional_call, grad, vmap

from llmagentos.core.config import check_bounds, param
from llmagentos.core.limits import check_finite

Params = dict[str, torch.Tensor]
#: L(params, data) -> scalar: the loss of the model with ``params`` on one task's ``data`` (a tuple of tensors)
TaskLoss = Callable[[Params, Any], torch.Tensor]


@dataclass
class MAMLConfig:
    """MAML's hyper-parameters (defaults: the sinusoid setting of Finn et al., 2017)."""

    inner_lr: float = param(0.01, "α: step size of the inner (adaptation) gradient steps", gt=0)
    inner_steps: int = param(1, "inner gradient steps per task during meta-training", gt=0)
    meta_lr: float = param(1e-3, "β: Adam step size of the meta-update", gt=0)
    meta_batch_size: int = param(25, "N: tasks per meta-update", gt=0)
    meta_iterations: int = param(10_000, "meta-updates to run (70,000 is the paper's sinusoid setting)", gt=0)
    checkpoint_every: int = param(500, "meta-updates between checkpoints a killed job resumes from exactly (0: none)", ge=0)
    first_order: bool = param(False, "first-order MAML: treat the inner gradients as constants (no second derivatives)")
    meta_sgd: bool = param(False, "Meta-SGD: learn one inner step size per parameter entry, initialised to inner_lr")

    #: how check_bounds words a field outside its bounds: "maml config: meta_lr must be positive, got 0.0"
    BOUNDS_PREFIX: ClassVar[str] = "maml config: "
    BOUNDS_POSITIVE: ClassVar[str] = "positive"

    def validate(self) -> None:
        # the fields' declared bounds: a config built in code (tests, scripts) never passes apply_overrides
        check_bounds(self)
        for name in ("inner_lr", "meta_lr"):
            check_finite(getattr(self, name), f"maml config: {name}")


def mse_loss(model: nn.Module) -> TaskLoss:
    """The supervised task loss L(θ, (x, y)) = mean (f_θ(x) − y)² for ``model``."""

    def loss(params: Params, data: Any) -> torch.Tensor:
        x, y = data
        return ((functional_call(model, params, (x,)) - y) ** 2).mean()

    return loss


def inner_adapt(task_loss: TaskLoss, params: Params, step_sizes: dict[str, torch.Tensor | float], data: Any,
                steps: int, first_order: bool = False) -> Params:
    """θ' after ``steps`` gradient steps on one task's support ``data``; differentiable in θ (and α) unless ``first_order``."""
    for _ in range(steps):
        grads = grad(task_loss)(params, data)
        if first_order:
            grads = {k: g.detach() for k, g in grads.items()}
        # θ' = θ − α ∇θ L_Ti(f_θ, D_i^tr)
        params = {k: params[k] - step_sizes[k] * grads[k] for k in params}
    return params


def adaptation_errors(task_loss: TaskLoss, params: Params, step_sizes: dict[str, torch.Tensor | float],
                      support: Any, query: Any, steps: int) -> torch.Tensor:
    """Query loss of every task after 0, 1, ..., ``steps`` inner steps: shape (tasks, steps + 1), no meta-gradient.

    ``support`` and ``query`` are tuples of tensors with the task index first; tasks are adapted at once with vmap.
    """
    params = {k: v.detach() for k, v in params.items()}
    step_sizes = {k: (v.detach() if torch.is_tensor(v) else v) for k, v in step_sizes.items()}

    def curve(support_i: Any, query_i: Any) -> torch.Tensor:
        p = params
        losses = [task_loss(p, query_i)]
        for _ in range(steps):
            p = inner_adapt(task_loss, p, step_sizes, support_i, 1)
            losses.append(task_loss(p, query_i))
        return torch.stack(losses)

    return vmap(curve)(support, query).detach()


class MAML:
    """Meta-learns the initialisation of ``model`` (any ``nn.Module``) for tasks scored by ``task_loss``.

    ``model``'s own parameters are the meta-parameters θ (updated in place only by the outer optimiser);
    ``task_loss(params, data)`` evaluates the model functionally. Supervised tasks use :meth:`meta_step`
    (a vmapped meta-batch); reinforcement learning builds its outer losses with :meth:`adapt` and passes
    them to :meth:`outer_update`, because its query data is sampled with the adapted policy.
    """

    def __init__(self, model: nn.Module, task_loss: TaskLoss, config: MAMLConfig | None = None) -> None:
        self.config = config or MAMLConfig()
        self.config.validate()
        self.model = model
        self.task_loss = task_loss
        self.params: Params = dict(model.named_parameters())
        if self.config.meta_sgd:
            self.step_sizes: dict[str, Any] = {k: nn.Parameter(torch.full_like(p, self.config.inner_lr))
                                               for k, p in self.params.items()}
        else:
            self.step_sizes = {k: self.config.inner_lr for k in self.params}
        learned = list(self.params.values()) + [v for v in self.step_sizes.values() if torch.is_tensor(v)]
        # the fused kernel updates every tensor in one call: a quarter of a small net's meta-iteration otherwise
        self.optimizer = torch.optim.Adam(learned, lr=self.config.meta_lr, fused=True)
        self.iterations = 0

    def adapt(self, data: Any, steps: int | None = None, first_order: bool | None = None) -> Params:
        """θ' for one task from its support ``data`` (differentiable in θ for second-order MAML)."""
        steps = self.config.inner_steps if steps is None else steps
        first_order = self.config.first_order if first_order is None else first_order
        return inner_adapt(self.task_loss, self.params, self.step_sizes, data, steps, first_order)

    def adapt_batch(self, support: Any, steps: int | None = None) -> Params:
        """θ'_i for a batch of tasks at once (vmap over the leading task axis of ``support``): a dict of stacked tensors."""
        steps = self.config.inner_steps if steps is None else steps
        first_order = self.config.first_order

        def one(params: Params, step_sizes: dict[str, Any], support_i: Any) -> Params:
            return inner_adapt(self.task_loss, params, step_sizes, support_i, steps, first_order)

        return vmap(one, in_dims=(None, None, 0))(self.params, self.step_sizes, support)

    def meta_loss(self, support: Any, query: Any) -> torch.Tensor:
        """(1/N) Σ_i L_Ti(f_θ'_i, D_i^val) over a meta-batch (task index first in every tensor), adapted with vmap."""
        cfg = self.config

        def task_objective(params: Params, step_sizes: dict[str, Any], support_i: Any, query_i: Any) -> torch.Tensor:
            adapted = inner_adapt(self.task_loss, params, step_sizes, support_i, cfg.inner_steps, cfg.first_order)
            return self.task_loss(adapted, query_i)

        return vmap(task_objective, in_dims=(None, None, 0, 0))(self.params, self.step_sizes, support, query).mean()

    def outer_update(self, meta_loss: torch.Tensor) -> float:
        """One Adam step of θ (and α under Meta-SGD) down the meta-gradient of ``meta_loss``."""
        self.optimizer.zero_grad(set_to_none=True)
        meta_loss.backward()
        self.optimizer.step()
        self.iterations += 1
        return float(meta_loss.detach())

    def meta_step(self, support: Any, query: Any) -> float:
        """One meta-update on a supervised meta-batch; returns the meta-loss before the update."""
        return self.outer_update(self.meta_loss(support, query))

    def evaluate(self, support: Any, query: Any, steps: int) -> torch.Tensor:
        """Query loss per task after 0..``steps`` adaptation steps from the current θ: shape (tasks, steps + 1)."""
        return adaptation_errors(self.task_loss, self.params, self.step_sizes, support, query, steps)

    def state_dict(self) -> dict[str, Any]:
        return {"params": {k: v.detach().clone() for k, v in self.params.items()},
                "step_sizes": {k: (v.detach().clone() if torch.is_tensor(v) else torch.tensor(v))
                               for k, v in self.step_sizes.items()},
                "optimizer": self.optimizer.state_dict(), "iterations": self.iterations}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        with torch.no_grad():
            for k, v in state["params"].items():
                self.params[k].copy_(v)
            for k, v in state["step_sizes"].items():
                if torch.is_tensor(self.step_sizes[k]):
                    self.step_sizes[k].copy_(v)
        self.optimizer.load_state_dict(state["optimizer"])
        self.iterations = int(state["iterations"])


#: checkpoint_state(iteration) -> None: what a meta-training loop calls to have its state saved
Checkpoint = Callable[[dict[str, Any]], None]


def meta_train(maml: MAML, config: Any, step: Callable[[], float], metric: str, rngs: dict[str, Any],
               on_log: Callable[[int, dict[str, float]], None] | None = None, resume: dict[str, Any] | None = None,
               on_checkpoint: Checkpoint | None = None) -> float:
    """Call ``step()`` (one meta-update, returning ``metric``) until ``config.meta_iterations``; the seconds it took.

    Every ``config.log_every`` updates ``on_log`` receives the metric's mean since the last log; every
    ``config.checkpoint_every`` updates ``on_checkpoint`` receives everything the rest of the loop depends on
    (θ and the optimiser, the random generators ``rngs`` — numpy Generators or torch Generators —, the
    unlogged window, the seconds so far). Passing that dict back as ``resume`` continues exactly.
    """
    import time

    from llmagentos.core.schedules import Every
    from llmagentos.core.seeding import rng_state, set_rng_state

    window: list[float] = []
    elapsed = 0.0
    if resume is not None:
        maml.load_state_dict(resume["maml"])
        for name, generator in rngs.items():
            if isinstance(generator, torch.Generator):
                generator.set_state(resume["rngs"][name])
            else:
                set_rng_state(generator, resume["rngs"][name])
        window, elapsed = [float(v) for v in resume["window"]], float(resume["meta_seconds"])
    started = time.perf_counter() - elapsed
    logs = Every.after(config.log_every, maml.iterations)  # a resumed loop logs and checkpoints on the same multiples
    checkpoints = Every.after(config.checkpoint_every or None, maml.iterations)
    while maml.iterations < config.meta_iterations:
        window.append(step())
        iteration = maml.iterations
        if on_log is not None and (logs.due(iteration) or iteration == config.meta_iterations):
            logs.done(iteration)
            on_log(iteration, {metric: float(np.mean(window)),
                               "meta_iteration_ms": 1000 * (time.perf_counter() - started) / iteration})
            window = []
        if on_checkpoint is not None and checkpoints.due(iteration) and iteration < config.meta_iterations:
            checkpoints.done(iteration)
            on_checkpoint({"maml": maml.state_dict(), "window": list(window),
                           "meta_seconds": time.perf_counter() - started,
                           "rngs": {name: (g.get_state() if isinstance(g, torch.Generator) else rng_state(g))
                                    for name, g in rngs.items()}})
    return time.perf_counter() - started
