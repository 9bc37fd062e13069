"""Every algorithm the project ships, by the name the command line and specs use.

Entries name their class as ``"module:attribute"`` so that listing algorithms does not import
torch; :func:`load` imports on demand. One line per algorithm — add yours here.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Literal

from llmagentos.core.errors import UsageError

AlgoKind = Literal["agent", "planning", "multiagent", "meta"]


@dataclass(frozen=True)
class AlgoEntry:
    name: str
    #: "module:Class" of the Agent subclass (kind "agent"/"multiagent") or of the algorithm's entry point
    target: str
    #: "module:Config" of the algorithm's config dataclass
    config: str
    #: "agent": trained by the kernel's loop on a Gymnasium env; "planning": solves a FiniteMDP;
    #: "multiagent": trained on a PettingZoo env; "meta": runs its own outer loop (MAML, NES)
    kind: AlgoKind
    summary: str


ALGORITHMS: dict[str, AlgoEntry] = {e.name: e for e in [
    AlgoEntry("policy-evaluation", "llmagentos.learners.planning:policy_evaluation", "llmagentos.learners.planning:PlanningConfig",
              "planning", "Iterative policy evaluation of a given (or the uniform-random) policy."),
    AlgoEntry("policy-iteration", "llmagentos.learners.planning:policy_iteration", "llmagentos.learners.planning:PlanningConfig",
              "planning", "Policy iteration: evaluation and greedy improvement until the policy is stable."),
    AlgoEntry("value-iteration", "llmagentos.learners.planning:value_iteration", "llmagentos.learners.planning:PlanningConfig",
              "planning", "Value iteration: Bellman optimality backups until the largest change is below θ."),
    AlgoEntry("sarsa", "llmagentos.learners.td:Sarsa", "llmagentos.learners.td:TDConfig",
              "agent", "Sarsa: on-policy TD control, Q(s,a) += α[r + γQ(s',a') − Q(s,a)]."),
    AlgoEntry("expected-sarsa", "llmagentos.learners.td:ExpectedSarsa", "llmagentos.learners.td:TDConfig",
              "agent", "Expected Sarsa: TD control with the expectation of Q(s',·) under the behaviour policy."),
    AlgoEntry("q-learning", "llmagentos.learners.td:QLearning", "llmagentos.learners.td:TDConfig",
              "agent", "Q-learning: off-policy TD control, Q(s,a) += α[r + γ max_a' Q(s',a') − Q(s,a)]."),
    AlgoEntry("dqn", "llmagentos.learners.dqn:DQN", "llmagentos.learners.dqn:DQNConfig",
              "agent", "Deep Q-Network with replay and a target network; Double DQN, dueling, n-step via --set."),
    AlgoEntry("reinforce", "llmagentos.learners.policy_gradient:Reinforce", "llmagentos.learners.policy_gradient_config:ReinforceConfig",
              "agent", "REINFORCE: Monte-Carlo policy gradient ∇log π(a|s)(G_t − b(s)), with a learned baseline by default."),
    AlgoEntry("a2c", "llmagentos.learners.policy_gradient:A2C", "llmagentos.learners.policy_gradient_config:A2CConfig",
              "agent", "Advantage actor-critic: synchronous vector-env rollouts, GAE(λ) advantages, one step per rollout."),
    AlgoEntry("ppo", "llmagentos.learners.policy_gradient:PPO", "llmagentos.learners.policy_gradient_config:PPOConfig",
              "agent", "PPO: clipped surrogate objective, value loss, entropy bonus, minibatch epochs over GAE rollouts."),
    AlgoEntry("il", "llmagentos.learners.independent:IndependentLearners", "llmagentos.learners.independent:ILConfig",
              "multiagent", "Independent learners: every agent runs a single-agent learner (q-learning, dqn, ppo, ...)."),
    AlgoEntry("jal", "llmagentos.learners.multiagent:JointActionLearners", "llmagentos.learners.multiagent:JALConfig",
              "multiagent", "Joint action learners (Claus & Boutilier 1998): Q over joint actions, empirical opponent models."),
    AlgoEntry("distributed-q", "llmagentos.learners.multiagent:DistributedQLearning", "llmagentos.learners.multiagent:DistributedQConfig",
              "multiagent", "Distributed Q-learning (Lauer & Riedmiller 2000): optimistic max updates, coordinated policy."),
    AlgoEntry("hysteretic", "llmagentos.learners.multiagent:HystereticQLearning", "llmagentos.learners.multiagent:HystereticConfig",
              "multiagent", "Hysteretic Q-learning (Matignon et al. 2007): step α for good news, β < α for bad news."),
    AlgoEntry("fmq", "llmagentos.learners.multiagent:FrequencyMaximumQ", "llmagentos.learners.multiagent:FMQConfig",
              "multiagent", "FMQ (Kapetanakis & Kudenko 2002): EV(a) = Q(a) + c·freq(maxR(a))·maxR(a)."),
    AlgoEntry("lenient", "llmagentos.learners.multiagent:LenientLearners", "llmagentos.learners.multiagent:LenientConfig",
              "multiagent", "Lenient learners (Panait et al. 2006): forgive bad updates with a decaying probability."),
    AlgoEntry("maml", "llmagentos.learners.maml:MAML", "llmagentos.learners.maml:MAMLConfig",
              "meta", "MAML: θ'_i = θ − α∇L_Ti(θ), meta-update on Σ_i L_Ti(θ'_i); first-order and Meta-SGD options (spec kind meta)."),
    AlgoEntry("nes", "llmagentos.learners.nes:ES", "llmagentos.learners.nes:NESConfig",
              "meta", "Evolution strategies over flat weights: separable NES (μ, σ, utilities) or OpenAI-ES (mirrored, Adam) (spec kind meta)."),
]}


def get(name: str, kinds: tuple[str, ...] | None = None) -> AlgoEntry:
    """The entry for ``name``; an unknown name (or one of another kind) raises UsageError listing the choices."""
    choices = [n for n, e in ALGORITHMS.items() if kinds is None or e.kind in kinds]
    if name not in choices:
        raise UsageError(f"unknown algorithm {name!r}; choose one of: {', '.join(choices)}")
    return ALGORITHMS[name]


def load(target: str) -> Any:
    module, attribute = target.split(":")
    return getattr(importlib.import_module(module), attribute)


def config_class(name: str) -> type:
    return load(get(name).config)


class RegisteredName:
    """An agent class's ``algo``, read from its line in :data:`ALGORITHMS` (the one place that names it).

    ``algo = RegisteredName()`` in the class body; the name is the entry whose target is that class.
    """

    def __set_name__(self, owner: type, attribute: str) -> None:
        self.target = f"{owner.__module__}:{owner.__qualname__}"

    def __get__(self, instance: Any, owner: type | None = None) -> str:
        return _NAME_OF_TARGET[self.target]


_NAME_OF_TARGET = {entry.target: entry.name for entry in ALGORITHMS.values()}
