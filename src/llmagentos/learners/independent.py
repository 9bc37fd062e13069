"""Independent learners (``il``): every agent of a PettingZoo Parallel world runs a single-agent learner of this
project (tabular Q-learning, Sarsa, DQN, PPO, ...) and treats the others as part of its world; optionally one
learner shared by all agents, with the agent's index appended to its observation.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from llmagentos.core.agent import Agent, Transition
from llmagentos.core.config import apply_overrides, param
from llmagentos.core.errors import UsageError
from llmagentos.core.seeding import derive_seed
from llmagentos.learners.multiagent import (
    MATRIX_GAME_EXPLORATION, MATRIX_GAME_IDS, MATRIX_GAME_STEPS, MultiAgentLearner)
from llmagentos.learners.registry import RegisteredName


@dataclass
class ILConfig:
    learner: str = param("q-learning", "single-agent algorithm every agent runs (an 'agent' entry of llmagentos algos)")
    learner_config: dict = param({}, "config overrides for that learner, as JSON, e.g. {\"alpha\": 0.1}")
    share_parameters: bool = param(False, "one learner for all agents (identical spaces needed); "
                                          "the agent's index is added to its observation")

    PRESETS: ClassVar[dict[str, dict]] = {gid: {"learner_config": dict(MATRIX_GAME_EXPLORATION)} for gid in MATRIX_GAME_IDS}
    DEFAULT_STEPS: ClassVar[dict[str, int]] = {gid: MATRIX_GAME_STEPS for gid in MATRIX_GAME_IDS}


def rollout_sizes(default: Any, num_envs: int, given: dict[str, Any]) -> dict[str, int]:
    """``n_steps`` and ``batch_size`` for a rollout learner (PPO, A2C) fed ``num_envs`` streams of experience (one per
    agent it serves): as many transitions per update as its defaults collect (n_steps × num_envs), in the largest
    minibatch up to its default that divides them. Sizes in ``given`` (the user's) are kept."""
    if not hasattr(default, "n_steps"):
        return {}
    n_steps = int(given.get("n_steps", -(-default.n_steps * default.num_envs // num_envs)))
    sizes = {"n_steps": n_steps}
    if hasattr(default, "batch_size") and "batch_size" not in given:
        rollout = n_steps * num_envs
        sizes["batch_size"] = max(d for d in range(1, min(default.batch_size, rollout) + 1) if rollout % d == 0)
    return sizes


class IndependentLearners(MultiAgentLearner):
    """Every agent learns alone with a single-agent learner; the others are part of its (non-stationary) world.

    A learner that accepts vector-env batches (DQN, PPO, ...) gets them: batches of one per agent, or, with
    ``share_parameters``, one batch holding every agent, as if the agents were the sub-envs of one vector env
    (its ``num_envs`` is set to match).
    """

    algo = RegisteredName()
    Config = ILConfig

    def __init__(self, observation_spaces: dict[str, Any], action_spaces: dict[str, Any],
                 config: ILConfig | None = None, seed: int = 0) -> None:
        from llmagentos.learners import registry

        config = config or ILConfig()
        super().__init__(observation_spaces, action_spaces, config, seed)
        entry = registry.get(config.learner, kinds=("agent",))
        learner_cls = registry.load(entry.target)
        self.shared = config.share_parameters
        self.vector = bool(getattr(learner_cls, "supports_vector_env", False))
        overrides = dict(config.learner_config)
        config_cls = registry.load(entry.config)
        if self.vector and "num_envs" in {f.name for f in dataclasses.fields(config_cls)}:
            num_envs = len(self.agents) if self.shared else 1
            overrides = {**rollout_sizes(config_cls(), num_envs, overrides), **overrides, "num_envs": num_envs}
        learner_config = apply_overrides(config_cls(), overrides, owner=f"il learner_config for {config.learner}")
        self.learner_name = config.learner
        if self.shared:
            first = self.agents[0]
            for agent in self.agents[1:]:
                if (str(observation_spaces[agent]) != str(observation_spaces[first])
                        or str(action_spaces[agent]) != str(action_spaces[first])):
                    raise UsageError("share_parameters needs every agent to have the same observation and action "
                                     f"spaces; {agent} differs from {first}")
            obs_space = _with_agent_index(observation_spaces[first], len(self.agents))
            one = learner_cls(obs_space, action_spaces[first], learner_config, seed=derive_seed(seed, "shared"))
            self.learners = {agent: one for agent in self.agents}
        else:
            self.learners = {agent: learner_cls(observation_spaces[agent], action_spaces[agent], learner_config,
                                                seed=derive_seed(seed, "agent", i))
                             for i, agent in enumerate(self.agents)}

    def _own(self, agent: str, observation: Any) -> Any:
        """What the agent's learner sees: its observation, plus its index when the learner is shared."""
        if not self.shared:
            return observation
        return _add_agent_index(observation, self.index[agent], len(self.agents), self.observation_space[agent])

    def _groups(self, names: list[str]) -> list[list[str]]:
        """Which agents go to a learner together: all of them (shared vector learner) or one at a time."""
        if self.shared and self.vector:
            if len(names) != len(self.agents):
                raise UsageError(f"share_parameters with {self.learner_name} batches every agent at each step, but only "
                                 f"{len(names)} of {len(self.agents)} agents are alive; do not share parameters here")
            return [names]
        return [[a] for a in names]

    def act(self, observation: dict[str, Any], explore: bool = True) -> dict[str, Any]:
        if not self.vector:
            return {a: self.learners[a].act(self._own(a, obs), explore=explore) for a, obs in observation.items()}
        actions: dict[str, Any] = {}
        for group in self._groups(list(observation)):
            batch = np.stack([np.asarray(self._own(a, observation[a])) for a in group])
            chosen = self.learners[group[0]].act(batch, explore=explore)
            actions.update({a: _scalar(chosen[k]) for k, a in enumerate(group)})
        return actions

    def observe(self, transition: Transition) -> dict[str, float]:
        t = transition
        names = [a for a in t.action if a in t.next_observation]
        infos = t.info or {}
        metrics: dict[str, float] = {}
        if not self.vector:
            outs = [self.learners[a].observe(Transition(
                self._own(a, t.observation[a]), t.action[a], float(t.reward[a]), self._own(a, t.next_observation[a]),
                bool(t.terminated[a]), bool(t.truncated[a]), infos.get(a, {}))) for a in names]
        else:
            outs = [self.learners[g[0]].observe(Transition(
                np.stack([np.asarray(self._own(a, t.observation[a])) for a in g]), np.asarray([t.action[a] for a in g]),
                np.asarray([t.reward[a] for a in g], dtype=np.float64),
                np.stack([np.asarray(self._own(a, t.next_observation[a])) for a in g]),
                np.asarray([bool(t.terminated[a]) for a in g]), np.asarray([bool(t.truncated[a]) for a in g]), {}))
                for g in self._groups(names)]
        for out in outs:
            for key, value in out.items():
                metrics[key] = metrics.get(key, 0.0) + float(value) / len(outs)
        return metrics

    def end_episode(self) -> None:
        for learner in self._unique():
            learner.end_episode()

    def begin_task(self, task: Any = None, budget: int | None = None, restart_schedules: bool = True,
                   clear_memory: bool = False) -> None:
        """Every learner begins the task (each sees the whole budget: the agents step together)."""
        for learner in self._unique():
            learner.begin_task(task, budget, restart_schedules, clear_memory)

    def end_task(self) -> dict[str, float]:
        """Every learner closes what would span the boundary; their metrics are averaged."""
        outs = [learner.end_task() for learner in self._unique()]
        keys = {k for out in outs for k in out}
        return {k: sum(out.get(k, 0.0) for out in outs) / len(outs) for k in keys}

    def _unique(self) -> list[Agent]:
        return [self.learners[self.agents[0]]] if self.shared else [self.learners[a] for a in self.agents]

    def train_metrics(self) -> dict[str, float]:
        return self._unique()[0].train_metrics()

    def state_dict(self) -> dict[str, Any]:
        if self.shared:
            return {"shared": self.learners[self.agents[0]].state_dict()}
        return {"agents": {a: self.learners[a].state_dict() for a in self.agents}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if self.shared:
            if "shared" not in state:
                raise UsageError("checkpoint holds one learner per agent, but this il config shares parameters")
            self.learners[self.agents[0]].load_state_dict(state["shared"])
            return
        if "agents" not in state or set(state["agents"]) != set(self.agents):
            raise UsageError(f"checkpoint holds learners for {sorted(state.get('agents', {}))}, not {sorted(self.agents)}")
        for a in self.agents:
            self.learners[a].load_state_dict(state["agents"][a])


def _with_agent_index(space: Any, n_agents: int) -> Any:
    from gymnasium import spaces

    if isinstance(space, spaces.Discrete):
        return spaces.Discrete(int(space.n) * n_agents)
    if isinstance(space, spaces.Box) and len(space.shape) == 1:
        low = np.concatenate([space.low, np.zeros(n_agents, dtype=space.dtype)])
        high = np.concatenate([space.high, np.ones(n_agents, dtype=space.dtype)])
        return spaces.Box(low, high, dtype=space.dtype)
    raise UsageError(f"share_parameters supports Discrete and flat Box observations, got {space}")


def _add_agent_index(observation: Any, index: int, n_agents: int, space: Any) -> Any:
    from gymnasium import spaces

    if isinstance(space, spaces.Discrete):
        return np.array(int(observation) * n_agents + index, dtype=np.int64)  # s' = s·N + i
    one_hot = np.zeros(n_agents, dtype=space.dtype)
    one_hot[index] = 1
    return np.concatenate([np.asarray(observation, dtype=space.dtype), one_hot])


def _scalar(action: Any) -> Any:
    value = np.asarray(action)
    return int(value) if value.ndim == 0 and np.issubdtype(value.dtype, np.integer) else value
