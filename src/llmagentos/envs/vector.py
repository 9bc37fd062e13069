"""Vector envs: ``num_envs`` copies of a world stepped by one call, the one place the project builds them.

Three ways (``--vector``, a spec's ``vector``), all with same-step autoreset (a finished env is reset in the
step that ends it; its true last observation is in ``info["final_obs"]``, flagged by ``info["_final_obs"]``),
which is what the kernel's loop expects:

* ``sync`` (the default): the copies in this process, one after another (Gymnasium's ``SyncVectorEnv``);
* ``async``: each copy in a subprocess (``AsyncVectorEnv``), for worlds expensive enough that several cores help;
* ``native``: one numpy implementation that steps every copy at once with array arithmetic, hundreds of envs
  per call for the cost of a few: CartPole-v1/v0 (:class:`VectorCartPole`, whose copies share one random
  stream, so its episodes differ from ``sync``'s for the same seed) and the project's own grid worlds, goal
  grid, CartPole family and PointNav (:mod:`llmagentos.envs.vector_worlds`, which step exactly as ``sync``
  does for the same seed and actions).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from llmagentos.core.errors import UsageError

VECTOR_MODES = ("sync", "async", "native")


def make_vector_env(make_one: Callable[[], Any], num_envs: int, mode: str = "sync", gym_id: str | None = None,
                    env_args: dict[str, Any] | None = None, wrappers: list[Callable[[Any], Any]] | None = None) -> Any:
    """A same-step-autoreset vector env of ``num_envs`` copies of ``make_one()`` by ``mode`` (see the module doc).

    ``gym_id`` (the world's Gymnasium id, if it has one) picks Gymnasium's own sync construction or the native
    implementation; ``wrappers`` are the functions ``make_one`` applies to each copy (a native env takes none).
    """
    import gymnasium as gym
    from gymnasium.vector import AsyncVectorEnv, SyncVectorEnv

    if mode not in VECTOR_MODES:
        raise UsageError(f"unknown vector mode {mode!r}; choose one of: {', '.join(VECTOR_MODES)}")
    if mode == "native":
        native = NATIVE.get(gym_id or "")
        refused = wrappers or (env_args and gym_id in FIXED_NATIVE)
        if native is None or refused:
            why = "with wrappers or env args" if native is not None else "of its own"
            raise UsageError(f"{gym_id or 'this world'} has no native vector implementation {why} "
                             f"(native: {', '.join(NATIVE)}, without --wrapper, and without --env-arg for "
                             f"{', '.join(FIXED_NATIVE)}); use --vector sync or async")
        return native(num_envs, dict(env_args or {}))
    if mode == "async":
        return AsyncVectorEnv([_worker_maker(make_one)] * num_envs, autoreset_mode=AutoresetMode.SAME_STEP)
    if gym_id is not None:
        return gym.make_vec(gym_id, num_envs=num_envs, vectorization_mode="sync", wrappers=wrappers or None,
                            vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP}, **(env_args or {}))
    return SyncVectorEnv([make_one] * num_envs, autoreset_mode=AutoresetMode.SAME_STEP)


def _worker_maker(make_one: Callable[[], Any]) -> Callable[[], Any]:
    """``make_one`` run in an async worker after restoring SIGTERM's default there: a forked worker inherits the
    kernel's stop handler, which would turn the SIGTERM that closes it into a traceback."""

    def make() -> Any:
        import signal

        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        return make_one()

    return make


class VectorCartPole(VectorEnv):
    """``num_envs`` CartPoles (Barto, Sutton & Anderson, 1983) advanced together with numpy, same-step autoreset.

    The dynamics, bounds, rewards and time limit are Gymnasium's CartPole-v1 (v0: a 200-step limit): Euler
    integration of θ̈ = (g sin θ − cos θ·t) / (l (4/3 − m_p cos²θ / M)), ẍ = t − m_p l θ̈ cos θ / M with
    t = (F + m_p l θ̇² sin θ) / M; an episode terminates when |x| > 2.4 or |θ| > 12°, each step pays 1.
    """

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, num_envs: int, max_episode_steps: int = 500) -> None:
        self.num_envs = int(num_envs)
        self.max_episode_steps = int(max_episode_steps)
        high = np.array([4.8, np.inf, 24 * math.pi / 180, np.inf], dtype=np.float32)
        self.single_observation_space = spaces.Box(-high, high, dtype=np.float32)
        self.single_action_space = spaces.Discrete(2)
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.state = np.zeros((self.num_envs, 4))
        self.elapsed = np.zeros(self.num_envs, dtype=np.int64)

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> tuple[np.ndarray, dict]:
        super().reset(seed=seed)
        self.state = self.np_random.uniform(-0.05, 0.05, size=(self.num_envs, 4))
        self.elapsed[:] = 0
        return self.state.astype(np.float32), {}

    def step(self, actions: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict]:
        gravity, pole_mass, total_mass, half_length, tau = 9.8, 0.1, 1.1, 0.5, 0.02
        x, x_dot, theta, theta_dot = self.state.T
        force = np.where(np.asarray(actions) == 1, 10.0, -10.0)
        cos, sin = np.cos(theta), np.sin(theta)
        temp = (force + pole_mass * half_length * theta_dot**2 * sin) / total_mass
        theta_acc = (gravity * sin - cos * temp) / (half_length * (4.0 / 3.0 - pole_mass * cos**2 / total_mass))
        x_acc = temp - pole_mass * half_length * theta_acc * cos / total_mass
        self.state = np.stack([x + tau * x_dot, x_dot + tau * x_acc, theta + tau * theta_dot,
                               theta_dot + tau * theta_acc], axis=1)  # Euler step of (x, ẋ, θ, θ̇)
        self.elapsed += 1
        terminated = (np.abs(self.state[:, 0]) > 2.4) | (np.abs(self.state[:, 2]) > 12 * 2 * math.pi / 360)
        truncated = self.elapsed >= self.max_episode_steps  # as Gymnasium's TimeLimit: also when terminated
        obs = self.state.astype(np.float32)
        info: dict[str, Any] = {}
        done = terminated | truncated
        if done.any():  # same-step autoreset: the last observation goes to info, a fresh start into obs
            info = {"final_obs": obs.copy(), "_final_obs": done}
            self.state[done] = self.np_random.uniform(-0.05, 0.05, size=(int(done.sum()), 4))
            self.elapsed[done] = 0
            obs[done] = self.state[done].astype(np.float32)
        return obs, np.ones(self.num_envs), terminated, truncated, info


