"""Multi-task sharing: the soft penalty's gradient, head isolation under hard sharing, a tiny run that learns, specs."""

import json
import numpy as np
import pytest
import torch

from llmagentos.core.agent import Transition
from llmagentos.envs.families import get_family
from llmagentos.learners.multitask import MultiTaskAgents, learner_config, soft_sharing_penalty


def test_soft_sharing_penalty_and_gradient_match_hand_computation():
    rng = np.random.default_rng(0)
    lam = 0.3
    thetas = [rng.normal(size=(3, 2)) for _ in range(4)]  # 4 tasks, one 3×2 parameter each
    bias = [rng.normal(size=5) for _ in range(4)]  # and a second parameter
    params = [[torch.tensor(w, requires_grad=True), torch.tensor(b, requires_grad=True)] for w, b in zip(thetas, bias)]
    penalty = soft_sharing_penalty(params, lam)
    mean_w, mean_b = np.mean(thetas, axis=0), np.mean(bias, axis=0)
    by_hand = lam * sum(((w - mean_w) ** 2).sum() + ((b - mean_b) ** 2).sum() for w, b in zip(thetas, bias))
    assert penalty.item() == pytest.approx(by_hand)
    penalty.backward()
    for (w_t, b_t), w, b in zip(params, thetas, bias):
        np.testing.assert_allclose(w_t.grad.numpy(), 2 * lam * (w - mean_w))  # ∂Ω/∂θ_i = 2λ(θ_i − θ̄)
        np.testing.assert_allclose(b_t.grad.numpy(), 2 * lam * (b - mean_b))


def test_soft_sharing_update_of_one_task_sees_only_its_own_gradient():
    env = get_family("cartpole").make()
    team = MultiTaskAgents("dqn", "soft", env.observation_space, env.action_space, learner_config("dqn"), 3, seed=1,
                           soft_lambda=0.05)
    penalty = team.agents[2].extra_loss()  # the hook DQN adds to its loss
    penalty.backward()
    thetas = [[p.detach().numpy() for p in team.parameters_of(i)] for i in range(3)]
    for k, p in enumerate(team.parameters_of(2)):
        mean = np.mean([thetas[i][k] for i in range(3)], axis=0)
        np.testing.assert_allclose(p.grad.numpy(), 2 * 0.05 * (thetas[2][k] - mean), rtol=1e-5, atol=1e-8)
    assert all(p.grad is None for i in (0, 1) for p in team.parameters_of(i))
    assert team.soft_penalty().item() == pytest.approx(penalty.item(), rel=1e-6)


def _fill(agent, env, steps, seed=0):
    obs, _ = env.reset(seed=seed)
    for _ in range(steps):
        action = agent.act(obs)
        nxt, r, term, trunc, info = env.step(action)
        agent.observe(Transition(obs, action, r, nxt, term, trunc, info))
        obs = env.reset()[0] if term or trunc else nxt


def test_hard_sharing_dqn_head_moves_only_with_its_own_task():
    env = get_family("cartpole").make()
    config = learner_config("dqn", {"learning_starts": 10_000, "batch_size": 16})
    team = MultiTaskAgents("dqn", "hard", env.observation_space, env.action_space, config, 3, seed=0)
    assert team.agents[0].q_net.trunk is team.agents[2].q_net.trunk
    assert team.agents[0].q_net.head is not team.agents[1].q_net.head
    _fill(team.agents[1], env, 40)
    before = [{k: v.clone() for k, v in a.q_net.state_dict().items()} for a in team.agents]
    team.agents[1].update()  # one gradient step on task 1's loss
    after = [a.q_net.state_dict() for a in team.agents]
    for i in range(3):
        head_same = all(torch.equal(before[i][k], after[i][k]) for k in before[i] if k.startswith("head."))
        assert head_same == (i != 1)
    assert not torch.equal(before[0]["trunk.0.weight"], after[0]["trunk.0.weight"])  # the shared trunk moved


def test_hard_sharing_ppo_shares_hidden_layers_and_keeps_heads_apart():
    env = get_family("cartpole").make()
    config = learner_config("ppo", {"num_envs": 1, "n_steps": 16, "batch_size": 16, "n_epochs": 1})
    team = MultiTaskAgents("ppo", "hard", env.observation_space, env.action_space, config, 2, seed=0)
    a, b = team.agents[0].net, team.agents[1].net
    assert a.policy_head[0] is b.policy_head[0] and a.policy_head[-1] is not b.policy_head[-1]
    last_0 = {k: v.clone() for k, v in a.state_dict().items()}
    _fill(team.agents[1], env, 16)  # a full rollout: task 1 updates
    assert team.agents[1].updates == 1
    now = a.state_dict()
    for key in last_0:
        changed = not torch.equal(last_0[key], now[key])
        # task 0's own output layers are untouched; the shared hidden layers moved
        assert changed == key.startswith(("policy_head.0", "value_head.0", "policy_head.2", "value_head.2")), key


