"""Transfer: Taylor & Stone's metrics on hand-made curves, weight and table transfer, the transfer command."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from llmagentos.core.errors import UsageError
from llmagentos.envs.families import get_family
from llmagentos.lifelong import transfer as tr


def test_metrics_on_hand_made_curves():
    steps, t_curve, s_curve = [0, 10, 20], [2.0, 4.0, 6.0], [0.0, 2.0, 6.0]
    assert tr.jumpstart(t_curve, s_curve) == 2.0
    assert tr.asymptotic_performance(t_curve, tail=2) == 5.0
    # A = Σ (y_k + y_{k+1})/2 Δx / (x_N − x_0): T (30 + 50)/20 = 4, S (10 + 40)/20 = 2.5
    assert tr.area_under_curve(steps, t_curve) == pytest.approx(4.0)
    assert tr.area_under_curve(steps, s_curve) == pytest.approx(2.5)
    assert tr.transfer_ratio(steps, t_curve, s_curve) == pytest.approx((4.0 - 2.5) / 2.5)
    assert tr.time_to_threshold(steps, t_curve, 5.0) == 20 and tr.time_to_threshold(steps, t_curve, 4.0) == 10
    assert tr.time_to_threshold(steps, s_curve, 7.0) is None
    m = tr.transfer_metrics(steps, t_curve, s_curve, threshold=3.0, tail=1)
    assert m["asymptotic_gain"] == 0.0 and m["total_reward_gain"] == pytest.approx(1.5)
    assert m["time_to_threshold"] == {"transfer": 10.0, "scratch": 20.0}


def test_negative_returns_are_measured_above_the_lowest_point():
    steps, t_curve, s_curve = [0, 1, 2], [-1.0, -0.5, 0.0], [-2.0, -1.0, 0.0]
    assert tr.default_baseline(t_curve, s_curve) == -2.0
    # above b = −2: T areas (1.25 + 1.75) / 2 = 1.5, S (0.5 + 1.5) / 2 = 1.0 → ratio 0.5
    assert tr.transfer_ratio(steps, t_curve, s_curve) == pytest.approx(0.5)


def test_summary_confidence_interval_is_student_t():
    steps = [0, 1]
    scratch = [[0.0, 1.0]] * 3
    transfer = [[1.0, 1.0], [2.0, 1.0], [3.0, 1.0]]  # jumpstarts 1, 2, 3
    out = tr.summarise(steps, transfer, scratch, threshold=1.0)
    half = 4.302652729911275 / np.sqrt(3)  # t_{0.975, 2} · s / √n with s = 1
    assert out["jumpstart"] == pytest.approx(2.0)
    assert out["jumpstart_ci"] == pytest.approx([2.0 - half, 2.0 + half])
    assert out["time_to_threshold"]["transfer"] == 0.0 and out["time_to_threshold"]["scratch"] == 1.0
    assert out["curves"]["transfer"]["mean"] == [2.0, 1.0]


def _dqn(seed):
    from llmagentos.learners.dqn import DQN
    from llmagentos.learners.multitask import learner_config

    env = get_family("cartpole").make()
    return DQN(env.observation_space, env.action_space, learner_config("dqn"), seed=seed)


def test_full_and_trunk_transfer_of_a_q_network():
    source, full, trunk = _dqn(1), _dqn(2), _dqn(2)
    fresh_head = {k: v.clone() for k, v in trunk.q_net.head.state_dict().items()}
    tr.transfer_agent(source, full, "full")
    tr.transfer_agent(source, trunk, "trunk")
    obs = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)
    np.testing.assert_array_equal(full.q_values(obs), source.q_values(obs))
    np.testing.assert_array_equal(full.target_net(torch.from_numpy(obs)).numpy(), source.q_values(obs))
    for k, v in trunk.q_net.trunk.state_dict().items():
        assert torch.equal(v, source.q_net.trunk.state_dict()[k])
    for k, v in trunk.q_net.head.state_dict().items():
        assert torch.equal(v, fresh_head[k])


def test_tabular_transfer_through_a_state_map_and_refusals():
    from llmagentos.learners.td import QLearning, TDConfig
    from gymnasium import spaces

    source = QLearning(spaces.Discrete(3), spaces.Discrete(2), TDConfig(), seed=0)
    source.q = np.arange(6, dtype=float).reshape(3, 2)
    target = QLearning(spaces.Discrete(4), spaces.Discrete(2), TDConfig(), seed=0)
    tr.transfer_agent(source, target, "full", state_map=[2, 2, 0, 1])
    np.testing.assert_array_equal(target.q, [[4, 5], [4, 5], [0, 1], [2, 3]])  # Q_T(s, a) = Q_S(map(s), a)
    with pytest.raises(UsageError):
        tr.transfer_agent(source, QLearning(spaces.Discrete(4), spaces.Discrete(2), TDConfig()), "full")
    with pytest.raises(UsageError):
        tr.transfer_agent(source, target, "trunk")
    with pytest.raises(UsageError):
        tr.transfer_agent(source, _dqn(0), "full")


def test_policy_prior_explores_with_the_source_policy_then_fades():
    source, learner = _dqn(1), _dqn(2)
    agent = tr.transfer_agent(source, learner, "prior", prior_steps=100, prior_probability=1.0)
    obs = np.random.default_rng(1).normal(size=(20, 4)).astype(np.float32)
    assert [agent.act(o) for o in obs] == [int(source.q_values(o).argmax()) for o in obs]
    assert agent.act(obs[0], explore=False) == learner.act(obs[0], explore=False)
    agent.t = 100
    assert agent.psi() == 0.0


def test_transfer_command_related_task_jumpstarts(tmp_path):
    from llmagentos.jobs.train import train

    train(env="llmagentos/GoalGrid-v0", algo="q-learning", steps=4000, seed=0, out=str(tmp_path / "src"),
          env_args={"size": 6, "goal": [5, 5]}, tensorboard=False)
    cmd = [sys.executable, "-m", "llmagentos.cli", "transfer", "--source", str(tmp_path / "src"), "--env",
           "llmagentos/GoalGrid-v0", "--env-arg", "size=6", "--env-arg", "goal=[5,5]", "--env-arg", "slip=0.1", "--steps", "600",
           "--seeds", "0:3", "--eval-episodes", "2", "--out", str(tmp_path / "t"), "--json"]
    out = subprocess.run(cmd, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    for key in ("jumpstart", "asymptotic_gain", "total_reward_gain", "transfer_ratio", "time_to_threshold", "curves"):
        assert key in result
    assert set(result["time_to_threshold"]) >= {"transfer", "scratch"}
    # same goal, a slippery floor: the source's path still works; scratch starts from a random walk
    assert result["curves"]["transfer"]["mean"][0] > 0.8
    assert result["jumpstart"] > 0.5 and result["jumpstart_ci"][0] > 0
    assert (tmp_path / "t" / "transfer.png").exists()
    bad = subprocess.run(cmd[:5] + [str(tmp_path)] + cmd[6:], capture_output=True, text=True)
    assert bad.returncode == 2 and "not a run directory" in bad.stderr


def test_trunk_transfer_of_an_actor_critic_keeps_fresh_output_layers():
    from llmagentos.learners.multitask import learner_config
    from llmagentos.learners.policy_gradient import PPO

    env = get_family("pointnav").make()
    config = learner_config("ppo", {"num_envs": 1, "n_steps": 16, "batch_size": 16})
    source, target = PPO(env.observation_space, env.action_space, config, seed=1), PPO(env.observation_space, env.action_space, config, seed=2)
    with torch.no_grad():
        source.net.log_std.fill_(-1.0)
    fresh = {k: v.clone() for k, v in target.net.state_dict().items()}
    copied = tr.transfer_agent(source, target, "trunk")
    assert copied is target
    src = source.net.state_dict()
    for key, value in target.net.state_dict().items():
        last = key.startswith(("policy_head.4.", "value_head.4.", "log_std"))
        assert torch.equal(value, fresh[key] if last else src[key]), key
