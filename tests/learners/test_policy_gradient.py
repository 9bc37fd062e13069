"""Policy gradients: the update rules match hand computations, the agents learn, and state round-trips exactly."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

from llmagentos.cli import main as cli_main
from llmagentos.core.agent import Agent
from llmagentos.core.errors import UsageError
from llmagentos.core.loop import Interaction, evaluate
from llmagentos.core.seeding import derive_seed
from llmagentos.kernel.checkpoint import load_state, save_state
from llmagentos.jobs.train import train
from llmagentos.kernel.run import make_agent, make_config, make_env
from llmagentos.learners.common.distributions import Categorical, DiagGaussian
from llmagentos.learners.common.rollout import RolloutBuffer
from llmagentos.learners.policy_gradient import PPO, discounted_returns, gae, ppo_loss, reinforce_loss
from helpers import comparable

# -- the update rules -------------------------------------------------------------------------------


def test_gae_matches_hand_computation_with_truncation_and_termination():
    # step 0 ordinary, step 1 truncated (bootstraps from V(s_final) = 10), step 2 ordinary, step 3 terminal
    gamma, lam = 0.9, 0.5
    buf = RolloutBuffer(4, 1, (1,), (), np.int64)
    for t, (r, v, term, done, v_final) in enumerate([(1, 0.5, 0, 0, 0), (2, 1.0, 0, 1, 10.0), (3, 1.5, 0, 0, 0),
                                                     (4, 2.0, 1, 1, 0)]):
        buf.add([[t]], [0], [0.0], [v], [r], [term], [done], [v_final])
    next_values = buf.next_values(np.array([7.0], dtype=np.float32))  # 7 follows a terminal: must not count
    np.testing.assert_allclose(next_values[:, 0], [1.0, 10.0, 2.0, 7.0])
    advantages, returns = gae(buf.rewards, buf.values, next_values, buf.terminated, buf.dones, gamma, lam)
    # by hand: δ3 = 4 − 2 = 2; δ2 = 3 + .9·2 − 1.5 = 3.3, A2 = 3.3 + .45·2 = 4.2;
    # δ1 = 2 + .9·10 − 1 = 10 (trace cut at the boundary); δ0 = 1 + .9·1 − .5 = 1.4, A0 = 1.4 + .45·10 = 5.9
    np.testing.assert_allclose(advantages[:, 0], [5.9, 10.0, 4.2, 2.0], rtol=1e-6)
    np.testing.assert_allclose(returns[:, 0], [6.4, 11.0, 5.7, 4.0], rtol=1e-6)
    # the same function on torch tensors gives the same numbers
    t_adv, _ = gae(*(torch.from_numpy(a) for a in (buf.rewards, buf.values, next_values, buf.terminated, buf.dones)),
                   gamma, lam)
    np.testing.assert_allclose(t_adv.numpy(), advantages, rtol=1e-6)


def test_monte_carlo_returns_bootstrap_only_when_asked():
    np.testing.assert_allclose(discounted_returns([1.0, 1.0, 1.0], 0.5), [1.75, 1.5, 1.0])
    np.testing.assert_allclose(discounted_returns([1.0, 1.0], 0.5, bootstrap=4.0), [2.5, 3.0])


def test_clipped_objective_matches_hand_computation():
    old = torch.zeros(4)
    log_prob = torch.log(torch.tensor([1.5, 0.5, 1.1, 0.7])).requires_grad_()
    advantages = torch.tensor([1.0, 1.0, -1.0, -1.0])
    values, returns = torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([1.5, 2.0, 2.0, 4.0])
    old_values, entropy = torch.tensor([0.0, 2.0, 3.0, 3.0]), torch.ones(4)
    loss, info = ppo_loss(log_prob, old, advantages, values, old_values, returns, entropy, clip_range=0.2,
                          vf_coef=0.5, ent_coef=0.01)
    # min(ρA, clip(ρ, .8, 1.2)A) = [1.2, 0.5, −1.1, −0.8] → mean −0.05; value loss mean([.25, 0, 1, 0]) = .3125
    assert info["policy_loss"].item() == pytest.approx(0.05)
    assert info["value_loss"].item() == pytest.approx(0.3125)
    assert loss.item() == pytest.approx(0.05 + 0.5 * 0.3125 - 0.01)
    assert info["clip_fraction"].item() == pytest.approx(0.75)
    loss.backward()
    # clipped terms (ρ = 1.5 with A > 0, ρ = 0.7 with A < 0) pass no gradient; the others pass −ρA/4
    np.testing.assert_allclose(log_prob.grad.numpy(), [0.0, -0.125, 0.275, 0.0], rtol=1e-6)
    _, clipped = ppo_loss(log_prob.detach(), old, advantages, values, old_values, returns, entropy, 0.2,
                          clip_range_vf=0.5)
    # V clipped to old ± .5 = [.5, 2, 3, 3.5]; max of errors = [1, 0, 1, .25]
    assert clipped["value_loss"].item() == pytest.approx(0.5625)


def test_reinforce_loss_weights_log_probs_by_return_minus_baseline():
    log_prob = torch.tensor([-1.0, -2.0])
    loss, info = reinforce_loss(log_prob, torch.tensor([3.0, 1.0]), torch.tensor([1.0, 2.0]), vf_coef=1.0)
    assert info["policy_loss"].item() == pytest.approx(-(-1.0 * 2.0 + -2.0 * -1.0) / 2)
    assert loss.item() == pytest.approx(info["policy_loss"].item() + (4.0 + 1.0) / 2)


def test_distributions_match_torch_distributions():
    g = torch.Generator().manual_seed(0)
    mean, log_std = torch.randn(5, 3, generator=g), torch.randn(3, generator=g)
    actions = torch.randn(5, 3, generator=g)
    ours = DiagGaussian(mean, log_std)
    ref = torch.distributions.Normal(mean, log_std.exp())
    torch.testing.assert_close(ours.log_prob(actions), ref.log_prob(actions).sum(-1))
    torch.testing.assert_close(ours.entropy(), ref.entropy().sum(-1))
    logits = torch.randn(5, 4, generator=g)
    cat, ref_cat = Categorical(logits), torch.distributions.Categorical(logits=logits)
    a = torch.tensor([0, 1, 2, 3, 1])
    torch.testing.assert_close(cat.log_prob(a), ref_cat.log_prob(a))
    torch.testing.assert_close(cat.entropy(), ref_cat.entropy())
    # sampling follows the probabilities
    draws = Categorical(torch.log(torch.tensor([[0.1, 0.6, 0.3]])).expand(20_000, 3)).sample(g)
    np.testing.assert_allclose(np.bincount(draws.numpy(), minlength=3) / 20_000, [0.1, 0.6, 0.3], atol=0.015)


def test_gaussian_agent_stores_the_unclipped_sample_and_its_log_prob():
    env = gym.make("Pendulum-v1")
    agent = make_agent("ppo", env, num_envs=1, log_std_init=1.0)  # σ = e: many samples fall outside [−2, 2]
    obs, _ = env.reset(seed=0)
    clipped_seen = False
    for _ in range(20):
        action = agent.act(obs)
        stored_obs, sample, log_prob, _ = agent._pending
        assert np.all(np.abs(action) <= 2.0)
        clipped_seen |= bool(np.any(np.abs(sample) > 2.0))
        with torch.no_grad():
            dist, _ = agent.net(torch.from_numpy(stored_obs))
            np.testing.assert_allclose(log_prob, dist.log_prob(torch.from_numpy(sample)).numpy(), rtol=1e-5)
    assert clipped_seen


# -- learning -----------------------------------------------------------------------------------------


def test_ppo_defaults_balance_cartpole_quickly(tmp_path):
    summary = train(env="CartPole-v1", algo="ppo", steps=10_240, seed=0, eval_every=10_240,
                    out=str(tmp_path / "ppo"), tensorboard=False)
    assert summary["eval"]["mean_return"] >= 195


def _reinforce_late_return(baseline: bool, seed: int) -> float:
    env = make_env("CartPole-v1")
    # unnormalised returns: standardising G_t is itself a (batch-mean) baseline and would blur the comparison
    agent = make_agent("reinforce", env, seed=seed, baseline=baseline, normalize_returns=False)
    loop = Interaction(agent, env, seed=derive_seed(seed, "env"))
    while loop.episodes < 150:
        loop.step()
    return float(np.mean(loop.episode_returns[-30:]))


def test_reinforce_with_a_baseline_beats_reinforce_without():
    seeds = (0, 1, 2)
    with_baseline = np.mean([_reinforce_late_return(True, s) for s in seeds])
    without = np.mean([_reinforce_late_return(False, s) for s in seeds])
    assert with_baseline > 1.5 * without, (with_baseline, without)


def test_ppo_improves_pendulum(tmp_path):
    config = make_config("ppo", {"num_envs": 2}, "Pendulum-v1")
    env = make_env("Pendulum-v1")
    fresh = make_agent("ppo", env, config=config, seed=0)
    eval_seed = derive_seed(0, "eval")
    initial = np.mean(evaluate(fresh, env, 5, seed=eval_seed))
    summary = train(env="Pendulum-v1", algo="ppo", steps=30_720, seed=0, eval_every=30_720, eval_episodes=5,
                    config={"num_envs": 2}, out=str(tmp_path / "pend"), tensorboard=False)
    assert summary["eval"]["mean_return"] > initial + 300, (initial, summary["eval"]["mean_return"])


# -- state ------------------------------------------------------------------------------------------------


class _Twin(Agent):
    """Drives two agents with the same inputs and checks they choose the same actions."""

    def __init__(self, a: Agent, b: Agent) -> None:
        self.a, self.b = a, b

    def act(self, observation, explore=True):
        first, second = self.a.act(observation, explore), self.b.act(observation, explore)
        np.testing.assert_array_equal(first, second)
        return first

    def observe(self, transition):
        self.a.observe(transition)
        self.b.observe(transition)
        return {}


@pytest.mark.parametrize("algo, env_id, overrides", [
    ("ppo", "CartPole-v1", {"num_envs": 4, "n_steps": 8, "batch_size": 16, "n_epochs": 2}),
    ("ppo", "Pendulum-v1", {"num_envs": 2, "n_steps": 8, "batch_size": 8, "n_epochs": 2}),
    ("a2c", "Acrobot-v1", {"num_envs": 2, "n_steps": 5}),
    ("reinforce", "CartPole-v1", {"num_envs": 2, "episodes_per_update": 2, "normalize_returns": True}),
])
def test_state_dict_round_trip_gives_identical_actions(tmp_path, algo, env_id, overrides):
    env = make_env(env_id, num_envs=overrides["num_envs"])
    config = make_config(algo, overrides, env_id)
    agent = make_agent(algo, env, config=config, seed=3)
    loop = Interaction(agent, env, seed=1)
    for _ in range(43):  # several updates and a partial rollout / partial episodes
        loop.step()
    assert agent.updates > 0
    save_state(tmp_path / "agent", agent.state_dict(), {"algo": algo})
    state, _ = load_state(tmp_path / "agent")
    clone = make_agent(algo, env, config=config, seed=99)  # another seed: everything must come from the state
    clone.load_state_dict(state)
    loop.agent = _Twin(agent, clone)
    updates = agent.updates
    for _ in range(60):
        loop.step()
    assert agent.updates > updates and clone.updates == agent.updates
    for p, q in zip(agent.net.parameters(), clone.net.parameters()):
        assert torch.equal(p, q)
    obs = loop.observation[0]
    assert np.array_equal(agent.act(obs, explore=False), clone.act(obs, explore=False))


def test_bad_config_and_spaces_are_refused():
    with pytest.raises(UsageError, match="batch_size must divide"):
        make_config("ppo", {"batch_size": 100})
    with pytest.raises(UsageError, match=r"cannot serve the observation space Sequence\(Discrete\(3\).*ObservationWrapper"):
        PPO(gym.spaces.Sequence(gym.spaces.Discrete(3)), gym.spaces.Discrete(2), make_config("ppo", {}))
    with pytest.raises(UsageError, match="needs a Discrete, Box, MultiDiscrete or MultiBinary action space"):
        PPO(gym.spaces.Discrete(3), gym.spaces.Tuple([gym.spaces.Discrete(2)] * 2), make_config("ppo", {}))
    with pytest.raises(SystemExit) as exit_:
        cli_main(["train", "--env", "CartPole-v1", "--algo", "a2c", "--steps", "100", "--set", "gae_lambda=2"])
    assert exit_.value.code == 2
    assert math.isfinite(make_config("reinforce", {}, "Pendulum-v1").gamma)


@pytest.mark.parametrize("algo, env_id, config", [
    ("ppo", "CartPole-v1", {"num_envs": 4, "n_steps": 24, "batch_size": 32, "n_epochs": 2}),
    ("ppo", "Pendulum-v1", {"num_envs": 2, "n_steps": 40, "batch_size": 40, "n_epochs": 2}),
    ("reinforce", "CartPole-v1", {}),
])
def test_kernel_resume_from_an_earlier_checkpoint_repeats_the_run(tmp_path, algo, env_id, config):
    import json
    import shutil

    from llmagentos.jobs.train import resume

    straight = train(env=env_id, algo=algo, steps=2000, seed=4, config=config, eval_every=1000, eval_episodes=2,
                     checkpoint_every=300, out=str(tmp_path / "run"), tensorboard=False)
    # rewind a copy to the older of the two kept checkpoints (mid-rollout, mid-episode) and continue from there
    copy = tmp_path / "copy"
    shutil.copytree(tmp_path / "run", copy)
    (copy / "summary.json").unlink()
    older = sorted(p.stem for p in (copy / "checkpoints").glob("step-*.json"))[0]
    (copy / "checkpoints" / "latest.json").write_text(json.dumps({"checkpoint": older, "step": int(older[5:])}))
    resumed = resume(copy)
    assert comparable(resumed) == comparable(straight)


def test_a2c_defaults_balance_cartpole(tmp_path):
    summary = train(env="CartPole-v1", algo="a2c", steps=11_000, seed=0, eval_every=11_000,
                    out=str(tmp_path / "a2c"), tensorboard=False)
    assert summary["eval"]["mean_return"] >= 195
