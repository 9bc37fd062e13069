"""The task boundary in the agent contract: schedules over the real budget, nothing learned across a switch,
and the consolidation accessors the lifelong layer uses instead of the learners' internals."""

import copy
import json

import gymnasium as gym
import numpy as np
import pytest
import torch

from llmagentos.core.agent import Transition
from llmagentos.envs.families import get_family
from llmagentos.jobs.lifelong import LifelongBlock, build_agent, resolve_stream
from llmagentos.jobs.train import train
from llmagentos.jobs.trainer import Trainer
from llmagentos.kernel.run import TrainSpec, make_config
from llmagentos.learners.dqn import DQN, DQNConfig
from llmagentos.learners.policy_gradient import A2C, PPO, A2CConfig, PPOConfig, Reinforce, ReinforceConfig, gae
from llmagentos.lifelong.agent import LifelongAgent, LifelongConfig, StreamRunConfig, network_view, run_stream
from llmagentos.lifelong.consolidation import ConsolidationConfig, NetworkView, log_policy
from llmagentos.lifelong.strategies.ewc import diagonal_fisher, fisher_kind
from llmagentos.lifelong.strategies.lwf import LearningWithoutForgetting
from llmagentos.lifelong.strategies.packnet import PackNet
from llmagentos.lifelong.strategies.si import SynapticIntelligence
from llmagentos.lifelong.transfer import PolicyReuse

CARTPOLE_OBS = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
TWO_ACTIONS = gym.spaces.Discrete(2)


# -- schedules -------------------------------------------------------------------------------------------

def test_ppo_without_a_preset_still_updates_at_the_end_of_a_300k_budget(tmp_path):
    trainer = Trainer(TrainSpec(env="MountainCarContinuous-v0", algo="ppo", steps=300_000, out=str(tmp_path / "r"),
                                tensorboard=False))
    agent = trainer.agent
    agent.steps = 300_000 - agent.config.n_steps * agent.num_envs  # the last update of the run
    assert agent.current_learning_rate() == agent.config.learning_rate > 0
    assert agent.current_clip_range() == agent.config.clip_range > 0
    # a final value the user sets, without a horizon, is reached over the run's real budget, not a fixed clock
    trainer = Trainer(TrainSpec(env="MountainCarContinuous-v0", algo="ppo", steps=300_000, out=str(tmp_path / "s"),
                                config={"lr_final": 0.0, "clip_range_final": 0.1}, tensorboard=False))
    trainer.agent.steps = 150_000
    assert trainer.agent.current_learning_rate() == pytest.approx(0.5 * trainer.agent.config.learning_rate)
    assert trainer.agent.current_clip_range() == pytest.approx(0.15)


def test_cartpole_preset_keeps_its_own_schedule_and_a_lifelong_task_restarts_it():
    config = make_config("ppo", {}, "CartPole-v1")
    assert (config.lr_final, config.clip_range_final, config.schedule_steps) == (0.0, 0.0, 100_000)
    agent = PPO(CARTPOLE_OBS, TWO_ACTIONS, config)
    agent.begin_task(None, budget=50_000, restart_schedules=False)
    agent.steps = 50_000
    assert agent.current_learning_rate() == pytest.approx(0.5e-3)  # the preset's 100k horizon, whatever the budget
    agent.begin_task(None, budget=20_000, restart_schedules=True)
    assert agent.current_learning_rate() == 1e-3 and agent.current_clip_range() == 0.2
    free = PPO(CARTPOLE_OBS, TWO_ACTIONS, PPOConfig(lr_final=0.0))
    free.begin_task(None, budget=20_000)
    free.steps = 10_000
    assert free.current_learning_rate() == pytest.approx(0.5e-3)  # the task's budget is the horizon
    free.begin_task(None, budget=20_000, restart_schedules=False)  # continuing: one schedule over both tasks
    assert free.current_learning_rate() == pytest.approx(1e-3 * (1 - 10_000 / 30_000))
    state = free.state_dict()
    again = PPO(CARTPOLE_OBS, TWO_ACTIONS, PPOConfig(lr_final=0.0))
    again.load_state_dict(state)
    assert again.current_learning_rate() == free.current_learning_rate()


