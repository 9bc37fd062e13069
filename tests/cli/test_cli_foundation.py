"""The foundation's command line: JSON contracts of plan/train/eval, listings, refusals with exit 2, progress bar."""

from __future__ import annotations

import io
import json

import pytest

from helpers import run_cli
from llmagentos.kernel.progress import Progress

PLAN_KEYS = {"env", "algo", "gamma", "values", "policy", "iterations", "seconds"}
TRAIN_KEYS = {"env", "algo", "seed", "steps", "episodes", "wall_seconds", "steps_per_second", "eval", "curve", "online",
              "solved_at_step", "threshold", "run_dir"}


def one_json(out: str) -> dict:
    lines = [line for line in out.splitlines() if line.strip()]
    assert len(lines) == 1, out
    return json.loads(lines[0])


def test_plan_json_is_one_object_with_the_contract_keys(capsys):
    code, out, _ = run_cli(capsys, "plan", "llmagentos/GridWorld4x4-v0", "--algo", "policy-evaluation",
                           "--gamma", "1", "--theta", "1e-9", "--policy", "random", "--json")
    result = one_json(out)
    assert code == 0 and set(result) == PLAN_KEYS
    assert result["values"][1] == pytest.approx(-14.0, abs=1e-6) and len(result["policy"]) == 16
    code, out, _ = run_cli(capsys, "plan", "FrozenLake-v1", "--algo", "policy-iteration", "--gamma", "0.99",
                           "--env-arg", "map_name=8x8", "--json")
    assert code == 0 and len(one_json(out)["values"]) == 64
    code, out, _ = run_cli(capsys, "plan", "CliffWalking-v1", "--algo", "value-iteration", "--gamma", "1")
    assert code == 0 and "value-iteration" in out and "V =" in out


def test_train_json_eval_and_no_progress_bar_off_a_terminal(capsys, tmp_path):
    run_dir = tmp_path / "run"
    code, out, err = run_cli(capsys, "train", "--env", "CliffWalking-v1", "--algo", "sarsa", "--steps", "2000",
                             "--seed", "3", "--set", "alpha=0.5", "--set", "epsilon=0.1", "--eval-every", "500",
                             "--eval-episodes", "2", "--threshold", "-20", "--out", str(run_dir), "--json")
    summary = one_json(out)
    assert code == 0 and TRAIN_KEYS <= set(summary)
    assert err == ""  # stderr is not a terminal here: no progress bar, and nothing else
    assert set(summary["eval"]) >= {"mean_return", "std_return", "episodes"} and summary["eval"]["episodes"] == 2
    assert [p["step"] for p in summary["curve"]] == [500, 1000, 1500, 2000]
    assert all(set(p) >= {"step", "mean_return", "wall_seconds"} for p in summary["curve"])
    assert set(summary["online"]) >= {"episode_returns", "mean_return_last_100"}
    assert summary["threshold"] == -20.0 and summary["config"]["alpha"] == 0.5
    assert summary["steps"] == 2000 and summary["run_dir"] == str(run_dir)
    for name in ("job.json", "metrics.jsonl", "summary.json", "agent.safetensors", "agent.json"):
        assert (run_dir / name).exists()
    code, out, _ = run_cli(capsys, "eval", str(run_dir), "--episodes", "3", "--json")
    result = one_json(out)
    assert code == 0 and result["episodes"] == 3 and len(result["returns"]) == 3
    code, out, _ = run_cli(capsys, "eval", str(run_dir))
    assert code == 0 and "mean return" in out


def test_train_by_episodes_and_table_output(capsys, tmp_path):
    code, out, _ = run_cli(capsys, "train", "--env", "llmagentos/GridWorld4x4-v0", "--algo", "q-learning",
                           "--episodes", "20", "--quiet", "--out", str(tmp_path / "r"))
    assert code == 0 and "run directory" in out
    assert json.loads((tmp_path / "r" / "summary.json").read_text())["episodes"] == 20


