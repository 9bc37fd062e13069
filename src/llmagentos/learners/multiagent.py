"""Multi-agent learners for PettingZoo Parallel worlds: independent learners, joint action learners, and the
remedies for miscoordination in cooperative games.

A multi-agent learner keeps the agent contract (:class:`~llmagentos.core.agent.Agent`) with dictionaries keyed
by agent name: ``act({agent: obs}) -> {agent: action}``, and ``observe`` gets a
:class:`~llmagentos.core.agent.Transition` whose fields are such dictionaries (only the agents that acted).

- ``il`` — independent learners (:mod:`llmagentos.learners.independent`): every agent runs a single-agent
  learner of this project (tabular Q-learning, Sarsa, DQN, PPO, ...) and treats the others as part of its world.
- ``jal`` — joint action learners (Claus & Boutilier 1998): Q over joint actions, empirical models of the
  other agents' action frequencies, and action values as expectations under those models.
- ``distributed-q`` — distributed (optimistic) Q-learning (Lauer & Riedmiller 2000).
- ``hysteretic`` — hysteretic Q-learning (Matignon, Laurent & Le Fort-Piat 2007).
- ``fmq`` — the Frequency Maximum Q heuristic (Kapetanakis & Kudenko 2002).
- ``lenient`` — lenient learners (Panait, Sullivan & Luke 2006; leniency as in Wei & Luke 2016).

The tabular learners need Discrete observation and action spaces; each agent keys its table by its *own*
observation. Exploration is ε-greedy or Boltzmann, with ε and the temperature τ on a schedule
(:mod:`llmagentos.core.schedules`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from llmagentos.core.agent import Agent, Transition, greedy_argmax
from llmagentos.core.config import param
from llmagentos.core.errors import UsageError
from llmagentos.core.schedules import make_schedule
from llmagentos.core.seeding import derive_seed, make_rng, rng_state, set_rng_state
from llmagentos.learners.registry import RegisteredName

#: the normal-form games, on which the il preset gives Q-learning the same exploration as the other learners
MATRIX_GAME_IDS = ("llmagentos/ClimbingGame-v0", "llmagentos/PenaltyGame-v0", "llmagentos/PrisonersDilemma-v0",
                   "llmagentos/MatchingPennies-v0", "llmagentos/RockPaperScissors-v0", "llmagentos/MatrixGame-v0")

#: the tabular multi-agent learners' default step size and exploration, which the il preset gives its Q-learners
#: on the matrix games so that il and the remedies differ only in their update rules
MATRIX_GAME_EXPLORATION: dict[str, Any] = {"alpha": 0.1, "exploration": "boltzmann", "temperature": 500.0,
                                           "temperature_final": 0.05, "schedule": "exponential", "decay_steps": 2500}
#: the default budget (steps) on the matrix games: ~1000 steps of near-uniform play, then τ anneals to 0.05
MATRIX_GAME_STEPS = 3000


class MultiAgentLearner(Agent):
    """Base of the multi-agent learners: one object for all agents of a Parallel env, dicts in and out."""

    def __init__(self, observation_spaces: dict[str, Any], action_spaces: dict[str, Any], config: Any,
                 seed: int = 0) -> None:
        if set(observation_spaces) != set(action_spaces) or not observation_spaces:
            raise UsageError("a multi-agent learner needs one observation space and one action space per agent")
        super().__init__(observation_spaces, action_spaces, config, seed)
        self.agents = list(action_spaces)
        self.index = {agent: i for i, agent in enumerate(self.agents)}


# -- tabular multi-agent learners -----------------------------------------------------------------

@dataclass
class TabularMAConfig:
    """Step size, discount and exploration shared by the tabular multi-agent learners."""

    DEFAULT_STEPS: ClassVar[dict[str, int]] = {gid: MATRIX_GAME_STEPS for gid in MATRIX_GAME_IDS}

    alpha: float = param(0.1, "step size α", gt=0, le=1)
    gamma: float = param(0.95, "discount γ (one-step matrix games end every episode, so it does not matter there)", ge=0, le=1)
    exploration: Literal["epsilon-greedy", "boltzmann"] = param("boltzmann", "behaviour policy")
    epsilon: float = param(0.1, "ε of ε-greedy exploration (start value when it decays)")
    epsilon_final: float | None = param(None, "final ε of a decaying schedule (None keeps ε constant)")
    temperature: float = param(500.0, "Boltzmann temperature τ (start value when it decays)")
    temperature_final: float | None = param(0.05, "final τ of a decaying schedule (None keeps τ constant)")
    schedule: Literal["constant", "linear", "exponential"] = param("exponential", "shape of every decaying schedule")
    decay_steps: int = param(2500, "steps over which decaying schedules move from start to final", gt=0)
    initial_value: float = param(0.0, "initial value of every table entry")

    def validate(self) -> None:
        if not 0.0 <= self.epsilon <= 1.0 or not 0.0 <= (self.epsilon_final or 0.0) <= 1.0:
            raise UsageError(f"epsilon and epsilon_final must be in [0, 1], got {self.epsilon}, {self.epsilon_final}")
        if self.temperature <= 0 or (self.temperature_final is not None and self.temperature_final <= 0):
            raise UsageError(f"temperatures must be > 0, got {self.temperature}, {self.temperature_final}")


class TabularMultiAgentLearner(MultiAgentLearner):
    """Per-agent tables over each agent's own (Discrete) observation, one generator, shared exploration.

    Subclasses define ``values(i, s)`` (what actions are chosen by), ``update(...)`` (the learning rule) and the
    tables they keep (:attr:`tables`, saved and restored by name).
    """

    Config = TabularMAConfig
    #: names of the per-agent lists of numpy arrays that make up the learner's memory
    tables: ClassVar[tuple[str, ...]] = ("q",)

    def __init__(self, observation_spaces: dict[str, Any], action_spaces: dict[str, Any], config: Any = None,
                 seed: int = 0) -> None:
        from gymnasium import spaces

        config = config or self.Config()
        super().__init__(observation_spaces, action_spaces, config, seed)
        for agent in self.agents:
            if not isinstance(observation_spaces[agent], spaces.Discrete) or not isinstance(action_spaces[agent], spaces.Discrete):
                raise UsageError(f"{self.algo} needs Discrete observation and action spaces, but {agent} has "
                                 f"{observation_spaces[agent]} and {action_spaces[agent]}; use il with a deep learner")
        self.n_states = [int(observation_spaces[a].n) for a in self.agents]
        self.n_actions = [int(action_spaces[a].n) for a in self.agents]
        self.q = [np.full((ns, na), config.initial_value, dtype=np.float64) for ns, na in zip(self.n_states, self.n_actions)]
        self.rng = make_rng(seed)
        # greedy evaluation breaks its ties with its own generator, so evaluating never changes training
        self.eval_rng = make_rng(derive_seed(seed, "evaluation"))
        self.t = 0
        self.alpha = config.alpha
        self.epsilon = make_schedule(config.schedule, config.epsilon, config.epsilon_final, config.decay_steps)
        self.temperature = make_schedule(config.schedule, config.temperature, config.temperature_final, config.decay_steps)

    # -- choosing ---------------------------------------------------------------------------------
    def values(self, i: int, s: int) -> np.ndarray:
        """Agent i's values of its own actions in its state s (what the behaviour and greedy policies rank)."""
        return self.q[i][s]

    def greedy_action(self, i: int, s: int, rng: np.random.Generator | None = None) -> int:
        """Agent i's greedy action in s, ties broken by ``rng`` (default: the training generator)."""
        return greedy_argmax(self.values(i, s), self.rng if rng is None else rng)

    def policy(self, i: int, s: int) -> np.ndarray:
        """Agent i's behaviour policy π_i(·|s) at the current step."""
        v = self.values(i, s)
        if self.config.exploration == "boltzmann":
            z = np.exp((v - v.max()) / self.temperature(self.t))  # π(a) ∝ exp(Q(a)/τ)
            return z / z.sum()
        best = v == v.max()
        eps = self.epsilon(self.t)
        return (1.0 - eps) * best / best.sum() + eps / len(v)

    def act(self, observation: dict[str, Any], explore: bool = True) -> dict[str, int]:
        actions = {}
        boltzmann = self.config.exploration == "boltzmann"
        tau = self.temperature(self.t) if boltzmann else 0.0
        eps = 0.0 if boltzmann else self.epsilon(self.t)
        for agent, obs in observation.items():
            i, s = self.index[agent], int(obs)
            if not explore:
                actions[agent] = self.greedy_action(i, s, self.eval_rng)
            elif boltzmann:
                v = self.values(i, s)
                z = np.exp((v - v.max()) / tau)  # π(a) ∝ exp(Q(a)/τ), sampled by inverting its CDF
                cdf = np.cumsum(z)
                actions[agent] = min(int(np.searchsorted(cdf, self.rng.random() * cdf[-1], side="right")), len(v) - 1)
            elif self.rng.random() < eps:
                actions[agent] = int(self.rng.integers(self.n_actions[i]))
            else:
                actions[agent] = self.greedy_action(i, s)
        return actions

    # -- learning ---------------------------------------------------------------------------------
    def observe(self, transition: Transition) -> dict[str, float]:
        t = transition
        joint = [int(t.action[a]) if a in t.action else -1 for a in self.agents]
        deltas = []
        for agent in t.action:
            if agent not in t.next_observation:
                continue
            i = self.index[agent]
            deltas.append(self.update(i, int(t.observation[agent]), joint, float(t.reward[agent]),
                                      int(t.next_observation[agent]), bool(t.terminated[agent])))
        self.t += 1
        return {"td_error": sum(deltas) / len(deltas)} if deltas else {}

    def bootstrap(self, i: int, s_next: int, terminated: bool) -> float:
        """max_a' of agent i's values in s' (0 when s' is terminal; a time limit still bootstraps)."""
        return 0.0 if terminated else float(self.values(i, s_next).max())

    def update(self, i: int, s: int, joint: list[int], r: float, s_next: int, terminated: bool) -> float:
        """Learn from agent i's step; returns its TD error δ."""
        raise NotImplementedError

    def train_metrics(self) -> dict[str, float]:
        if self.config.exploration == "boltzmann":
            return {"temperature": self.temperature(self.t)}
        return {"epsilon": self.epsilon(self.t)}

    def begin_task(self, task: Any = None, budget: int | None = None, restart_schedules: bool = True,
                   clear_memory: bool = False) -> None:
        """Restarting puts the step counter t back to 0: exploration (ε or τ) starts its schedule over."""
        if restart_schedules:
            self.t = 0

    # -- state ------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {"t": self.t, "rng": rng_state(self.rng), "eval_rng": rng_state(self.eval_rng)}
        for name in self.tables:
            state[name] = [array.copy() for array in getattr(self, name)]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in self.tables:
            arrays = [np.asarray(a) for a in state[name]]
            mine = getattr(self, name)
            if len(arrays) != len(mine) or any(a.shape != m.shape for a, m in zip(arrays, mine)):
                raise UsageError(f"checkpoint table {name!r} has shapes {[a.shape for a in arrays]}, "
                                 f"this {self.algo} learner needs {[m.shape for m in mine]}")
            setattr(self, name, [a.astype(m.dtype, copy=True) for a, m in zip(arrays, mine)])
        self.t = int(state["t"])
        set_rng_state(self.rng, state["rng"])
        if "eval_rng" in state:  # checkpoints written before evaluation had its own generator lack it
            set_rng_state(self.eval_rng, state["eval_rng"])