def test_step_size_and_clip_range_are_logged_at_every_update(tmp_path):
    config = {"n_steps": 16, "num_envs": 2, "batch_size": 32, "n_epochs": 1}
    train(TrainSpec(env="CartPole-v1", algo="ppo", steps=320, config=config, out=str(tmp_path / "run"), eval_every=1000,
                    eval_episodes=1))
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    per_update = [r for r in records if r["kind"] == "train" and set(r) == {"kind", "step", "learning_rate", "clip_range"}]
    assert [r["step"] for r in per_update] == list(range(32, 321, 32))  # ten rollouts of 32 steps, ten updates
    events = b"".join(p.read_bytes() for p in (tmp_path / "run" / "tensorboard").iterdir())
    assert b"train/learning_rate" in events and b"train/clip_range" in events


# -- nothing spans a task switch ----------------------------------------------------------------------

def _step(agent, env, obs):
    action = agent.act(obs)
    nxt, r, term, trunc, _ = env.step(action)
    agent.observe(Transition(obs, action, r, nxt, term, trunc))
    return nxt, (term or trunc)


class RecordingA2C(A2C):
    def update(self, advantages, returns):
        self.seen = (np.array(advantages), np.array(returns), self.buffer.pos)
        return super().update(advantages, returns)


def test_a_rollout_straddling_a_task_switch_never_bootstraps_across_it():
    family = get_family("cartpole")
    old, new = family.make({}), family.make({"force_mag": -10.0})
    agent = RecordingA2C(old.observation_space, old.action_space, A2CConfig(num_envs=1, n_steps=8), seed=0)
    obs, _ = old.reset(seed=0)
    for _ in range(3):
        obs, _ = _step(agent, old, obs)
    last_state = obs  # the old task's last state: the rollout's last step bootstraps from V(last_state) ...
    buf = agent.buffer
    rewards, values = buf.rewards[:3].copy(), buf.values[:3].copy()
    bootstrap = agent._values(np.asarray(last_state, np.float32)[None])
    metrics = agent.end_task()
    advantages, returns, rows = agent.seen
    next_values = np.concatenate([values[1:], bootstrap[None]])
    expected, _ = gae(rewards, values, next_values, np.zeros_like(rewards), np.zeros_like(rewards), 0.99, 1.0)
    assert rows == 3 and agent.updates == 1 and agent.buffer.pos == 0 and "td_error" in metrics
    np.testing.assert_allclose(advantages, expected, rtol=1e-6)
    # ... and the new task's first rollout holds only the new task's steps
    obs, _ = new.reset(seed=1)
    first = np.asarray(obs, np.float32)
    _step(agent, new, obs)
    np.testing.assert_array_equal(agent.buffer.observations[0, 0], first)


def test_reinforce_closes_an_unfinished_episode_at_the_boundary():
    env = get_family("cartpole").make({})
    agent = Reinforce(env.observation_space, env.action_space, ReinforceConfig(normalize_returns=False), seed=0)
    obs, _ = env.reset(seed=0)
    for _ in range(4):
        obs, _ = _step(agent, env, obs)
    before = {k: v.clone() for k, v in agent.net.state_dict().items()}
    metrics = agent.end_task()
    assert agent.updates == 1 and "td_error" in metrics and "loss" in metrics
    assert agent.episodes.partial[0]["observations"] == []  # the old task's partial episode is gone
    assert any(not torch.equal(before[k], v) for k, v in agent.net.state_dict().items())


def test_dqn_n_step_windows_close_at_the_task_end():
    env = get_family("cartpole").make({})
    agent = DQN(env.observation_space, env.action_space, DQNConfig(n_step=4, learning_starts=10_000), seed=0)
    obs, _ = env.reset(seed=0)
    for _ in range(2):
        obs, _ = _step(agent, env, obs)
    assert len(agent.buffer) == 0
    agent.end_task()
    assert len(agent.buffer) == 2 and all(not w for w in agent.buffer._pending)
    np.testing.assert_array_equal(agent.buffer.next_obs[:2], np.stack([obs, obs]))  # both end at the task's last s'
    np.testing.assert_array_equal(agent.buffer.n_steps[:2], [2.0, 1.0])


