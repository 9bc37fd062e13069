"""MAML: the meta-gradient is the true second-order gradient, first-order MAML is the documented approximation,
Meta-SGD learns step sizes, and a short meta-training beats a random initialisation."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from llmagentos.core.errors import UsageError
from llmagentos.learners.maml import MAML, MAMLConfig, mse_loss
from llmagentos.learners.maml_sinusoid import SinusoidMAMLConfig, sinusoid_experiment
from helpers import assert_spec_refused


def tiny_problem(seed: int = 0, tasks: int = 2):
    torch.manual_seed(seed)
    net = nn.Sequential(nn.Linear(1, 3), nn.Tanh(), nn.Linear(3, 1)).double()
    xs, xq = torch.randn(tasks, 4, 1, dtype=torch.float64), torch.randn(tasks, 4, 1, dtype=torch.float64)
    support, query = (xs, torch.sin(xs)), (xq, torch.cos(xq))
    return net, support, query


def finite_difference(f, tensors, eps=1e-6):
    out = []
    for t in tensors:
        g = torch.zeros_like(t)
        flat, gflat = t.data.view(-1), g.view(-1)
        for i in range(flat.numel()):
            old = flat[i].item()
            flat[i] = old + eps
            up = f().item()
            flat[i] = old - eps
            down = f().item()
            flat[i] = old
            gflat[i] = (up - down) / (2 * eps)
        out.append(g)
    return out


@pytest.mark.parametrize("inner_steps", [1, 2])
def test_second_order_meta_gradient_matches_finite_differences(inner_steps):
    net, support, query = tiny_problem()
    maml = MAML(net, mse_loss(net), MAMLConfig(inner_lr=0.3, inner_steps=inner_steps))
    params = list(maml.params.values())
    analytic = torch.autograd.grad(maml.meta_loss(support, query), params)
    with torch.no_grad():
        numeric = finite_difference(lambda: maml.meta_loss(support, query), params)
    for a, n in zip(analytic, numeric):
        torch.testing.assert_close(a, n, rtol=1e-5, atol=1e-7)
    # and it is not the first-order gradient (the second-order term matters at this step size)
    fo = MAML(net, mse_loss(net), MAMLConfig(inner_lr=0.3, inner_steps=inner_steps, first_order=True))
    first = torch.autograd.grad(fo.meta_loss(support, query), params)
    assert max((a - f).abs().max().item() for a, f in zip(analytic, first)) > 1e-4


def test_first_order_maml_is_the_query_gradient_at_the_adapted_parameters():
    """FOMAML: ∇θ ≈ (1/N) Σ_i ∇θ' L(θ'_i, D_i^val), with θ'_i = θ − α ∇θ L(θ, D_i^tr) computed by hand."""
    net, support, query = tiny_problem(seed=1)
    alpha = 0.3
    maml = MAML(net, mse_loss(net), MAMLConfig(inner_lr=alpha, first_order=True))
    params = list(maml.params.values())
    got = torch.autograd.grad(maml.meta_loss(support, query), params)
    expected = [torch.zeros_like(p) for p in params]
    tasks = support[0].shape[0]
    for i in range(tasks):
        loss = ((net(support[0][i]) - support[1][i]) ** 2).mean()
        grads = torch.autograd.grad(loss, params)
        adapted = [(p - alpha * g).detach().requires_grad_(True) for p, g in zip(params, grads)]
        h = torch.tanh(query[0][i] @ adapted[0].T + adapted[1])
        query_loss = ((h @ adapted[2].T + adapted[3] - query[1][i]) ** 2).mean()
        for e, g in zip(expected, torch.autograd.grad(query_loss, adapted)):
            e += g / tasks
    for g, e in zip(got, expected):
        torch.testing.assert_close(g, e, rtol=1e-10, atol=1e-12)


def test_meta_sgd_step_sizes_get_the_finite_difference_gradient():
    net, support, query = tiny_problem(seed=2)
    maml = MAML(net, mse_loss(net), MAMLConfig(inner_lr=0.2, meta_sgd=True))
    alphas = [a.data.double().requires_grad_(True) for a in maml.step_sizes.values()]
    maml.step_sizes = dict(zip(maml.step_sizes, alphas))
    analytic = torch.autograd.grad(maml.meta_loss(support, query), alphas)
    with torch.no_grad():
        numeric = finite_difference(lambda: maml.meta_loss(support, query), alphas)
    for a, n in zip(analytic, numeric):
        torch.testing.assert_close(a, n, rtol=1e-5, atol=1e-7)