# -- joint action learners ------------------------------------------------------------------------

@dataclass
class JALConfig(TabularMAConfig):
    pass


class JointActionLearners(TabularMultiAgentLearner):
    """Claus & Boutilier (1998): each agent learns Q_i(s, a_1..a_n) over joint actions and counts C_i(s, j, a_j)
    of every other agent's actions; it ranks its own actions by EV_i(s, a_i) = Σ_{a_−i} Q_i(s, a_i, a_−i) Π_j f_j(a_j),
    with f_j = C_i(s, j, ·) / Σ C_i(s, j, ·) the empirical frequencies (uniform before any count)."""

    algo = RegisteredName()
    Config = JALConfig
    tables = ("q", "counts")

    def __init__(self, observation_spaces: dict[str, Any], action_spaces: dict[str, Any],
                 config: JALConfig | None = None, seed: int = 0) -> None:
        super().__init__(observation_spaces, action_spaces, config, seed)
        self.q = [np.full((ns, *self.n_actions), self.config.initial_value) for ns in self.n_states]
        # counts[i][s, j, a]: how often agent i saw agent j play a in i's state s (row i unused)
        self.counts = [np.zeros((ns, len(self.agents), max(self.n_actions))) for ns in self.n_states]

    def model(self, i: int, s: int, j: int) -> np.ndarray:
        """Agent i's empirical model f_j(·) of agent j's actions in i's state s."""
        c = self.counts[i][s, j, : self.n_actions[j]]
        total = c.sum()
        return c / total if total > 0 else np.full(self.n_actions[j], 1.0 / self.n_actions[j])

    def values(self, i: int, s: int) -> np.ndarray:
        ev = np.moveaxis(self.q[i][s], i, 0)  # axes: own action, then the others in agent order
        for j in reversed([j for j in range(len(self.agents)) if j != i]):
            ev = ev @ self.model(i, s, j)  # contract the last remaining other-agent axis with f_j
        return ev

    def update(self, i: int, s: int, joint: list[int], r: float, s_next: int, terminated: bool) -> float:
        for j, a_j in enumerate(joint):
            if j != i and a_j >= 0:
                self.counts[i][s, j, a_j] += 1.0
        index = (s, *[max(a, 0) for a in joint])
        delta = r + self.config.gamma * self.bootstrap(i, s_next, terminated) - self.q[i][index]
        self.q[i][index] += self.alpha * delta  # Q(s,a) += α[r + γ max_a_i' EV(s',a_i') − Q(s,a)]
        return float(delta)


