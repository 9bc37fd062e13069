"""Keeping old tasks: the consolidation strategies a lifelong agent applies to its learner's network.

Each strategy sees the learner's network through a :class:`NetworkView` (the module whose weights
carry the knowledge, and the function from observations to its outputs — Q-values for DQN, action
logits for policy-gradient learners) and acts at four moments: a penalty added to every learner
update (through the learner's ``extra_loss`` hook), a repair after each update, the end of a task,
and evaluation on a given task.

- ``finetune``: nothing — the baseline that forgets.
- ``ewc``: online elastic weight consolidation (Kirkpatrick et al., 2017; the online form of Schwarz et
  al., 2018): F* ← γ F* + F_t and θ* ← θ_t at the end of each task, penalty (λ/2) Σ_i F*_i (θ_i − θ*_i)²,
  with the diagonal Fisher of the network's own softmax policy on the agent's own states.
- ``replay``: experience replay of past tasks (CLEAR, Rolnick et al., 2019): transitions kept from each past
  task with the network's outputs when the task ended; every update adds, on a batch of them, the learner's
  own RL loss (DQN's TD loss, so old tasks keep being learned off-policy) and behaviour and value cloning,
  KL(π_old ‖ π_θ) + ‖q_θ − q_old‖². Learners without a replay memory (policy gradient) keep states and clone only.
- ``packnet``: parameter isolation (Mallya & Lazebnik, 2018): at the end of each task the largest free
  weights are kept for it, the rest are zeroed and left to later tasks, the kept weights are retrained
  alone on the task's transitions (where the learner has a TD loss) and then frozen; evaluating task j
  uses only the weights of tasks ≤ j.
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

STRATEGIES = ("finetune", "ewc", "replay", "packnet")


@dataclass
class ConsolidationConfig:
    strategy: Literal["finetune", "ewc", "replay", "packnet"] = param("finetune", "how old tasks are kept: none (fine-tuning), online EWC, replay with behaviour cloning, or PackNet")
    ewc_lambda: float = param(100.0, "EWC penalty strength λ")
    fisher: Literal["output", "policy"] = param("output", "EWC's Fisher: of a unit Gaussian on the network's outputs (Q-values, Gaussian means), or of the softmax policy softmax(outputs/τ)")
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


@dataclass
class NetworkView:
    """The part of a learner that consolidation protects: ``module(preprocess(obs))`` gives its outputs."""

    module: nn.Module
    #: observations (numpy batch) -> the module's input tensor (one-hot, scaling ...), without gradients
    preprocess: Callable[[np.ndarray], torch.Tensor]
    #: whether the outputs score discrete actions (Q-values, logits); False for Gaussian means
    discrete: bool = True
    #: (n, rng, recent) -> up to n distinct transitions (ReplayBatch fields as arrays) drawn from the learner's
    #: ``recent`` most recently stored ones; None when the learner keeps no replay memory
    transitions: Callable[[int, np.random.Generator, int], dict[str, np.ndarray] | None] | None = None
    #: transitions -> the learner's own RL loss on them (DQN's TD loss), with gradients into ``module``
    td_loss: Callable[[dict[str, np.ndarray]], torch.Tensor] | None = None

    def outputs(self, observations: np.ndarray) -> torch.Tensor:
        """Network outputs (B, K) for a batch of observations, with gradients."""
        return self.module(self.preprocess(np.asarray(observations)))


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
    return fisher


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
        """Called after every learner update (PackNet re-freezes weights here)."""

    def end_task(self, task: int, states: np.ndarray, tasks_left: int | None = None, steps: int = 0) -> None:
        """Called when task ``task`` ends, with states the agent saw on it and the number of ``steps`` it lived there."""

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

    def end_task(self, task: int, states: np.ndarray, tasks_left: int | None = None, steps: int = 0) -> None:
        states = states[-self.config.fisher_states:]
        if len(states) == 0:
            return
        new = diagonal_fisher(self.view, states, self.config.temperature, self.config.fisher if self.view.discrete else "output")
        for name, f in new.items():
            self.fisher[name] = self.config.ewc_gamma * self.fisher[name] + f if name in self.fisher else f  # F* ← γF* + F_t
        self.anchor = {n: p.detach().clone() for n, p in self.view.module.named_parameters()}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "fisher": dict(self.fisher), "anchor": dict(self.anchor)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.fisher = {k: v.clone() for k, v in state["fisher"].items()}
        self.anchor = {k: v.clone() for k, v in state["anchor"].items()}


class Replay(Consolidation):
    name = "replay"

    def __init__(self, view: NetworkView, config: ConsolidationConfig, seed: int = 0) -> None:
        super().__init__(view, config, seed)
        self.states: np.ndarray | None = None  # old tasks' states (the transitions' s when transitions are kept)
        self.targets: torch.Tensor | None = None  # the network's outputs on them when their task ended
        self.transitions: dict[str, np.ndarray] | None = None

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
        old_logp = log_policy(old, c.temperature)
        # KL(π_old ‖ π_θ) = Σ_a π_old(a|s) [log π_old(a|s) − log π_θ(a|s)]
        kl = (old_logp.exp() * (old_logp - log_policy(out, c.temperature))).sum(-1).mean()
        total = c.bc_policy_weight * kl + c.bc_value_weight * value
        if self.transitions is not None and c.replay_td_weight > 0:
            # CLEAR's RL term: the learner's own TD loss on old transitions, y = R + γⁿ max_a' Q'(s', a')
            total = total + c.replay_td_weight * self.view.td_loss({k: v[idx] for k, v in self.transitions.items()})
        return total

    def end_task(self, task: int, states: np.ndarray, tasks_left: int | None = None, steps: int = 0) -> None:
        kept = None
        if self.view.transitions is not None and self.view.td_loss is not None and steps > 0:
            kept = self.view.transitions(self.config.replay_per_task, self.rng, steps)
        if kept is not None:
            keep = kept["obs"]
        elif len(states):
            keep = states[self.rng.permutation(len(states))[: self.config.replay_per_task]]
        else:
            return
        with torch.no_grad():
            targets = self.view.outputs(keep).detach()
        if self.states is None:
            self.states, self.targets = np.asarray(keep), targets
        else:
            self.states = np.concatenate([self.states, keep])
            self.targets = torch.cat([self.targets, targets])
        if kept is not None:
            self.transitions = kept if self.transitions is None else \
                {k: np.concatenate([v, kept[k]]) for k, v in self.transitions.items()}
        else:  # rows without a transition: replay clones them only
            self.transitions = None

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

    def end_task(self, task: int, states: np.ndarray, tasks_left: int | None = None, steps: int = 0) -> None:
        share = 1.0 / tasks_left if tasks_left else self.config.packnet_keep
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
        self._retrain(task, steps)
        self.frozen = {n: p.detach().clone() for n, p in self.view.module.named_parameters()}

    def _retrain(self, task: int, steps: int) -> None:
        """After pruning, train only the weights just kept for ``task`` on its transitions (PackNet's retraining)."""
        c, view = self.config, self.view
        if c.packnet_retrain_steps <= 0 or view.transitions is None or view.td_loss is None or steps <= 0:
            return
        params = dict(view.module.named_parameters())
        mine = {n: (self.owner[n] == task) for n in params}
        held = {n: p.detach().clone() for n, p in params.items()}  # pruned weights stay 0, older tasks' stay put
        optimizer = torch.optim.Adam(params.values(), lr=c.packnet_retrain_lr)
        for _ in range(c.packnet_retrain_steps):
            batch = view.transitions(c.packnet_retrain_batch, self.rng, steps)
            if batch is None:
                return
            optimizer.zero_grad()
            view.td_loss(batch).backward()
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
    cls = {"finetune": Consolidation, "ewc": EWC, "replay": Replay, "packnet": PackNet}[config.strategy]
    return cls(view, config, seed)
