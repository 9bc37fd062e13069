"""The multi-agent worlds: PettingZoo's own checkers, payoffs and grid mechanics by hand, refusals."""

import warnings

import numpy as np
import pytest
from pettingzoo.test import api_test, parallel_api_test, parallel_seed_test
from pettingzoo.utils import parallel_to_aec

from llmagentos import make_parallel_env
from llmagentos.core.errors import UsageError
from llmagentos.envs.multiagent import MULTI_AGENT_ENVS

CASES = [(env_id, {"common_payoff": [[[1, 0], [0, 1]], [[0, 2], [3, 0]]]} if env_id.endswith("MatrixGame-v0") else {})
         for env_id in MULTI_AGENT_ENVS]
CASES += [
    ("llmagentos/ClimbingGame-v0", {"episode_length": 4, "observation": "last-joint-action"}),
    ("llmagentos/PenaltyGame-v0", {"k": -100}),
    ("llmagentos/MatrixGame-v0", {"payoffs": [[[1, -1], [0, 2]], [[3, 0], [-2, 1]]], "episode_length": 3}),
    ("llmagentos/CoopGrid-v0", {"observation": "vector", "n_agents": 3, "reward": "individual", "size": 4}),
    ("llmagentos/CoopGrid-v0", {"observation": "own", "max_steps": 10}),
]


