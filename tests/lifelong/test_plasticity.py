"""Plasticity: the diagnostics against hand-computed values, continual backprop's unit surgery, the remedies'
effect on a small generated stream, and the plasticity job kind end to end (spec, table, JSON, exit status)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from llmagentos.cli import cli
from llmagentos.lifelong.plasticity import (dormant_fraction, dormant_scores, effective_rank, network_diagnostics,
                                            trace_hidden_layers)
from llmagentos.lifelong.remedies import ContinualBackprop, RemedyConfig, make_remedy


def small_net() -> nn.Sequential:
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, -1.0]]))
        net[0].bias.zero_()
        net[2].weight.copy_(torch.tensor([[1.0, 2.0, 3.0]]))
    return net


def test_dormant_and_rank_match_hand_computed_values():
    net = small_net()
    x = torch.tensor([[1.0, 2.0], [3.0, 0.0]])
    # h = relu(W x) = [[1, 2, 0], [3, 0, 0]]: mean |h| = [2, 1, 0], layer mean 1, so s = [2, 1, 0]
    layers = trace_hidden_layers(net, lambda: net(x))
    assert len(layers) == 1 and layers[0].incoming is net[0] and layers[0].outgoing == [net[2]]
    h = torch.relu(net[0](x)).detach()
    assert dormant_scores(h).tolist() == [2.0, 1.0, 0.0]
    assert dormant_fraction([h], tau=0.5) == pytest.approx(1 / 3)
    assert dormant_fraction([h], tau=1.0) == pytest.approx(2 / 3)  # s_i ≤ τ counts
    d = network_diagnostics(net, lambda: net(x), tau=0.5)
    assert d["dormant_fraction"] == pytest.approx(1 / 3)
    # Φ = [[1,2,0],[3,0,0]]: σ = sqrt(7 ± sqrt(13)), so σ1/(σ1+σ2) = 0.6816 < 0.99 and srank_0.01 = 2
    assert d["effective_rank"] == 2
    assert d["weight_norm/0"] == pytest.approx(2.0) and d["weight_norm/2"] == pytest.approx(np.sqrt(14))
    # σ = (3, 2, 1, 0): cumulative shares 0.5, 0.833, 1
    phi = torch.diag(torch.tensor([3.0, 2.0, 1.0, 0.0]))
    assert [effective_rank(phi, d) for d in (0.01, 0.2, 0.5)] == [3, 2, 1]
    assert effective_rank(torch.zeros(4, 3)) == 0


def test_hidden_layers_of_a_dqn_end_in_its_q_head():
    from llmagentos.envs.make import make_env
    from llmagentos.kernel.run import make_agent

    agent = make_agent("dqn", make_env("CartPole-v1"), seed=0)
    x = agent.prepare_observations(np.zeros((4, 4), dtype=np.float32))
    layers = trace_hidden_layers(agent.output_module(), lambda: agent.output_module()(x))
    assert len(layers) == len(agent.config.hidden)
    assert layers[-1].outgoing == [agent.output_module().head]
    reset = make_remedy("reset", RemedyConfig(reset_layers=2), layers, list(agent.output_module().parameters()), None, 0)
    assert reset.targets == [agent.output_module().head, layers[-1].incoming]  # the output layer, then the one before


def test_redo_recycles_the_dormant_units_and_the_other_remedies_follow_their_formulas():
    net = small_net()
    x = torch.tensor([[1.0, 2.0], [3.0, 0.0]])  # s = [2, 1, 0]: unit 2 is dormant
    layers = trace_hidden_layers(net, lambda: net(x))
    params = list(net.parameters())
    redo = make_remedy("redo", RemedyConfig(redo_tau=0.1, redo_period=2), layers, params, None, seed=0)
    net(x).sum().backward()  # a training pass: ReDo sees its activations
    redo.after_update()
    assert redo.recycled == 0  # not yet F = 2 updates
    redo.after_update()
    assert redo.recycled == 1 and net[2].weight.detach().tolist() == [[1.0, 2.0, 0.0]]
    assert net[0].weight.detach()[:2].tolist() == [[1.0, 0.0], [0.0, 1.0]]
    before = [p.detach().clone() for p in params]
    l2 = make_remedy("l2_init", RemedyConfig(l2_init=0.5), layers, params, None, seed=0)
    with torch.no_grad():
        net[2].bias.add_(2.0)
    assert float(l2.penalty().detach()) == pytest.approx(0.5 * 4.0)  # λ ‖θ − θ₀‖²
    sp = make_remedy("shrink_perturb", RemedyConfig(shrink=0.5, perturb=0.0), layers, params, None, seed=0)
    assert sp.end_task()
    assert torch.allclose(net[0].weight, 0.5 * before[0])  # θ ← λθ + σθ_fresh with σ = 0
    optimizer = torch.optim.Adam(params)
    net(x).sum().backward()
    optimizer.step()
    noisy = make_remedy("shrink_perturb", RemedyConfig(shrink=0.5, perturb=1.0), layers, params, optimizer, seed=0)
    w = net[0].weight.detach().clone()
    noisy.end_task()
    noise = net[0].weight.detach() - 0.5 * w  # σθ_fresh: drawn with the spread the tensor had when the remedy began
    assert 0 < float(noise.abs().max()) <= noisy.init_spread[0] and not optimizer.state  # and the optimiser restarts


def cbp_net(optimizer_cls=torch.optim.SGD):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 4), nn.ReLU(), nn.Linear(4, 1))
    optimizer = optimizer_cls(net.parameters(), lr=0.0)  # lr 0: the weights change only by the remedy
    x = torch.ones(3, 2)
    layers = trace_hidden_layers(net, lambda: net(x))
    config = RemedyConfig(cbp_replacement_rate=0.25, cbp_maturity=2, cbp_decay=0.5)
    remedy = make_remedy("cbp", config, layers, list(net.parameters()), optimizer, seed=0)
    with torch.no_grad():  # h = 1 for every unit, so the utility orders units by Σ|w_out| = 1, 2, 0.5, 3
        net[0].weight.zero_()
        net[0].bias.fill_(1.0)
        net[2].weight.copy_(torch.tensor([[1.0, 2.0, 0.5, 3.0]]))
    return net, optimizer, remedy, x


def update(net, optimizer, remedy, x):
    loss = net(x).pow(2).mean()
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()
    remedy.after_update()


def test_cbp_replaces_the_least_useful_mature_unit_and_zeroes_its_outgoing_weights():
    net, optimizer, remedy, x = cbp_net(torch.optim.Adam)
    assert isinstance(remedy, ContinualBackprop)
    for _ in range(2):  # ages 1, 2: nobody is older than m = 2 yet
        update(net, optimizer, remedy, x)
        assert remedy.replaced == 0
    update(net, optimizer, remedy, x)  # ages 3 > m: c = 0.25 × 4 = 1, the least useful unit (2) goes
    assert remedy.replaced == 1
    w_in, w_out = net[0].weight.detach(), net[2].weight.detach()
    assert w_out.tolist() == [[1.0, 2.0, 0.0, 3.0]]  # outgoing weights of the new unit are zero
    assert w_in[2].abs().sum() > 0 and net[0].bias[2] == 0.0  # incoming redrawn, bias zero
    assert (w_in[[0, 1, 3]] == 0).all()  # the others untouched
    assert remedy.age[0].tolist() == [3, 3, 0, 3] and remedy.utility[0][2] == 0.0
    # the ranking used the bias-corrected utility û = u / (1 − η^age), η = 0.5 here
    assert torch.allclose(remedy.corrected[0][[0, 1, 3]], remedy.utility[0][[0, 1, 3]] / (1 - 0.5 ** 3))
    assert optimizer.state[net[2].weight]["exp_avg"][0, 2] == 0.0  # its moments cleared
    # c = 0.25 × 3 eligible per update: the next replacement is at the 2nd update from here, and it takes
    # unit 0 (least useful of the mature ones) although the new unit 2 has the lowest utility: it is immature
    update(net, optimizer, remedy, x)
    assert remedy.replaced == 1
    update(net, optimizer, remedy, x)
    assert remedy.replaced == 2
    assert net[2].weight.detach().tolist() == [[0.0, 2.0, 0.0, 3.0]]
    assert remedy.age[0].tolist() == [0, 5, 2, 5]


def test_plain_training_loses_plasticity_on_a_generated_stream_and_continual_backprop_keeps_it():
    """The permuted-bits regression (generated, every task equally hard), Adam at a high step size: plain training's
    late tasks are learned worse than its first ones; continual backprop's are not."""
    from llmagentos.jobs.plasticity import run_strategy, validate_block

    block = validate_block({"stream": "regression", "tasks": 20, "steps_per_task": 150, "references": False,
                            "regression": {"bits": 8, "permute": True},
                            "network": {"hidden": [50], "optimizer": "adam", "learning_rate": 0.03, "batch": 16},
                            "remedies": {"cbp_replacement_rate": 0.01}})
    runs = {s: run_strategy(block, s, seed=0) for s in ("plain", "cbp")}
    error = {s: -np.asarray(r["performance"]) for s, r in runs.items()}  # online squared error per task
    ratio = {s: e[-4:].mean() / e[:4].mean() for s, e in error.items()}  # last 20 % of the tasks over the first 20 %
    # measured (seeds 0, 1, 2): plain's error grows by 12 %, 14 %, 38 %; cbp's by −3 %, +4 %, +7 %
    assert ratio["plain"] > 1.08, ratio
    assert ratio["cbp"] < 1.05 and error["cbp"][-4:].mean() < error["plain"][-4:].mean(), ratio
    assert runs["plain"]["dormant_fraction"][-1] > runs["cbp"]["dormant_fraction"][-1]
    assert runs["cbp"]["remedy"]["replaced"] > 0


