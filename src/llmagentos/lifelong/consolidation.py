"""Keeping old tasks: the consolidation strategies a lifelong agent applies to its learner's network.

Each strategy sees the learner's network through a :class:`NetworkView`, built from the learner's
documented accessors (the module whose outputs carry the knowledge — Q-values for DQN, action logits or
Gaussian means for policy-gradient learners — its value module, its input preparation, its replay memory
and TD loss where it has them) and acts at five moments: the start of a task, a penalty added to every
learner update (``add_loss_term``), a step after each update (``add_update_hook``), the end of a task, and
evaluation on a given task.

- ``finetune``: nothing — the baseline that forgets.
- ``ewc``: online elastic weight consolidation (Kirkpatrick et al., 2017; the online form of Schwarz et
  al., 2018): F* ← γ F* + F_t and θ* ← θ_t at the end of each task, penalty (λ/2) Σ_i F*_i (θ_i − θ*_i)²,
  with the diagonal Fisher on the agent's own states: of the softmax policy for policy-gradient learners
  (plus a unit-Gaussian Fisher of V(s), so the value head is protected too), of unit-Gaussian outputs for DQN.
- ``si``: synaptic intelligence (Zenke et al., 2017): each weight's contribution to the fall of the loss along
  the optimiser's path, ω_k = −Σ_t g_k(t) Δθ_k(t), becomes at the end of a task Ω_k ← Ω_k + ω_k / (Δ_k² + ξ),
  Δ_k the task's total change of θ_k; penalty c Σ_k Ω_k (θ_k − θ*_k)².
- ``lwf``: learning without forgetting (Li & Hoiem, 2017): the network as it was when the last task ended
  is kept, and every update on the new task adds the distillation of its outputs on the new task's own
  states, T² KL(softmax(q_old/T) ‖ softmax(q_θ/T)) (squared error for Gaussian means), plus ‖V − V_old‖² for
  actor-critics and ‖q_θ − q_old‖² for DQN's Q-values.
- ``replay``: experience replay of past tasks (CLEAR, Rolnick et al., 2019): states kept from each past task
  with the outputs the network gave when it acted there (behaviour time); every update adds, on a batch of
  them, behaviour and value cloning KL(π_old ‖ π_θ) + ‖q_θ − q_old‖², and for learners with a replay memory
  their own RL loss on old transitions (DQN's TD loss, so old tasks keep being learned off-policy).
- ``packnet``: parameter isolation (Mallya & Lazebnik, 2018): at the end of each task the largest free
  weights are kept for it, the rest are zeroed and left to later tasks, the kept weights are retrained
  alone — on the task's transitions with the learner's TD loss (DQN, whose target network is then re-synced),
  or by distilling the unpruned network's outputs on the task's states (policy gradient) — and then frozen;
  evaluating task j uses only the weights of tasks ≤ j.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Literal

import numpy as np
import torch
from torch import nn

from llmagentos.core.config import param
from llmagentos.core.seeding import make_rng, rng_state, set_rng_state

STRATEGIES = ("finetune", "ewc", "si", "lwf", "replay", "packnet")


@dataclass
class ConsolidationConfig:
    strategy: Literal["finetune", "ewc", "si", "lwf", "replay", "packnet"] = param("finetune", "how old tasks are kept: none (fine-tuning), online EWC, synaptic intelligence, learning without forgetting, replay with behaviour cloning, or PackNet")
    ewc_lambda: float = param(100.0, "EWC penalty strength λ")
    fisher: Literal["auto", "output", "policy"] = param("auto", "EWC's Fisher: of a unit Gaussian on the network's outputs (Q-values, Gaussian means), of the softmax policy softmax(outputs/τ), or auto: the policy's for policy-gradient learners with discrete actions, the outputs' otherwise")
    ewc_gamma: float = param(1.0, "online EWC decay γ of the accumulated Fisher (1 sums the tasks' Fishers)")
    fisher_states: int = param(500, "states from the task used to estimate the diagonal Fisher")
    temperature: float = param(1.0, "softmax temperature τ turning network outputs into a policy (Fisher, cloning)")
    replay_per_task: int = param(500, "states kept from each past task for replay")
    replay_batch: int = param(32, "replayed states per learner update")
    replay_td_weight: float = param(1.0, "weight of the learner's TD loss on replayed old transitions (CLEAR's RL term; learners with a replay memory)")
    bc_policy_weight: float = param(1.0, "weight of the policy-cloning term KL(π_old ‖ π_θ)")
    bc_value_weight: float = param(1.0, "weight of the output-cloning term ‖q_θ − q_old‖²")
    packnet_keep: float = param(0.5, "share of free weights PackNet keeps for a task when the number of tasks is unknown")
    packnet_retrain_steps: int = param(500, "gradient steps PackNet retrains a task's kept weights after pruning (0: no retraining)")
    packnet_retrain_lr: float = param(3e-4, "Adam step size of PackNet's retraining")
    packnet_retrain_batch: int = param(128, "transitions per retraining step")
    si_c: float = param(1.0, "synaptic intelligence's penalty strength c")
    si_xi: float = param(0.1, "synaptic intelligence's damping ξ of the importance ω_k / (Δ_k² + ξ)")
    lwf_lambda: float = param(1.0, "weight of learning without forgetting's distillation loss")
    lwf_temperature: float = param(2.0, "distillation temperature T of learning without forgetting (Li & Hoiem use 2)")


@dataclass
class NetworkView:
    """The part of a learner that consolidation protects: ``module(preprocess(obs))`` gives its outputs."""

    module: nn.Module
    #: observations (numpy batch) -> the module's input tensor (one-hot, scaling ...), without gradients
    preprocess: Callable[[np.ndarray], torch.Tensor]
    #: whether the outputs score discrete actions (Q-values, logits); False for Gaussian means
    discrete: bool = True
    #: V(s) of the same inputs, with parameters named as ``module``'s (actor-critic learners); None for DQN
    value_module: nn.Module | None = None
    #: (n, rng, recent) -> up to n distinct transitions (ReplayBatch fields as arrays) drawn from the learner's
    #: ``recent`` most recently stored ones; None when the learner keeps no replay memory
    transitions: Callable[[int, np.random.Generator, int], dict[str, np.ndarray] | None] | None = None
    #: transitions -> the learner's own RL loss on them (DQN's TD loss), with gradients into ``module``
    td_loss: Callable[[dict[str, np.ndarray]], torch.Tensor | None] | None = None
    #: tell the learner its weights were changed from outside (DQN re-syncs its target network)
    weights_changed: Callable[[], None] = lambda: None
    #: (n, rng) -> up to n states of the task being learned now (None before any), for LwF's distillation
    current_states: Callable[[int, np.random.Generator], np.ndarray | None] | None = None

    def outputs(self, observations: np.ndarray) -> torch.Tensor:
        """Network outputs (B, K) for a batch of observations, with gradients."""
        return self.module(self.preprocess(np.asarray(observations)))

    def parameters(self) -> dict[str, nn.Parameter]:
        return dict(self.module.named_parameters())


def log_policy(outputs: torch.Tensor, temperature: float) -> torch.Tensor:
    return torch.log_softmax(outputs / temperature, dim=-1)


def diagonal_fisher(view: NetworkView, states: np.ndarray, temperature: float = 1.0,
                    kind: str = "policy") -> dict[str, torch.Tensor]:
    """The diagonal of the Fisher information at the current weights, averaged over ``states``.

    ``kind="policy"``: F_i = E_s Σ_a π(a|s) (∂ log π(a|s) / ∂θ_i)², π = softmax(outputs/τ), exact in a.
    ``kind="output"``: the outputs are the means of a unit-variance Gaussian, F_i = E_s Σ_k (∂f_k(s) / ∂θ_i)²
    (the natural choice for Q-values, whose greedy policy a softmax describes poorly).
    Per-state Jacobians come from ``torch.func`` (vmap of jacrev).
    """
    from torch.func import functional_call, jacrev, vmap

    module = view.module
    params = {n: p.detach() for n, p in module.named_parameters()}
    x = view.preprocess(np.asarray(states)).detach()

    def output_one(p: dict[str, torch.Tensor], xi: torch.Tensor) -> torch.Tensor:
        out = functional_call(module, p, (xi.unsqueeze(0),))
        return (log_policy(out, temperature) if kind == "policy" else out)[0]

    jac = vmap(jacrev(output_one), in_dims=(None, 0))(params, x)  # name -> (B, K, *shape)
    with torch.no_grad():
        out = module(x)
        weights = torch.softmax(out / temperature, dim=-1) if kind == "policy" else torch.ones_like(out)  # (B, K)
    fisher = {}
    for name, j in jac.items():
        w = weights.reshape(weights.shape + (1,) * (j.dim() - 2))
        fisher[name] = (w * j.pow(2)).sum(dim=1).mean(dim=0).detach()
    if view.value_module is not None:
        # V(s) as the mean of a unit-variance Gaussian: F_i += E_s (∂V(s) / ∂θ_i)², so the value head is kept too
        value = NetworkView(_Unsqueezed(view.value_module), view.preprocess)
        for name, f in diagonal_fisher(value, states, kind="output").items():
            fisher[name.removeprefix("inner.")] = fisher[name.removeprefix("inner.")] + f
    return fisher


class _Unsqueezed(nn.Module):
    """A module's (B,) output as (B, 1), so a scalar output is one more output column."""

    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x).unsqueeze(-1)


