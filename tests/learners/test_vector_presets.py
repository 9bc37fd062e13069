"""Vectorised acting and learning: the native vector CartPole, the numpy fast path, --vector, --preset fast."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch

from helpers import run_cli
from llmagentos.config import validate_spec
from llmagentos.core.errors import UsageError
from llmagentos.envs.make import make_env
from llmagentos.envs.vector import VectorCartPole
from llmagentos.jobs.train import train
from llmagentos.kernel.run import VOLATILE_KEYS, TrainSpec
from llmagentos.learners.dqn import DQN
from llmagentos.learners.policy_gradient import PPO


def test_native_vector_cartpole_steps_as_n_gymnasium_cartpoles():
    n = 6
    vec = VectorCartPole(n)
    obs, _ = vec.reset(seed=3)
    singles = [gym.make("CartPole-v1") for _ in range(n)]
    for i, env in enumerate(singles):
        env.reset(seed=i)
        env.unwrapped.state = vec.state[i].copy()  # start every pair from the same state
    rng = np.random.default_rng(0)
    finished = 0
    for _ in range(300):
        actions = rng.integers(2, size=n)
        obs, reward, terminated, truncated, info = vec.step(actions)
        for i, env in enumerate(singles):
            s_obs, s_reward, s_term, _, _ = env.step(int(actions[i]))
            assert (terminated[i], reward[i]) == (s_term, s_reward)
            if terminated[i]:  # same-step autoreset: the last observation is in info, obs is the new start
                finished += 1
                assert info["_final_obs"][i]
                np.testing.assert_allclose(info["final_obs"][i], s_obs, rtol=1e-5, atol=1e-6)
                env.reset()
                env.unwrapped.state = vec.state[i].copy()
            else:
                np.testing.assert_allclose(obs[i], s_obs, rtol=1e-5, atol=1e-6)
    assert finished >= n  # the comparison crossed episode boundaries


def test_native_vector_cartpole_truncates_at_its_time_limit():
    vec = VectorCartPole(2, max_episode_steps=3)
    vec.reset(seed=0)
    for _ in range(2):
        assert not vec.step(np.zeros(2, dtype=np.int64))[3].any()
    _, _, _, truncated, info = vec.step(np.zeros(2, dtype=np.int64))
    assert truncated.all() and info["_final_obs"].all() and (vec.elapsed == 0).all()


def test_native_vector_mode_is_refused_for_a_world_without_one():
    with pytest.raises(UsageError, match="no native vector implementation"):
        make_env("FrozenLake-v1", num_envs=2, vector="native")


def test_acting_through_numpy_matches_the_torch_network():
    env = make_env("CartPole-v1")
    obs = np.random.default_rng(0).normal(size=(16, 4)).astype(np.float32)
    dqn = DQN(env.observation_space, env.action_space, seed=0)
    with torch.no_grad():
        want = dqn.q_net(torch.from_numpy(obs)).argmax(1).numpy()
    np.testing.assert_array_equal(dqn.act(obs, explore=False), want)
    assert dqn.act(obs[0], explore=False) == want[0]
    ppo = PPO(env.observation_space, env.action_space, seed=0)
    ppo.act(obs)  # the numpy path samples and records (obs, a, log π(a|s), V(s))
    _, actions, log_prob, values = ppo._pending
    with torch.no_grad():
        dist, v = ppo.net(torch.from_numpy(obs))
        np.testing.assert_allclose(log_prob, dist.log_prob(torch.from_numpy(actions)).numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(values, v.numpy(), rtol=1e-5, atol=1e-6)


def _result(summary: dict) -> dict:
    return {k: v for k, v in summary.items() if k not in VOLATILE_KEYS and k != "curve"}


def test_async_vector_envs_give_the_same_run_as_sync(tmp_path):
    runs = {mode: train(TrainSpec(env="CartPole-v1", algo="a2c", steps=240, seed=1, config={"num_envs": 2},
                                  vector=mode, eval_episodes=1, tensorboard=False, out=str(tmp_path / mode)))
            for mode in ("sync", "async")}
    assert runs["sync"]["steps"] == 240
    assert _result(runs["async"]) == _result(runs["sync"])


def test_the_fast_ppo_preset_learns_cartpole_on_native_vector_envs(tmp_path, capsys):
    code, out, _ = run_cli(capsys, "train", "--env", "CartPole-v1", "--algo", "ppo", "--preset", "fast",
                        "--steps", "20480", "--eval-every", "20480", "--eval-episodes", "5", "--seed", "2",
                        "--quiet", "--json", "--out", str(tmp_path / "run"))
    summary = json.loads(out)
    assert code == 0 and summary["config"]["num_envs"] == 16 and summary["config"]["n_epochs"] == 4
    assert summary["config"]["activation"] == "relu"
    assert summary["eval"]["mean_return"] >= 400  # a random policy scores ~20
    job = json.loads((tmp_path / "run" / "job.json").read_text())
    assert job["preset"] == "fast"


def test_presets_are_listed_and_bad_ones_refused_with_exit_2(tmp_path, capsys):
    code, out, _ = run_cli(capsys, "algos", "ppo", "dqn", "q-learning", "--json")
    listed = {a["name"]: [p["name"] for p in a["presets"]] for a in json.loads(out)["algorithms"]}
    assert code == 0 and listed == {"ppo": ["fast"], "dqn": ["fast"], "q-learning": []}
    code, out, _ = run_cli(capsys, "algos", "ppo")
    assert "preset fast (CartPole-v1; vector native)" in out
    for argv, why in ((["--env", "CartPole-v1", "--algo", "ppo", "--preset", "fastest"], "unknown preset"),
                      (["--env", "Acrobot-v1", "--algo", "ppo", "--preset", "fast"], "tuned for CartPole-v1"),
                      (["--env", "FrozenLake-v1", "--algo", "q-learning", "--preset", "fast"], "has no 'fast' preset"),
                      (["--env", "CartPole-v1", "--algo", "ppo", "--vector", "threads"], "")):
        code, _, err = run_cli(capsys, "train", *argv, "--steps", "10", "--out", str(tmp_path / "no"))
        assert code == 2 and why in err, (argv, err)
    assert not (tmp_path / "no").exists()


def test_a_spec_takes_preset_and_vector(tmp_path):
    block = {"env": "CartPole-v1", "algo": "dqn", "steps": 100, "preset": "fast", "vector": "sync"}
    spec = validate_spec({"out": str(tmp_path / "s"), "train": block})
    assert spec.jobs[0].block["preset"] == "fast" and spec.jobs[0].block["vector"] == "sync"
    with pytest.raises(UsageError, match="unknown preset"):
        validate_spec({"out": str(tmp_path / "s"), "train": {**block, "preset": "quick"}})


@pytest.mark.parametrize("algo", ["a2c", "reinforce", "dqn"])
def test_every_fast_preset_trains_on_its_native_vector_env(tmp_path, algo):
    from llmagentos.learners.presets import PRESETS

    preset = PRESETS["fast"][algo]
    summary = train(TrainSpec(env="CartPole-v1", algo=algo, steps=1200, preset="fast", eval_episodes=1,
                              tensorboard=False, out=str(tmp_path / algo)))
    assert summary["config"]["num_envs"] == preset.config["num_envs"] > 1
    assert summary["steps"] >= 1200 and summary["episodes"] >= 10  # every copy's episodes were counted
