"""``llmagentos demo``: the lifelong demo's JSON contract and plots, and bad input refused with exit 2."""

import json
import subprocess
import sys

import numpy as np
import pytest

from llmagentos.jobs.demo import lifelong_demo


def test_demo_reports_every_strategy_with_the_contract_keys(tmp_path):
    result = lifelong_demo(seeds=1, steps_per_task=300, out=str(tmp_path / "demo"), backend="inline", quiet=True)
    assert set(result["strategies"]) == {"finetune", "ewc", "si", "lwf", "replay"}
    for metrics in result["strategies"].values():
        for key in ("average_performance", "forgetting", "forward_transfer", "forward_transfer_gem", "backward_transfer",
                    "matrix"):
            assert key in metrics
        assert np.asarray(metrics["matrix"]).shape == (4, 4)
    assert result["run_dir"] == str(tmp_path / "demo")
    assert all((tmp_path / "demo" / name).exists() for name in ("r_matrix.png", "life_return.png", "summary.json"))
    json.dumps(result)


def test_demo_refuses_bad_input_with_exit_2(tmp_path):
    for args in (["--seeds", "0"], ["--steps-per-task", "-5"], ["--backend", "carrier-pigeon"]):
        proc = subprocess.run([sys.executable, "-m", "llmagentos.cli", "demo", "--json", "--out", str(tmp_path / "x"), *args],
                              capture_output=True, text=True)
        assert proc.returncode == 2, proc.stderr
        assert proc.stdout == "" and "error" in proc.stderr
        assert not (tmp_path / "x").exists()


def test_minatar_demo_runs_the_five_games_and_writes_its_contract(tmp_path, monkeypatch):
    """``demo --world minatar`` end to end on a tiny budget: the five games in order, every strategy's 5×5 R matrix,
    the plots. Episodes are capped at 30 steps here (an untrained agent plays Freeway's full 2,500-step episodes), and
    PackNet retrains 20 steps instead of 500."""
    pytest.importorskip("minatar")
    import llmagentos.jobs.demo as demo

    real_block = demo.demo_block
    monkeypatch.setattr(demo, "demo_block", lambda *a, **k: real_block(*a, **k).model_copy(
        update={"env_args": {"max_episode_steps": 30},
                 "lifelong": {**real_block(*a, **k).lifelong, "packnet_retrain_steps": 20}}))
    result = lifelong_demo(seeds=1, steps_per_task=30, out=str(tmp_path / "demo"), backend="inline", quiet=True,
                           strategies=["finetune", "packnet"], world="minatar")
    assert set(result["strategies"]) == {"finetune", "packnet"}
    for metrics in result["strategies"].values():
        assert np.asarray(metrics["matrix"]).shape == (5, 5)
        assert np.isfinite(metrics["average_performance"])
    assert [t["game"] for t in result["stream"]["tasks"]] == ["breakout", "space_invaders", "freeway", "asterix", "seaquest"]
    assert all((tmp_path / "demo" / name).exists() for name in ("r_matrix.png", "life_return.png", "summary.json"))
