"""The perception–decision–action loop, owned by the kernel rather than by any agent.

:class:`Interaction` steps one agent in one Gymnasium env (or a vector env, whose batches go
through the same ``act``/``observe`` calls). :func:`evaluate` runs greedy episodes on a separate env
with a step cap, so a greedy policy that loops forever (CliffWalking has no time limit) cannot hang.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from llmagentos.core import env_state
from llmagentos.core.agent import Agent, Transition

#: greedy evaluation stops an episode after this many steps when the env sets no time limit
DEFAULT_EVAL_STEP_CAP = 1_000


def is_vector_env(env: Any) -> bool:
    from gymnasium.vector import VectorEnv

    return isinstance(env, VectorEnv)


class Interaction:
    """Agent × env, advanced one step at a time; counts steps and episodes and records returns.

    ``steps`` counts environment transitions (a vector env of n envs adds n per call).
    """

    def __init__(self, agent: Agent, env: Any, seed: int) -> None:
        self.agent = agent
        self.env = env
        self.vector = is_vector_env(env)
        self.num_envs = env.num_envs if self.vector else 1
        self.steps = 0
        self.episodes = 0
        self.episode_returns: list[float] = []
        self.episode_lengths: list[int] = []
        self.observation, _ = env.reset(seed=seed)
        self._running_return = np.zeros(self.num_envs)
        self._running_length = np.zeros(self.num_envs, dtype=np.int64)
        # a single env's running episode as Python scalars: this is the per-step hot path
        self._return0 = 0.0
        self._length0 = 0
        self._bare = None if self.vector else _bare_env(env)
        # set once the env checker has seen its first step (see step)
        self._bare_step: Any = None
        self._limit: Any = None

    def step(self) -> dict[str, float]:
        """One call to the env (n transitions for a vector env); returns the agent's training metrics."""
        agent = self.agent
        observation = self.observation
        action = agent.act(observation, explore=True)
        bare_step = self._bare_step
        if bare_step is not None:
            # gymnasium.make's own wrappers, once the checker has seen a step: step the env itself and keep the time
            # limit's count here (the same result, three Python calls fewer per step)
            next_obs, reward, terminated, truncated, info = bare_step(action)
            limit = self._limit
            if limit is not None:
                limit._elapsed_steps += 1
                if limit._elapsed_steps >= limit._max_episode_steps:
                    truncated = True
        else:
            next_obs, reward, terminated, truncated, info = self.env.step(action)
            bare = self._bare
            if bare is not None and bare[1].checked_step:  # from the next step on, the short way above
                self._limit, self._bare_step = bare[0], bare[2].step
        if self.vector:
            return self._vector_step(action, next_obs, reward, terminated, truncated, info)
        reward = float(reward)
        terminated = bool(terminated)
        truncated = bool(truncated)
        metrics = agent.observe(Transition(observation, action, reward, next_obs, terminated, truncated, info))
        self.steps += 1
        self._return0 += reward
        self._length0 += 1
        if terminated or truncated:
            agent.end_episode()
            self._finish_single()
            self.observation, _ = self.env.reset()
        else:
            self.observation = next_obs
        return metrics

    def _vector_step(self, action, next_obs, reward, terminated, truncated, info) -> dict[str, float]:
        done = np.logical_or(terminated, truncated)
        true_next = next_obs
        if done.any():
            # same-step autoreset: next_obs already holds the reset observation for finished envs
            mask = info.get("_final_obs", done)
            if isinstance(next_obs, np.ndarray):
                true_next = np.array(next_obs, copy=True)
                for i in np.flatnonzero(mask):
                    true_next[i] = info["final_obs"][i]
            else:
                true_next = _with_final_observations(self.env, next_obs, info["final_obs"], mask)
        metrics = self.agent.observe(Transition(self.observation, action, np.asarray(reward, dtype=np.float64),
                                                true_next, np.asarray(terminated), np.asarray(truncated), info))
        self.steps += self.num_envs
        self._running_return += reward
        self._running_length += 1
        for i in np.flatnonzero(done):
            self._finish(int(i))
        self.observation = next_obs
        return metrics

    def _finish_single(self) -> None:
        self.episode_returns.append(self._return0)
        self.episode_lengths.append(self._length0)
        self.episodes += 1
        self._return0 = 0.0
        self._length0 = 0

    def _finish(self, index: int) -> None:
        self.episode_returns.append(float(self._running_return[index]))
        self.episode_lengths.append(int(self._running_length[index]))
        self.episodes += 1
        self._running_return[index] = 0.0
        self._running_length[index] = 0

    def state(self) -> dict[str, Any]:
        """Counters, the running episode and the env's simulator state (see :mod:`env_state`)."""
        return {
            "steps": self.steps,
            "episodes": self.episodes,
            "episode_returns": list(self.episode_returns),
            "episode_lengths": list(self.episode_lengths),
            "running_return": self._running_return.tolist() if self.vector else [self._return0],
            "running_length": self._running_length.tolist() if self.vector else [self._length0],
            "observation": env_state._encode(self.observation if isinstance(self.observation, (dict, tuple))
                                             else np.asarray(self.observation))[1],
            "env": env_state.snapshot(self.env),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self.steps = state["steps"]
        self.episodes = state["episodes"]
        self.episode_returns = list(state["episode_returns"])
        self.episode_lengths = list(state["episode_lengths"])
        self._running_return = np.array(state["running_return"], dtype=np.float64)
        self._running_length = np.array(state["running_length"], dtype=np.int64)
        self._return0 = float(self._running_return[0])
        self._length0 = int(self._running_length[0])
        obs = env_state._decode(state["observation"])
        self.observation = obs.item() if isinstance(obs, np.ndarray) and obs.ndim == 0 and not self.vector else obs
        env_state.restore(self.env, state["env"])
        bare = self._bare
        if bare is not None and bare[1].checked_step:
            # the restored checker has seen its step already: go the short way at once, as the uninterrupted run
            # did (one more step through the checker would run its later checks and change its recorded state)
            self._limit, self._bare_step = bare[0], bare[2].step


def _bare_env(env: Any) -> tuple[Any, Any, Any] | None:
    """(TimeLimit or None, PassiveEnvChecker, the env inside) when ``env`` is exactly the stack ``gymnasium.make``
    builds (TimeLimit, OrderEnforcing, PassiveEnvChecker around the env), else None: any other wrapper may change a
    step, so those envs are stepped through their wrappers."""
    import gymnasium as gym
    from gymnasium.wrappers import OrderEnforcing, PassiveEnvChecker, TimeLimit

    limit = checker = None
    while True:
        kind = type(env)
        if kind is TimeLimit and limit is None and checker is None:
            limit = env
        elif kind is OrderEnforcing and checker is None:
            pass
        elif kind is PassiveEnvChecker and checker is None:
            checker = env
        else:
            break
        env = env.env
    if checker is None or isinstance(env, gym.Wrapper):
        return None
    return limit, checker, env


def _with_final_observations(env: Any, batch: Any, final: Any, mask: np.ndarray) -> Any:
    """A Dict/Tuple observation batch with the final observations of finished sub-envs in their rows."""
    from gymnasium.vector.utils import concatenate, create_empty_array, iterate

    rows = list(iterate(env.observation_space, batch))
    for i in np.flatnonzero(mask):
        rows[i] = final[i]
    space = env.single_observation_space
    return concatenate(space, rows, create_empty_array(space, len(rows)))


def evaluate(agent: Agent, env: Any, episodes: int, seed: int, step_cap: int | None = None) -> list[float]:
    """Returns of ``episodes`` greedy episodes on ``env`` (single env), each reset with seed+i.

    An episode is cut after ``step_cap`` steps (default: the env's time limit, else
    :data:`DEFAULT_EVAL_STEP_CAP`).
    """
    if step_cap is None:
        limit = getattr(getattr(env, "spec", None), "max_episode_steps", None)
        step_cap = limit or DEFAULT_EVAL_STEP_CAP
    returns = []
    for i in range(episodes):
        obs, _ = env.reset(seed=seed + i)
        total = 0.0
        for _ in range(step_cap):
            obs, reward, terminated, truncated, _ = env.step(agent.act(obs, explore=False))
            total += float(reward)
            if terminated or truncated:
                break
        returns.append(total)
    return returns


def evaluate_vector(agent: Agent, env: Any, seed: int, step_cap: int | None = None) -> list[float]:
    """:func:`evaluate`'s returns for ``env.num_envs`` greedy episodes played at once, one per copy of a
    same-step-autoreset vector env whose copy i is reset with seed+i, acting on the whole batch per step.

    On a vector env that steps exactly as single copies (:func:`~llmagentos.envs.vector.exact_vector_env`) these are
    the episodes :func:`evaluate` plays, up to the agent's batched forward pass, which may round differently from
    its one-observation pass. Each copy's first episode counts, cut after ``step_cap`` steps as there.
    """
    if step_cap is None:
        step_cap = getattr(env, "max_episode_steps", None) or DEFAULT_EVAL_STEP_CAP
    obs, _ = env.reset(seed=seed)
    totals = np.zeros(env.num_envs)
    running = np.ones(env.num_envs, dtype=bool)
    for _ in range(step_cap):
        obs, reward, terminated, truncated, _ = env.step(agent.act(obs, explore=False))
        totals += np.where(running, reward, 0.0)  # later episodes of a copy (autoreset) do not count
        running &= ~(np.asarray(terminated) | np.asarray(truncated))
        if not running.any():
            break
    return totals.tolist()
