"""Evolution strategies: the search gradient matches its closed form, fitness shaping is rank-based, SNES and
OpenAI-ES find a quadratic's optimum within a fixed budget, and a policy's fitness depends on its job alone."""

from __future__ import annotations

import numpy as np
import pytest

from llmagentos.core.errors import UsageError
from llmagentos.learners.nes import (ES, NESConfig, centered_ranks, nes_utilities, num_weights, policy_fitness,
                                     population_fitness, search_gradient)


def test_search_gradient_matches_the_closed_form_on_a_quadratic():
    """For f(z) = −‖z − c‖², z = μ + σ ⊙ s: E[f s] = −2σ ⊙ (μ − c) and E[f (s² − 1)] = −2σ²."""
    rng = np.random.default_rng(0)
    mu, sigma, c = np.array([1.0, -0.5, 2.0]), np.array([0.5, 1.0, 0.2]), np.array([0.0, 0.5, 1.0])
    half = rng.standard_normal((200_000, 3))
    s = np.concatenate([half, -half])  # mirrored samples cancel the estimator's odd noise terms
    f = -(((mu + sigma * s) - c) ** 2).sum(axis=1)
    # a constant baseline leaves both expectations unchanged (E[s] = E[s² − 1] = 0) and cuts the variance
    grad_mu, grad_sigma = search_gradient((f - f.mean()) / len(f), s)
    np.testing.assert_allclose(grad_mu, -2 * sigma * (mu - c), rtol=0.02, atol=1e-3)
    np.testing.assert_allclose(grad_sigma, -2 * sigma**2, rtol=0.03, atol=0.02)


def test_utilities_and_centred_ranks_depend_on_ranks_only():
    fitness = np.array([3.0, -1.0, 10.0, 0.5, 2.0, 7.0])
    u = nes_utilities(fitness)
    assert abs(u.sum()) < 1e-12
    by_rank = u[np.argsort(-fitness)]
    assert np.all(np.diff(by_rank) <= 0) and by_rank[0] > by_rank[2] and by_rank[-1] == by_rank[-2] == -1 / 6
    np.testing.assert_allclose(nes_utilities(fitness**3 + 100), u)  # invariant to monotone transforms
    # hand computation for λ = 4: raw = max(0, ln 3 − ln k) for k = 1..4
    raw = np.maximum(0, np.log(3) - np.log([1, 2, 3, 4]))
    np.testing.assert_allclose(nes_utilities(np.array([4.0, 3.0, 2.0, 1.0])), raw / raw.sum() - 0.25)
    r = centered_ranks(fitness)
    assert r.min() == -0.5 and r.max() == 0.5 and r[2] == 0.5 and r[1] == -0.5


@pytest.mark.parametrize("method,generations", [("snes", 150), ("openai-es", 300)])
def test_es_finds_a_quadratic_optimum_within_budget(method, generations):
    target = np.array([1.5, -2.0, 0.5, 3.0, -1.0])
    config = NESConfig(method=method, sigma_init=1.0, population=20,
                       center_lr=None if method == "snes" else 0.1, weight_decay=0.0)
    es = ES(5, config, seed=3)
    for _ in range(generations):
        es.step(lambda pop: -((pop - target) ** 2).sum(axis=1))
    assert np.abs(es.mu - target).max() < 0.05


def test_same_seed_same_search_and_state_round_trip():
    def run(es, n):
        for _ in range(n):
            es.step(lambda pop: -(pop**2).sum(axis=1))
        return es

    a = run(ES(4, NESConfig(), seed=7), 5)
    b = ES(4, NESConfig(), seed=99)
    b.load_state_dict(a.state_dict())
    run(a, 3), run(b, 3)
    np.testing.assert_array_equal(a.mu, b.mu)
    np.testing.assert_array_equal(a.sigma, b.sigma)


def test_policy_fitness_depends_on_the_job_only():
    theta = np.random.default_rng(0).standard_normal(num_weights(4, 2, []))
    job = {"theta": theta.tolist(), "env_id": "CartPole-v1", "hidden": [], "episodes": 3, "seed": 5}
    first, second = policy_fitness(job), policy_fitness(dict(job))
    assert first == second and first["episodes"] == 3 and 8 <= first["mean_return"] <= 500