# -- remedies for miscoordination ------------------------------------------------------------------

@dataclass
class DistributedQConfig(TabularMAConfig):
    pass


class DistributedQLearning(TabularMultiAgentLearner):
    """Lauer & Riedmiller (2000): optimistic updates q_i(s,a_i) ← max(q_i(s,a_i), r + γ max q_i(s',·)) that never
    lower a value, and a policy π_i(s) that changes only when the best value of s improves, so that agents agree
    on one optimal joint action even when several exist. Exact for deterministic cooperative games."""

    algo = RegisteredName()
    Config = DistributedQConfig
    tables = ("q", "pi")

    def __init__(self, observation_spaces: dict[str, Any], action_spaces: dict[str, Any],
                 config: DistributedQConfig | None = None, seed: int = 0) -> None:
        super().__init__(observation_spaces, action_spaces, config, seed)
        self.pi = [np.full(ns, -1, dtype=np.int64) for ns in self.n_states]  # −1: no policy yet

    def greedy_action(self, i: int, s: int, rng: np.random.Generator | None = None) -> int:
        chosen = int(self.pi[i][s])
        return chosen if chosen >= 0 else super().greedy_action(i, s, rng)

    def update(self, i: int, s: int, joint: list[int], r: float, s_next: int, terminated: bool) -> float:
        a = joint[i]
        target = r + self.config.gamma * self.bootstrap(i, s_next, terminated)
        delta = target - self.q[i][s, a]
        best_before = self.q[i][s].max()
        self.q[i][s, a] = max(self.q[i][s, a], target)  # q(s,a) ← max(q(s,a), r + γ max_a' q(s',a'))
        if self.q[i][s].max() > best_before or self.pi[i][s] < 0:
            self.pi[i][s] = a  # π(s) changes only when max_a q(s,a) improves
        return float(delta)