@pytest.mark.parametrize("env_id,kwargs", CASES, ids=[f"{e.split('/')[1]}-{i}" for i, (e, _) in enumerate(CASES)])
def test_pettingzoo_checks_pass(env_id, kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "observation is all zeros" is what a one-state game observes
        parallel_api_test(make_parallel_env(env_id, **kwargs), num_cycles=60)
        api_test(parallel_to_aec(make_parallel_env(env_id, **kwargs)), num_cycles=30)
        parallel_seed_test(lambda: make_parallel_env(env_id, **kwargs), num_cycles=30)


def test_climbing_game_pays_the_papers_matrix_to_both_players():
    env = make_parallel_env("llmagentos/ClimbingGame-v0")
    table = [[11, -30, 0], [-30, 7, 6], [0, 0, 5]]
    for row in range(3):
        for col in range(3):
            env.reset(seed=0)
            _, rewards, terminations, truncations, _ = env.step({"player_0": row, "player_1": col})
            assert rewards == {"player_0": table[row][col], "player_1": table[row][col]}
            assert all(terminations.values()) and not any(truncations.values()) and env.agents == []
    assert env.optimal_joint_actions() == [(0, 0)]
    assert env.pure_nash_equilibria() == [(0, 0), (1, 1)]


def test_penalty_game_k_and_equilibria():
    env = make_parallel_env("llmagentos/PenaltyGame-v0", k=-100)
    assert env.payoffs[0, 2, 0] == env.payoffs[2, 0, 1] == -100
    assert env.optimal_joint_actions() == [(0, 0), (2, 2)]
    assert env.pure_nash_equilibria() == [(0, 0), (1, 1), (2, 2)]


def test_general_sum_and_zero_sum_games():
    pd = make_parallel_env("llmagentos/PrisonersDilemma-v0")
    pd.reset()
    _, rewards, *_ = pd.step({"player_0": 0, "player_1": 1})  # the row player cooperates, the column defects
    assert rewards == {"player_0": 0.0, "player_1": 5.0}
    assert pd.pure_nash_equilibria() == [(1, 1)] and pd.optimal_joint_actions() == [(0, 0)]
    rps = make_parallel_env("llmagentos/RockPaperScissors-v0")
    rps.reset()
    _, rewards, *_ = rps.step({"player_0": 1, "player_1": 0})  # paper beats rock
    assert rewards == {"player_0": 1.0, "player_1": -1.0}
    assert rps.optimal_joint_actions() == [] and rps.pure_nash_equilibria() == []


def test_three_player_matrix_game_and_repeated_observations():
    payoffs = np.arange(2 * 2 * 2 * 3, dtype=float).reshape(2, 2, 2, 3)
    env = make_parallel_env("llmagentos/MatrixGame-v0", payoffs=payoffs.tolist(), episode_length=2,
                            observation="last-joint-action")
    obs, _ = env.reset()
    assert env.possible_agents == ["player_0", "player_1", "player_2"] and int(obs["player_0"]) == 0
    obs, rewards, terminations, *_ = env.step({"player_0": 1, "player_1": 0, "player_2": 1})
    assert rewards == {f"player_{i}": payoffs[1, 0, 1, i] for i in range(3)}
    assert int(obs["player_2"]) == 1 + 5 and not any(terminations.values())  # 1 + flat index of (1,0,1)
    _, _, terminations, *_ = env.step({"player_0": 0, "player_1": 0, "player_2": 0})
    assert all(terminations.values()) and env.agents == []


def test_coop_grid_pays_only_together_and_bounces_collisions():
    env = make_parallel_env("llmagentos/CoopGrid-v0", size=3, goals=[[0, 2, 1.0]], reward="individual",
                            step_cost=-0.01, collision_penalty=-0.1)
    env.reset(seed=0)
    env.positions = np.array([[0, 1], [1, 2]])
    # agent 0 steps right onto the goal alone: no pay, no end
    _, rewards, terminations, *_ = env.step({"agent_0": 4, "agent_1": 0})
    assert rewards == {"agent_0": -0.01, "agent_1": -0.01} and not any(terminations.values())
    # agent 1 joins it (up): both on the goal together
    _, rewards, terminations, *_ = env.step({"agent_0": 0, "agent_1": 1})
    assert rewards == {"agent_0": pytest.approx(0.99), "agent_1": pytest.approx(0.99)} and all(terminations.values())
    env.reset(seed=0)
    env.positions = np.array([[1, 0], [1, 2]])
    # both move into the middle cell (not a goal): both bounce back and pay the penalty
    _, rewards, _, _, infos = env.step({"agent_0": 4, "agent_1": 3})
    assert env.positions.tolist() == [[1, 0], [1, 2]] and infos["agent_0"]["collided"] and infos["agent_1"]["collided"]
    assert rewards["agent_0"] == pytest.approx(-0.11)
    env.positions = np.array([[1, 0], [1, 1]])
    # swapping places is a collision too
    env.step({"agent_0": 4, "agent_1": 3})
    assert env.positions.tolist() == [[1, 0], [1, 1]]


def test_coop_grid_shared_reward_is_the_mean_and_observations_are_per_agent():
    env = make_parallel_env("llmagentos/CoopGrid-v0", size=3, goals=[[0, 2, 1.0]], reward="shared")
    env.reset(seed=1)
    env.positions = np.array([[2, 0], [2, 2]])
    obs, rewards, *_ = env.step({"agent_0": 4, "agent_1": 3})  # collide: −0.11 each, mean −0.11
    assert rewards["agent_0"] == rewards["agent_1"] == pytest.approx(-0.11)
    # joint observations put the observing agent's own cell first
    assert int(obs["agent_0"]) == 6 * 9 + 8 and int(obs["agent_1"]) == 8 * 9 + 6


@pytest.mark.parametrize("env_id,kwargs,needle", [
    ("llmagentos/Nope-v0", {}, "unknown environment"),
    ("llmagentos/MatrixGame-v0", {}, "exactly one of payoffs"),
    ("llmagentos/MatrixGame-v0", {"payoffs": [[1, 2], [3, 4]]}, "do not fit"),
    ("llmagentos/ClimbingGame-v0", {"episode_length": 0}, "episode_length"),
    ("llmagentos/ClimbingGame-v0", {"colour": "red"}, "does not accept"),
    ("llmagentos/PenaltyGame-v0", {"k": "big"}, "k must be a number"),
    ("llmagentos/CoopGrid-v0", {"n_agents": 1}, "n_agents"),
    ("llmagentos/CoopGrid-v0", {"goals": [[9, 9, 1]]}, "inside"),
    ("no_such_module_xyz.envs", {}, "cannot import"),
])
def test_bad_arguments_are_refused_in_one_sentence(env_id, kwargs, needle):
    with pytest.raises(UsageError, match=needle):
        make_parallel_env(env_id, **kwargs)
