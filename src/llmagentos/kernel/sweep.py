"""Sweeps: many jobs (grid points × seeds) through one backend, with skip-if-finished and a manifest.

A sweep directory holds ``sweep.json`` (the spec, and one entry per job: seed, grid values, run
directory, status) and one run directory per job. A job whose run directory has ``summary.json``
is finished: re-running the sweep skips it and reuses that summary, and a train job that was
killed after a checkpoint resumes from it instead of starting over. This module is generic over the
job function; :mod:`llmagentos.config` supplies it (``run_job``) and the job kinds.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path
from typing import Any, Callable

from llmagentos.kernel.backends import is_failure, run_jobs
from llmagentos.kernel.checkpoint import atomic_write_json
from llmagentos.kernel.progress import Progress

MANIFEST = "sweep.json"


def finished_summary(run_dir: str | Path) -> dict[str, Any] | None:
    """The run's summary.json if it finished, else None (a torn or unreadable file counts as unfinished)."""
    path = Path(run_dir) / "summary.json"
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def job_key(payload: dict[str, Any]) -> str:
    """A fingerprint of what a job computes (everything but where it runs), to tell a re-run from a new sweep."""
    what = {k: v for k, v in payload.items() if k not in ("out_dir", "params", "execution_keys")}
    if payload.get("execution_keys") and isinstance(what.get("block"), dict):  # where a job runs is not what it is
        what["block"] = {k: v for k, v in what["block"].items() if k not in payload["execution_keys"]}
    return hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()[:16]


def _refuse_different_jobs(out: Path, payloads: list[dict[str, Any]], keys: list[str]) -> None:
    path = out / MANIFEST
    if not path.exists():
        return
    try:
        old = {e["run_dir"]: e.get("key") for e in json.loads(path.read_text()).get("jobs", [])}
    except (OSError, json.JSONDecodeError, AttributeError):
        return
    for payload, key in zip(payloads, keys):
        if old.get(payload["out_dir"]) not in (None, key) and finished_summary(payload["out_dir"]) is not None:
            from llmagentos.core.errors import UsageError

            raise UsageError(f"{out} already holds a different experiment (its run {payload['out_dir']} was made "
                             "with other settings); choose a new output directory (--out DIR, or --set out=DIR for a spec) "
                             "or remove that one")


def run_sweep(function: Callable[[Any], Any], payloads: list[dict[str, Any]], out: str | Path,
              manifest: dict[str, Any], backend: str = "inline", workers: int | None = None,
              ray_address: str | None = None, quiet: bool = True) -> tuple[list[dict[str, Any]], list[int]]:
    """Run every payload (each has an ``out_dir``) not finished yet; returns (results in order, skipped indices).

    ``manifest`` (the spec as JSON) is written to ``out/sweep.json`` with one entry per job, before any
    job starts and again at the end with each job's status (finished, skipped, failed).
    """
    out = Path(out)
    keys = [job_key(p) for p in payloads]
    _refuse_different_jobs(out, payloads, keys)
    results: list[Any] = [None] * len(payloads)
    skipped: list[int] = []
    todo: list[int] = []
    for i, payload in enumerate(payloads):
        summary = finished_summary(payload["out_dir"])
        if summary is not None:
            results[i] = summary
            skipped.append(i)
        else:
            todo.append(i)
    entries = [{"job": i, "seed": p["seed"], "params": p.get("params", {}), "run_dir": p["out_dir"], "key": keys[i],
                "status": "finished" if i in skipped else "pending"} for i, p in enumerate(payloads)]
    doc = {**manifest, "jobs": entries, "started": time.strftime("%Y-%m-%dT%H:%M:%S")}
    atomic_write_json(out / MANIFEST, doc)
    progress = Progress(len(payloads), "jobs", enabled=not quiet, label="sweep ")
    progress.update(len(skipped))
    done = [len(skipped)]

    def on_result(k: int, result: Any) -> None:
        done[0] += 1
        progress.update(done[0], f"{sum(1 for r in results if is_failure(r))} failed")

    job_payloads = [{key: v for key, v in payloads[i].items() if key != "params"} for i in todo]
    try:
        fresh = run_jobs(function, job_payloads, backend=backend, workers=workers, ray_address=ray_address,
                         on_result=on_result)
    finally:
        progress.close()
    for i, result in zip(todo, fresh):
        if is_failure(result):
            result = {**result, "job_index": i}
        results[i] = result
    for entry, result in zip(entries, results):
        if entry["status"] == "pending":
            entry["status"] = "failed" if is_failure(result) else "finished"
            if is_failure(result):
                entry["error"] = result["error"]
    doc["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    atomic_write_json(out / MANIFEST, doc)
    return results, skipped


# -- the train kind's runner ------------------------------------------------------------------

def train_spec_from_block(block: Any, seed: int, out: str | None):
    """The kernel's TrainSpec for one seed of a validated train block (a pydantic model; only config keys given count)."""
    from llmagentos.kernel.run import TrainSpec

    data = block.model_dump(mode="json", exclude={"config"})
    data["config"] = block.config.model_dump(mode="json", exclude_unset=True)
    return TrainSpec(**data, seed=seed, out=out)


def run_train_job(block: Any, seed: int, out_dir: Path) -> dict[str, Any]:
    """One seed of a train block into ``out_dir``; a killed earlier attempt resumes from its last checkpoint."""
    from llmagentos.kernel.run import resume, train

    out_dir = Path(out_dir)
    if (out_dir / "checkpoints" / "latest.json").exists() and (out_dir / "job.json").exists():
        return resume(out_dir, quiet=True)
    if out_dir.exists():
        # a previous attempt died before its first checkpoint: nothing in it is worth keeping
        shutil.rmtree(out_dir)
    return train(train_spec_from_block(block, seed, str(out_dir)), quiet=True)