def fisher_kind(config: "ConsolidationConfig", view: NetworkView) -> str:
    """EWC's Fisher for this learner: the configured one, or (auto) the policy's for discrete actor-critics."""
    if not view.discrete:
        return "output"
    if config.fisher == "auto":
        return "policy" if view.value_module is not None else "output"
    return config.fisher


def distillation_kl(old: torch.Tensor, new: torch.Tensor, temperature: float) -> torch.Tensor:
    """KL(softmax(old/T) ‖ softmax(new/T)) averaged over the batch."""
    old_logp = log_policy(old, temperature)
    return (old_logp.exp() * (old_logp - log_policy(new, temperature))).sum(-1).mean()  # Σ_a π_old (log π_old − log π_θ)


class Consolidation:
    """Base class: the fine-tuning baseline (no penalty, nothing kept)."""

    name = "finetune"

    def __init__(self, view: NetworkView, config: ConsolidationConfig, seed: int = 0) -> None:
        self.view = view
        self.config = config
        self.rng = make_rng(seed)

    def penalty(self) -> torch.Tensor | None:
        """Added to the learner's loss at every update (None: nothing to add)."""
        return None

    def after_update(self) -> None:
        """Called after every learner update (PackNet re-freezes weights here, SI integrates its path)."""

    def begin_task(self) -> None:
        """Called when a task starts, after transfer chose its starting weights."""

    def end_task(self, task: int, states: np.ndarray, tasks_left: int | None = None, steps: int = 0,
                 outputs: np.ndarray | None = None) -> None:
        """Called when task ``task`` ends, with states the agent saw on it, the outputs the network gave on them
        when it acted there (when :attr:`wants_outputs`), and the number of ``steps`` it lived there."""

    #: whether the lifelong agent must record the network's behaviour-time outputs with the states it keeps
    wants_outputs = False

    @contextlib.contextmanager
    def evaluating(self, task: int, current: int) -> Iterator[None]:
        """The network as it should act on task ``task`` while ``current`` is being learned."""
        yield

    def state_dict(self) -> dict[str, Any]:
        return {"rng": rng_state(self.rng)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        set_rng_state(self.rng, state["rng"])


class EWC(Consolidation):
    name = "ewc"

    def __init__(self, view: NetworkView, config: ConsolidationConfig, seed: int = 0) -> None:
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


class SynapticIntelligence(Consolidation):
    """Synaptic intelligence: importance from the path integral of each weight's share in the loss's fall.

    ``g`` is the gradient the learner's optimiser stepped with (the task loss plus any penalty, as the
    reference implementations do); ω is integrated after every optimiser step from the change it made.
    """

    name = "si"

    def __init__(self, view: NetworkView, config: ConsolidationConfig, seed: int = 0) -> None:
        super().__init__(view, config, seed)
        self.omega: dict[str, torch.Tensor] = {}  # Ω_k, the consolidated importance
        self.anchor: dict[str, torch.Tensor] = {}  # θ*_k at the end of the last task
        self.path: dict[str, torch.Tensor] = {n: torch.zeros_like(p) for n, p in view.parameters().items()}  # ω_k
        self.start = self._snapshot()  # θ_k when the task began
        self.previous = self._snapshot()  # θ_k before the last optimiser step

    def _snapshot(self) -> dict[str, torch.Tensor]:
        return {n: p.detach().clone() for n, p in self.view.parameters().items()}

    def penalty(self) -> torch.Tensor | None:
        if not self.omega:
            return None
        total = torch.zeros(())
        for name, p in self.view.parameters().items():
            total = total + (self.omega[name] * (p - self.anchor[name]).pow(2)).sum()
        return self.config.si_c * total  # c Σ_k Ω_k (θ_k − θ*_k)²

    def after_update(self) -> None:
        with torch.no_grad():
            for name, p in self.view.parameters().items():
                if p.grad is not None:
                    self.path[name] -= p.grad * (p - self.previous[name])  # ω_k −= g_k Δθ_k
                self.previous[name].copy_(p)

    def begin_task(self) -> None:
        self.start = self._snapshot()
        self.previous = self._snapshot()
        self.path = {n: torch.zeros_like(p) for n, p in self.start.items()}

    def end_task(self, task: int, states: np.ndarray, tasks_left: int | None = None, steps: int = 0,
                 outputs: np.ndarray | None = None) -> None:
        now = self._snapshot()
        for name, theta in now.items():
            delta = theta - self.start[name]
            # Ω_k ← Ω_k + ω_k / (Δ_k² + ξ); a weight whose path raised the loss gains no importance
            new = (self.path[name] / (delta.pow(2) + self.config.si_xi)).clamp(min=0.0)
            self.omega[name] = self.omega[name] + new if name in self.omega else new
        self.anchor = now
        self.begin_task()

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "omega": dict(self.omega), "anchor": dict(self.anchor), "path": dict(self.path),
                "start": dict(self.start), "previous": dict(self.previous)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        for name in ("omega", "anchor", "path", "start", "previous"):
            setattr(self, name, {k: v.clone() for k, v in state[name].items()})


class LearningWithoutForgetting(Consolidation):
    """Learning without forgetting: distil the network as the last task left it, on the new task's states."""

    name = "lwf"

    def __init__(self, view: NetworkView, config: ConsolidationConfig, seed: int = 0) -> None:
        super().__init__(view, config, seed)
        self.old: dict[str, torch.Tensor] | None = None  # θ_old, the weights when the last task ended

    def penalty(self) -> torch.Tensor | None:
        from torch.func import functional_call

        view, c = self.view, self.config
        if self.old is None or view.current_states is None:
            return None
        states = view.current_states(c.replay_batch, self.rng)
        if states is None or len(states) == 0:
            return None
        x = view.preprocess(states)
        with torch.no_grad():
            old = functional_call(view.module, self.old, (x,))
        new = view.module(x)
        if view.discrete:  # T² KL(softmax(q_old/T) ‖ softmax(q_θ/T)), Hinton et al.'s scaling of the soft targets
            loss = c.lwf_temperature ** 2 * distillation_kl(old, new, c.lwf_temperature)
        else:
            loss = (new - old).pow(2).sum(-1).mean()
        if view.value_module is not None:
            with torch.no_grad():
                old_value = functional_call(view.value_module, self.old, (x,))
            loss = loss + (view.value_module(x) - old_value).pow(2).mean()  # ‖V_θ(s) − V_old(s)‖²
        elif view.discrete:  # Q-values are values too: their gaps are too small for the softmax alone to keep
            loss = loss + (new - old).pow(2).sum(-1).mean()  # ‖q_θ(s) − q_old(s)‖²
        return c.lwf_lambda * loss

    def end_task(self, task: int, states: np.ndarray, tasks_left: int | None = None, steps: int = 0,
                 outputs: np.ndarray | None = None) -> None:
        self.old = {n: p.detach().clone() for n, p in self.view.parameters().items()}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), **({"old": dict(self.old)} if self.old is not None else {})}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.old = {k: v.clone() for k, v in state["old"].items()} if state.get("old") is not None else None