@pytest.mark.parametrize("argv, words", [
    (["train", "--env", "NoSuchWorld-v0", "--algo", "sarsa", "--steps", "100"], "unknown environment"),
    (["train", "--env", "CliffWalking-v1", "--algo", "nope", "--steps", "100"], "unknown algorithm"),
    (["train", "--env", "CliffWalking-v1", "--algo", "sarsa", "--steps", "100", "--set", "beta=1"], "no field 'beta'"),
    (["train", "--env", "CliffWalking-v1", "--algo", "sarsa", "--steps", "100", "--set", "alpha=fast"], "not a number"),
    (["train", "--env", "CliffWalking-v1", "--algo", "sarsa", "--steps", "0"], "positive"),
    (["train", "--env", "CliffWalking-v1", "--algo", "sarsa", "--episodes", "-3"], "positive"),
    (["train", "--env", "CliffWalking-v1", "--algo", "value-iteration", "--steps", "100"], "llmagentos plan"),
    (["plan", "CartPole-v1", "--algo", "value-iteration"], "transition table"),
    (["plan", "FrozenLake-v1", "--algo", "sarsa"], "not a planning algorithm"),
    (["plan", "FrozenLake-v1", "--algo", "policy-evaluation", "--policy", "[1, 2]"], "policy"),
    (["plan", "FrozenLake-v1", "--gamma", "2"], "gamma"),
    (["eval", "not-a-run-dir"], "not a run directory"),
])
def test_bad_input_exits_2_with_one_line_and_no_run_directory(capsys, tmp_path, monkeypatch, argv, words):
    monkeypatch.chdir(tmp_path)
    out_dir = tmp_path / "out"
    extra = ["--out", str(out_dir)] if argv[0] == "train" else []
    code, out, err = run_cli(capsys, *argv, *extra)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and words in err and "Traceback" not in err
    assert out == ""
    assert not out_dir.exists() and not (tmp_path / "runs").exists()


def test_envs_and_algos_list_everything(capsys):
    code, out, _ = run_cli(capsys, "envs", "--json")
    listing = one_json(out)
    assert code == 0 and {"llmagentos/GridWorld4x4-v0", "llmagentos/WindyGridWorld-v0",
                          "llmagentos/GridWorld-v0"} <= set(listing["single_agent"])
    assert "FrozenLake-v1" in listing["gymnasium"]
    code, out, _ = run_cli(capsys, "envs")
    assert code == 0 and "llmagentos/WindyGridWorld-v0" in out
    code, out, _ = run_cli(capsys, "algos", "--json")
    algos = {a["name"]: a for a in one_json(out)["algorithms"]}
    for name in ("policy-evaluation", "policy-iteration", "value-iteration", "sarsa", "expected-sarsa", "q-learning"):
        assert name in algos and all(row["doc"] for row in algos[name]["config"])
    assert {r["name"] for r in algos["value-iteration"]["config"]} >= {"gamma", "theta"}
    code, out, _ = run_cli(capsys, "algos")
    assert code == 0 and "alpha: float = 0.5" in out


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_bar_only_on_a_terminal(monkeypatch):
    quiet = io.StringIO()
    monkeypatch.setattr("sys.stderr", quiet)
    bar = Progress(10, "steps")
    bar.update(10)
    bar.close()
    assert quiet.getvalue() == ""
    terminal = FakeTerminal()
    monkeypatch.setattr("sys.stderr", terminal)
    bar = Progress(10, "steps")
    bar.update(10, "eval -13.0")
    bar.close()
    assert "10/10 steps" in terminal.getvalue() and "eval -13.0" in terminal.getvalue()
    silenced = Progress(10, "steps", enabled=False)  # --quiet
    silenced.update(10)
    assert "10/10" not in terminal.getvalue().split("\n")[-1]


def test_train_writes_tensorboard_events_that_tensorboard_reads(capsys, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.summary_pb2 import Summary
    from tensorboard.compat.tensorflow_stub.pywrap_tensorflow import masked_crc32c

    from llmagentos.kernel.logging import encode_scalar_event, masked_crc32c_batch

    # the hand-written encoding is byte for byte protobuf's, and the batched CRC is TFRecord's
    event = Event(wall_time=1.25, step=123_456, summary=Summary(value=[
        Summary.Value(tag="episode/return", simple_value=-13.0), Summary.Value(tag="episode/length", simple_value=13)]))
    assert encode_scalar_event([("episode/return", -13.0), ("episode/length", 13)], 123_456, 1.25) == event.SerializeToString()
    chunks = [b"", b"abc", event.SerializeToString(), bytes(range(256))]
    assert list(masked_crc32c_batch(chunks)) == [masked_crc32c(c) for c in chunks]

    run_dir = tmp_path / "tb"
    code, out, _ = run_cli(capsys, "train", "--env", "CliffWalking-v1", "--algo", "q-learning", "--episodes", "30",
                           "--eval-every", "500", "--eval-episodes", "1", "--out", str(run_dir), "--json")
    summary = one_json(out)
    accumulator = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    accumulator.Reload()
    returns = [e.value for e in accumulator.Scalars("episode/return")]
    assert code == 0 and returns == summary["online"]["episode_returns"]
    assert [e.step for e in accumulator.Scalars("eval/mean_return")] == [p["step"] for p in summary["curve"]]
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert [r["return"] for r in lines if r["kind"] == "episode"] == returns
