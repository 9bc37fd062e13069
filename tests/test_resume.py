"""Exact resume: a DQN run SIGKILLed after a checkpoint and resumed ends as if never stopped; bad checkpoints are refused."""

from __future__ import annotations

import json
import pickle
import random
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from llmagentos.cli import main
from llmagentos.jobs.train import resume, train
from llmagentos.kernel.run import TrainSpec
from helpers import comparable

# small, but with everything a resume must carry: updates, target syncs, a replay memory that wraps
# around, open n-step windows, ε mid-schedule, mid-episode env state
CONFIG = {"learning_starts": "400", "buffer_size": "2500", "n_step": "3", "exploration_steps": "3000",
          "target_update_interval": "50"}
STEPS, EVERY, CHECKPOINT = 4_500, 1_000, 600
SRC = Path(__file__).resolve().parents[1] / "src"


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
