"""Temporal-difference control with tables: Sarsa, Expected Sarsa and Q-learning (Sutton & Barto ch. 6).

The three differ only in the value of the next state they bootstrap from; everything else —
ε-greedy or Boltzmann behaviour, step size, terminal vs time-limit handling — is shared.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from llmagentos.core.agent import Agent, Transition, greedy_argmax, greedy_index
from llmagentos.core.config import param
from llmagentos.core.errors import UsageError
from llmagentos.core.schedules import make_schedule
from llmagentos.core.seeding import derive_seed, make_rng, rng_state, set_rng_state
from llmagentos.learners.registry import RegisteredName


@dataclass
class TDConfig:
    alpha: float = param(0.5, "step size α", gt=0, le=1)
    alpha_final: float | None = param(None, "final step size for a decaying α (None keeps α constant)")
    gamma: float = param(0.99, "discount γ (1.0 is allowed on episodic tasks)", ge=0, le=1)
    exploration: Literal["epsilon-greedy", "boltzmann"] = param("epsilon-greedy", "behaviour policy")
    epsilon: float = param(0.1, "ε of ε-greedy exploration (start value when it decays)", ge=0, le=1)
    epsilon_final: float | None = param(None, "final ε of a decaying schedule (None keeps ε constant)")
    temperature: float = param(1.0, "Boltzmann temperature τ (start value when it decays)", gt=0)
    temperature_final: float | None = param(None, "final τ of a decaying schedule (None keeps τ constant)")
    schedule: Literal["constant", "linear", "exponential"] = param("linear", "shape of every decaying schedule")
    decay_steps: int = param(10_000, "steps over which decaying schedules move from start to final", gt=0)
    initial_value: float = param(0.0, "initial Q(s, a) for every pair (optimistic values explore)")


class TabularTDAgent(Agent):
    """Q(s, a) in a numpy table, updated online after every step. Subclasses choose the bootstrap value."""

    Config = TDConfig

    def __init__(self, observation_space: Any, action_space: Any, config: TDConfig | None = None, seed: int = 0) -> None:
        from gymnasium import spaces

        config = config or TDConfig()
        if not isinstance(observation_space, spaces.Discrete) or not isinstance(action_space, spaces.Discrete):
            raise UsageError(f"{self.algo} needs Discrete observation and action spaces, got "
                             f"{observation_space} and {action_space}")
        super().__init__(observation_space, action_space, config, seed)
        self.n_states, self.n_actions = int(observation_space.n), int(action_space.n)
        self.q = np.full((self.n_states, self.n_actions), config.initial_value, dtype=np.float64)
        self.rng = make_rng(seed)
        # greedy evaluation breaks its ties with its own generator, so evaluating never changes training
        self.eval_rng = make_rng(derive_seed(seed, "evaluation"))
        self.t = 0
        self.alpha = make_schedule(config.schedule, config.alpha, config.alpha_final, config.decay_steps)
        self.epsilon = make_schedule(config.schedule, config.epsilon, config.epsilon_final, config.decay_steps)
        self.temperature = make_schedule(config.schedule, config.temperature, config.temperature_final, config.decay_steps)
        # read once per step: the behaviour policy's kind and constants, not looked up through config and schedules
        self._boltzmann = config.exploration == "boltzmann"
        self._constant_epsilon = self.epsilon.start if self.epsilon.kind == "constant" else None
        self._constant_alpha = self.alpha.start if self.alpha.kind == "constant" else None
        self._gamma = config.gamma
        # Sarsa chooses a' while updating; the loop's next act() for s' must then return that same a'
        self._pending: tuple[int, int] | None = None

    # -- behaviour policy -------------------------------------------------------------------------
    def policy(self, state: int) -> np.ndarray:
        """π(·|s) of the behaviour policy at the current step."""
        q = self.q[state]
        if self.config.exploration == "boltzmann":
            z = (q - q.max()) / self.temperature(self.t)
            p = np.exp(z)
            return p / p.sum()
        best = q == q.max()
        eps = self.epsilon(self.t)
        return (1.0 - eps) * best / best.sum() + eps / self.n_actions

    def _sample(self, state: int) -> int:
        if self._boltzmann:
            return int(self.rng.choice(self.n_actions, p=self.policy(state)))
        rng = self.rng
        epsilon = self._constant_epsilon
        # a constant ε is read directly: this runs once per step and the schedule call is a hot spot
        if rng.random() < (epsilon if epsilon is not None else self.epsilon(self.t)):
            return int(rng.integers(self.n_actions))
        return greedy_index(self.q[state].tolist(), rng)

    def act(self, observation: Any, explore: bool = True) -> int:
        state = int(observation)
        if not explore:
            return greedy_argmax(self.q[state], self.eval_rng)
        if self._pending is not None and self._pending[0] == state:
            action = self._pending[1]
            self._pending = None
            return action
        return self._sample(state)

    # -- learning ---------------------------------------------------------------------------------
    def next_value(self, next_state: int) -> float:
        """The bootstrap value of s' (the one place the three algorithms differ)."""
        raise NotImplementedError

    def observe(self, transition: Transition) -> dict[str, float]:
        s, a, r = int(transition.observation), int(transition.action), float(transition.reward)
        terminated = transition.terminated
        # a terminal s' has no future; a time-limit truncation still bootstraps from s'
        future = 0.0 if terminated else self.next_value(int(transition.next_observation))
        q = self.q
        q_sa = q.item(s, a)  # a Python float: scalar arithmetic below is the same IEEE double, only faster
        td_error = r + self._gamma * future - q_sa  # δ = r + γ V(s') − Q(s,a)
        alpha = self._constant_alpha
        q[s, a] = q_sa + (alpha if alpha is not None else self.alpha(self.t)) * td_error
        self.t += 1
        if terminated or transition.truncated:
            self._pending = None
        return {"td_error": td_error}

    def end_episode(self) -> None:
        self._pending = None

    def train_metrics(self) -> dict[str, float]:
        if self.config.exploration == "boltzmann":
            return {"temperature": self.temperature(self.t), "alpha": self.alpha(self.t)}
        return {"epsilon": self.epsilon(self.t), "alpha": self.alpha(self.t)}

    def begin_task(self, task: Any = None, budget: int | None = None, restart_schedules: bool = True,
                   clear_memory: bool = False) -> None:
        """Restarting puts the step counter t back to 0, so ε (or τ) and α start their schedules over."""
        if restart_schedules:
            self.t = 0

    def end_task(self) -> dict[str, float]:
        """The Sarsa action chosen for the next state belongs to the old task: forget it."""
        self._pending = None
        return {}

    def weights(self, trunk_only: bool = False) -> dict[str, Any]:
        if trunk_only:
            raise UsageError(f"a Q table has no trunk; {self.algo} gives whole tables only")
        return {"q": self.q.copy()}

    def load_weights(self, weights: dict[str, Any], trunk_only: bool = False) -> None:
        if trunk_only:
            raise UsageError(f"a Q table has no trunk; {self.algo} loads whole tables only")
        self.q = np.array(weights["q"], dtype=np.float64, copy=True)

    def state_dict(self) -> dict[str, Any]:
        return {"q": self.q.copy(), "t": self.t, "rng": rng_state(self.rng), "eval_rng": rng_state(self.eval_rng),
                "pending": list(self._pending) if self._pending is not None else None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        q = np.asarray(state["q"], dtype=np.float64)
        if q.shape != self.q.shape:
            raise UsageError(f"checkpoint Q table has shape {q.shape}, this agent needs {self.q.shape}")
        self.q = q.copy()
        self.t = int(state["t"])
        set_rng_state(self.rng, state["rng"])
        if "eval_rng" in state:  # checkpoints written before evaluation had its own generator lack it
            set_rng_state(self.eval_rng, state["eval_rng"])
        self._pending = tuple(state["pending"]) if state.get("pending") is not None else None  # type: ignore[assignment]


class Sarsa(TabularTDAgent):
    algo = RegisteredName()

    def next_value(self, next_state: int) -> float:
        # y = r + γ Q(s', a'), a' ~ π(·|s') chosen now and then taken by the next act()
        next_action = self._sample(next_state)
        self._pending = (next_state, next_action)
        return self.q.item(next_state, next_action)


class ExpectedSarsa(TabularTDAgent):
    algo = RegisteredName()

    def next_value(self, next_state: int) -> float:
        # y = r + γ Σ_a' π(a'|s') Q(s', a')
        return float(self.policy(next_state) @ self.q[next_state])


class QLearning(TabularTDAgent):
    algo = RegisteredName()

    def next_value(self, next_state: int) -> float:
        # y = r + γ max_a' Q(s', a')
        return max(self.q[next_state].tolist())
