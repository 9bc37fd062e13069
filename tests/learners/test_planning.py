"""Planning on finite MDPs: textbook values, PI = VI, dense = sparse, terminal transitions, the plan() contract."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import scipy.sparse as sp
from gymnasium.utils.env_checker import check_env

import llmagentos.envs  # noqa: F401
from llmagentos.core.errors import UsageError
from llmagentos.core.mdp import FiniteMDP, random_mdp
from llmagentos.learners.planning import (PlanningConfig, plan, policy_evaluation, policy_iteration,
                                          value_iteration)

PLAN_KEYS = {"env", "algo", "gamma", "values", "policy", "iterations", "seconds"}


def mdp_of(env_id: str, **kwargs) -> FiniteMDP:
    return FiniteMDP.from_gym_env(gym.make(env_id, **kwargs))


def test_figure_4_1_random_policy_values_on_the_4x4_grid():
    result = policy_evaluation(mdp_of("llmagentos/GridWorld4x4-v0"), gamma=1.0, theta=1e-10)
    expected = np.array([[0, -14, -20, -22],
                         [-14, -18, -20, -20],
                         [-20, -20, -18, -14],
                         [-22, -20, -14, 0]], dtype=float)
    assert result.converged
    np.testing.assert_allclose(result.values.reshape(4, 4), expected, atol=1e-6)


def test_optimal_values_on_the_4x4_grid_are_minus_the_distance_to_the_nearest_corner():
    mdp = mdp_of("llmagentos/GridWorld4x4-v0")
    distance = np.array([min(r + c, 6 - r - c) for r in range(4) for c in range(4)], dtype=float)
    for result in (value_iteration(mdp, gamma=1.0), policy_iteration(mdp, gamma=1.0)):
        assert result.converged
        np.testing.assert_allclose(result.values, -distance, atol=1e-9)
    # Figure 4.1's point: the greedy policy of the random policy's values is already optimal
    greedy_of_random = policy_evaluation(mdp, gamma=1.0, theta=1e-10).policy
    rows = np.arange(16)
    assert np.allclose(value_iteration(mdp, gamma=1.0).q[rows, greedy_of_random], -distance)


@pytest.mark.parametrize("env_id", ["FrozenLake-v1", "Taxi-v4"])
def test_policy_iteration_and_value_iteration_agree(env_id):
    mdp = mdp_of(env_id)
    vi = value_iteration(mdp, gamma=0.99, theta=1e-10)
    pi = policy_iteration(mdp, gamma=0.99, theta=1e-10)
    assert vi.converged and pi.converged
    np.testing.assert_allclose(vi.values, pi.values, atol=1e-6)
    # optimal actions may tie; each policy must be greedy with respect to the other's values
    rows = np.arange(mdp.n_states)
    assert np.allclose(vi.q[rows, pi.policy], vi.q.max(axis=1), atol=1e-6)
    assert np.allclose(pi.q[rows, vi.policy], pi.q.max(axis=1), atol=1e-6)
    assert pi.iterations < 20


def test_frozen_lake_optimal_start_value_matches_the_known_figure():
    # the slippery 4x4 lake's optimal success probability from the start is 14/17 ≈ 0.8235 (γ = 1)
    values = value_iteration(mdp_of("FrozenLake-v1"), gamma=1.0, theta=1e-12).values
    assert values[0] == pytest.approx(14 / 17, abs=1e-8)


def test_sparse_and_dense_models_give_the_same_answers():
    for mdp in (mdp_of("FrozenLake-v1"), random_mdp(60, 3, successors=5, seed=1, sparse=False)):
        dense, sparse = mdp.to_dense(), mdp.to_sparse()
        assert not dense.sparse and sparse.sparse
        for algo in (value_iteration, policy_iteration, policy_evaluation):
            a, b = algo(dense, gamma=0.95), algo(sparse, gamma=0.95)
            np.testing.assert_allclose(a.values, b.values, atol=1e-10)
            assert np.array_equal(a.policy, b.policy)
            assert a.iterations == b.iterations


def test_policy_evaluation_equals_the_linear_solution():
    mdp = random_mdp(40, 3, successors=4, seed=2, sparse=False)
    policy = np.random.default_rng(0).integers(3, size=40)
    result = policy_evaluation(mdp, policy=policy, gamma=0.9, theta=1e-12)
    P_pi = mdp.P[np.arange(40), policy]
    exact = np.linalg.solve(np.eye(40) - 0.9 * P_pi, mdp.R[np.arange(40), policy])
    np.testing.assert_allclose(result.values, exact, atol=1e-9)


def test_a_terminated_transition_earns_its_reward_and_nothing_after():
    # state 0: action 0 ends the episode with reward 1; action 1 moves to state 1 (reward 0), which loops with
    # reward 0 forever; the terminal target state 1 would be worth 10/step if bootstrapped from
    table = {0: {0: [(1.0, 1, 1.0, True)], 1: [(1.0, 1, 0.0, False)]},
             1: {0: [(1.0, 1, 10.0, False)], 1: [(1.0, 1, 10.0, False)]}}
    mdp = FiniteMDP.from_transition_table(table)
    result = value_iteration(mdp, gamma=0.5, theta=1e-12)
    assert result.values[1] == pytest.approx(20.0)  # 10 / (1 − 0.5)
    assert result.q[0, 0] == pytest.approx(1.0)  # no bootstrap past termination
    assert result.q[0, 1] == pytest.approx(10.0)  # 0 + 0.5 · 20
    # a half-terminating transition bootstraps with the other half only
    half = {0: {0: [(0.5, 1, 2.0, True), (0.5, 1, 2.0, False)]}, 1: {0: [(1.0, 1, 1.0, True)]}}
    v = policy_evaluation(FiniteMDP.from_transition_table(half), gamma=1.0, theta=1e-12).values
    assert v[0] == pytest.approx(2.0 + 0.5 * 1.0)


def test_gamma_one_converges_on_episodic_worlds():
    result = value_iteration(mdp_of("CliffWalking-v1"), gamma=1.0)
    assert result.converged
    assert result.values[36] == pytest.approx(-13.0)  # the optimal cliff-edge path from the start


def test_policy_iteration_stops_when_actions_tie():
    # two identical actions everywhere: a tie-flipping improvement step would never be stable
    mdp = random_mdp(30, 2, successors=3, seed=4, sparse=False)
    P = np.repeat(mdp.P[:, :1], 2, axis=1)
    R = np.repeat(mdp.R[:, :1], 2, axis=1)
    result = policy_iteration(FiniteMDP(P, R), gamma=0.9)
    assert result.converged and result.iterations <= 2


def test_converter_reads_every_toy_text_table():
    for env_id in ["FrozenLake-v1", "FrozenLake8x8-v1", "CliffWalking-v1", "Taxi-v4", "llmagentos/GridWorld4x4-v0",
                   "llmagentos/WindyGridWorld-v0", "llmagentos/GridWorld-v0"]:
        env = gym.make(env_id)
        mdp = FiniteMDP.from_gym_env(env)
        table = env.unwrapped.P
        assert (mdp.n_states, mdp.n_actions) == (env.observation_space.n, env.action_space.n)
        s = mdp.n_states // 2
        for a in range(mdp.n_actions):
            assert mdp.R[s, a] == pytest.approx(sum(p * r for p, _, r, _ in table[s][a]))
        dense = mdp.to_dense()
        np.testing.assert_allclose(dense.P.sum(axis=2), 1.0)
        assert np.isclose(mdp.initial.sum(), 1.0)
    assert mdp_of("Taxi-v4").sparse and not mdp_of("FrozenLake-v1").sparse
    slippery = mdp_of("llmagentos/GridWorld-v0", slip=0.2)
    assert slippery.nnz > mdp_of("llmagentos/GridWorld-v0").nnz


def test_an_env_without_a_table_and_a_malformed_model_are_refused():
    with pytest.raises(UsageError, match="transition table"):
        FiniteMDP.from_gym_env(gym.make("CartPole-v1"))
    with pytest.raises(UsageError, match="sums to"):
        FiniteMDP(np.full((2, 1, 2), 0.4), np.zeros((2, 1)))
    with pytest.raises(UsageError, match="gamma"):
        value_iteration(mdp_of("FrozenLake-v1"), gamma=1.5)
    with pytest.raises(UsageError, match="policy"):
        policy_evaluation(mdp_of("FrozenLake-v1"), policy=[0, 1])


def test_random_sparse_mdp_is_seeded_and_has_the_asked_shape():
    a, b = random_mdp(500, 4, successors=10, seed=7), random_mdp(500, 4, successors=10, seed=7)
    assert a.sparse and a.nnz == 500 * 4 * 10
    assert (a.P != b.P).nnz == 0 and np.array_equal(a.R, b.R)
    assert np.all(np.diff(a.P.indptr) == 10)  # ten distinct successors per (s, a)
    np.testing.assert_allclose(np.asarray(a.P.sum(axis=1)).ravel(), 1.0)
    assert sp.issparse(a.continue_matrix)
    assert (random_mdp(500, 4, successors=10, seed=8).P != a.P).nnz > 0


def test_plan_returns_exactly_the_contract():
    result = plan("llmagentos/GridWorld4x4-v0", "policy-evaluation", gamma=1.0, theta=1e-10, policy="random")
    assert set(result) == PLAN_KEYS
    assert result["values"][1] == pytest.approx(-14.0)
    assert all(isinstance(v, float) for v in result["values"]) and all(isinstance(a, int) for a in result["policy"])
    assert isinstance(result["iterations"], int) and result["seconds"] >= 0
    stay = plan("llmagentos/GridWorld4x4-v0", "policy-evaluation", gamma=0.9, policy="[" + ",".join(["3"] * 16) + "]")
    assert stay["values"][1] == pytest.approx(-1.0)  # left from cell 1 ends at corner 0 after one step
    vi = plan("FrozenLake-v1", "value-iteration", gamma=0.99, env_args={"is_slippery": False})
    assert vi["values"][14] == pytest.approx(1.0)


@pytest.mark.parametrize("kwargs, message", [
    ({"env_id": "CartPole-v1", "algo": "value-iteration"}, "transition table"),
    ({"env_id": "FrozenLake-v1", "algo": "sarsa"}, "not a planning algorithm"),
    ({"env_id": "FrozenLake-v1", "algo": "dynamic-programming"}, "unknown algorithm"),
    ({"env_id": "FrozenLake-v1", "algo": "value-iteration", "gamma": -0.1}, "gamma"),
    ({"env_id": "FrozenLake-v1", "algo": "value-iteration", "theta": 0.0}, "theta"),
    ({"env_id": "FrozenLake-v1", "algo": "policy-evaluation", "policy": "greedy"}, "--policy"),
    ({"env_id": "FrozenLake-v1", "algo": "policy-evaluation", "policy": "[0, 9]"}, "policy"),
    ({"env_id": "FrozenLake-v1", "algo": "value-iteration", "policy": "[0]"}, "policy-evaluation only"),
    ({"env_id": "NoSuchWorld-v0", "algo": "value-iteration"}, "unknown environment"),
])
def test_plan_refuses_bad_input(kwargs, message):
    with pytest.raises(UsageError, match=message):
        plan(**kwargs)


def test_plan_refuses_a_policy_that_never_ends_at_gamma_one():
    # "up" forever from the top row never reaches a terminal corner: its γ = 1 values diverge
    with pytest.raises(UsageError, match="did not converge"):
        plan("llmagentos/GridWorld4x4-v0", "policy-evaluation", gamma=1.0, policy=str([0] * 16), max_iterations=2_000)


def test_planning_config_documents_every_field():
    from llmagentos.core.config import describe

    rows = describe(PlanningConfig)
    assert {r["name"] for r in rows} >= {"gamma", "theta", "max_iterations"}
    assert all(r["doc"] for r in rows)


@pytest.mark.parametrize("env_id", ["llmagentos/GridWorld4x4-v0", "llmagentos/WindyGridWorld-v0", "llmagentos/GridWorld-v0"])
def test_grid_worlds_pass_gymnasiums_env_checker(env_id):
    env = gym.make(env_id).unwrapped
    check_env(env, skip_render_check=False)
