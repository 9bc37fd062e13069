"""Multi-task learning: one learner per task, its parameters shared among the tasks in one of four ways.

Every task keeps its own agent of the chosen learner (DQN, A2C or PPO) — its own replay memory or
rollout buffer, exploration schedule and counters — so the kernel's loop can step each task's env
with it, in any interleaving. What differs is which weights the agents have in common:

- ``hard`` (hard parameter sharing, Caruana 1997): one trunk shared by all tasks, one output head per
  task. DQN shares ``q_net.trunk``; A2C/PPO share ``net.trunk`` and every layer of the policy and value
  MLPs but the last (so the sharing is real even when the learner's own trunk is the identity). One
  Adam optimiser holds all weights; a task's update produces gradients only for the trunk and its own
  head, so no other task's head moves.
- ``soft`` (soft parameter sharing, Duong et al. 2015): one network per task, each update adding the
  coupling penalty Ω = λ Σ_i ‖θ_i − θ̄‖² (θ̄ the tasks' mean) through the learner's ``add_loss_term`` hook.
  ∂Ω/∂θ_i = 2λ(θ_i − θ̄), because Σ_j (θ_j − θ̄) = 0; the other tasks' weights enter the task-i
  update as constants, which gives exactly that gradient without touching their ``.grad``.
- ``conditioned``: a single network for all tasks whose input is the observation followed by the
  task descriptor (the env's ``append_task=True``).
- ``independent``: no sharing at all — the single-task baseline, trained through the same loop.

The update rules are the learners' own (:func:`~llmagentos.learners.dqn.dqn_loss`,
:func:`~llmagentos.learners.policy_gradient.ppo_loss`, :func:`~llmagentos.learners.policy_gradient.a2c_loss`);
this module only wires modules and optimisers together.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from llmagentos.core.agent import Agent
from llmagentos.core.config import apply_overrides
from llmagentos.core.errors import UsageError
from llmagentos.core.seeding import derive_seed
from llmagentos.learners import registry

SHARING = ("hard", "soft", "conditioned", "independent")
LEARNERS = ("dqn", "a2c", "ppo")


def soft_sharing_penalty(params_per_task: Sequence[Sequence[torch.Tensor]], lam: float) -> torch.Tensor:
    """Ω = λ Σ_i ‖θ_i − θ̄‖², θ̄ = (1/n) Σ_i θ_i, over matching parameter lists (one list per task)."""
    total = torch.zeros(())
    for same_param in zip(*params_per_task, strict=True):
        stacked = torch.stack(list(same_param))  # (n_tasks, *shape)
        total = total + (stacked - stacked.mean(dim=0)).pow(2).sum()  # Σ_i ‖θ_i − θ̄‖²
    return lam * total


def learner_config(learner: str, overrides: dict[str, Any] | None = None) -> Any:
    """The learner's config dataclass with ``overrides`` (UsageError on unknown fields or bad values)."""
    if learner not in LEARNERS:
        raise UsageError(f"multi-task learning supports the learners {', '.join(LEARNERS)}, got {learner!r}")
    config_cls = registry.load(registry.get(learner).config)
    return apply_overrides(config_cls(), dict(overrides or {}), owner=f"{learner} config")


def _network_name(agent: Agent) -> str:
    for name in ("q_net", "net"):
        if isinstance(getattr(agent, name, None), nn.Module):
            return name
    raise UsageError(f"{agent.algo} has no network multi-task learning knows how to share")


def network(agent: Agent) -> nn.Module:
    """The agent's online network (DQN's ``q_net``, A2C/PPO's ``net``)."""
    return getattr(agent, _network_name(agent))


def _split_last(module: nn.Module) -> tuple[nn.Module, nn.Module]:
    """(body, last layer) of an ``nn.Sequential`` head, sharing the module objects."""
    if not isinstance(module, nn.Sequential) or len(module) < 1:
        raise UsageError("hard sharing needs sequential output heads")
    return module[:-1], module[-1]


def _unique(params: Sequence[nn.Parameter]) -> list[nn.Parameter]:
    seen, out = set(), []
    for p in params:
        if id(p) not in seen:
            seen.add(id(p))
            out.append(p)
    return out


