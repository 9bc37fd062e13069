"""Exact resume, train and meta jobs: a run stopped or SIGKILLed after a checkpoint ends as if never stopped.

- a DQN run SIGKILLed after a checkpoint and resumed (Python API) ends as the uninterrupted one; checkpoints are
  safetensors and JSON only; bad checkpoints are refused;
- a Q-learning and a small DQN process SIGKILLed at a random step resume by run id to exactly the uninterrupted
  run's result;
- a MAML meta-training job killed after a checkpoint continues from it exactly (sinusoid and goal grid), and
  resuming a meta sweep skips finished seeds and finishes the killed one.
"""

from __future__ import annotations

import json
import os
import pickle
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from llmagentos.cli import main
from llmagentos.jobs.meta import MetaBlock, run_job
from llmagentos.jobs.train import resume, train
from llmagentos.kernel import checkpoint
from llmagentos.kernel.run import TrainSpec
from llmagentos.learners.maml import MAML
from helpers import cli, comparable

# small, but with everything a resume must carry: updates, target syncs, a replay memory that wraps
# around, open n-step windows, ε mid-schedule, mid-episode env state
CONFIG = {"learning_starts": "400", "buffer_size": "2500", "n_step": "3", "exploration_steps": "3000",
          "target_update_interval": "50"}
STEPS, EVERY, CHECKPOINT = 4_500, 1_000, 600
SRC = Path(__file__).resolve().parents[2] / "src"


def metrics(run_dir: Path) -> list[dict]:
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in rec.items() if k != "steps_per_second"} for rec in lines]


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory) -> tuple[Path, dict]:
    """(run dir of a DQN run SIGKILLed at a random moment after a checkpoint, the uninterrupted run's summary)."""
    base = tmp_path_factory.mktemp("resume")
    reference = train(TrainSpec(env="CartPole-v1", algo="dqn", seed=3, steps=STEPS, config=dict(CONFIG),
                                eval_every=EVERY, eval_episodes=3, checkpoint_every=CHECKPOINT, out=str(base / "reference"),
                                tensorboard=False))
    run_dir = base / "killed"
    argv = ["train", "--env", "CartPole-v1", "--algo", "dqn", "--seed", "3", "--steps", str(STEPS),
            "--eval-every", str(EVERY), "--eval-episodes", "3", "--checkpoint-every", str(CHECKPOINT),
            "--out", str(run_dir), "--quiet", "--json"] + [a for k, v in CONFIG.items() for a in ("--set", f"{k}={v}")]
    code = f"import sys; sys.path.insert(0, {str(SRC)!r}); from llmagentos.cli import main; main({argv!r})"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    chooser = random.Random(11)
    wanted = chooser.choice([1, 2, 3]) * CHECKPOINT
    pointer = run_dir / "checkpoints" / "latest.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if pointer.exists() and json.loads(pointer.read_text())["step"] >= wanted:
            time.sleep(chooser.uniform(0.0, 0.15))  # land somewhere between two checkpoints
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
    assert not (run_dir / "summary.json").exists()
    return run_dir, reference


def test_resume_after_sigkill_matches_an_uninterrupted_run(killed_run, tmp_path, monkeypatch):
    run_dir, reference = killed_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)

    def no_pickle(*args, **kwargs):
        raise AssertionError("a checkpoint was read with pickle")

    monkeypatch.setattr(pickle, "load", no_pickle)
    monkeypatch.setattr(pickle, "loads", no_pickle)
    monkeypatch.setattr(pickle, "Unpickler", no_pickle)
    import torch

    monkeypatch.setattr(torch, "load", no_pickle)
    resumed = resume(copy)
    assert comparable(resumed) == comparable(reference)
    assert metrics(copy) == metrics(Path(reference["run_dir"]))
    # a finished run resumes to its summary without training again
    assert resume(copy) == resumed


def test_checkpoints_are_safetensors_and_json_only(killed_run):
    run_dir, _ = killed_run
    files = {p.suffix for p in (run_dir / "checkpoints").iterdir()}
    assert files <= {".json", ".safetensors"}
    for path in SRC.rglob("*.py"):  # nothing in the package deserialises with pickle
        for line in path.read_text().splitlines():
            assert not re.search(r"\bimport pickle\b|pickle\.loads?\(|allow_pickle\s*=\s*True", line), (path, line)
            assert "torch.load(" not in line or "weights_only=True" in line, (path, line)