def test_reinforce_truncation_value_matches_a2c_on_the_same_state():
    common = dict(normalize_observations=True, hidden=[16])
    reinforce = Reinforce(CARTPOLE_OBS, TWO_ACTIONS, ReinforceConfig(normalize_returns=False, **common), seed=0)
    a2c = A2C(CARTPOLE_OBS, TWO_ACTIONS, A2CConfig(num_envs=1, n_steps=5, **common), seed=1)
    data = np.random.default_rng(0).normal(3.0, 2.0, size=(64, 4)).astype(np.float32)
    a2c.obs_norm(data, update=True)
    a2c.net.load_state_dict(reinforce.net.state_dict())
    state, final = data[0], data[1]
    a2c.act(state)
    a2c.observe(Transition(state, 0, 1.0, final, False, True))  # a time limit: A2C stores V(s_final)
    reinforce.obs_norm.load_state_dict(a2c.obs_norm.state_dict())
    assert reinforce.truncation_value(final) == pytest.approx(float(a2c.buffer.trunc_values[0, 0]), rel=1e-6)
    # with standardised returns the baseline learns (G − μ)/σ: the bootstrap is σ V + μ of the last update's returns
    scaled = Reinforce(CARTPOLE_OBS, TWO_ACTIONS, ReinforceConfig(**common), seed=0)
    scaled.net.load_state_dict(reinforce.net.state_dict())
    scaled.obs_norm.load_state_dict(reinforce.obs_norm.state_dict())
    scaled._return_stats = (12.0, 4.0)
    assert scaled.truncation_value(final) == pytest.approx(4.0 * reinforce.truncation_value(final) + 12.0, rel=1e-6)


def test_lifelong_stream_closes_each_task_before_the_next_begins():
    block = LifelongBlock(family="cartpole", tasks=[{}, {"force_mag": -10.0}], steps_per_task=100, learner="a2c",
                          config={"num_envs": 2, "n_steps": 8, "hidden": [16]}, strategies=["finetune"],
                          eval_episodes=1, curve_points=1)
    stream = resolve_stream(block)
    agent = build_agent(block, stream, "finetune", seed=0)
    run_stream(agent, stream, seed=0, run=StreamRunConfig(1, 1))
    # 100 steps = 6 full rollouts of 16 and 4 steps more, which end_task learns from: 7 updates a task
    assert agent.learner.updates == 14 and agent.learner.buffer.pos == 0


# -- π-reuse ---------------------------------------------------------------------------------------------

class Constant:
    def __init__(self, action):
        self.action = action
        self.action_space = TWO_ACTIONS

    def act(self, observation, explore=True):
        batch = np.ndim(observation) > 1
        return np.full(len(observation), self.action) if batch else self.action


def test_policy_reuse_decays_per_environment_step_with_a_coin_per_sub_env():
    learner = DQN(CARTPOLE_OBS, TWO_ACTIONS, DQNConfig(num_envs=4, learning_starts=10_000, epsilon_start=0.0,
                                                       epsilon_final=0.0), seed=0)
    reuse = PolicyReuse(learner, Constant(1), steps=40, probability=0.5, seed=0)
    obs = np.zeros((4, 4), np.float32)
    with torch.no_grad():
        for p in learner.q_net.parameters():
            p.zero_()
        learner.q_net.head.bias.copy_(torch.tensor([1.0, 0.0]))  # the learner alone always picks action 0
    actions = np.stack([reuse.act(obs) for _ in range(50)])
    assert 0 < actions.mean() < 1 and len({tuple(a) for a in actions}) > 2  # rows of one batch flip separate coins
    reuse.observe(Transition(obs, actions[0], np.zeros(4), obs, np.zeros(4, bool), np.zeros(4, bool)))
    assert reuse.t == 4 and reuse.psi() == pytest.approx(0.5 * (1 - 4 / 40))


def test_a_policy_gradient_learner_re_evaluates_rows_another_policy_chose():
    agent = A2C(CARTPOLE_OBS, TWO_ACTIONS, A2CConfig(num_envs=2, n_steps=4), seed=0)
    obs = np.random.default_rng(0).normal(size=(2, 4)).astype(np.float32)
    own = agent.act(obs)
    taken = own.copy()
    taken[1] = 1 - own[1]
    agent.observe(Transition(obs, taken, np.ones(2), obs, np.zeros(2, bool), np.zeros(2, bool)))
    with torch.no_grad():
        dist, _ = agent.net(torch.from_numpy(obs))
        expected = dist.log_prob(torch.as_tensor(taken)).numpy()
    np.testing.assert_array_equal(agent.buffer.actions[0], taken)
    np.testing.assert_allclose(agent.buffer.log_probs[0], expected, rtol=1e-5)


