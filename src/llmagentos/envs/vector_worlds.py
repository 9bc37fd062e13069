"""Native numpy vector versions of the project's own worlds (``--vector native``), built by :mod:`llmagentos.envs.vector`.

Each steps ``num_envs`` copies of one world with array arithmetic and, unlike :class:`~llmagentos.envs.vector.
VectorCartPole`, gives every copy its own random stream seeded as Gymnasium's ``SyncVectorEnv`` seeds its copies
(``seed + i``), drawing from it exactly what the single env draws. So for the same seed and actions a native vector
env steps as ``num_envs`` copies of ``gymnasium.make(id)`` do, step for step: the same observations, rewards,
terminations, truncations (the registered time limit, as Gymnasium's ``TimeLimit``) and same-step autoresets
(the finished copy's last observation in ``info["final_obs"]``, flagged by ``info["_final_obs"]``). Infos carry
nothing else (no per-copy ``"task"`` or ``"prob"``).

* :class:`VectorTabular`: any :class:`~llmagentos.envs.tabular.TabularEnv` (the grid worlds, the goal grid),
  read from its transition table;
* :class:`VectorCartPoleFamily`: the physics-varied CartPole family;
* :class:`VectorPointNav`: 2-D point navigation.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium.utils import seeding
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

#: uniforms drawn ahead per copy (one ``rng.random(B)`` equals B calls of ``rng.random()``)
UNIFORM_BLOCK = 64


class NativeVectorEnv(VectorEnv):
    """What every native world shares: per-copy random streams, the time limit and same-step autoreset.

    A subclass fills :meth:`_start` (fresh episodes for some copies), :meth:`_advance` (one step of every copy:
    rewards and terminations) and :meth:`_observe` (the observations of some copies).
    """

    metadata = {"render_modes": [], "autoreset_mode": AutoresetMode.SAME_STEP}

    def __init__(self, single: Any, num_envs: int, max_episode_steps: int | None) -> None:
        self.num_envs = int(num_envs)
        self.max_episode_steps = max_episode_steps
        self.single_observation_space = single.observation_space
        self.single_action_space = single.action_space
        self.observation_space = batch_space(self.single_observation_space, self.num_envs)
        self.action_space = batch_space(self.single_action_space, self.num_envs)
        self.rngs: list[np.random.Generator | None] = [None] * self.num_envs
        self.elapsed = np.zeros(self.num_envs, dtype=np.int64)
        self.all = np.arange(self.num_envs)

    def reset(self, *, seed: int | list[int | None] | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed if isinstance(seed, int) else None)
        seeds = [seed + i for i in range(self.num_envs)] if isinstance(seed, int) else (seed or [None] * self.num_envs)
        for i, copy_seed in enumerate(seeds):
            if copy_seed is not None or self.rngs[i] is None:  # as Env.reset: no seed keeps the copy's stream
                self.rngs[i], _ = seeding.np_random(copy_seed)
                self._reseeded(i)
        self.elapsed[:] = 0
        self._start(self.all)
        return self._observe(self.all), {}

    def step(self, actions: Any):
        reward, terminated = self._advance(np.asarray(actions))
        self.elapsed += 1
        if self.max_episode_steps is None:
            truncated = np.zeros(self.num_envs, dtype=bool)
        else:  # as Gymnasium's TimeLimit: truncated at the limit, also when terminated there
            truncated = self.elapsed >= self.max_episode_steps
        obs = self._observe(self.all)
        done = terminated | truncated
        info: dict[str, Any] = {}
        if done.any():  # same-step autoreset: the last observation goes to info, a fresh start into obs
            info = {"final_obs": obs.copy(), "_final_obs": done}
            finished = np.flatnonzero(done)
            self._start(finished)
            self.elapsed[finished] = 0
            obs[finished] = self._observe(finished)
        return obs, reward, terminated, truncated, info

    def _reseeded(self, i: int) -> None:
        """Copy ``i`` has a new random stream (subclasses drop what they drew ahead from the old one)."""

    def _start(self, copies: np.ndarray) -> None:
        raise NotImplementedError

    def _advance(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

    def _observe(self, copies: np.ndarray) -> np.ndarray:
        raise NotImplementedError


class VectorTabular(NativeVectorEnv):
    """Copies of one :class:`~llmagentos.envs.tabular.TabularEnv`, stepped through its table as arrays.

    The single env draws one uniform per reset (``choice(nS, p=initial)``) and one per step from a state-action
    pair with several outcomes (``choice(k, p=probs)``, i.e. the first index whose cumulative probability
    exceeds the uniform); this draws the same uniforms from each copy's stream, ``UNIFORM_BLOCK`` at a time.
    """

    def __init__(self, single: Any, num_envs: int, max_episode_steps: int | None) -> None:
        super().__init__(single, num_envs, max_episode_steps)
        n_states, n_actions = single.nS, single.nA
        width = max(len(single.P[s][a]) for s in range(n_states) for a in range(n_actions))
        self.cdf = np.full((n_states, n_actions, width), np.inf)  # padding never lies below a uniform
        self.next_state = np.zeros((n_states, n_actions, width), dtype=np.int64)
        self.reward = np.zeros((n_states, n_actions, width))
        self.terminal = np.zeros((n_states, n_actions, width), dtype=bool)
        self.several = np.zeros((n_states, n_actions), dtype=bool)
        for s in range(n_states):
            for a in range(n_actions):
                outcomes = single.P[s][a]
                probs = np.array([o[0] for o in outcomes], dtype=np.float64)
                cdf = probs.cumsum()
                self.cdf[s, a, :len(outcomes)] = cdf / cdf[-1]  # as Generator.choice normalises
                for k, (_, next_state, reward, terminal) in enumerate(outcomes):
                    self.next_state[s, a, k], self.reward[s, a, k], self.terminal[s, a, k] = next_state, reward, terminal
                self.several[s, a] = len(outcomes) > 1
        start_cdf = np.asarray(single.initial_distribution, dtype=np.float64).cumsum()
        self.start_cdf = start_cdf / start_cdf[-1]
        self.observations = self._observation_table(single)
        self.state = np.zeros(self.num_envs, dtype=np.int64)
        self.uniforms = np.zeros((self.num_envs, UNIFORM_BLOCK))
        self.cursor = np.full(self.num_envs, UNIFORM_BLOCK)

    @staticmethod
    def _observation_table(single: Any) -> np.ndarray | None:
        """state -> observation rows when the env observes more than its state index (the goal grid's one-hot)."""
        if not hasattr(single, "_obs") or not getattr(single, "one_hot", False):
            return None
        return np.stack([single._obs(s) for s in range(single.nS)]).astype(np.float32)

    def _reseeded(self, i: int) -> None:
        self.cursor[i] = UNIFORM_BLOCK

    def _draw(self, copies: np.ndarray) -> np.ndarray:
        """The next uniform of each of ``copies``' streams."""
        for i in copies[self.cursor[copies] >= UNIFORM_BLOCK]:
            self.uniforms[i] = self.rngs[i].random(UNIFORM_BLOCK)
            self.cursor[i] = 0
        u = self.uniforms[copies, self.cursor[copies]]
        self.cursor[copies] += 1
        return u

    def _start(self, copies: np.ndarray) -> None:
        u = self._draw(copies)
        self.state[copies] = (self.start_cdf[None, :] <= u[:, None]).sum(axis=1)  # searchsorted(u, side="right")

    def _advance(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s, a = self.state, actions.astype(np.int64)
        outcome = np.zeros(self.num_envs, dtype=np.int64)
        random = np.flatnonzero(self.several[s, a])
        if len(random):
            u = self._draw(random)
            outcome[random] = (self.cdf[s[random], a[random]] <= u[:, None]).sum(axis=1)
        reward, terminated = self.reward[s, a, outcome], self.terminal[s, a, outcome]
        self.state = self.next_state[s, a, outcome]
        return reward, terminated

    def _observe(self, copies: np.ndarray) -> np.ndarray:
        states = self.state[copies]
        return states.copy() if self.observations is None else self.observations[states]


class VectorCartPoleFamily(NativeVectorEnv):
    """Copies of one CartPole-family task (Gymnasium's CartPole equations with the task's physics), Euler-integrated."""

    def __init__(self, single: Any, num_envs: int, max_episode_steps: int | None) -> None:
        super().__init__(single, num_envs, max_episode_steps)
        self.physics = single  # the single env's constants (gravity, masses, lengths, force, thresholds, tau)
        self.sutton_barto = bool(getattr(single, "_sutton_barto_reward", False))
        self.task = single._vector if getattr(single, "append_task", False) else None  # CartPole-v1's env has none
        self.state = np.zeros((self.num_envs, 4))

    def _start(self, copies: np.ndarray) -> None:
        for i in copies:  # as CartPoleEnv.reset: one uniform(-0.05, 0.05, 4) per episode from the copy's stream
            self.state[i] = self.rngs[i].uniform(low=-0.05, high=0.05, size=(4,))

    def _advance(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        p = self.physics  # the same expressions, in the same order, as CartPoleEnv.step, so results agree bit for bit
        x, x_dot, theta, theta_dot = self.state.T
        force = np.where(actions == 1, p.force_mag, -p.force_mag)
        costheta, sintheta = np.cos(theta), np.sin(theta)
        temp = (force + p.polemass_length * np.square(theta_dot) * sintheta) / p.total_mass
        thetaacc = (p.gravity * sintheta - costheta * temp) / (
            p.length * (4.0 / 3.0 - p.masspole * np.square(costheta) / p.total_mass))
        xacc = temp - p.polemass_length * thetaacc * costheta / p.total_mass
        if p.kinematics_integrator == "euler":
            x, x_dot, theta, theta_dot = x + p.tau * x_dot, x_dot + p.tau * xacc, theta + p.tau * theta_dot, \
                theta_dot + p.tau * thetaacc
        else:  # semi-implicit Euler
            x_dot = x_dot + p.tau * xacc
            x = x + p.tau * x_dot
            theta_dot = theta_dot + p.tau * thetaacc
            theta = theta + p.tau * theta_dot
        self.state = np.stack([x, x_dot, theta, theta_dot], axis=1)
        terminated = (x < -p.x_threshold) | (x > p.x_threshold) | (theta < -p.theta_threshold_radians) \
            | (theta > p.theta_threshold_radians)
        if self.sutton_barto:
            return np.where(terminated, -1.0, 0.0), terminated
        return np.ones(self.num_envs), terminated

    def _observe(self, copies: np.ndarray) -> np.ndarray:
        obs = self.state[copies].astype(np.float32)
        if self.task is None:
            return obs
        return np.concatenate([obs, np.broadcast_to(self.task, (len(copies), len(self.task)))], axis=1)


class VectorPointNav(NativeVectorEnv):
    """Copies of one PointNav task: every copy starts at the origin and moves by its clipped action."""

    def __init__(self, single: Any, num_envs: int, max_episode_steps: int | None) -> None:
        from llmagentos.envs.pointnav import MAX_STEP

        super().__init__(single, num_envs, max_episode_steps)
        self.goal = np.asarray(single.goal, dtype=np.float64)
        self.max_step = MAX_STEP
        self.append_task = bool(single.append_task)
        self.position = np.zeros((self.num_envs, 2))

    def _start(self, copies: np.ndarray) -> None:
        self.position[copies] = 0.0

    def _advance(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        step = np.clip(actions.astype(np.float64).reshape(self.num_envs, 2), -self.max_step, self.max_step)
        self.position = self.position + step
        dx, dy = (self.position - self.goal).T
        reward = -np.sqrt(dx * dx + dy * dy)  # r = −‖p − g‖
        return reward, (np.abs(dx) < 0.01) & (np.abs(dy) < 0.01)

    def _observe(self, copies: np.ndarray) -> np.ndarray:
        position = self.position[copies]
        if self.append_task:
            position = np.concatenate([position, np.broadcast_to(self.goal, (len(copies), 2))], axis=1)
        return position.astype(np.float32)