class Replay(Consolidation):
    name = "replay"
    wants_outputs = True

    def __init__(self, view: NetworkView, config: ConsolidationConfig, seed: int = 0) -> None:
        super().__init__(view, config, seed)
        self.states: np.ndarray | None = None  # old tasks' states
        self.targets: torch.Tensor | None = None  # the network's outputs on them when it acted there
        self.transitions: dict[str, np.ndarray] | None = None  # old transitions for the learner's TD loss

    def penalty(self) -> torch.Tensor | None:
        if self.states is None:
            return None
        c = self.config
        idx = self.rng.integers(len(self.states), size=c.replay_batch)
        out = self.view.outputs(self.states[idx])
        old = self.targets[torch.as_tensor(idx)]
        value = (out - old).pow(2).sum(-1).mean()  # ‖q_θ(s) − q_old(s)‖²
        if not self.view.discrete:  # Gaussian means: cloning them is the squared error alone
            return (c.bc_policy_weight + c.bc_value_weight) * value
        # KL(π_old ‖ π_θ) = Σ_a π_old(a|s) [log π_old(a|s) − log π_θ(a|s)]
        total = c.bc_policy_weight * distillation_kl(old, out, c.temperature) + c.bc_value_weight * value
        if self.transitions is not None and c.replay_td_weight > 0:
            # CLEAR's RL term: the learner's own TD loss on old transitions, y = R + γⁿ max_a' Q'(s', a')
            rows = self.rng.integers(len(self.transitions["obs"]), size=c.replay_batch)
            total = total + c.replay_td_weight * self.view.td_loss({k: v[rows] for k, v in self.transitions.items()})
        return total

    def end_task(self, task: int, states: np.ndarray, tasks_left: int | None = None, steps: int = 0,
                 outputs: np.ndarray | None = None) -> None:
        if len(states):
            keep = self.rng.permutation(len(states))[: self.config.replay_per_task]
            kept_states = np.asarray(states)[keep]
            if outputs is not None and len(outputs) == len(states):
                targets = torch.as_tensor(np.asarray(outputs)[keep])
            else:  # no behaviour-time record (a store from an older version): the outputs now
                with torch.no_grad():
                    targets = self.view.outputs(kept_states).detach()
            self.states = kept_states if self.states is None else np.concatenate([self.states, kept_states])
            self.targets = targets if self.targets is None else torch.cat([self.targets, targets])
        if self.view.transitions is not None and self.view.td_loss is not None and steps > 0:
            kept = self.view.transitions(self.config.replay_per_task, self.rng, steps)
            if kept is not None:
                self.transitions = kept if self.transitions is None else \
                    {k: np.concatenate([v, kept[k]]) for k, v in self.transitions.items()}

    def state_dict(self) -> dict[str, Any]:
        out = super().state_dict()
        if self.states is not None:
            out.update(states=np.asarray(self.states), targets=self.targets)
        if self.transitions is not None:
            out["transitions"] = dict(self.transitions)
        return out

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        if "states" in state:
            self.states = np.asarray(state["states"])
            self.targets = torch.as_tensor(state["targets"]).clone()
        if state.get("transitions") is not None:
            self.transitions = {k: np.array(v, copy=True) for k, v in state["transitions"].items()}


