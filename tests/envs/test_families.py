"""Task families: every member passes Gymnasium's checker, descriptors round-trip, defaults match the originals."""

import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from llmagentos.core.errors import UsageError
from llmagentos.core.seeding import make_rng
from llmagentos.envs.families import FAMILIES, get_family

NAMES = sorted(FAMILIES)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("append_task", [False, True])
def test_family_members_pass_check_env_and_report_their_task(name, append_task):
    family = get_family(name)
    for task in family.tasks(2, seed=3):
        env = family.make(task, append_task=append_task)
        check_env(env.unwrapped)
        obs, info = env.reset(seed=0)
        assert info["task"] == family.validate(task)
        assert env.observation_space.contains(obs)
        if append_task and name == "minatar":  # a frame: the descriptor is constant planes after the game's channels
            np.testing.assert_allclose(np.asarray(obs)[0, 0, -family.vector_size:], family.vector(task))
            assert (np.asarray(obs)[..., -family.vector_size:] == np.asarray(obs)[:1, :1, -family.vector_size:]).all()
        elif append_task:
            np.testing.assert_allclose(np.asarray(obs)[-family.vector_size:], family.vector(task))
        _, _, _, _, info = env.step(env.action_space.sample())
        assert info["task"] == family.validate(task)


@pytest.mark.parametrize("name", NAMES)
def test_descriptor_round_trip_and_seeded_tasks(name):
    family = get_family(name)
    tasks = family.tasks(4, seed=7)
    assert tasks == family.tasks(4, seed=7)
    if name == "minatar":  # Continual MinAtar is the games in their fixed order, whatever the seed
        assert tasks == family.tasks(4, seed=8) == [{"game": g} for g in ("breakout", "space_invaders", "freeway", "asterix")]
    else:
        assert tasks != family.tasks(4, seed=8)
    for task in tasks:
        assert family.from_env_kwargs(family.to_env_kwargs(task)) == task
        assert family.sample(make_rng(0)) == family.sample(make_rng(0))
    # the env id finds the same family
    assert type(get_family(family.env_id)) is type(family)


def test_cartpole_family_default_is_cartpole_v1_step_for_step():
    ours, theirs = gym.make("llmagentos/CartPoleFamily-v0"), gym.make("CartPole-v1")
    assert ours.spec.max_episode_steps == theirs.spec.max_episode_steps == 500
    assert ours.spec.reward_threshold == theirs.spec.reward_threshold == 475
    a, _ = ours.reset(seed=11)
    b, _ = theirs.reset(seed=11)
    rng = np.random.default_rng(0)
    for _ in range(200):
        action = int(rng.integers(2))
        ra, rb = ours.step(action), theirs.step(action)
        np.testing.assert_array_equal(ra[0], rb[0])
        assert ra[1:4] == rb[1:4]
        if ra[2] or ra[3]:
            break
    # a longer pole falls more slowly: the angle after the same push is smaller
    long_pole = gym.make("llmagentos/CartPoleFamily-v0", pole_length=2.0)
    default = gym.make("llmagentos/CartPoleFamily-v0")
    for env in (long_pole, default):
        env.reset(seed=0)
        for _ in range(5):
            obs = env.step(1)[0]
        env.final_theta = obs[2]
    assert abs(long_pole.final_theta) < abs(default.final_theta)


def test_pointnav_follows_maml_navigation():
    env = gym.make("llmagentos/PointNav-v0", goal=[0.3, -0.2])
    assert env.spec.max_episode_steps == 100
    obs, info = env.reset(seed=0)
    np.testing.assert_array_equal(obs, [0.0, 0.0])
    obs, reward, terminated, _, _ = env.step(np.array([5.0, -5.0], dtype=np.float32))  # clipped to ±0.1
    np.testing.assert_allclose(obs, [0.1, -0.1], atol=1e-7)
    assert reward == pytest.approx(-np.hypot(0.2, 0.1))
    env.step(np.array([0.1, -0.1], dtype=np.float32))
    _, _, terminated, _, _ = env.step(np.array([0.1, 0.0], dtype=np.float32))
    assert terminated  # at (0.3, -0.2)
    with pytest.raises(UsageError):
        get_family("pointnav").validate({"goal": [0.9, 0.0]})


def test_goal_grid_tasks_are_distinct_and_goal_moves_the_reward():
    family = get_family("goal-grid", size=4)
    assert len(family.all_tasks()) == 15
    tasks = family.tasks(15, seed=0)
    assert len({tuple(t["goal"]) for t in tasks}) == 15
    with pytest.raises(UsageError):
        family.tasks(16, seed=0)
    env = family.make({"goal": [0, 1]})
    env.reset(seed=0)
    _, reward, terminated, _, _ = env.step(1)  # right, onto the goal
    assert terminated and reward == pytest.approx(0.99)
    with pytest.raises(UsageError):
        family.validate({"goal": [0, 0]})  # the start cell


def test_bad_family_and_env_arg_exit_2(tmp_path):
    with pytest.raises(UsageError):
        get_family("mountaincar")
    with pytest.raises(UsageError):
        get_family("cartpole").validate({"pole_length": -1})
    out = subprocess.run([sys.executable, "-m", "llmagentos.cli", "train", "--env", "llmagentos/CartPoleFamily-v0",
                          "--algo", "q-learning", "--steps", "10", "--env-arg", "gravity=-3", "--out", str(tmp_path / "r")],
                         capture_output=True, text=True)
    assert out.returncode == 2 and "gravity" in out.stderr
    assert not (tmp_path / "r").exists()


def test_env_arg_selects_a_grid_task(tmp_path):
    from llmagentos.jobs.train import train

    summary = train(env="llmagentos/GoalGrid-v0", algo="q-learning", steps=3000, seed=0, out=str(tmp_path / "r"),
                    env_args={"goal": [2, 3], "size": 4}, tensorboard=False)
    # optimal: 5 moves of −0.01 then +1 → 0.95
    assert summary["eval"]["mean_return"] == pytest.approx(0.95)