@dataclass
class HystereticConfig(TabularMAConfig):
    beta: float = param(0.01, "step size β < α for negative TD errors (the 'decrease rate')")

    def validate(self) -> None:
        super().validate()
        if not 0.0 <= self.beta <= self.alpha:
            raise UsageError(f"beta must be in [0, alpha] (it is the smaller step for bad news), got {self.beta}")


class HystereticQLearning(TabularMultiAgentLearner):
    """Matignon, Laurent & Le Fort-Piat (2007): Q-learning with two step sizes, α for good news and β < α for bad
    news, so a teammate's exploratory blunder lowers a value only a little."""

    algo = RegisteredName()
    Config = HystereticConfig

    def update(self, i: int, s: int, joint: list[int], r: float, s_next: int, terminated: bool) -> float:
        a = joint[i]
        delta = r + self.config.gamma * self.bootstrap(i, s_next, terminated) - self.q[i][s, a]
        self.q[i][s, a] += (self.alpha if delta >= 0 else self.config.beta) * delta  # Q += (α if δ ≥ 0 else β) δ
        return float(delta)


@dataclass
class FMQConfig(TabularMAConfig):
    weight: float = param(10.0, "c, the weight of the heuristic: EV(a) = Q(a) + c · freq(maxR(a)) · maxR(a)")

    def validate(self) -> None:
        super().validate()
        if self.weight < 0:
            raise UsageError(f"weight must be ≥ 0, got {self.weight}")