def corrupt_flip(run: Path, base: Path) -> None:
    blob = base.with_suffix(".safetensors")
    data = bytearray(blob.read_bytes())
    for i in range(len(data) // 2, len(data) // 2 + 8):
        data[i] ^= 0xFF
    blob.write_bytes(bytes(data))


def edit_meta_algo(run: Path, base: Path) -> None:
    """A checkpoint made for another algorithm: its manifest is consistent, only its meta differs."""
    from llmagentos.kernel.checkpoint import state_digest

    doc = json.loads(base.with_suffix(".json").read_text())
    doc["meta"]["algo"] = "q-learning"
    doc["state_sha256"] = state_digest(doc["sha256"], doc["meta"], doc["state"])
    base.with_suffix(".json").write_text(json.dumps(doc))


def edit_version(run: Path, base: Path) -> None:
    doc = json.loads(base.with_suffix(".json").read_text())
    doc["format_version"] = 99
    base.with_suffix(".json").write_text(json.dumps(doc))


def edit_shape(run: Path, base: Path) -> None:
    """A job.json consistent with its checksum whose network no longer fits the checkpoint."""
    from llmagentos.kernel.run import job_checksum

    job = json.loads((run / "job.json").read_text())
    job["config"]["hidden"] = [32]
    job["sha256"] = job_checksum({k: v for k, v in job.items() if k != "sha256"})
    (run / "job.json").write_text(json.dumps(job))


@pytest.mark.parametrize("damage, message", [
    (corrupt_flip, "fails its checksum"),
    (edit_meta_algo, "made for algo='q-learning'"),
    (edit_version, "format version 99"),
    (edit_shape, "this agent's network has"),
])
def test_a_corrupted_or_foreign_checkpoint_is_refused(killed_run, tmp_path, capsys, damage, message):
    run_dir, _ = killed_run
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    latest = json.loads((copy / "checkpoints" / "latest.json").read_text())["checkpoint"]
    damage(copy, copy / "checkpoints" / latest)
    with pytest.raises(SystemExit) as exit_:
        main(["resume", str(copy), "--quiet"])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err
    assert not (copy / "summary.json").exists()


# -- a training process SIGKILLed at a random step, resumed by run id ----------------------------------------

TABULAR = (["--env", "CliffWalking-v1", "--algo", "q-learning", "--steps", "6000", "--checkpoint-every", "200",
            "--eval-every", "1000", "--set", "epsilon=0.2"], 6000, 200)
# a tiny DQN: replay memory, target network, Adam state and torch generators must all come back exactly
DQN = (["--env", "CartPole-v1", "--algo", "dqn", "--steps", "1000", "--checkpoint-every", "100", "--eval-every", "500",
        "--set", "learning_starts=100", "--set", "batch_size=16", "--set", "hidden=[16]", "--set", "buffer_size=1000",
        "--set", "target_update_interval=50", "--set", "exploration_steps=500"], 1000, 100)


def untimed_metrics(run_dir):
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("wall_seconds", "steps_per_second")} for r in lines]


