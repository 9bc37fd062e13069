"""Evaluation never perturbs training: the same seed gives the same training trajectory whatever
``--eval-every`` and ``--eval-episodes`` are (issue: documentation that cannot drift)."""

from __future__ import annotations

import pytest

from llmagentos.jobs.train import train


def _trajectory(tmp_path, name, **kwargs):
    summary = train(out=str(tmp_path / name), **kwargs)
    return summary["online"]["episode_returns"], summary["steps"], summary["episodes"]


@pytest.mark.parametrize("env, algo, steps, overrides", [
    # windy grid: a tabular agent whose greedy policy has ties that evaluation used to break with the training generator
    ("llmagentos/WindyGridWorld-v0", "sarsa", 4_000, {"alpha": 0.5, "epsilon": 0.1}),
    ("llmagentos/ClimbingGame-v0", "hysteretic", 600, {}),
    ("CartPole-v1", "dqn", 1_500, {"learning_starts": 200}),
    ("CartPole-v1", "ppo", 1_024, {}),
])
def test_evaluation_schedule_does_not_change_training(tmp_path, env, algo, steps, overrides):
    often = _trajectory(tmp_path, "often", env=env, algo=algo, steps=steps, seed=2, config=overrides,
                        eval_every=steps // 10, eval_episodes=3)
    rarely = _trajectory(tmp_path, "rarely", env=env, algo=algo, steps=steps, seed=2, config=overrides,
                         eval_every=steps, eval_episodes=1)
    assert often[2] > 1 and often == rarely