# -- accessors and consolidation --------------------------------------------------------------------

def _ppo_view(seed=0):
    learner = PPO(CARTPOLE_OBS, TWO_ACTIONS, PPOConfig(hidden=[8], num_envs=1, batch_size=32), seed=seed)
    return learner, network_view(learner)


def test_ewc_on_a_policy_gradient_learner_uses_the_policy_fisher_and_protects_the_value_head():
    learner, view = _ppo_view()
    agent = LifelongAgent(learner, LifelongConfig(strategy="ewc"))
    assert fisher_kind(agent.config, view) == "policy"
    assert fisher_kind(agent.config, network_view(DQN(CARTPOLE_OBS, TWO_ACTIONS, DQNConfig(hidden=[8])))) == "output"
    states = np.random.default_rng(0).normal(size=(32, 4)).astype(np.float32)
    agent.consolidation.end_task(0, states)
    fisher = agent.consolidation.fisher
    policy_only = diagonal_fisher(NetworkView(view.module, view.preprocess), states, kind="policy")
    for name, f in fisher.items():
        if name.startswith("net.value_head"):
            assert f.abs().sum() > 0 and policy_only[name].abs().sum() == 0  # protected by V's Fisher only
        else:
            torch.testing.assert_close(f, policy_only[name])
    with torch.no_grad():
        learner.net.value_head[0].weight.add_(0.5)
    assert agent.consolidation.penalty() > 0  # moving the value head now costs


def test_policy_gradient_learners_report_loss_and_td_error_for_change_detection():
    learner = A2C(CARTPOLE_OBS, TWO_ACTIONS, A2CConfig(num_envs=1, n_steps=2), seed=0)
    agent = LifelongAgent(learner, LifelongConfig(detect_signal="td_error"), boundaries_known=False)
    agent.begin_task(None)
    obs = np.zeros(4, np.float32)
    for _ in range(4):
        agent.observe(Transition(obs, agent.act(obs), 1.0, obs, False, False))
    assert agent.detector._td_count == 2 and agent.detector._td_sum > 0  # one TD-error signal per update


def test_replay_clones_the_outputs_the_network_acted_with():
    learner, view = _ppo_view()
    agent = LifelongAgent(learner, LifelongConfig(strategy="replay", state_memory=50))
    agent.begin_task(None)
    obs = np.random.default_rng(1).normal(size=(10, 4)).astype(np.float32)
    with torch.no_grad():
        acted = view.outputs(obs).numpy()
    for o in obs:
        agent.observe(Transition(o, agent.act(o), 0.0, o, False, False))
    with torch.no_grad():
        for p in learner.net.parameters():
            p.add_(1.0)  # the network moves before the task ends
    agent.end_task()
    order = [int(np.flatnonzero((obs == s).all(1))[0]) for s in agent.consolidation.states]
    np.testing.assert_allclose(agent.consolidation.targets.numpy(), acted[order], rtol=1e-5, atol=1e-7)


def test_packnet_retrains_a_policy_gradient_learner_and_resyncs_dqns_target():
    states = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    moved = {}
    for steps in (0, 20):
        learner, view = _ppo_view()
        packnet = PackNet(view, ConsolidationConfig(strategy="packnet", packnet_retrain_steps=steps,
                                                    packnet_retrain_batch=16, packnet_retrain_lr=1e-2))
        packnet.end_task(0, states, tasks_left=2)
        moved[steps] = learner.net.policy_head[0].weight.detach().clone()
        for name, p in view.module.named_parameters():
            assert torch.all(p[packnet.owner[name] < 0] == 0)
    assert not torch.equal(moved[0], moved[20])  # distillation retrained the kept weights
    dqn = DQN(CARTPOLE_OBS, TWO_ACTIONS, DQNConfig(hidden=[8]), seed=0)
    PackNet(network_view(dqn), ConsolidationConfig(strategy="packnet", packnet_retrain_steps=0)).end_task(0, states, 2)
    for online, target in zip(dqn.q_net.parameters(), dqn.target_net.parameters()):
        assert torch.equal(online, target)  # targets come from the pruned network


