"""The project's own worlds, vectorised natively (``--vector native``), step exactly as N single copies do."""

from __future__ import annotations

import numpy as np
import pytest

from llmagentos.core.errors import UsageError
from llmagentos.envs.make import make_env
from llmagentos.envs.vector_worlds import NativeVectorEnv

#: (id, env args, steps): each world once deterministic where it has randomness, and with slip/time limits
WORLDS = [
    ("llmagentos/GridWorld4x4-v0", {}, 300),
    ("llmagentos/WindyGridWorld-v0", {"max_episode_steps": 40}, 300),
    ("llmagentos/GridWorld-v0", {"size": [4, 5], "walls": [[1, 1], [2, 3]], "start": None, "slip": 0.3,
                                 "goals": [[3, 4, 1.0], [0, 4, -1.0]]}, 600),
    ("llmagentos/GoalGrid-v0", {"size": 4, "goal": [3, 2], "slip": 0.2, "append_task": True,
                                "max_episode_steps": 25}, 300),
    ("llmagentos/CartPoleFamily-v0", {"pole_length": 0.7, "gravity": 12.0, "force_mag": -8.0, "append_task": True}, 400),
    ("llmagentos/CartPoleFamily-v0", {"max_episode_steps": 30}, 200),
    ("llmagentos/PointNav-v0", {"goal": [0.2, -0.15], "append_task": True, "max_episode_steps": 40}, 300),
]


def _actions(env_id: str, obs: np.ndarray, rng: np.random.Generator, n: int) -> np.ndarray:
    if "PointNav" in env_id:  # copies 0, 1 wander (to the time limit), the others head for the goal, so episodes end
        noise = rng.normal(0, 0.004, size=(n, 2))
        noise[:2] = rng.uniform(-0.15, 0.15, size=(2, 2))  # sometimes past the clip
        return (obs[:, 2:] - obs[:, :2]) * rng.uniform(0.3, 1.5, size=(n, 1)) + noise
    return rng.integers(4 if "Grid" in env_id else 2, size=n)


@pytest.mark.parametrize(("env_id", "env_args", "steps"), WORLDS, ids=lambda v: str(v)[:40])
def test_native_vector_world_steps_as_n_single_copies(env_id, env_args, steps):
    n = 5
    native = make_env(env_id, env_args, num_envs=n, vector="native")
    copies = make_env(env_id, env_args, num_envs=n, vector="sync")
    assert isinstance(native, NativeVectorEnv)
    obs_n, _ = native.reset(seed=11)
    obs_s, _ = copies.reset(seed=11)
    np.testing.assert_array_equal(obs_n, obs_s)
    rng = np.random.default_rng(0)
    endings = {"terminated": 0, "truncated": 0}
    for _ in range(steps):
        actions = _actions(env_id, obs_s, rng, n)
        obs_n, reward_n, term_n, trunc_n, info_n = native.step(actions)
        obs_s, reward_s, term_s, trunc_s, info_s = copies.step(actions)
        np.testing.assert_array_equal(obs_n, obs_s)  # exact: the same arithmetic and the same random draws
        np.testing.assert_array_equal(reward_n, reward_s)
        np.testing.assert_array_equal(term_n, term_s)
        np.testing.assert_array_equal(trunc_n, trunc_s)
        done = term_s | trunc_s
        np.testing.assert_array_equal(info_n.get("_final_obs", np.zeros(n, bool)), info_s.get("_final_obs", done & False))
        for i in np.flatnonzero(done):  # same-step autoreset: the finished episode's last observation
            np.testing.assert_array_equal(info_n["final_obs"][i], info_s["final_obs"][i])
        endings["terminated"] += int(term_s.sum())
        endings["truncated"] += int((trunc_s & ~term_s).sum())
    # the comparison crossed episode boundaries (and time limits, where the world has a short one)
    assert endings["terminated"] >= n or endings["truncated"] >= n
    if env_args.get("max_episode_steps", 1000) <= 40:
        assert endings["truncated"] > 0


def test_native_vector_world_reseeds_and_continues_streams_as_sync():
    """A reset with a seed restarts every copy's stream; a reset without one continues it, as Env.reset does."""
    args = {"slip": 0.5, "start": None}
    native = make_env("llmagentos/GridWorld-v0", args, num_envs=3, vector="native")
    copies = make_env("llmagentos/GridWorld-v0", args, num_envs=3, vector="sync")
    for seed in (1, None, 1, None):
        np.testing.assert_array_equal(native.reset(seed=seed)[0], copies.reset(seed=seed)[0])
        for _ in range(70):
            actions = np.arange(3) % 4
            np.testing.assert_array_equal(native.step(actions)[0], copies.step(actions)[0])


def test_native_vector_refuses_what_it_does_not_implement():
    with pytest.raises(UsageError, match="no native vector implementation"):
        make_env("FrozenLake-v1", num_envs=2, vector="native")
    with pytest.raises(UsageError, match="no native vector implementation with wrappers or env args"):
        make_env("CartPole-v1", {"sutton_barto_reward": True}, num_envs=2, vector="native")
    with pytest.raises(UsageError, match="no native vector implementation with wrappers or env args"):
        make_env("llmagentos/PointNav-v0", num_envs=2, vector="native",
                 wrappers=[{"name": "ClipReward", "args": {"min_reward": -1}}])


@pytest.mark.parametrize(("env_id", "env_args", "algo"), [("CartPole-v1", {}, "ppo"),
                                                           ("llmagentos/GoalGrid-v0", {"one_hot": True, "size": 3, "goal": [1, 1], "slip": 0.6}, "dqn")])
def test_batched_greedy_evaluation_plays_the_episodes_serial_evaluation_plays(env_id, env_args, algo):
    """What the fast presets' batched evaluation rests on: copy i of the exact vector env plays the episode a
    single env reset with seed + i plays, so the returns are evaluate()'s."""
    import torch

    from llmagentos.core.loop import evaluate, evaluate_vector
    from llmagentos.envs.vector import exact_vector_env
    from llmagentos.kernel.run import make_agent

    torch.manual_seed(0)
    single = make_env(env_id, env_args)
    agent = make_agent(algo, single, seed=3)
    vector = exact_vector_env(env_id, env_args, 6)
    cap = single.spec.max_episode_steps
    serial = evaluate(agent, single, 6, seed=40, step_cap=cap)
    assert evaluate_vector(agent, vector, seed=40, step_cap=cap) == serial
    assert len(set(serial)) > 1  # the episodes differ, so a mix-up of copies and seeds would show
    assert exact_vector_env("FrozenLake-v1", {}, 6) is None
    assert exact_vector_env("CartPole-v1", {}, 6, wrappers=[lambda env: env]) is None
