"""``llmagentos demo``: the lifelong demo's JSON contract and plots, and bad input refused with exit 2."""

import json
import subprocess
import sys

import numpy as np

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