def test_plasticity_spec_prints_a_table_writes_a_png_and_gives_stable_json_keys(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMAGENTOS_STORE", str(tmp_path / "store"))
    spec = tmp_path / "p.yaml"
    spec.write_text(f"name: p\nseeds: '0:2'\nout: {tmp_path / 'run'}\nplasticity:\n  stream: regression\n  tasks: 4\n"
                    "  steps_per_task: 5\n  strategies: [plain, cbp, redo, shrink_perturb, l2_init, reset]\n"
                    "  remedies: {redo_period: 2, reset_period: 3}\n")
    runner = CliRunner()
    result = runner.invoke(cli, ["run", str(spec), "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    for name in ("plain", "cbp", "redo", "shrink_perturb", "l2_init", "reset"):
        figures = data["strategies"][name]
        for key in ("plasticity_first", "plasticity_last", "dormant_fraction", "effective_rank", "average_performance"):
            assert np.isfinite(figures[key]) and len(figures[key + "_ci"]) == 2
        assert figures["plasticity_first"] < 0  # the negative error: higher is better
    assert (tmp_path / "run" / "plasticity.png").stat().st_size > 1000
    table = runner.invoke(cli, ["run", str(spec)])  # the finished sweep again: its table, no new work
    assert table.exit_code == 0 and "plasticity (last 10 %)" in table.output and "cbp" in table.output


@pytest.mark.parametrize("block, fragment", [
    ("stream: regression\n  steps_per_task: 5\n  strategies: [plain, magic]", "unknown strategy 'magic'"),
    ("stream: regression\n  steps_per_task: 5\n  remedies: {cbp_decay: 1.5}", "cbp_decay"),
    ("stream: regression\n  steps_per_task: 0", "steps_per_task"),
    ("stream: rl\n  steps_per_task: 5", "needs an rl block"),
])
def test_a_bad_plasticity_spec_is_refused_with_one_sentence(tmp_path, block, fragment):
    from llmagentos.config import load_spec
    from llmagentos.core.errors import UsageError

    spec = tmp_path / "bad.yaml"
    spec.write_text(f"name: bad\nout: {tmp_path / 'run'}\nplasticity:\n  {block}\n")
    with pytest.raises(UsageError, match=re.escape(fragment)):
        load_spec(spec)


def test_the_command_line_refuses_a_bad_plasticity_spec_with_exit_status_2(tmp_path):
    spec = tmp_path / "bad.yaml"
    spec.write_text(f"name: bad\nout: {tmp_path / 'run'}\nplasticity:\n  stream: regression\n  steps_per_task: 5\n"
                    "  strategies: [plain, magic]\n")
    out = subprocess.run([sys.executable, "-m", "llmagentos.cli", "run", str(spec)], capture_output=True, text=True,
                         env={**os.environ, "LLMAGENTOS_STORE": str(tmp_path / "store")}, timeout=120)
    assert out.returncode == 2 and "unknown strategy 'magic'" in out.stderr and "Traceback" not in out.stderr
    assert not (tmp_path / "run").exists()


def test_the_trainer_logs_plasticity_diagnostics_at_each_evaluation(tmp_path):
    from llmagentos.jobs.train import train
    from llmagentos.kernel.run import TrainSpec

    train(TrainSpec(env="CartPole-v1", algo="dqn", steps=400, eval_every=200, eval_episodes=1, out=str(tmp_path / "r"),
                    config={"learning_starts": 100, "hidden": [16]}), quiet=True)
    rows = [json.loads(line) for line in (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()]
    diag = [r for r in rows if r["kind"] == "plasticity"]
    assert [r["step"] for r in diag] == [r["step"] for r in rows if r["kind"] == "eval"] and diag
    assert 0.0 <= diag[-1]["dormant_fraction"] <= 1.0 and 1 <= diag[-1]["effective_rank"] <= 16
    assert diag[-1]["weight_norm/trunk.0"] > 0 and "grad_norm/trunk.0" in diag[-1]


def test_the_lifelong_summary_carries_dormant_units_and_rank_at_each_tasks_end_and_nothing_else_moves(monkeypatch):
    from llmagentos.jobs.lifelong import LifelongBlock, aggregate, combine, run_arm, table

    block = LifelongBlock(family="goal-grid", family_options={"size": 3}, tasks=[{"goal": [2, 2]}, {"goal": [0, 2]}],
                          steps_per_task=300, append_task=True, learner="dqn", eval_episodes=1, curve_points=2,
                          strategies=["finetune"], references=False,
                          config={"learning_starts": 100, "exploration_steps": 200, "buffer_size": 1000,
                                  "target_update_interval": 50, "hidden": [32], "learning_rate": 3e-3})
    arm = {"block": block.model_dump(), "seed": 0, "arm": "finetune"}
    measured = run_arm(arm)
    monkeypatch.setattr("llmagentos.lifelong.agent.task_diagnostics", lambda *args, **kwargs: None)
    unmeasured = run_arm(arm)
    # the probe steps an env of its own: the run's returns, curves and life are exactly those of a run without it
    for key in ("raw_matrix", "curves", "life", "scores"):
        assert measured[key] == unmeasured[key], key
    assert "dormant_fraction" not in unmeasured
    assert len(measured["dormant_fraction"]) == len(measured["effective_rank"]) == 2
    assert all(0.0 <= d <= 1.0 for d in measured["dormant_fraction"])
    assert all(1 <= r <= 32 for r in measured["effective_rank"])  # srank of the 32-unit last hidden layer
    reference = {"scores": [1.0, 1.0], "curves": measured["curves"]}  # stands in for the single-task reference arm
    summary = combine(block, {"random": {"returns": [0.0, 0.0]}, "reference": reference, "finetune": measured})
    entry = summary["strategies"]["finetune"]
    assert entry["dormant_fraction"] == measured["dormant_fraction"]
    assert entry["effective_rank_mean"] == pytest.approx(np.mean(measured["effective_rank"]))
    figures = aggregate([{"seed": 0, **summary}])["lifelong"]["finetune"]
    assert figures["dormant_fraction"] == pytest.approx(entry["dormant_fraction_mean"])
    assert figures["effective_rank_curve"] == pytest.approx(measured["effective_rank"]) and len(figures["effective_rank_ci"]) == 2
    headers, rows = table({"lifelong": {"finetune": figures}})
    assert headers[-2:] == ["dormant % (mean)", "effective rank (mean)"] and rows[0][-1].startswith(f"{figures['effective_rank']:.3g}")


def test_the_trainers_probe_never_steps_the_evaluation_env(tmp_path):
    from llmagentos.jobs.trainer import Trainer
    from llmagentos.kernel.run import TrainSpec

    trainer = Trainer(TrainSpec(env="CartPole-v1", algo="dqn", steps=100, out=str(tmp_path / "r"), config={"hidden": [16]}),
                      quiet=True)

    def refuse(*args, **kwargs):
        raise AssertionError("the plasticity probe stepped the evaluation env")

    trainer.eval_env.step = refuse
    first = trainer._plasticity_diagnostics()
    assert first is not None and 1 <= first["effective_rank"] <= 16
    assert trainer._plasticity_diagnostics() == first  # the same probe states at every evaluation
