"""Issue 17: bad input from a flag, a spec or a run directory is one sentence and exit 2 — never a traceback,
a hang, memory exhaustion or a write outside the chosen folder; checkpoints and job files are checked whole."""

from __future__ import annotations

import hashlib
import json
import pickle
import time
from pathlib import Path

import pytest

from helpers import cli

SPEC = "train: {env: CliffWalking-v1, algo: q-learning, steps: 30, eval_episodes: 1}\n"
QUICK = ["--env", "CliffWalking-v1", "--algo", "q-learning", "--steps", "30", "--eval-episodes", "1", "--quiet"]


def alias_bomb() -> str:
    """463 bytes that expand to 9**8 (43 million) strings when aliases are followed."""
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefg", "bcdefgh"):
        lines.append(f"{name}: &{name} [" + ",".join([f"*{prev}"] * 9) + "]")
    return "\n".join(lines) + "\n" + SPEC


def assert_one_sentence(code: int, err: str, message: str) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err
    assert len(lines) == 1 and lines[0].startswith("llmagentos: error: "), err
    assert "Traceback" not in err and message in err, err


@pytest.mark.parametrize("args, message", [
    (["--seed", "-1"], "--seed must be an integer from 0 to 4294967295"),
    (["--seed", str(2**32)], "--seed must be an integer from 0 to 4294967295"),
    (["--seed", "1e23"], "--seed"),
    (["--set", "initial_value=nan"], "initial_value: 'nan' is not a finite number"),
    (["--set", "alpha_final=nan"], "alpha_final"),
    (["--set", "alpha=inf"], "alpha"),
    (["--threshold", "nan"], "--threshold: nan is not allowed"),
    (["--env-arg", "x=NaN"], "--env-arg.x: nan is not allowed"),
    (["--seeds", "-3:2"], "--seeds: '-3:2' reaches outside the seeds"),
    (["--seeds", "0:99999999"], "a sweep may have at most"),
    (["--agent", "a" * 300], "--agent name"),
    (["--agent", "../escape"], "--agent name"),
])
def test_train_flags_refused_in_one_sentence(tmp_path, capsys, args, message):
    started = time.monotonic()
    code, _, err = cli(["train", *QUICK, "--out", str(tmp_path / "run"), *args], capsys)
    assert_one_sentence(code, err, message)
    assert not (tmp_path / "run").exists()
    assert time.monotonic() - started < 30  # initial_value=nan used to hang past 300 s; an agent name was checked after training


@pytest.mark.parametrize("argv, message", [
    (["train", "--env", "CartPole-v1", "--algo", "dqn", "--steps", "50", "--set", "learning_rate=nan"],
     "learning_rate: 'nan' is not a finite number"),
    (["train", "--env", "FrozenLake-v1", "--algo", "q-learning", "--steps", "50", "--env-arg", "map_name=99x99"],
     "environment FrozenLake-v1 refused its arguments"),
    (["train", "--env", "FrozenLake-v1", "--algo", "q-learning", "--steps", "50", "--env-arg", "desc=[]"],
     "environment FrozenLake-v1 refused its arguments"),
    (["plan", "FrozenLake-v1", "--env-arg", "map_name=99x99"], "environment FrozenLake-v1 refused its arguments"),
])
def test_bad_config_and_env_args_refused_in_one_sentence(tmp_path, capsys, argv, message):
    out = ["--out", str(tmp_path / "run"), "--quiet"] if argv[0] == "train" else []
    code, _, err = cli([*argv, *out], capsys)
    assert_one_sentence(code, err, message)
    assert not (tmp_path / "run").exists()


def test_out_naming_a_file_is_refused(tmp_path, capsys):
    target = tmp_path / "a-file"
    target.write_text("keep me")
    code, _, err = cli(["train", *QUICK, "--out", str(target)], capsys)
    assert_one_sentence(code, err, "is a file, not a directory")
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC + f"out: {target}\n")
    code, _, err = cli(["run", str(spec)], capsys)
    assert_one_sentence(code, err, "is a file")
    assert target.read_text() == "keep me"