def test_short_maml_run_adapts_better_than_a_random_init_and_repeats_exactly():
    torch.set_num_threads(1)
    cfg = SinusoidMAMLConfig(meta_iterations=400, eval_tasks=100, pretrain_iterations=50, log_every=200)
    logged = []
    result = sinusoid_experiment(cfg, seed=0, on_log=lambda i, v: logged.append(i))
    assert logged == [200, 400]
    maml_mse, random_mse = result["mse"]["maml"], result["mse"]["random"]
    assert maml_mse[1] < 0.6 * random_mse[1] and maml_mse[2] < 0.6 * random_mse[2]
    assert maml_mse[2] < maml_mse[0]  # adaptation helps the meta-learned init
    assert result["meta_iterations"] == 400 and result["meta_iteration_ms"] > 0
    again = sinusoid_experiment(cfg, seed=0)
    assert again["mse"] == result["mse"]


def test_bad_config_is_refused():
    with pytest.raises(UsageError, match="inner_steps"):
        MAMLConfig(inner_steps=0).validate()
    with pytest.raises(UsageError, match="eval_tasks"):
        SinusoidMAMLConfig(eval_tasks=1).validate()


def test_meta_spec_runs_maml_on_sinusoids_from_the_command_line(tmp_path, capsys):
    import json

    from llmagentos.cli import main

    spec = tmp_path / "maml.yaml"
    spec.write_text("seeds: 1\nmeta:\n  algo: maml\n  family: sinusoid\n  config: {meta_iterations: 30, eval_tasks: 20, "
                    "pretrain_iterations: 10, log_every: 10}\n")
    main(["run", str(spec), "--set", f"out={tmp_path / 'out'}", "--set", "meta.config.eval_steps=3", "--json"])
    result = json.loads(capsys.readouterr().out)
    run = result["runs"][0]
    assert set(run["mse"]) == {"maml", "pretrained", "random"} and len(run["mse"]["maml"]) == 3
    assert set(run["ci95"]) == {"maml", "pretrained", "random"}
    assert run["meta_iterations"] == 30 and run["meta_iteration_ms"] > 0 and run["steps_reported"] == [0, 1, 3]
    run_dir = tmp_path / "out" / "seed-0"
    assert (run_dir / "adaptation.png").stat().st_size > 0 and (run_dir / "summary.json").exists()
    assert sum(1 for _ in open(run_dir / "metrics.jsonl")) >= 3
    assert "mean_mse" in result


@pytest.mark.parametrize("override,message", [
    ("meta.family=grid", "meta.family"),
    ("meta.config.inner_steps=0", "inner_steps"),
    ("meta.config.no_such_field=1", "no_such_field"),
])
def test_bad_meta_specs_exit_2_before_any_run_directory(tmp_path, capsys, override, message):
    assert_spec_refused(tmp_path, capsys, "meta:\n  algo: maml\n  family: sinusoid\n", override, message)


def test_maml_rl_on_pointnav_reports_returns_before_and_after_adaptation():
    from llmagentos.learners.maml_rl import PointNavMAMLConfig, pointnav_experiment

    cfg = PointNavMAMLConfig(meta_iterations=2, meta_batch_size=2, episodes=2, eval_tasks=2, eval_steps=2,
                             pretrain_iterations=1, hidden=[8], log_every=1)
    logged = []
    result = pointnav_experiment(cfg, seed=0, on_log=lambda i, v: logged.append((i, v)))
    assert [i for i, _ in logged] == [1, 2] and all(v["adapted_return"] < 0 for _, v in logged)
    assert set(result["return"]) == {"maml", "pretrained", "random"}
    assert all(len(r) == 3 and all(-1000 < x < 0 for x in r) for r in result["return"].values())
    assert result["meta_iterations"] == 2
    again = pointnav_experiment(cfg, seed=0)
    assert again["return"] == result["return"]


def test_maml_rl_on_pointnav_improves_after_one_adaptation_step():
    from llmagentos.learners.maml_rl import PointNavMAMLConfig, pointnav_experiment

    cfg = PointNavMAMLConfig(meta_iterations=10, meta_batch_size=4, episodes=4, eval_tasks=4, eval_steps=1,
                             pretrain_iterations=1, hidden=[16], log_every=10)
    returns = pointnav_experiment(cfg, seed=0)["return"]
    maml, pretrained, random = returns["maml"], returns["pretrained"], returns["random"]
    assert maml[1] > maml[0] + 5  # one policy-gradient step on the new goal helps the meta-learned start
    assert maml[1] > pretrained[1] + 10 and maml[1] > random[1] + 10  # and more than it helps the other starts
