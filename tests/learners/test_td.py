"""TD control: textbook results (Examples 6.5, 6.6), correct targets at episode ends, exploration, repeatability."""

from __future__ import annotations

import json

import numpy as np
import pytest
from gymnasium import spaces

import llmagentos.envs  # noqa: F401
from llmagentos.core.agent import Transition
from llmagentos.core.errors import UsageError
from llmagentos.core.loop import Interaction, evaluate
from llmagentos.jobs.train import train
from llmagentos.kernel.run import TrainSpec, make_agent, make_env
from llmagentos.learners.td import ExpectedSarsa, QLearning, Sarsa, TDConfig

CLIFF = {"alpha": 0.5, "epsilon": 0.1, "gamma": 1.0}


def run_episodes(algo: str, env_id: str, episodes: int, seed: int, **config):
    env = make_env(env_id)
    agent = make_agent(algo, env, seed=seed, **config)
    loop = Interaction(agent, env, seed=seed)
    while loop.episodes < episodes:
        loop.step()
    return agent, loop


def greedy_path(agent, env_id: str, cap: int = 100) -> tuple[float, int]:
    """Return and length of one greedy episode from the start (cut at ``cap`` steps)."""
    env = make_env(env_id)
    obs, _ = env.reset(seed=0)
    total, steps = 0.0, 0
    while steps < cap:
        obs, reward, terminated, truncated, _ = env.step(agent.act(obs, explore=False))
        total += reward
        steps += 1
        if terminated or truncated:
            break
    return total, steps


def test_example_6_6_sarsa_earns_more_online_while_q_learning_finds_the_cliff_edge():
    online = {}
    for algo in ("sarsa", "q-learning"):
        returns = []
        for seed in (0, 1):
            agent, loop = run_episodes(algo, "CliffWalking-v1", 500, seed, **CLIFF)
            returns.append(np.mean(loop.episode_returns[100:]))
            if algo == "q-learning":
                assert greedy_path(agent, "CliffWalking-v1") == (-13.0, 13)  # the optimal path along the edge
            else:
                assert greedy_path(agent, "CliffWalking-v1")[0] >= -17.0  # the safe path, away from the cliff
        online[algo] = np.mean(returns)
    assert online["sarsa"] > online["q-learning"] + 10  # about −25 against −50 in the book's figure
    assert -35 < online["sarsa"] < -18 and -65 < online["q-learning"] < -35


def test_example_6_5_sarsa_on_the_windy_grid():
    # Figure 6.3: about 170 episodes in 8,000 steps, after which the greedy path takes 15 steps
    for seed in (0, 1, 2):
        env = make_env("llmagentos/WindyGridWorld-v0")
        agent = make_agent("sarsa", env, seed=seed, alpha=0.5, epsilon=0.1, gamma=1.0)
        loop = Interaction(agent, env, seed=seed)
        for _ in range(8_000):
            loop.step()
        assert 130 <= loop.episodes <= 210
        assert greedy_path(agent, "llmagentos/WindyGridWorld-v0") == (-15.0, 15)


def test_expected_sarsa_learns_the_cliff():
    agent, loop = run_episodes("expected-sarsa", "CliffWalking-v1", 300, 0, **CLIFF)
    assert greedy_path(agent, "CliffWalking-v1")[0] >= -17.0
    assert np.mean(loop.episode_returns[-100:]) > -35.0


def one_step_agent(cls, **config):
    agent = cls(spaces.Discrete(2), spaces.Discrete(2), TDConfig(alpha=0.5, gamma=0.9, **config), seed=0)
    agent.q[1] = [2.0, 4.0]
    return agent


@pytest.mark.parametrize("cls, bootstrap", [
    (QLearning, 4.0),                       # max_a' Q(s', a')
    (ExpectedSarsa, 0.95 * 4.0 + 0.05 * 2.0),  # Σ π(a'|s') Q(s', a') with ε = 0.1 over 2 actions
])
def test_targets_stop_at_termination_and_bootstrap_through_truncation(cls, bootstrap):
    terminal = one_step_agent(cls)
    terminal.observe(Transition(0, 0, 1.0, 1, True, False))
    assert terminal.q[0, 0] == pytest.approx(0.5 * 1.0)  # y = r
    truncated = one_step_agent(cls)
    truncated.observe(Transition(0, 0, 1.0, 1, False, True))
    assert truncated.q[0, 0] == pytest.approx(0.5 * (1.0 + 0.9 * bootstrap))  # y = r + γ V(s')


