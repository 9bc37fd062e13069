"""A replay memory that stores each uint8 frame once: the DQN memory for stacked pixel observations.

A frame-stacked observation s_t = (x_{t-3}, x_{t-2}, x_{t-1}, x_t) shares three frames with s_{t+1}, and s'
of one row is s of the next; storing s and s' whole (as :class:`~llmagentos.learners.common.buffers.ReplayBuffer`
does) keeps every frame eight times. :class:`FrameReplayBuffer` keeps one ring of frames and, per row, the
ids of the frames of s and of s'. A new stack's frames are looked up among the frames written lately (by
content, compared byte for byte, so the memory never changes an observation) and only unseen ones are
written: in an episode that is one frame per step, 84·84 bytes on Atari, plus 2 × 4 ids of 8 bytes.

What it returns is exactly what the plain memory returns on the same transitions (the tests check it on a
recorded episode), whatever the stacking wrapper does at an episode's start (repeat the first frame, or
pad with zeros). When short episodes write more than one frame per row, the frame ring holds a few rows
fewer than ``capacity``: the oldest rows are dropped before any of their frames is overwritten.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from llmagentos.core.errors import UsageError
from llmagentos.learners.common.buffers import ReplayBatch, ReplayBuffer


class FrameReplayBuffer(ReplayBuffer):
    """:class:`ReplayBuffer` with s and s' kept as ids into one ring of distinct frames.

    ``frame_axis`` is the axis of an observation along which its frames are stacked (0 for channel-first
    stacks such as Gymnasium's ``FrameStackObservation`` of grey 84×84 frames, -1 for channel-last).
    """

    def __init__(self, capacity: int, obs_shape: Sequence[int], obs_dtype: Any = np.uint8, action_shape: Sequence[int] = (),
                 action_dtype: Any = np.int64, n_step: int = 1, gamma: float = 0.99, num_envs: int = 1,
                 frame_axis: int = 0) -> None:
        if len(obs_shape) < 2:
            raise UsageError(f"the frame-once replay memory needs stacked frames, got observations of shape {tuple(obs_shape)}")
        self.frame_axis = frame_axis % len(obs_shape)
        super().__init__(capacity, obs_shape, obs_dtype, action_shape, action_dtype, n_step, gamma, num_envs)

    def _allocate_observations(self) -> None:
        shape = list(self.obs_shape)
        self.stack = shape.pop(self.frame_axis)
        self.frame_shape = tuple(shape)
        #: how far back (in frames) a new stack's frames are looked for: a few steps of every sub-env
        self.window = 2 * self.num_envs * (self.stack + self.n_step + 1)
        self.frame_capacity = self.capacity + 2 * self.window
        self.frames = np.zeros((self.frame_capacity, *self.frame_shape), dtype=self.obs_dtype)
        self.frames_written = 0  # global id of the next frame; frame f lives at f % frame_capacity
        self.obs_ids = np.zeros((self.capacity, self.stack), dtype=np.int64)
        self.next_ids = np.zeros_like(self.obs_ids)
        self.filled = 0  # rows ever written, up to capacity
        self._recent: dict[bytes, int] = {}  # frame bytes -> newest id holding them

    # -- writing --------------------------------------------------------------------------------
    def _frame_id(self, frame: np.ndarray) -> int:
        key = frame.tobytes()
        known = self._recent.get(key)
        if known is not None and known >= self.frames_written - self.window:
            return known
        f = self.frames_written
        self.frames[f % self.frame_capacity] = frame
        self.frames_written += 1
        self._recent[key] = f
        if len(self._recent) > 4 * self.window:  # forget entries too old to be reused
            cutoff = self.frames_written - self.window
            self._recent = {k: v for k, v in self._recent.items() if v >= cutoff}
        return f

    def _stack_ids(self, observation: np.ndarray) -> np.ndarray:
        frames = np.moveaxis(np.asarray(observation, dtype=self.obs_dtype), self.frame_axis, 0)
        return np.fromiter((self._frame_id(frame) for frame in frames), dtype=np.int64, count=self.stack)

    def _write(self, obs, action, reward, next_obs, terminated, n_steps) -> None:
        for i in range(len(obs)):
            p = self.pos
            self.obs_ids[p] = self._stack_ids(obs[i])
            self.next_ids[p] = self._stack_ids(next_obs[i])
            self.action[p], self.reward[p], self.terminated[p], self.n_steps[p] = action[i], reward[i], terminated[i], n_steps[i]
            self.pos = (p + 1) % self.capacity
            self.size = min(self.size + 1, self.capacity)
            self.filled = min(self.filled + 1, self.capacity)
            self._drop_rows_losing_frames()

    def _drop_rows_losing_frames(self) -> None:
        """Drop the oldest rows while their frames are near being overwritten (a newer row's frames are at
        most ``window`` older than its own writing, so a margin of ``window`` keeps every kept row whole)."""
        oldest_safe = self.frames_written - self.frame_capacity + self.window
        while self.size > 1:
            first = (self.pos - self.size) % self.capacity
            if min(self.obs_ids[first].min(), self.next_ids[first].min()) >= oldest_safe:
                return
            self.size -= 1

    # -- reading --------------------------------------------------------------------------------
    def _rows(self, idx: np.ndarray) -> np.ndarray:
        """Ring positions of the ``idx``-th live rows (0 = oldest; the plain memory's positions until rows are dropped)."""
        return idx if self.size == self.capacity else (self.pos - self.size + idx) % self.capacity

    def _stacks(self, ids: np.ndarray) -> np.ndarray:
        stacks = self.frames[ids % self.frame_capacity]  # (rows, stack, *frame_shape)
        return np.moveaxis(stacks, 1, 1 + self.frame_axis) if self.frame_axis else stacks

    def sample(self, batch_size: int, rng: np.random.Generator, out: ReplayBatch | None = None) -> ReplayBatch:
        if self.size == 0:
            raise ValueError("cannot sample from an empty replay buffer")
        rows = self._rows(rng.integers(0, self.size, size=batch_size))
        out = out or self.make_batch(batch_size)
        out.obs[...] = self._stacks(self.obs_ids[rows])
        out.next_obs[...] = self._stacks(self.next_ids[rows])
        for name in ("action", "reward", "terminated", "n_steps"):
            np.take(getattr(self, name), rows, axis=0, out=getattr(out, name))
        return out

    def gather(self, positions: np.ndarray) -> dict[str, np.ndarray]:
        """The rows at ring ``positions`` with their observations rebuilt, as the plain memory's arrays would hold them."""
        rows = np.asarray(positions)
        return {"obs": self._stacks(self.obs_ids[rows]), "action": self.action[rows].copy(), "reward": self.reward[rows].copy(),
                "next_obs": self._stacks(self.next_ids[rows]), "terminated": self.terminated[rows].copy(),
                "n_steps": self.n_steps[rows].copy()}

    def live(self) -> dict[str, np.ndarray]:
        """Every live row, oldest first."""
        return self.gather(self._rows(np.arange(self.size)) if self.size < self.capacity else (self.pos + np.arange(self.size)) % self.capacity)

    def recent(self, n: int, rng: np.random.Generator, recent: int) -> dict[str, np.ndarray] | None:
        k = min(int(recent), self.size)
        if k <= 0:
            return None
        return self.gather((self.pos - 1 - rng.choice(k, size=min(n, k), replace=False)) % self.capacity)

    def nbytes_per_row(self) -> float:
        """Bytes of memory per stored transition when the memory is full (frames, ids, and the other fields)."""
        arrays = (self.frames, self.obs_ids, self.next_ids, self.action, self.reward, self.terminated, self.n_steps)
        return sum(a.nbytes for a in arrays) / self.capacity

    # -- persistence ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        kept = min(self.frames_written, self.frame_capacity)
        state: dict[str, Any] = {"frames": self.frames[:kept].copy(), "obs_ids": self.obs_ids[: self.filled].copy(),
                                 "next_ids": self.next_ids[: self.filled].copy()}
        state.update({name: getattr(self, name)[: self.filled].copy() for name in ("action", "reward", "terminated", "n_steps")})
        state.update(pos=self.pos, size=self.size, filled=self.filled, frames_written=self.frames_written,
                     capacity=self.capacity, frame_memory=True, pending=self._pending_state())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if int(state["capacity"]) != self.capacity or not state.get("frame_memory"):
            raise UsageError(f"checkpoint replay buffer ({state['capacity']} transitions"
                             f"{', frame-once' if state.get('frame_memory') else ', plain'}) does not match this agent's "
                             f"frame-once memory of {self.capacity}")
        frames = np.asarray(state["frames"])
        if frames.shape[1:] != self.frame_shape or len(frames) > self.frame_capacity:
            raise UsageError(f"checkpoint replay frames have shape {frames.shape}, this agent's are {self.frame_shape}")
        self.frames[: len(frames)] = frames
        self.filled = int(state["filled"])
        for name in ("obs_ids", "next_ids", "action", "reward", "terminated", "n_steps"):
            saved = np.asarray(state[name])
            if saved.shape[1:] != getattr(self, name).shape[1:] or len(saved) != self.filled:
                raise UsageError(f"checkpoint replay buffer field {name} has shape {saved.shape}")
            getattr(self, name)[: self.filled] = saved
        self.pos, self.size, self.frames_written = int(state["pos"]), int(state["size"]), int(state["frames_written"])
        # the look-up table of recent frames, rebuilt oldest first so the newest id of equal frames wins
        first = max(0, self.frames_written - self.window)
        self._recent = {self.frames[f % self.frame_capacity].tobytes(): f for f in range(first, self.frames_written)}
        self._load_pending(state)


def make_replay(kind: str, capacity: int, adapter: Any, n_step: int, gamma: float, num_envs: int) -> ReplayBuffer:
    """DQN's replay memory D for ``adapter``'s observations: ``frames`` (frame-once), ``plain``, or ``auto``
    (frame-once for a lone uint8 image, plain otherwise)."""
    image = not adapter.flat and adapter.parts[0].kind == "image" and adapter.dtype == np.uint8 and len(adapter.shape) == 3
    if kind == "frames" and not image:
        raise UsageError("replay=frames needs image observations (a 3-D uint8 Box); use replay=plain or auto")
    if kind == "frames" or (kind == "auto" and image):
        return FrameReplayBuffer(capacity, adapter.shape, np.uint8, n_step=n_step, gamma=gamma, num_envs=num_envs,
                                 frame_axis=-1 if adapter.parts[0].channels_last else 0)
    return ReplayBuffer(capacity, adapter.shape, adapter.dtype, n_step=n_step, gamma=gamma, num_envs=num_envs)
