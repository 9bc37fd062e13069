"""The multi-agent interaction loop beside :mod:`llmagentos.core.loop`: a learner of several agents × a PettingZoo
Parallel world, one joint step at a time, and its greedy evaluation.

The learner keeps the agent contract with dicts keyed by agent: ``act(observations, explore)`` returns one action
per live agent, ``observe`` takes a :class:`~llmagentos.core.agent.Transition` of dicts.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from llmagentos.core.agent import Transition

#: greedy evaluation stops an episode after this many steps when the world does not end it
EVAL_STEP_CAP = 1_000


class ParallelInteraction:
    """A multi-agent learner × a Parallel env, one joint step at a time; counts steps (joint steps) and episodes."""

    def __init__(self, learner: Any, env: Any, seed: int) -> None:
        self.learner, self.env, self.seed = learner, env, seed
        self.agents = list(env.possible_agents)
        self.steps = 0
        self.episodes = 0
        self.episode_returns: list[float] = []
        self.episode_lengths: list[int] = []
        self.agent_returns: dict[str, list[float]] = {a: [] for a in self.agents}
        self._seed_block: tuple[int, np.ndarray] | None = None
        self._reset()

    def _episode_seed(self, episode: int) -> int:
        # drawn 1024 at a time from a SeedSequence keyed by (run seed, block): cheap, and a pure function of both
        block, offset = divmod(episode, 1024)
        if self._seed_block is None or self._seed_block[0] != block:
            self._seed_block = (block, np.random.SeedSequence([self.seed, block]).generate_state(1024))
        return int(self._seed_block[1][offset])

    def _reset(self) -> None:
        # a seed per episode: the run resumes exactly from any episode boundary without the env's internals
        self.observation, _ = self.env.reset(seed=self._episode_seed(self.episodes))
        self._running = dict.fromkeys(self.agents, 0.0)
        self._length = 0

    @property
    def between_episodes(self) -> bool:
        return self._length == 0

    def step(self) -> dict[str, float]:
        actions = self.learner.act(self.observation, explore=True)
        next_obs, rewards, terminations, truncations, infos = self.env.step(actions)
        metrics = self.learner.observe(Transition(self.observation, actions, rewards, next_obs, terminations,
                                                  truncations, infos))
        self.steps += 1
        self._length += 1
        for agent, reward in rewards.items():
            self._running[agent] = self._running.get(agent, 0.0) + float(reward)
        if not self.env.agents:
            self.learner.end_episode()
            self.episode_returns.append(sum(self._running[a] for a in self.agents) / len(self.agents))
            self.episode_lengths.append(self._length)
            for agent in self.agents:
                self.agent_returns[agent].append(float(self._running[agent]))
            self.episodes += 1
            self._reset()
        else:
            self.observation = {a: next_obs[a] for a in self.env.agents}
        return metrics

    def state(self) -> dict[str, Any]:
        return {"steps": self.steps, "episodes": self.episodes, "episode_returns": list(self.episode_returns),
                "episode_lengths": list(self.episode_lengths), "agent_returns": {a: list(r) for a, r in self.agent_returns.items()}}

    def load_state(self, state: dict[str, Any]) -> None:
        self.steps, self.episodes = int(state["steps"]), int(state["episodes"])
        self.episode_returns = list(state["episode_returns"])
        self.episode_lengths = list(state["episode_lengths"])
        self.agent_returns = {a: list(state["agent_returns"][a]) for a in self.agents}
        self._reset()


def evaluate_parallel(learner: Any, env: Any, episodes: int, seed: int, step_cap: int = EVAL_STEP_CAP) -> list[dict[str, float]]:
    """Per-agent returns of ``episodes`` greedy episodes, each reset with seed + i."""
    out = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        totals = dict.fromkeys(env.possible_agents, 0.0)
        for _ in range(step_cap):
            obs, rewards, _, _, _ = env.step(learner.act(obs, explore=False))
            for agent, reward in rewards.items():
                totals[agent] += float(reward)
            if not env.agents:
                break
            obs = {a: obs[a] for a in env.agents}
        out.append(totals)
    return out