def test_a_chunk_of_policies_scores_each_row_as_alone():
    thetas = np.random.default_rng(2).standard_normal((3, num_weights(4, 2, [])))
    job = {"env_id": "CartPole-v1", "hidden": [], "episodes": 2, "seed": 11}
    together = population_fitness({**job, "thetas": thetas})
    alone = [policy_fitness({**job, "theta": row.tolist()})["mean_return"] for row in thetas]
    assert together["mean_returns"] == alone and together["episodes"] == 2


def test_bad_input_is_refused():
    with pytest.raises(UsageError, match="method"):
        NESConfig(method="cma").validate()  # type: ignore[arg-type]
    es = ES(3, NESConfig(population=6), seed=0)
    es.ask()
    with pytest.raises(UsageError, match="6 finite fitness"):
        es.tell([1.0, 2.0])
    with pytest.raises(UsageError, match="weights"):
        policy_fitness({"theta": [0.0] * 3, "env_id": "CartPole-v1", "episodes": 1, "seed": 0})


def test_nes_spec_gives_the_same_search_inline_and_in_processes(tmp_path, capsys):
    import json

    from llmagentos.cli import main

    spec = tmp_path / "nes.yaml"
    spec.write_text("meta:\n  algo: nes\n  env: CartPole-v1\n  population_workers: 2\n"
                    "  config: {generations: 2, episodes: 2, eval_episodes: 2, population: 6}\n")
    curves = {}
    for backend in ("inline", "processes"):
        main(["run", str(spec), "--set", f"out={tmp_path / backend}", "--set", f"meta.population_backend={backend}", "--json"])
        run = json.loads(capsys.readouterr().out)["runs"][0]
        curves[backend] = [(p["generation"], p["mean_return"], p["fitness_mean"], p["sigma_mean"]) for p in run["curve"]]
        assert run["population"] == 6 and run["weights"] == 10 and "solved_at_generation" in run
        assert (tmp_path / backend / "seed-0" / "curve.png").exists()
    assert curves["inline"] == curves["processes"] and len(curves["inline"]) >= 1


def test_fitness_over_a_family_is_the_mean_over_its_tasks():
    from llmagentos.envs.families import get_family

    tasks = get_family("cartpole").tasks(2, seed=0)
    theta = np.random.default_rng(1).standard_normal(10).tolist()
    base = {"theta": theta, "env_id": "llmagentos/CartPoleFamily-v0", "family": "cartpole", "hidden": [], "episodes": 2, "seed": 3}
    both = policy_fitness({**base, "tasks": tasks})
    each = [policy_fitness({**base, "tasks": [t]})["mean_return"] for t in tasks]
    assert both["episodes"] == 4
    # task t's episodes reset with seed + 1000 t, so score the second task alone with its own seeds
    second = policy_fitness({**base, "tasks": [tasks[1]], "seed": 3 + 1000})["mean_return"]
    assert both["mean_return"] == pytest.approx((each[0] + second) / 2)


def test_snes_solves_cartpole_with_a_linear_policy_within_its_budget():
    from llmagentos.learners.nes import ES, NESConfig, evolve, num_weights, population_fitness

    config = NESConfig(episodes=2, eval_episodes=5, generations=30)
    es = ES(num_weights(4, 2, []), config, seed=0)
    job = {"env_id": "CartPole-v1", "hidden": [], "episodes": config.episodes, "seed": 7}

    def fitness(population, generation):
        return population_fitness({**job, "thetas": population.tolist(), "seed": 7 + generation})["mean_returns"]

    def centre(mu, generation):
        return population_fitness({**job, "thetas": [mu.tolist()], "episodes": config.eval_episodes, "seed": 99})["mean_returns"][0]

    result = evolve(es, fitness, centre, config.generations, threshold=475.0)
    assert result["solved_at_generation"] is not None, [p["mean_return"] for p in result["curve"]]
