"""Reports: mean ± Student-t 95 % interval over seeds (checked by hand), one row per grid point, PNG curves."""

import json
import math

import pytest

from llmagentos.kernel.report import mean_ci
from helpers import cli


def test_mean_ci_matches_hand_computation():
    # mean 2, s = 1, t(0.975, 2) = 4.302653: half-width 4.302653 / √3
    result = mean_ci([1.0, 2.0, 3.0])
    assert result["mean"] == 2.0 and result["n"] == 3
    assert result["ci95"] == pytest.approx(4.302653 / math.sqrt(3), rel=1e-6)
    assert mean_ci([5.0])["ci95"] is None and mean_ci([])["mean"] is None


def test_report_of_a_grid_sweep(tmp_path, capsys):
    store = str(tmp_path / "store")
    code, out, _ = cli(["--store", store, "train", "--env", "CliffWalking-v1", "--algo", "sarsa", "--episodes", "12",
                        "--eval-every", "300", "--eval-episodes", "1", "--seeds", "0:3", "--out", str(tmp_path / "sw"),
                        "--json", "--quiet"], capsys)
    runs = json.loads(out)["runs"]
    code, out, _ = cli(["report", str(tmp_path / "sw"), "--json"], capsys)
    report = json.loads(out)
    assert code == 0 and report["type"] == "sweep" and len(report["groups"]) == 1
    steps = report["groups"][0]["metrics"]["steps"]
    assert steps["values"] == [r["steps"] for r in runs]
    assert steps["mean"] == pytest.approx(sum(steps["values"]) / 3)
    assert steps["ci95"] == pytest.approx(mean_ci(steps["values"])["ci95"])
    assert sorted(p.split("/")[-1] for p in report["plots"]) == ["eval_return.png", "online_return.png"]
    assert all((tmp_path / "sw" / "report" / name).stat().st_size > 1000 for name in ("eval_return.png", "online_return.png"))
    code, out, _ = cli(["report", str(tmp_path / "sw")], capsys)
    assert code == 0 and "±" in out and "eval_return" in out
    # a run id from the store reports that one run
    code, out, _ = cli(["--store", store, "report", "1", "--json", "--out", str(tmp_path / "one")], capsys)
    assert json.loads(out)["type"] == "run" and json.loads(out)["groups"][0]["seeds"] == [0]
    code, _, err = cli(["report", str(tmp_path)], capsys)
    assert code == 2 and "neither a sweep directory" in err


def test_report_finds_a_sweep_recorded_with_relative_paths_from_another_directory(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, _, _ = cli(["train", "--env", "CliffWalking-v1", "--algo", "sarsa", "--episodes", "5", "--seeds", "0:2",
                      "--out", "runs/rel", "--quiet"], capsys)
    assert code == 0 and json.loads((tmp_path / "runs/rel/sweep.json").read_text())["jobs"][0]["run_dir"] == "runs/rel/seed-0"
    monkeypatch.chdir(tmp_path / "runs")  # the manifest's relative run directories do not exist from here
    code, out, _ = cli(["report", "rel", "--json", "--out", str(tmp_path / "report")], capsys)
    group = json.loads(out)["groups"][0]
    assert code == 0 and group["seeds"] == [0, 1] and group["unfinished"] == []
