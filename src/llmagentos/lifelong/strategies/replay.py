"""``replay``: experience replay of past tasks (CLEAR, Rolnick et al., 2019).

States kept from each past task with the outputs the network gave when it acted there (behaviour time); every
update adds, on a batch of them, behaviour and value cloning KL(π_old ‖ π_θ) + ‖q_θ − q_old‖², and for learners
with a replay memory their own RL loss on old transitions (DQN's TD loss, so old tasks keep being learned off-policy).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from llmagentos.core.config import param
from llmagentos.lifelong.strategies.base import Consolidation, NetworkView, distillation_kl


@dataclass
class ReplayFields:
    replay_per_task: int = param(500, "states kept from each past task for replay", gt=0)
    replay_batch: int = param(32, "replayed states per learner update", gt=0)
    replay_td_weight: float = param(1.0, "weight of the learner's TD loss on replayed old transitions (CLEAR's RL term; learners with a replay memory)", ge=0)
    bc_policy_weight: float = param(1.0, "weight of the policy-cloning term KL(π_old ‖ π_θ)")
    bc_value_weight: float = param(1.0, "weight of the output-cloning term ‖q_θ − q_old‖²")


class Replay(Consolidation):
    name = "replay"
    summary = "replay with behaviour cloning"
    Fields = ReplayFields
    wants_outputs = True

    def __init__(self, view: NetworkView, config: Any, seed: int = 0) -> None:
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
