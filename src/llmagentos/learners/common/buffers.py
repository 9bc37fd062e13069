"""Preallocated numpy buffers for the deep learners, written once (like Stable-Baselines3's ``common/buffers``).

:class:`ReplayBuffer` is the replay memory D of DQN: a ring of fixed-size numpy arrays, sampled
uniformly by a generator the *agent* owns (so the agent's state alone decides which minibatches
it sees, and a resumed run draws the same ones). It folds n-step returns in as transitions arrive,
and its contents (only the filled part) go into the agent's ``state_dict`` as plain arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from llmagentos.core.errors import UsageError


@dataclass
class ReplayBatch:
    """A minibatch of (s, a, R, s', terminated, n) rows; ``n`` is the number of rewards summed in R.

    The target of a row is y = R + γ^n (1 − terminated) max_a' Q'(s', a'): n is 1 without n-step
    returns, and smaller than the configured n where an episode ended inside the window.
    """

    obs: Any
    action: Any
    reward: Any
    next_obs: Any
    terminated: Any
    n_steps: Any

    FIELDS = ("obs", "action", "reward", "next_obs", "terminated", "n_steps")


class ReplayBuffer:
    """Uniform experience replay over the last ``capacity`` transitions, with optional n-step returns.

    :meth:`add` takes one transition or a batch from a vector env (one row per sub-env; pass
    ``num_envs``). A time-limit truncation is never stored as terminal: its row bootstraps from s'.
    With ``n_step > 1`` each sub-env keeps its last n steps pending; a full window becomes the row
    (s_t, a_t, Σ_k γ^k r_{t+k}, s_{t+n}), and an ending episode flushes its shorter windows.
    """

    def __init__(self, capacity: int, obs_shape: Sequence[int], obs_dtype: Any = np.float32,
                 action_shape: Sequence[int] = (), action_dtype: Any = np.int64, n_step: int = 1,
                 gamma: float = 0.99, num_envs: int = 1) -> None:
        if capacity <= 0:
            raise UsageError(f"the replay buffer capacity must be positive, got {capacity}")
        if n_step < 1:
            raise UsageError(f"n_step must be at least 1, got {n_step}")
        self.capacity = int(capacity)
        self.obs_shape = tuple(obs_shape)
        self.action_shape = tuple(action_shape)
        self.n_step = int(n_step)
        self.gamma = float(gamma)
        self.num_envs = int(num_envs)
        self.obs_dtype = np.dtype(obs_dtype)
        self._allocate_observations()
        self.action = np.zeros((self.capacity, *self.action_shape), dtype=action_dtype)
        self.reward = np.zeros(self.capacity, dtype=np.float32)
        self.terminated = np.zeros(self.capacity, dtype=np.float32)
        self.n_steps = np.ones(self.capacity, dtype=np.float32)
        self.pos = 0
        self.size = 0
        # n-step windows still open, per sub-env: lists of (s, a, r), and the s' of each sub-env's last step
        self._pending: list[list[tuple[np.ndarray, Any, float]]] = [[] for _ in range(self.num_envs)]
        self._last_next: list[np.ndarray | None] = [None] * self.num_envs

    def __len__(self) -> int:
        return self.size

    def _allocate_observations(self) -> None:
        """s and s' of every row, stored as they come (the frame-once memory overrides this)."""
        self.obs = np.zeros((self.capacity, *self.obs_shape), dtype=self.obs_dtype)
        self.next_obs = np.zeros_like(self.obs)

    # -- writing --------------------------------------------------------------------------------
    def add(self, obs: Any, action: Any, reward: Any, next_obs: Any, terminated: Any, truncated: Any) -> None:
        """Store one transition, or one row per sub-env when ``obs`` carries a leading batch axis."""
        obs = np.asarray(obs)
        if obs.ndim == len(self.obs_shape):
            if self.n_step == 1 and self.num_envs == 1 and type(self)._write is ReplayBuffer._write:  # the common case, written without temporaries
                p = self.pos
                self.obs[p], self.next_obs[p], self.action[p] = obs, next_obs, action
                self.reward[p], self.terminated[p], self.n_steps[p] = reward, terminated, 1.0
                self.pos, self.size = (p + 1) % self.capacity, min(self.size + 1, self.capacity)
                return
            obs, next_obs = obs[None], np.asarray(next_obs)[None]
            action, reward = np.asarray(action)[None], np.asarray(reward, dtype=np.float64)[None]
            terminated, truncated = np.asarray(terminated)[None], np.asarray(truncated)[None]
        if len(obs) != self.num_envs:
            raise UsageError(f"the replay buffer was made for {self.num_envs} env(s), got a batch of {len(obs)}")
        if self.n_step == 1:
            self._write(obs, action, reward, next_obs, terminated, np.ones(len(obs), dtype=np.float32))
            return
        for i in range(len(obs)):
            self._add_n_step(i, obs[i], action[i], float(reward[i]), next_obs[i], bool(terminated[i]), bool(truncated[i]))

    def _add_n_step(self, env: int, obs, action, reward: float, next_obs, terminated: bool, truncated: bool) -> None:
        window = self._pending[env]
        window.append((np.array(obs, copy=True), action, reward))
        self._last_next[env] = None
        if terminated or truncated:
            # the episode ended: every open window closes at s', with fewer than n rewards
            while window:
                self._emit(window, next_obs, terminated)
                window.pop(0)
        else:
            self._last_next[env] = np.array(next_obs, copy=True)
            if len(window) == self.n_step:
                self._emit(window, next_obs, False)
                window.pop(0)

    def close_windows(self) -> None:
        """Close every open n-step window at its sub-env's last s', as a time limit would (the rows bootstrap
        from s' with fewer than n rewards): the end of a task, after which no window may continue."""
        for env, window in enumerate(self._pending):
            last = self._last_next[env]
            while window and last is not None:
                self._emit(window, last, False)
                window.pop(0)
            window.clear()
            self._last_next[env] = None

    def _emit(self, window: list, next_obs, terminated: bool) -> None:
        ret = 0.0
        for k, (_, _, r) in enumerate(window):
            ret += self.gamma ** k * r  # R = Σ_k γ^k r_{t+k}
        obs, action, _ = window[0]
        self._write(obs[None], np.asarray(action)[None], np.array([ret]), np.asarray(next_obs)[None],
                    np.array([terminated]), np.array([len(window)], dtype=np.float32))

    def _write(self, obs, action, reward, next_obs, terminated, n_steps) -> None:
        rows = len(obs)
        idx = slice(self.pos, self.pos + rows) if self.pos + rows <= self.capacity else (self.pos + np.arange(rows)) % self.capacity
        self.obs[idx] = obs
        self.next_obs[idx] = next_obs
        self.action[idx] = action
        self.reward[idx] = reward
        self.terminated[idx] = terminated
        self.n_steps[idx] = n_steps
        self.pos = (self.pos + rows) % self.capacity
        self.size = min(self.size + rows, self.capacity)

    # -- reading --------------------------------------------------------------------------------
    def make_batch(self, batch_size: int) -> ReplayBatch:
        """Preallocated arrays for :meth:`sample`'s ``out`` (so a training loop allocates nothing per step)."""
        return ReplayBatch(np.zeros((batch_size, *self.obs_shape), self.obs_dtype), np.zeros((batch_size, *self.action_shape), self.action.dtype),
                           np.zeros(batch_size, np.float32), np.zeros((batch_size, *self.obs_shape), self.obs_dtype),
                           np.zeros(batch_size, np.float32), np.zeros(batch_size, np.float32))

    def sample(self, batch_size: int, rng: np.random.Generator, out: ReplayBatch | None = None) -> ReplayBatch:
        """``batch_size`` rows drawn uniformly (with replacement) by ``rng``; written into ``out`` when given."""
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        idx = rng.integers(0, self.size, size=batch_size)
        out = out or self.make_batch(batch_size)
        for name in ReplayBatch.FIELDS:
            np.take(getattr(self, name), idx, axis=0, out=getattr(out, name))
        return out

    def recent(self, n: int, rng: np.random.Generator, recent: int) -> dict[str, np.ndarray] | None:
        """Up to ``n`` distinct rows drawn uniformly by ``rng`` from the ``recent`` rows stored last (None if empty)."""
        k = min(int(recent), self.size)
        if k <= 0:
            return None
        rows = (self.pos - 1 - rng.choice(k, size=min(n, k), replace=False)) % self.capacity
        return {f: getattr(self, f)[rows].copy() for f in ReplayBatch.FIELDS}

    # -- persistence ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """The filled part of the memory, the write position and the open n-step windows, as arrays and JSON."""
        state: dict[str, Any] = {name: getattr(self, name)[: self.size].copy() for name in ReplayBatch.FIELDS}
        state.update(pos=self.pos, size=self.size, capacity=self.capacity)
        state["pending"] = self._pending_state()
        return state

    def _pending_state(self) -> list[dict[str, Any]]:
        return [{"obs": np.array([w[0] for w in window], dtype=self.obs_dtype).reshape(-1, *self.obs_shape),
                 "action": np.array([w[1] for w in window], dtype=self.action.dtype).reshape(-1, *self.action_shape),
                 "reward": np.array([w[2] for w in window], dtype=np.float64),
                 **({"last_next": last} if last is not None else {})}
                for window, last in zip(self._pending, self._last_next)]

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["capacity"]) != self.capacity:
            raise UsageError(f"checkpoint replay buffer holds {state['capacity']} transitions, this agent's holds {self.capacity}")
        size = int(state["size"])
        for name in ReplayBatch.FIELDS:
            saved = np.asarray(state[name])
            target = getattr(self, name)
            if saved.shape[1:] != target.shape[1:] or len(saved) != size:
                raise UsageError(f"checkpoint replay buffer field {name} has shape {saved.shape}, "
                                 f"this agent needs ({size}, {', '.join(map(str, target.shape[1:]))})")
            target[:size] = saved
        self.pos, self.size = int(state["pos"]), size
        self._load_pending(state)

    def _load_pending(self, state: dict[str, Any]) -> None:
        if len(state["pending"]) != self.num_envs:
            raise UsageError(f"checkpoint replay buffer was made for {len(state['pending'])} env(s), this one for {self.num_envs}")
        self._pending = [[(np.asarray(o), a.item() if np.ndim(a) == 0 else np.asarray(a), float(r))
                          for o, a, r in zip(p["obs"], p["action"], p["reward"])] for p in state["pending"]]
        self._last_next = [np.array(p["last_next"], copy=True) if p.get("last_next") is not None else None
                           for p in state["pending"]]