class MultiTaskAgents:
    """``n_tasks`` agents of one learner whose weights are shared according to ``sharing``.

    Args:
        learner: ``dqn``, ``a2c`` or ``ppo``.
        sharing: ``hard``, ``soft``, ``conditioned`` or ``independent``.
        observation_space, action_space: the spaces every task's env has (for ``conditioned``, the
            spaces with the descriptor appended).
        config: the learner's config dataclass (shared by all tasks).
        n_tasks: number of tasks.
        seed: task ``i``'s agent gets ``derive_seed(seed, "task", i)``.
        soft_lambda: λ of the soft-sharing penalty.
    """

    def __init__(self, learner: str, sharing: str, observation_space: Any, action_space: Any, config: Any,
                 n_tasks: int, seed: int = 0, soft_lambda: float = 1e-3) -> None:
        if sharing not in SHARING:
            raise UsageError(f"unknown sharing mode {sharing!r}; choose one of {', '.join(SHARING)}")
        if n_tasks < 1:
            raise UsageError(f"multi-task learning needs at least one task, got {n_tasks}")
        if soft_lambda < 0:
            raise UsageError(f"soft_lambda must be >= 0, got {soft_lambda}")
        agent_cls = registry.load(registry.get(learner).target)
        self.learner, self.sharing, self.n_tasks = learner, sharing, n_tasks
        self.soft_lambda = float(soft_lambda)
        self.agents: list[Agent] = [agent_cls(observation_space, action_space, config, seed=derive_seed(seed, "task", i))
                                    for i in range(n_tasks)]
        self._net_name = _network_name(self.agents[0])
        if sharing == "hard":
            self._share(whole=False)
        elif sharing == "conditioned":
            self._share(whole=True)
        elif sharing == "soft":
            for i, agent in enumerate(self.agents):
                agent.add_loss_term(functools.partial(self._soft_penalty_for, i))

    # -- sharing ------------------------------------------------------------------------------------
    def _share(self, whole: bool) -> None:
        """Point every agent's network at the first agent's modules (all of them, or all but the heads)."""
        first = network(self.agents[0])
        for agent in self.agents[1:]:
            if whole:
                setattr(agent, self._net_name, first)
                continue
            net = network(agent)
            net.trunk = first.trunk
            if self._net_name == "net":  # A2C/PPO: also share every hidden layer of the two heads
                for head in ("policy_head", "value_head"):
                    body, _ = _split_last(getattr(first, head))
                    _, last = _split_last(getattr(net, head))
                    setattr(net, head, nn.Sequential(*body, last))
        first_opt = self.agents[0].optimizer
        params = _unique([p for agent in self.agents for p in network(agent).parameters()])
        optimizer = type(first_opt)(params, **first_opt.defaults)
        for agent in self.agents:
            agent.optimizer = optimizer
            self._refresh(agent)

    def _refresh(self, agent: Agent) -> None:
        """Rebuild what each learner caches about its network after the modules were swapped."""
        if self._net_name == "q_net":  # θ⁻ starts as a copy of the (now shared) θ
            agent.target_net = copy.deepcopy(agent.q_net).requires_grad_(False)
        # A2C/PPO clip over the optimiser's parameters and rebuild their numpy acting views when a module changes

    def parameters_of(self, task: int) -> list[nn.Parameter]:
        """θ_i: the parameters task ``task``'s network uses, in a fixed order."""
        return list(network(self.agents[task]).parameters())

    def soft_penalty(self) -> torch.Tensor:
        """Ω over all tasks with gradients to every task's weights."""
        return soft_sharing_penalty([self.parameters_of(i) for i in range(self.n_tasks)], self.soft_lambda)

    def _soft_penalty_for(self, task: int) -> torch.Tensor:
        """Ω with only task ``task``'s weights live: its gradient is 2λ(θ_task − θ̄)."""
        groups = [self.parameters_of(i) if i == task else [p.detach() for p in self.parameters_of(i)]
                  for i in range(self.n_tasks)]
        return soft_sharing_penalty(groups, self.soft_lambda)

    def shared_parameter_count(self) -> dict[str, int]:
        """Distinct weights in all networks together, and per task (what sharing saves)."""
        distinct = _unique([p for i in range(self.n_tasks) for p in self.parameters_of(i)])
        return {"total": int(sum(p.numel() for p in distinct)),
                "per_task": int(sum(p.numel() for p in self.parameters_of(0)))}

    # -- persistence ----------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {f"task_{i}": agent.state_dict() for i, agent in enumerate(self.agents)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for i, agent in enumerate(self.agents):
            agent.load_state_dict(state[f"task_{i}"])