def test_packnet_matrix_is_measured_once_the_task_is_consolidated():
    block = LifelongBlock(family="goal-grid", family_options={"size": 3}, tasks=[{"goal": [2, 2]}, {"goal": [0, 2]}],
                          steps_per_task=300, append_task=True, learner="dqn", strategies=["packnet"],
                          config={"learning_starts": 50, "exploration_steps": 200, "hidden": [32], "train_freq": 1},
                          lifelong={"packnet_retrain_steps": 20}, eval_episodes=2, curve_points=1)
    stream = resolve_stream(block)
    result = run_stream(build_agent(block, stream, "packnet", seed=0), stream, seed=0, run=StreamRunConfig(2, 1))
    for j in range(2):  # the diagonal and the task's final score are the same measurement of the pruned agent
        assert result["raw_matrix"][j][j] == result["scores"][j] == result["curves"][j][-1]


def test_synaptic_intelligence_integrates_the_path_and_penalises_important_weights():
    module = torch.nn.Linear(2, 2)
    view = NetworkView(module, lambda obs: torch.as_tensor(obs, dtype=torch.float32))
    si = SynapticIntelligence(view, ConsolidationConfig(strategy="si", si_c=2.0, si_xi=0.1))
    optimizer = torch.optim.SGD(module.parameters(), lr=0.1)
    x = torch.tensor([[1.0, -2.0]])
    start = {n: p.detach().clone() for n, p in module.named_parameters()}
    path = {n: torch.zeros_like(p) for n, p in start.items()}
    for _ in range(3):
        optimizer.zero_grad()
        (module(x) - 1.0).pow(2).sum().backward()
        before = {n: p.detach().clone() for n, p in module.named_parameters()}
        optimizer.step()
        si.after_update()
        for n, p in module.named_parameters():
            path[n] -= p.grad * (p.detach() - before[n])  # ω −= g Δθ
    si.end_task(0, np.zeros((0, 2)))
    for n, p in module.named_parameters():
        expected = (path[n] / ((p.detach() - start[n]) ** 2 + 0.1)).clamp(min=0)
        torch.testing.assert_close(si.omega[n], expected)
    assert si.penalty().item() == 0.0
    with torch.no_grad():
        module.weight.add_(1.0)
    expected = 2.0 * sum((si.omega[n] * (p - si.anchor[n]) ** 2).sum() for n, p in module.named_parameters())
    assert si.penalty().item() == pytest.approx(expected.item()) and expected > 0
    again = SynapticIntelligence(view, si.config)
    again.load_state_dict(copy.deepcopy(si.state_dict()))
    assert again.penalty().item() == pytest.approx(si.penalty().item())


def test_learning_without_forgetting_distils_the_old_policy_and_value_on_new_states():
    learner, view = _ppo_view()
    states = np.random.default_rng(2).normal(size=(20, 4)).astype(np.float32)
    view.current_states = lambda n, rng: states[:n]
    lwf = LearningWithoutForgetting(view, ConsolidationConfig(strategy="lwf", replay_batch=8, lwf_lambda=3.0,
                                                              lwf_temperature=2.0))
    assert lwf.penalty() is None  # nothing old to keep before the first task ends
    x = torch.as_tensor(states[:8])
    with torch.no_grad():
        old_logits, old_values = view.module(x), view.value_module(x)
    lwf.end_task(0, states)
    with torch.no_grad():
        for p in learner.net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    new_logits, new_values = view.module(x), view.value_module(x)
    p_old = torch.softmax(old_logits / 2.0, -1)
    kl = (p_old * (torch.log(p_old) - log_policy(new_logits, 2.0))).sum(-1).mean()
    expected = 3.0 * (4.0 * kl + (new_values - old_values).pow(2).mean())
    penalty = lwf.penalty()
    assert penalty.item() == pytest.approx(expected.item(), rel=1e-5) and penalty > 0
    penalty.backward()
    assert learner.net.value_head[0].weight.grad.abs().sum() > 0