def test_sarsa_bootstraps_from_the_action_it_then_takes():
    agent = one_step_agent(Sarsa, epsilon=0.0)
    agent.observe(Transition(0, 0, 1.0, 1, False, False))
    assert agent.q[0, 0] == pytest.approx(0.5 * (1.0 + 0.9 * 4.0))  # a' = greedy = 1
    assert agent.act(1) == 1  # the loop's next act() returns that same a'
    ended = one_step_agent(Sarsa, epsilon=0.0)
    ended.observe(Transition(0, 0, 1.0, 1, True, False))
    assert ended.q[0, 0] == pytest.approx(0.5) and ended._pending is None


def test_boltzmann_exploration_follows_the_softmax():
    agent = QLearning(spaces.Discrete(1), spaces.Discrete(3),
                      TDConfig(exploration="boltzmann", temperature=0.5), seed=3)
    agent.q[0] = [0.0, 0.5, 1.0]
    expected = np.exp(agent.q[0] / 0.5) / np.exp(agent.q[0] / 0.5).sum()
    np.testing.assert_allclose(agent.policy(0), expected)
    counts = np.bincount([agent.act(0) for _ in range(20_000)], minlength=3) / 20_000
    np.testing.assert_allclose(counts, expected, atol=0.015)
    learner, loop = run_episodes("q-learning", "CliffWalking-v1", 200, 0, alpha=0.5, gamma=1.0,
                                 exploration="boltzmann", temperature=5.0, temperature_final=0.05, decay_steps=8_000)
    assert greedy_path(learner, "CliffWalking-v1")[0] == -13.0


def test_ties_are_broken_at_random_by_the_agents_own_generator():
    def greedy_actions(seed: int) -> list[int]:
        agent = QLearning(spaces.Discrete(1), spaces.Discrete(4), TDConfig(), seed=seed)
        return [agent.act(0, explore=False) for _ in range(400)]

    np.random.seed(0)
    first = greedy_actions(5)
    np.random.seed(1)  # the global generator plays no part
    assert greedy_actions(5) == first
    assert set(first) == {0, 1, 2, 3}  # all four tied actions get chosen
    assert greedy_actions(6) != first
    agent = QLearning(spaces.Discrete(1), spaces.Discrete(4), TDConfig(), seed=0)
    agent.q[0] = [0.0, 1.0, 1.0, 0.0]
    assert {agent.act(0, explore=False) for _ in range(100)} == {1, 2}


def test_decaying_epsilon_and_bad_settings():
    agent = make_agent("q-learning", make_env("FrozenLake-v1"), epsilon=1.0, epsilon_final=0.05, decay_steps=100)
    assert agent.train_metrics()["epsilon"] == 1.0
    agent.t = 50
    assert agent.train_metrics()["epsilon"] == pytest.approx(0.525)
    agent.t = 10_000
    assert agent.train_metrics()["epsilon"] == pytest.approx(0.05)
    with pytest.raises(UsageError, match="alpha"):
        make_agent("sarsa", make_env("FrozenLake-v1"), alpha=0.0)
    with pytest.raises(UsageError, match="Discrete"):
        make_agent("sarsa", make_env("CartPole-v1"))


def test_state_dict_continues_exactly():
    agent, loop = run_episodes("sarsa", "CliffWalking-v1", 20, 0, **CLIFF)
    copy = make_agent("sarsa", make_env("CliffWalking-v1"), seed=99, **CLIFF)
    copy.load_state_dict(json.loads(json.dumps({k: v.tolist() if isinstance(v, np.ndarray) else v
                                                for k, v in agent.state_dict().items()})))
    assert [agent.act(s) for s in range(48)] == [copy.act(s) for s in range(48)]
    env = make_env("CliffWalking-v1")
    assert evaluate(agent, env, 2, seed=0) == evaluate(copy, env, 2, seed=0)


def summary_without_timings(path) -> dict:
    summary = json.loads(path.read_text())
    for key in ("wall_seconds", "steps_per_second", "run_dir"):
        summary.pop(key)
    for point in summary["curve"]:
        point.pop("wall_seconds")
    return summary


def test_same_seed_same_summary(tmp_path):
    def run(seed: int, name: str) -> dict:
        spec = TrainSpec(env="CliffWalking-v1", algo="q-learning", seed=seed, steps=3_000, eval_every=1_000,
                         eval_episodes=2, config=CLIFF, out=str(tmp_path / name))
        train(spec)
        return summary_without_timings(tmp_path / name / "summary.json")

    first = run(4, "a")
    assert first == run(4, "b")
    assert first != run(5, "c")
    assert len(first["curve"]) == 3 and first["steps"] == 3_000