def _from_single(gym_id: str, vector_class: str) -> Callable[[int, dict[str, Any]], Any]:
    """A factory that makes one env of ``gym_id`` (so its arguments are checked and its tables built as usual) and
    copies it into ``vector_class`` of :mod:`llmagentos.envs.vector_worlds`, with the made env's time limit."""

    def make(num_envs: int, env_args: dict[str, Any]) -> Any:
        import gymnasium as gym

        import llmagentos.envs  # noqa: F401  (registers the ids)
        from llmagentos.envs import vector_worlds

        single = gym.make(gym_id, **env_args)
        return getattr(vector_worlds, vector_class)(single.unwrapped, num_envs, single.spec.max_episode_steps)

    return make


#: Gymnasium ids with a native vector implementation here: id -> ((num_envs, env_args) -> vector env)
NATIVE: dict[str, Callable[[int, dict[str, Any]], Any]] = {
    "CartPole-v1": lambda n, _: VectorCartPole(n, max_episode_steps=500),
    "CartPole-v0": lambda n, _: VectorCartPole(n, max_episode_steps=200),
    **{gym_id: _from_single(gym_id, "VectorTabular") for gym_id in (
        "llmagentos/GridWorld4x4-v0", "llmagentos/WindyGridWorld-v0", "llmagentos/GridWorld-v0", "llmagentos/GoalGrid-v0")},
    "llmagentos/CartPoleFamily-v0": _from_single("llmagentos/CartPoleFamily-v0", "VectorCartPoleFamily"),
    "llmagentos/PointNav-v0": _from_single("llmagentos/PointNav-v0", "VectorPointNav"),
}
#: native ids that take no env args (Gymnasium's CartPole: its variants are not implemented here)
FIXED_NATIVE = ("CartPole-v1", "CartPole-v0")


def exact_vector_env(gym_id: str | None, env_args: dict[str, Any] | None, num_envs: int,
                     wrappers: list[Any] | None = None) -> Any | None:
    """A native vector env of ``num_envs`` copies that steps exactly as that many ``gymnasium.make(gym_id)`` copies
    (copy i seeded seed + i), or None where there is none (other worlds, any wrapper). Batched greedy evaluation
    uses it: each copy plays the episode a single env reset with seed + i would. CartPole-v1/v0 get the
    CartPole family's implementation here (the same equations), whose copies own their random streams."""
    if wrappers or gym_id is None:
        return None
    if gym_id in FIXED_NATIVE:
        if env_args:
            return None
        return _from_single(gym_id, "VectorCartPoleFamily")(num_envs, {})
    native = NATIVE.get(gym_id)
    return None if native is None else native(num_envs, dict(env_args or {}))