@pytest.mark.parametrize("content, message", [
    (alias_bomb().encode(), "expands (through its aliases) to more than"),
    (("x: " + "[" * 100_000 + "]" * 100_000 + "\n" + SPEC).encode(), "nests lists or mappings more than"),
    (b"name: \xff\xfe\n" + SPEC.encode(), "is not UTF-8 text"),
    (("name: " + "x" * 10_000_000 + "\n" + SPEC).encode(), "is larger than 1000000 bytes"),
    (b"name: &a [*a]\n" + SPEC.encode(), "alias that refers to itself"),
    (("x: " + "9" * 5000 + "\n" + SPEC).encode(), "holds a value YAML cannot represent"),
    ((SPEC + "name: ../../x\n").encode(), "invalid spec: name '../../x' is not allowed"),
    ((SPEC + "name: " + "n" * 300 + "\n").encode(), "invalid spec: name"),
    ((SPEC + "seeds: [-1, 0]\n").encode(), "invalid spec: seeds: each seed must be an integer from 0"),
    ((SPEC + "seeds: 100000000\n").encode(), "a sweep may have at most"),
    ((SPEC + "grid: {train.config.alpha: [.nan]}\n").encode(), "nan is not allowed"),
    ((SPEC.replace("steps: 30", "steps: 30, threshold: .inf")).encode(), "inf is not allowed"),
    ((SPEC.replace("steps: 30", "steps: 30, env_args: {x: .nan}")).encode(), "nan is not allowed"),
])
def test_hostile_specs_refused_in_one_sentence(tmp_path, capsys, content, message):
    spec = tmp_path / "spec.yaml"
    spec.write_bytes(content)
    started = time.monotonic()
    code, _, err = cli(["run", str(spec), "--set", f"out={tmp_path / 'out'}"], capsys)
    assert_one_sentence(code, err, message)
    assert time.monotonic() - started < 20
    assert not (tmp_path / "out").exists()


def test_out_slash_and_foreign_non_empty_directories_are_refused(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC)
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    other = tmp_path / "other-sweep"  # another sweep's output, its sweep.json naming none of this sweep's jobs
    other.mkdir()
    (other / "sweep.json").write_text(json.dumps({"spec": {}, "jobs": [{"run_dir": str(other / "x"), "key": "k"}]}))
    for out, message in (("/", "is the root of the file system"), (foreign, "is not empty and holds no sweep.json"),
                         (other, "already holds a different experiment")):
        code, _, err = cli(["run", str(spec), "--set", f"out={out}"], capsys)
        assert_one_sentence(code, err, message)
    assert sorted(p.name for p in foreign.iterdir()) == ["notes.txt"]
    assert sorted(p.name for p in other.iterdir()) == ["sweep.json"]
    assert not Path("/sweep.json").exists() and not Path("/seed-0").exists()
    # the same sweep's own earlier output is fine: a re-run skips the finished job
    out = tmp_path / "sweep"
    assert cli(["run", str(spec), "--set", f"out={out}", "--quiet"], capsys)[0] == 0
    code, stdout, _ = cli(["run", str(spec), "--set", f"out={out}", "--json"], capsys)
    assert code == 0 and json.loads(stdout)["skipped"] == [0]


def test_seeds_n_means_the_same_on_the_command_line_and_in_a_spec(tmp_path, capsys):
    code, stdout, _ = cli(["train", *QUICK, "--seeds", "3", "--out", str(tmp_path / "flags"), "--json"], capsys)
    assert code == 0 and json.loads(stdout)["seeds"] == [0, 1, 2]
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC + f"seeds: 3\nout: {tmp_path / 'spec'}\n")
    code, stdout, _ = cli(["run", str(spec), "--json"], capsys)
    assert code == 0 and json.loads(stdout)["seeds"] == [0, 1, 2]


# -- run directories: job.json and checkpoints are checked whole --------------------------------------

@pytest.fixture()
def stopped_run(tmp_path, capsys) -> Path:
    """A q-learning run with checkpoints whose summary (and final agent) were removed, as if killed."""
    run_dir = tmp_path / "run"
    code, _, err = cli(["train", "--env", "CliffWalking-v1", "--algo", "q-learning", "--steps", "600",
                        "--eval-episodes", "1", "--checkpoint-every", "200", "--out", str(run_dir), "--quiet"], capsys)
    assert code == 0, err
    (run_dir / "summary.json").unlink()
    return run_dir


def latest_checkpoint(run_dir: Path) -> Path:
    name = json.loads((run_dir / "checkpoints" / "latest.json").read_text())["checkpoint"]
    return run_dir / "checkpoints" / name


def resign(base: Path, doc: dict, blob: bytes | None = None) -> None:
    """Rewrite a checkpoint with consistent hashes, as someone who knows the format would."""
    from llmagentos.kernel.checkpoint import state_digest

    if blob is not None:
        base.with_suffix(".safetensors").write_bytes(blob)
    doc["sha256"] = hashlib.sha256(base.with_suffix(".safetensors").read_bytes()).hexdigest()
    doc["state_sha256"] = state_digest(doc["sha256"], doc["meta"], doc["state"])
    base.with_suffix(".json").write_text(json.dumps(doc))