@pytest.mark.parametrize("args, steps, every", [TABULAR, DQN], ids=["q-learning", "dqn"])
def test_sigkill_at_random_step_then_resume_matches_uninterrupted(tmp_path, capsys, args, steps, every):
    args = ["train", *args, "--eval-episodes", "2", "--quiet", "--json"]
    store = str(tmp_path / "store")
    killed = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "llmagentos.cli", "--store", store, *args, "--out", str(killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    target = int(np.random.default_rng().integers(1, steps // every // 2)) * every  # kill after a random checkpoint
    pointer = killed / "checkpoints" / "latest.json"
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        try:
            if json.loads(pointer.read_text())["step"] >= target:
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
    assert not (killed / "summary.json").exists()
    # the killed run is in the store as still "running": resume it by its id
    code, out, _ = cli(["--store", store, "runs", "ls", "--status", "running", "--json"], capsys)
    (record,) = json.loads(out)["runs"]
    code, out, err = cli(["--store", store, "resume", str(record["id"]), "--json", "--quiet"], capsys)
    assert code == 0, err
    resumed = json.loads(out)
    code, out, _ = cli(["--store", store, *args, "--out", str(tmp_path / "straight")], capsys)
    straight = json.loads(out)
    assert resumed["steps"] == straight["steps"] == steps
    assert comparable(resumed) == comparable(straight)
    assert untimed_metrics(killed) == untimed_metrics(tmp_path / "straight")
    # a checkpoint records the next one due, so a run resumed from it does not checkpoint again on its first step
    latest = json.loads((killed / "checkpoints" / "latest.json").read_text())
    saved = json.loads((killed / "checkpoints" / f"{latest['checkpoint']}.json").read_text())
    assert saved["state"]["__map__"]["kernel"]["__map__"]["next_checkpoint"] == latest["step"] + every
    code, out, _ = cli(["--store", store, "runs", "show", str(record["id"]), "--json"], capsys)
    assert json.loads(out)["status"] == "finished"


# -- meta jobs: MAML killed after a checkpoint --------------------------------------------------------

SINUSOID = {"meta_iterations": 40, "checkpoint_every": 10, "log_every": 5, "eval_tasks": 10, "eval_steps": 2,
            "pretrain_iterations": 5, "meta_batch_size": 5}
GOAL_GRID = {"size": 3, "max_steps": 6, "meta_iterations": 12, "checkpoint_every": 4, "log_every": 2,
             "meta_batch_size": 3, "episodes": 3, "eval_tasks": 3, "eval_steps": 2, "pretrain_iterations": 3}


class Killed(Exception):
    """Stands in for the SIGKILL that stops a job right after it wrote a checkpoint."""


def kill_after_checkpoints(monkeypatch, n):
    real, saved = checkpoint.save_state, []

    def save_then_die(base, state, meta):
        real(base, state, meta)
        if base.name == "checkpoint":
            saved.append(meta["log_lines"])
            if len(saved) == n:
                raise Killed

    monkeypatch.setattr(checkpoint, "save_state", save_then_die)
    return saved


def metric_lines(run_dir):
    """metrics.jsonl without its timings (which differ between any two runs)."""
    lines = [json.loads(line) for line in open(run_dir / "metrics.jsonl")]
    return [{k: v for k, v in line.items() if k != "meta_iteration_ms"} for line in lines]


@pytest.mark.parametrize("family,config,key", [("sinusoid", SINUSOID, "mse"), ("goal-grid", GOAL_GRID, "return")])
def test_a_killed_maml_job_resumes_from_its_checkpoint_exactly(tmp_path, monkeypatch, family, config, key):
    block = MetaBlock(algo="maml", family=family, config=config)
    whole = run_job(block, 3, tmp_path / "whole")

    saved = kill_after_checkpoints(monkeypatch, 2)
    with pytest.raises(Killed):
        run_job(block, 3, tmp_path / "killed")
    monkeypatch.undo()
    assert saved[-1] > 0 and (tmp_path / "killed" / "checkpoint.json").exists()
    assert not (tmp_path / "killed" / "maml.json").exists()
    updates = []
    real_update = MAML.outer_update
    monkeypatch.setattr(MAML, "outer_update", lambda self, loss: updates.append(1) or real_update(self, loss))
    resumed = run_job(block, 3, tmp_path / "killed")

    # only the meta-updates after the second checkpoint ran again, and they gave the uninterrupted job's result
    assert len(updates) == config["meta_iterations"] - 2 * config["checkpoint_every"]
    assert resumed[key] == whole[key] and resumed["ci95"] == whole["ci95"]
    assert resumed["meta_iterations"] == whole["meta_iterations"] == config["meta_iterations"]
    assert metric_lines(tmp_path / "killed") == metric_lines(tmp_path / "whole")
    assert not (tmp_path / "killed" / "checkpoint.json").exists()  # the finished θ supersedes it


def test_a_checkpoint_of_another_config_is_not_resumed(tmp_path, monkeypatch):
    block = MetaBlock(algo="maml", family="sinusoid", config=SINUSOID)
    kill_after_checkpoints(monkeypatch, 1)
    with pytest.raises(Killed):
        run_job(block, 0, tmp_path / "run")
    monkeypatch.undo()
    other = MetaBlock(algo="maml", family="sinusoid", config={**SINUSOID, "meta_lr": 0.002})
    fresh = run_job(other, 0, tmp_path / "fresh")
    restarted = run_job(other, 0, tmp_path / "run")  # starts over instead of loading θ trained with meta_lr 0.001
    assert restarted["mse"] == fresh["mse"]


def test_resume_of_a_meta_sweep_from_the_command_line(tmp_path, capsys):
    from llmagentos.cli import main

    spec = tmp_path / "maml.yaml"
    spec.write_text("seeds: 2\nmeta:\n  algo: maml\n  family: goal-grid\n  config: " + json.dumps(GOAL_GRID) + "\n")
    out = tmp_path / "out"
    main(["run", str(spec), "--set", f"out={out}", "--json"])
    first = json.loads(capsys.readouterr().out)
    (out / "seed-1" / "summary.json").unlink()  # seed 1 as if killed before it finished
    main(["resume", str(out), "--json"])
    again = json.loads(capsys.readouterr().out)
    assert [r["return"] for r in again["runs"]] == [r["return"] for r in first["runs"]]
    with pytest.raises(SystemExit) as exit_:  # a seed's directory is not a run of its own: the sweep is named
        main(["resume", str(out / "seed-0")])
    assert exit_.value.code == 2 and f"llmagentos resume {out}" in capsys.readouterr().err