class PackNet(Consolidation):
    """Weights (tensors of rank ≥ 2) are owned by the task that kept them (−1: free); biases freeze after task 0."""

    name = "packnet"

    def __init__(self, view: NetworkView, config: ConsolidationConfig, seed: int = 0) -> None:
        super().__init__(view, config, seed)
        self.owner = {n: torch.full_like(p, -1, dtype=torch.int64) for n, p in view.module.named_parameters()}
        self.frozen = {n: p.detach().clone() for n, p in view.module.named_parameters()}

    def after_update(self) -> None:
        with torch.no_grad():
            for name, p in self.view.module.named_parameters():
                kept = self.owner[name] >= 0
                p[kept] = self.frozen[name][kept]

    def end_task(self, task: int, states: np.ndarray, tasks_left: int | None = None, steps: int = 0,
                 outputs: np.ndarray | None = None) -> None:
        share = 1.0 / tasks_left if tasks_left else self.config.packnet_keep
        teacher = self._teacher(states)  # the unpruned network's outputs, what retraining restores without a TD loss
        with torch.no_grad():
            for name, p in self.view.module.named_parameters():
                owner = self.owner[name]
                free = owner < 0
                if p.dim() < 2:
                    owner[free] = task  # biases: trained on the first task, then shared and frozen
                    continue
                n_free = int(free.sum())
                n_keep = int(round(share * n_free))
                if n_keep <= 0 or n_free == 0:
                    continue
                magnitude = torch.where(free, p.abs(), torch.full_like(p, -1.0))
                threshold = torch.topk(magnitude.flatten(), n_keep).values[-1]
                keep = free & (magnitude >= threshold)
                owner[keep] = task
                p[free & ~keep] = 0.0  # pruned: free for later tasks, starting from zero
        self._retrain(task, steps, teacher)
        self.frozen = {n: p.detach().clone() for n, p in self.view.module.named_parameters()}
        self.view.weights_changed()  # DQN: θ⁻ ← the pruned, retrained θ

    def _teacher(self, states: np.ndarray) -> tuple[np.ndarray, torch.Tensor, torch.Tensor | None] | None:
        """States of the task with the unpruned network's outputs (and values) on them, for distillation."""
        view = self.view
        if (view.td_loss is not None and view.transitions is not None) or len(states) == 0:
            return None
        states = np.asarray(states)
        with torch.no_grad():
            x = view.preprocess(states)
            values = view.value_module(x) if view.value_module is not None else None
            return states, view.module(x), values

    def _retrain_loss(self, steps: int, teacher: tuple | None) -> torch.Tensor | None:
        """One retraining batch's loss: the TD loss on the task's transitions, or distillation of the teacher."""
        c, view = self.config, self.view
        if teacher is None:
            batch = view.transitions(c.packnet_retrain_batch, self.rng, steps) if steps > 0 else None
            return view.td_loss(batch) if batch is not None else None
        states, outputs, values = teacher
        idx = self.rng.integers(len(states), size=c.packnet_retrain_batch)
        x = view.preprocess(states[idx])
        out, old = view.module(x), outputs[torch.as_tensor(idx)]
        loss = distillation_kl(old, out, c.temperature) if view.discrete else (out - old).pow(2).sum(-1).mean()
        if values is not None:
            loss = loss + (view.value_module(x) - values[torch.as_tensor(idx)]).pow(2).mean()
        return loss

    def _retrain(self, task: int, steps: int, teacher: tuple | None) -> None:
        """After pruning, train only the weights just kept for ``task`` (PackNet's retraining)."""
        c, view = self.config, self.view
        if c.packnet_retrain_steps <= 0 or (teacher is None and (view.transitions is None or view.td_loss is None)):
            return
        params = dict(view.module.named_parameters())
        mine = {n: (self.owner[n] == task) for n in params}
        held = {n: p.detach().clone() for n, p in params.items()}  # pruned weights stay 0, older tasks' stay put
        optimizer = torch.optim.Adam(params.values(), lr=c.packnet_retrain_lr)
        for _ in range(c.packnet_retrain_steps):
            loss = self._retrain_loss(steps, teacher)
            if loss is None:
                return
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            with torch.no_grad():
                for n, p in params.items():
                    p[~mine[n]] = held[n][~mine[n]]

    @contextlib.contextmanager
    def evaluating(self, task: int, current: int) -> Iterator[None]:
        if task >= current:
            yield
            return
        saved = {n: p.detach().clone() for n, p in self.view.module.named_parameters()}
        with torch.no_grad():
            for name, p in self.view.module.named_parameters():
                owner = self.owner[name]
                p[(owner > task) | (owner < 0)] = 0.0  # only the weights of tasks ≤ j act on task j
        try:
            yield
        finally:
            with torch.no_grad():
                for name, p in self.view.module.named_parameters():
                    p.copy_(saved[name])

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "owner": dict(self.owner), "frozen": dict(self.frozen)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.owner = {k: v.clone() for k, v in state["owner"].items()}
        self.frozen = {k: v.clone() for k, v in state["frozen"].items()}


def make_consolidation(view: NetworkView, config: ConsolidationConfig, seed: int = 0) -> Consolidation:
    cls = {"finetune": Consolidation, "ewc": EWC, "si": SynapticIntelligence, "lwf": LearningWithoutForgetting,
           "replay": Replay, "packnet": PackNet}[config.strategy]
    return cls(view, config, seed)