def test_hard_sharing_state_dict_round_trip():
    env = get_family("cartpole").make()
    config = learner_config("dqn", {"learning_starts": 20, "batch_size": 8})
    team = MultiTaskAgents("dqn", "hard", env.observation_space, env.action_space, config, 2, seed=0)
    _fill(team.agents[0], env, 60)
    other = MultiTaskAgents("dqn", "hard", env.observation_space, env.action_space, config, 2, seed=5)
    other.load_state_dict(team.state_dict())
    obs = np.zeros((3, 4), dtype=np.float32)
    for i in range(2):
        np.testing.assert_array_equal(team.agents[i].q_values(obs), other.agents[i].q_values(obs))
    assert other.agents[0].q_net.trunk is other.agents[1].q_net.trunk  # loading keeps the sharing


def test_tiny_multitask_run_learns_all_goals():
    from llmagentos.jobs.multitask import MultiTaskBlock, train_multitask

    block = MultiTaskBlock(family="goal-grid", family_options={"size": 4}, tasks=3, learner="dqn", sharing="conditioned",
                           steps=2400, eval_episodes=1, config={"learning_starts": 200, "exploration_steps": 1200,
                                                               "train_freq": 1, "target_update_interval": 100,
                                                               "hidden": [32]})
    result, team = train_multitask(block, seed=0)
    assert result["steps"] == 2400 and sum(result["per_task_steps"]) == 2400
    assert result["curve"][0]["mean_return"] == pytest.approx(-1.0)  # untrained: no goal within 100 steps
    assert max(p["mean_return"] for p in result["curve"]) > 0.9  # every goal reached on the shortest path
    assert team.shared_parameter_count()["total"] == team.shared_parameter_count()["per_task"]


def _cli(args, capsys):
    from llmagentos.cli import main

    try:
        main(args)
        code = 0
    except SystemExit as exit_:
        code = exit_.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_multitask_spec_runs_and_bad_spec_exits_2(tmp_path, capsys):
    spec = tmp_path / "mt.yaml"
    spec.write_text(f"""
out: {tmp_path / 'out'}
seeds: 1
multitask:
  family: goal-grid
  family_options: {{size: 3}}
  tasks: 2
  learner: dqn
  sharing: hard
  steps: 300
  eval_episodes: 1
  config: {{learning_starts: 50, exploration_steps: 200, hidden: [16]}}
""")
    code, out, err = _cli(["run", str(spec), "--json"], capsys)
    assert code == 0, err
    run = json.loads(out)["runs"][0]
    assert len(run["per_task_return"]) == 2 and run["steps"] == 300
    assert run["independent"]["steps"] == 300 and "shared_steps_to_target" in run["comparison"]
    assert (tmp_path / "out").exists()
    bad = tmp_path / "bad.yaml"
    bad.write_text("multitask: {family: goal-grid, steps: 100, learner: dqn, config: {gama: 0.9}}\n")
    code, _, err = _cli(["run", str(bad)], capsys)
    assert code == 2 and "multitask.config" in err and "gama" in err
    bad.write_text("multitask: {family: mountaincar, steps: 100}\n")
    code, _, err = _cli(["run", str(bad)], capsys)
    assert code == 2 and "mountaincar" in err


@pytest.mark.parametrize("learner", ["a2c", "ppo"])
@pytest.mark.parametrize("sharing", ["soft", "conditioned"])
def test_policy_gradient_learners_train_under_every_sharing(learner, sharing):
    from llmagentos.jobs.multitask import MultiTaskBlock, train_multitask

    config = {"num_envs": 1, "n_steps": 16, "hidden": [16]} | ({"batch_size": 16, "n_epochs": 2} if learner == "ppo" else {})
    block = MultiTaskBlock(family="goal-grid", family_options={"size": 3}, tasks=2, learner=learner, sharing=sharing,
                           steps=96, eval_episodes=1, env_args={"one_hot": True}, config=config, soft_lambda=0.1)
    result, team = train_multitask(block, seed=0)
    assert result["per_task_steps"] == [48, 48]
    assert [agent.updates for agent in team.agents] == [3, 3]  # 48 steps = 3 rollouts of 16 per task
    if sharing == "conditioned":
        assert team.agents[0].net is team.agents[1].net
    else:
        assert team.soft_penalty().item() > 0


@pytest.mark.parametrize("sharing", ["hard", "soft"])
def test_ppo_under_hard_and_soft_sharing_learns_both_goals(sharing):
    from llmagentos.jobs.multitask import MultiTaskBlock, train_multitask

    config = {"num_envs": 1, "n_steps": 16, "batch_size": 16, "n_epochs": 4, "hidden": [32], "learning_rate": 3e-3,
              "ent_coef": 0.01}
    block = MultiTaskBlock(family="goal-grid", family_options={"size": 3}, tasks=2, learner="ppo", sharing=sharing,
                           steps=2000, eval_episodes=1, env_args={"one_hot": True}, config=config, soft_lambda=0.1,
                           baseline=False)
    result, _ = train_multitask(block, seed=0)
    assert result["curve"][0]["mean_return"] == pytest.approx(-1.0)  # untrained: neither goal within the limit
    assert all(r > 0.9 for r in result["per_task_return"]), result["per_task_return"]