class FrequencyMaximumQ(TabularMultiAgentLearner):
    """Kapetanakis & Kudenko (2002): rank actions by EV(a) = Q(a) + c · freq(maxR(a)) · maxR(a), where maxR(a) is
    the best reward seen after a and freq the share of a's plays that earned it. Defined for single-stage games;
    in states, maxR and freq are kept per (s, a) and the immediate reward is used."""

    algo = RegisteredName()
    Config = FMQConfig
    tables = ("q", "max_reward", "max_count", "count")

    def __init__(self, observation_spaces: dict[str, Any], action_spaces: dict[str, Any],
                 config: FMQConfig | None = None, seed: int = 0) -> None:
        super().__init__(observation_spaces, action_spaces, config, seed)
        self.max_reward = [np.zeros_like(q) for q in self.q]
        self.max_count = [np.zeros_like(q) for q in self.q]
        self.count = [np.zeros_like(q) for q in self.q]

    def values(self, i: int, s: int) -> np.ndarray:
        freq = np.divide(self.max_count[i][s], self.count[i][s], out=np.zeros(self.n_actions[i]),
                         where=self.count[i][s] > 0)
        return self.q[i][s] + self.config.weight * freq * self.max_reward[i][s]  # EV = Q + c·freq·maxR

    def bootstrap(self, i: int, s_next: int, terminated: bool) -> float:
        return 0.0 if terminated else float(self.q[i][s_next].max())

    def update(self, i: int, s: int, joint: list[int], r: float, s_next: int, terminated: bool) -> float:
        a = joint[i]
        if self.count[i][s, a] == 0 or r > self.max_reward[i][s, a]:
            self.max_reward[i][s, a], self.max_count[i][s, a] = r, 1.0
        elif r == self.max_reward[i][s, a]:
            self.max_count[i][s, a] += 1.0
        self.count[i][s, a] += 1.0
        delta = r + self.config.gamma * self.bootstrap(i, s_next, terminated) - self.q[i][s, a]
        self.q[i][s, a] += self.alpha * delta  # Q(a) += α[r + γ max Q(s',·) − Q(a)]
        return float(delta)


@dataclass
class LenientConfig(TabularMAConfig):
    leniency: float = param(2.0, "K, the leniency moderation: a bad update is ignored with probability 1 − exp(−K·T(s,a))")
    lenient_temperature: float = param(50.0, "T(s,a) at the start: how forgiving every pair begins")
    lenient_decay: float = param(0.995, "ν: T(s,a) ← ν·T(s,a) after each update of (s,a), so leniency fades")

    def validate(self) -> None:
        super().validate()
        if self.leniency < 0 or self.lenient_temperature < 0:
            raise UsageError("leniency and lenient_temperature must be ≥ 0")
        if not 0.0 < self.lenient_decay <= 1.0:
            raise UsageError(f"lenient_decay must be in (0, 1], got {self.lenient_decay}")


class LenientLearners(TabularMultiAgentLearner):
    """Panait, Sullivan & Luke (2006), in the form of Wei & Luke (2016): each (s, a) has a temperature T(s,a); an
    update that would lower Q(s,a) is ignored with probability l = 1 − exp(−K·T(s,a)), and T(s,a) decays with each
    update, so agents forgive teammates' early exploration and become exact Q-learners later."""

    algo = RegisteredName()
    Config = LenientConfig
    tables = ("q", "lenient_t")

    def __init__(self, observation_spaces: dict[str, Any], action_spaces: dict[str, Any],
                 config: LenientConfig | None = None, seed: int = 0) -> None:
        super().__init__(observation_spaces, action_spaces, config, seed)
        self.lenient_t = [np.full_like(q, self.config.lenient_temperature) for q in self.q]

    def update(self, i: int, s: int, joint: list[int], r: float, s_next: int, terminated: bool) -> float:
        a = joint[i]
        delta = r + self.config.gamma * self.bootstrap(i, s_next, terminated) - self.q[i][s, a]
        leniency = 1.0 - np.exp(-self.config.leniency * self.lenient_t[i][s, a])  # l(s,a) = 1 − e^{−K·T(s,a)}
        if delta > 0 or self.rng.random() > leniency:
            self.q[i][s, a] += self.alpha * delta  # Q += αδ, unless a negative δ is forgiven
        self.lenient_t[i][s, a] *= self.config.lenient_decay  # T(s,a) ← ν·T(s,a)
        return float(delta)
