"""A MAML meta-training job killed after a checkpoint continues from it exactly (sinusoid and goal grid),
and resuming a meta sweep skips finished seeds and finishes the killed one."""

from __future__ import annotations

import json

import pytest

from llmagentos.kernel import checkpoint
from llmagentos.jobs.meta import MetaBlock, run_job
from llmagentos.learners.maml import MAML

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