def edit_steps(base: Path) -> None:
    doc = json.loads(base.with_suffix(".json").read_text())
    doc["state"]["__map__"]["interaction"]["__map__"]["steps"] += 1000
    base.with_suffix(".json").write_text(json.dumps(doc))


def edit_curve(base: Path) -> None:
    doc = json.loads(base.with_suffix(".json").read_text())
    curve = doc["state"]["__map__"]["kernel"]["__map__"]["curve"]
    curve.append({"__map__": {"step": 1, "mean_return": 0.0}, "int_keys": False})
    base.with_suffix(".json").write_text(json.dumps(doc))


def pickle_in_place(base: Path) -> None:
    doc = json.loads(base.with_suffix(".json").read_text())
    resign(base, doc, blob=pickle.dumps({"weights": [1, 2, 3]}))


def wrong_type_field(base: Path) -> None:
    doc = json.loads(base.with_suffix(".json").read_text())
    doc["state"]["__map__"]["kernel"]["__map__"]["curve"] = "not a list"
    doc["state"]["__map__"]["kernel"]["__map__"]["next_eval"] = "soon"
    resign(base, doc)


def not_json(base: Path) -> None:
    base.with_suffix(".json").write_bytes(b"\x00\xff not json")


@pytest.mark.parametrize("damage, message", [
    (edit_steps, "fails its checksum: its JSON state was edited"),
    (edit_curve, "fails its checksum: its JSON state was edited"),
    (pickle_in_place, "is not a safetensors file"),
    (wrong_type_field, "does not hold the state this run needs"),
    (not_json, "is not valid JSON"),
])
def test_tampered_checkpoints_are_refused_on_resume(stopped_run, capsys, damage, message):
    damage(latest_checkpoint(stopped_run))
    code, _, err = cli(["resume", str(stopped_run), "--quiet"], capsys)
    assert_one_sentence(code, err, message)
    assert not (stopped_run / "summary.json").exists()


def test_job_json_must_match_its_checksum_on_eval_and_resume(stopped_run, tmp_path, capsys):
    finished = tmp_path / "finished"
    assert cli(["train", *QUICK, "--out", str(finished)], capsys)[0] == 0
    for run_dir in (finished, stopped_run):
        job = json.loads((run_dir / "job.json").read_text())
        job["env_args"] = {"is_slippery": True}
        (run_dir / "job.json").write_text(json.dumps(job))
    code, _, err = cli(["eval", str(finished), "--episodes", "1"], capsys)
    assert_one_sentence(code, err, "job.json fails its checksum")
    code, _, err = cli(["resume", str(stopped_run), "--quiet"], capsys)
    assert_one_sentence(code, err, "job.json fails its checksum")
    (finished / "job.json").write_text("{not json")
    code, _, err = cli(["eval", str(finished)], capsys)
    assert_one_sentence(code, err, "is not valid JSON")


def test_temporary_files_of_a_killed_writer_are_removed_on_resume(stopped_run, capsys):
    dead = dead_pid()
    torn = [stopped_run / "checkpoints" / f".step-000000000800.json.{dead}.tmp", stopped_run / f".summary.json.{dead}.tmp"]
    for path in torn:
        path.write_bytes(b"half")
    code, _, err = cli(["resume", str(stopped_run), "--quiet"], capsys)
    assert code == 0, err
    assert not any(path.exists() for path in torn)
    assert (stopped_run / "summary.json").exists()


def dead_pid() -> int:
    """The pid of a process that has ended (the writer a torn temporary file names)."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


# -- the last resort --------------------------------------------------------------------------------

def test_an_unexpected_exception_is_one_line_and_a_crash_report(tmp_path, capsys, monkeypatch):
    import tempfile

    import llmagentos.jobs.train as run_module

    def broken(*args, **kwargs):
        raise RuntimeError("a bug nobody foresaw")

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(run_module, "_train", broken)
    code, _, err = cli(["train", *QUICK, "--out", str(tmp_path / "run")], capsys)
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 1 and len(lines) == 1 and "Traceback" not in err
    assert "internal error: RuntimeError: a bug nobody foresaw" in lines[0]
    report = Path(lines[0].rsplit("crash report: ", 1)[1].rstrip(")"))
    assert report.parent == tmp_path and "a bug nobody foresaw" in report.read_text()
    assert "Traceback" in report.read_text()
