"""Preallocated on-policy storage: fixed-length rollouts (A2C, PPO) and whole episodes (REINFORCE).

Both keep numpy arrays, so that a partial rollout is part of the agent's checkpoint and a resumed
run continues from exactly the step it stopped at.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class RolloutBuffer:
    """n_steps × num_envs transitions, filled in time order and emptied by each update.

    ``trunc_values[t, i]`` holds V(s_final) for an env whose episode was cut by a time limit at step t,
    so that advantages bootstrap past truncation but not past termination.
    """

    FIELDS = ("observations", "actions", "log_probs", "values", "rewards", "terminated", "dones", "trunc_values")

    def __init__(self, n_steps: int, num_envs: int, obs_shape: tuple[int, ...], action_shape: tuple[int, ...],
                 action_dtype: Any, obs_dtype: Any = np.float32) -> None:
        self.n_steps, self.num_envs = n_steps, num_envs
        size = (n_steps, num_envs)
        # observations keep the adapter's dtype: uint8 frames stay uint8 until the network
        self.observations = np.zeros(size + tuple(obs_shape), dtype=obs_dtype)
        self.actions = np.zeros(size + tuple(action_shape), dtype=action_dtype)
        self.log_probs = np.zeros(size, dtype=np.float32)
        self.values = np.zeros(size, dtype=np.float32)
        self.rewards = np.zeros(size, dtype=np.float32)
        self.terminated = np.zeros(size, dtype=np.float32)
        self.dones = np.zeros(size, dtype=np.float32)
        self.trunc_values = np.zeros(size, dtype=np.float32)
        self.pos = 0

    @property
    def full(self) -> bool:
        return self.pos == self.n_steps

    def add(self, observations, actions, log_probs, values, rewards, terminated, dones, trunc_values) -> None:
        t = self.pos
        self.observations[t] = observations
        self.actions[t] = actions
        self.log_probs[t] = log_probs
        self.values[t] = values
        self.rewards[t] = rewards
        self.terminated[t] = terminated
        self.dones[t] = dones
        self.trunc_values[t] = trunc_values
        self.pos += 1

    def next_values(self, last_values: np.ndarray) -> np.ndarray:
        """V(s_{t+1}) for every stored step: the next row's value, V(s_final) after a truncation,
        and ``last_values`` (V of the observation after the rollout) for the last stored row."""
        rows = self.pos
        out = np.empty_like(self.values[:rows])
        out[:-1] = self.values[1:rows]
        out[-1] = last_values
        truncated = (self.dones[:rows] > 0) & (self.terminated[:rows] == 0)
        return np.where(truncated, self.trunc_values[:rows], out)

    def reset(self) -> None:
        self.pos = 0

    def state_dict(self) -> dict[str, Any]:
        state: dict[str, Any] = {name: getattr(self, name)[: self.pos].copy() for name in self.FIELDS}
        state["pos"] = self.pos
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        pos = int(state["pos"])
        for name in self.FIELDS:
            array = np.asarray(state[name])
            target = getattr(self, name)
            if array.shape[1:] != target.shape[1:] or array.shape[0] != pos or pos > self.n_steps:
                raise ValueError(f"rollout field {name} has shape {array.shape}, expected ({pos}, {target.shape[1:]})")
            target[:pos] = array
        self.pos = pos


class EpisodeBuffer:
    """Whole episodes per env for Monte-Carlo returns: steps accumulate per env until its episode ends.

    A finished episode records whether it was truncated and its final observation, so its return can
    bootstrap from V(s_final) when a baseline exists.
    """

    def __init__(self, num_envs: int, obs_dtype: Any = np.float32) -> None:
        self.num_envs = num_envs
        self.obs_dtype = np.dtype(obs_dtype)
        self.partial: list[dict[str, list]] = [self._empty() for _ in range(num_envs)]
        self.complete: list[dict[str, Any]] = []

    @staticmethod
    def _empty() -> dict[str, list]:
        return {"observations": [], "actions": [], "rewards": []}

    def add(self, observations, actions, rewards, terminated, truncated, final_observations) -> None:
        for i in range(self.num_envs):
            ep = self.partial[i]
            ep["observations"].append(np.array(observations[i], dtype=self.obs_dtype))
            ep["actions"].append(np.array(actions[i]))
            ep["rewards"].append(float(rewards[i]))
            if terminated[i] or truncated[i]:
                self._close(i, bool(truncated[i] and not terminated[i]), final_observations[i])

    def _close(self, i: int, truncated: bool, final_observation) -> None:
        ep = self.partial[i]
        self.complete.append({"observations": np.stack(ep["observations"]), "actions": np.stack(ep["actions"]),
                              "rewards": np.array(ep["rewards"], dtype=np.float32), "truncated": truncated,
                              "final_observation": np.array(final_observation, dtype=self.obs_dtype)})
        self.partial[i] = self._empty()

    def cut(self, final_observations) -> None:
        """End every unfinished episode here as if a time limit cut it, ``final_observations[i]`` its last s'."""
        for i in range(self.num_envs):
            if self.partial[i]["observations"]:
                self._close(i, True, final_observations[i])

    def take(self) -> list[dict[str, Any]]:
        episodes, self.complete = self.complete, []
        return episodes

    def state_dict(self) -> dict[str, Any]:
        partial = []
        for ep in self.partial:
            partial.append({"observations": np.stack(ep["observations"]) if ep["observations"] else None,
                            "actions": np.stack(ep["actions"]) if ep["actions"] else None,
                            "rewards": np.array(ep["rewards"], dtype=np.float64)})
        return {"partial": partial, "complete": [dict(ep) for ep in self.complete]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.partial = []
        for ep in state["partial"]:
            if ep["observations"] is None:
                self.partial.append(self._empty())
                continue
            self.partial.append({"observations": list(np.asarray(ep["observations"], dtype=self.obs_dtype)),
                                 "actions": list(np.asarray(ep["actions"])),
                                 "rewards": [float(r) for r in np.asarray(ep["rewards"])]})
        self.complete = [{**ep, "truncated": bool(ep["truncated"])} for ep in state["complete"]]
