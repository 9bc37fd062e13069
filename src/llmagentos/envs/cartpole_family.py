"""CartPole with its physics as a task descriptor: pole length, pole mass, cart mass, gravity, force.

With the default descriptor the dynamics are exactly Gymnasium's CartPole-v1 (same equations, same
time limit 500 and reward threshold 475 at registration). ``info["task"]`` holds the descriptor;
``append_task=True`` appends the descriptor, as ratios to CartPole-v1's values, to the observation.

``force_mag`` is signed: its magnitude is the push's strength and a negative value reverses the push
direction (action 1 pushes the cart left, action 0 right), so a task's optimal actions are the mirror
image of CartPole-v1's — tasks one network can only hold together by reading the descriptor. Every
other parameter must be positive, and the force must not be zero.
"""

from __future__ import annotations

import importlib.util
from typing import Any

import numpy as np
from gymnasium import spaces
from gymnasium.envs.classic_control.cartpole import CartPoleEnv

from llmagentos.core.errors import UsageError

#: descriptor key -> CartPole-v1's value; ``pole_length`` is the full length (CartPoleEnv's ``length`` is half of it)
DEFAULTS: dict[str, float] = {"pole_length": 1.0, "pole_mass": 0.1, "cart_mass": 1.0, "gravity": 9.8, "force_mag": 10.0}
#: parameters whose sign means something (negative force_mag: action 1 pushes left); the others must be positive
SIGNED = frozenset({"force_mag"})


def task_vector(task: dict[str, float]) -> np.ndarray:
    """The descriptor as ratios to CartPole-v1 (all ones for the default task), in DEFAULTS' key order."""
    return np.array([task[k] / DEFAULTS[k] for k in DEFAULTS], dtype=np.float32)


class CartPoleFamily(CartPoleEnv):
    """Gymnasium's CartPole with configurable physics (every value must be positive)."""

    # CartPole draws with pygame; without it no render mode is offered (so check_env does not try one)
    metadata = {**CartPoleEnv.metadata,
                "render_modes": CartPoleEnv.metadata["render_modes"] if importlib.util.find_spec("pygame") else []}

    def __init__(self, pole_length: float = DEFAULTS["pole_length"], pole_mass: float = DEFAULTS["pole_mass"],
                 cart_mass: float = DEFAULTS["cart_mass"], gravity: float = DEFAULTS["gravity"],
                 force_mag: float = DEFAULTS["force_mag"], append_task: bool = False,
                 sutton_barto_reward: bool = False, render_mode: str | None = None) -> None:
        super().__init__(sutton_barto_reward=sutton_barto_reward, render_mode=render_mode)
        self.append_task = bool(append_task)
        if self.append_task:
            base = self.observation_space
            low = np.concatenate([base.low, np.full(len(DEFAULTS), -1e3, np.float32)])  # force_mag's ratio may be negative
            high = np.concatenate([base.high, np.full(len(DEFAULTS), 1e3, np.float32)])
            self.observation_space = spaces.Box(low, high, dtype=np.float32)
        self.set_task({"pole_length": pole_length, "pole_mass": pole_mass, "cart_mass": cart_mass,
                       "gravity": gravity, "force_mag": force_mag})

    def set_task(self, task: dict[str, Any]) -> None:
        """Change the physics (missing keys keep CartPole-v1's values)."""
        unknown = set(task) - set(DEFAULTS)
        if unknown:
            raise UsageError(f"CartPoleFamily has no parameter {sorted(unknown)[0]!r}; its parameters are {', '.join(DEFAULTS)}")
        values = {k: float(task.get(k, v)) for k, v in DEFAULTS.items()}
        bad = [k for k, v in values.items() if not np.isfinite(v) or not (v != 0 if k in SIGNED else v > 0)]
        if bad:
            kind = "a non-zero number (negative reverses the push)" if bad[0] in SIGNED else "a positive number"
            raise UsageError(f"CartPoleFamily's {bad[0]} must be {kind}, got {values[bad[0]]}")
        self.task = values
        self.gravity = values["gravity"]
        self.masscart = values["cart_mass"]
        self.masspole = values["pole_mass"]
        self.total_mass = self.masspole + self.masscart
        self.length = values["pole_length"] / 2.0  # CartPoleEnv's length is half the pole
        self.polemass_length = self.masspole * self.length
        self.force_mag = values["force_mag"]  # CartPoleEnv pushes +force_mag on action 1: a negative one mirrors the actions
        self._vector = task_vector(values)

    def _with_task(self, obs: np.ndarray) -> np.ndarray:
        return np.concatenate([obs, self._vector]).astype(np.float32) if self.append_task else obs

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        obs, info = super().reset(seed=seed, options=options)
        return self._with_task(obs), {**info, "task": dict(self.task)}

    def step(self, action):
        obs, reward, terminated, truncated, info = super().step(action)
        return self._with_task(obs), reward, terminated, truncated, {**info, "task": dict(self.task)}
