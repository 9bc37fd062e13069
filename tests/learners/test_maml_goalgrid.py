"""MAML-RL on the goal grid: the PointNav policy-gradient loop with a softmax policy learns an initialisation
that one policy-gradient step adapts to a new goal, and the goal-grid family runs from a spec."""

from __future__ import annotations

import json

import pytest
import torch

from llmagentos.learners.maml_rl import CategoricalPolicy, GoalGridMAMLConfig, policy_gradient_loss, rl_experiment
from helpers import assert_spec_refused


def small_config(**overrides):
    base = dict(size=3, max_steps=10, meta_iterations=60, meta_batch_size=8, episodes=8, eval_tasks=8,
                pretrain_iterations=60, log_every=20)
    return GoalGridMAMLConfig(**{**base, **overrides})


def test_categorical_policy_gradient_matches_a_hand_computation():
    """L = −Σ_t log softmax(z(s_t))_{a_t} Â_t / #steps, with padding masked out."""
    policy = CategoricalPolicy(3, 2, [])
    params = dict(policy.named_parameters())
    obs = torch.eye(3)[[0, 1, 2]].unsqueeze(0)  # one episode of three steps
    actions = torch.tensor([[1, 0, 1]])
    advantages = torch.tensor([[2.0, -1.0, 5.0]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])
    got = policy_gradient_loss(policy)(params, (obs, actions, advantages, mask))
    logits = obs[0] @ params["logits.0.weight"].T + params["logits.0.bias"]
    log_p = torch.log_softmax(logits, -1)
    expected = -(log_p[0, 1] * 2.0 + log_p[1, 0] * -1.0) / 2
    torch.testing.assert_close(got, expected)


def test_maml_on_the_goal_grid_adapts_in_one_step_and_beats_a_random_init():
    torch.set_num_threads(1)
    logged = []
    result = rl_experiment(small_config(), seed=0, on_log=lambda i, v: logged.append(i))
    assert logged == [20, 40, 60]
    maml, random = result["return"]["maml"], result["return"]["random"]
    assert len(maml) == 4 and set(result["return"]) == {"maml", "pretrained", "random"}
    # one policy-gradient step from MAML's initialisation finds the goal far more often than no step,
    # and MAML's adapted policy beats the random initialisation adapted alike
    assert maml[1] > maml[0] + 0.2
    assert maml[1] > random[1] + 0.1
    assert result["family"] == "goal-grid" and result["meta_iterations"] == 60


def test_goal_grid_maml_runs_from_a_spec_and_repeats_exactly(tmp_path, capsys):
    from llmagentos.cli import main

    spec = tmp_path / "maml.yaml"
    spec.write_text("seeds: 1\nmeta:\n  algo: maml\n  family: goal-grid\n  config: {size: 3, max_steps: 6, meta_iterations: 3, "
                    "meta_batch_size: 2, episodes: 2, eval_tasks: 3, eval_steps: 2, pretrain_iterations: 2, log_every: 1}\n")
    runs = []
    for out in ("a", "b"):
        main(["run", str(spec), "--set", f"out={tmp_path / out}", "--json"])
        runs.append(json.loads(capsys.readouterr().out))
    run = runs[0]["runs"][0]
    assert run["steps_reported"] == [0, 1, 2] and set(run["ci95"]) == {"maml", "pretrained", "random"}
    assert run["return"] == runs[1]["runs"][0]["return"]
    assert (tmp_path / "a" / "seed-0" / "adaptation.png").stat().st_size > 0
    assert "mean_return" in runs[0]


def test_held_out_goals_are_kept_out_of_training_and_are_the_evaluation_goals():
    cfg = GoalGridMAMLConfig(size=4, held_out=5, eval_tasks=5)
    train = {tuple(t["goal"]) for t in cfg.make_family().all_tasks()}
    held = {tuple(t["goal"]) for t in cfg.make_eval_family().all_tasks()}
    assert len(held) == 5 and not train & held and len(train | held) == 15 and (0, 0) not in train | held
    assert GoalGridMAMLConfig(size=4).make_eval_family().all_tasks() == GoalGridMAMLConfig(size=4).make_family().all_tasks()


@pytest.mark.parametrize("override,message", [
    ("meta.config.held_out=24", "held_out"),
    ("meta.config.held_out=8", "eval_tasks"),  # 24 evaluation goals asked for, 8 held out
    ("meta.config.eval_tasks=30", "eval_tasks"),
    ("meta.config.size=1", "size"),
    ("meta.config.init_std=0.5", "init_std"),  # a Gaussian policy's field: the grid's policy is a softmax
])
def test_bad_goal_grid_specs_exit_2(tmp_path, capsys, override, message):
    assert_spec_refused(tmp_path, capsys, "meta:\n  algo: maml\n  family: goal-grid\n", override, message)
