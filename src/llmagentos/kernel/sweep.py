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
import time
from pathlib import Path
from typing import Any, Callable

from llmagentos.kernel.backends import failure, is_failure, run_jobs
from llmagentos.kernel.checkpoint import atomic_write_json
from llmagentos.kernel.remote import STAGED, RunTransferError, may_leave_this_machine, receive, run_staged, staged_jobs
from llmagentos.kernel.progress import Progress

MANIFEST = "sweep.json"


def finished_summary(run_dir: str | Path) -> dict[str, Any] | None:
    """The run's summary.json if it finished, else None (a torn or unreadable file counts as unfinished)."""
    path = Path(run_dir) / "summary.json"
    if not path.exists():
        return None
    try:
        summary = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError):  # ValueError: not JSON, or not UTF-8
        return None
    return summary if isinstance(summary, dict) else None


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
    from llmagentos.core.errors import UsageError

    try:
        # resolved, so the same sweep named by a relative or an absolute path is recognised
        old = {str(Path(e["run_dir"]).resolve()): e.get("key") for e in json.loads(path.read_text()).get("jobs", [])}
    except (OSError, ValueError, RecursionError, AttributeError, KeyError, TypeError):
        raise UsageError(f"{path} is not a readable sweep manifest; choose a new output directory") from None
    mine = [str(Path(p["out_dir"]).resolve()) for p in payloads]
    if not any(old.get(run_dir) == key for run_dir, key in zip(mine, keys)):
        raise UsageError(f"{out} already holds a different experiment (its {MANIFEST} has none of this sweep's "
                         "jobs); choose a new output directory or remove that one")
    for payload, run_dir, key in zip(payloads, mine, keys):
        if old.get(run_dir) not in (None, key) and finished_summary(payload["out_dir"]) is not None:
            raise UsageError(f"{out} already holds a different experiment (its run {payload['out_dir']} was made "
                             "with other settings); choose a new output directory (--out DIR, or --set out=DIR for a spec) "
                             "or remove that one")


def check_sweep_dir(out: Path) -> None:
    """Refuse an ``out`` the sweep may not write into: a file, or a non-empty directory that is not a sweep's."""
    from llmagentos.core.errors import UsageError

    if out.exists() and not out.is_dir():
        raise UsageError(f"the output directory {out} is a file; choose a new directory")
    if out.resolve() == Path(out.resolve().anchor):
        raise UsageError(f"the output directory {out} is the root of the file system; choose a directory for the sweep")
    if out.is_dir() and not (out / MANIFEST).is_file() and any(out.iterdir()):
        raise UsageError(f"the output directory {out} is not empty and holds no {MANIFEST} of an earlier sweep; "
                         "choose a new or empty directory")
    for parent in out.parents:
        if parent.exists() and not parent.is_dir():
            raise UsageError(f"the output directory {out} cannot be made: {parent} is a file")


def run_sweep(function: Callable[[Any], Any], payloads: list[dict[str, Any]], out: str | Path,
              manifest: dict[str, Any], backend: str = "inline", workers: int | None = None,
              ray_address: str | None = None, quiet: bool = True,
              on_job_done: Callable[[int, Any], None] | None = None,
              shared_out: bool = False) -> tuple[list[dict[str, Any]], list[int]]:
    """Run every payload (each has an ``out_dir``) not finished yet; returns (results in order, skipped indices).

    ``manifest`` (the spec as JSON) is written to ``out/sweep.json`` with one entry per job before any
    job starts, and again as each job ends with its status (finished, failed; ``stopped`` when a signal
    stopped the sweep). ``on_job_done(index, result)`` is called for every job as it ends, and for every
    job an earlier attempt already finished, so that a caller can record each one (the store does).

    On the ``ray`` backend, when it joins a cluster, a job may run on another machine: it runs in that node's
    temporary folder and its run directory comes back with its result (:mod:`llmagentos.kernel.remote`),
    unless ``shared_out`` says that ``out`` is on storage every node mounts, where the jobs write directly
    (as they do on a local Ray instance the sweep starts itself).
    """
    out = Path(out)
    check_sweep_dir(out)
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
    try:
        atomic_write_json(out / MANIFEST, doc)
    except OSError as err:
        from llmagentos.core.errors import UsageError

        raise UsageError(f"cannot write the sweep into {out}: {err.strerror}; choose a directory you can write to") from None
    if on_job_done is not None:
        for i in skipped:
            on_job_done(i, results[i])
    progress = Progress(len(payloads), "jobs", enabled=not quiet, label="sweep ")
    progress.update(len(skipped))
    done = [len(skipped)]

    staged = backend == "ray" and not shared_out and may_leave_this_machine(ray_address)

    def on_result(k: int, result: Any) -> None:
        i = todo[k]
        if staged and not is_failure(result):
            result = _receive(i, result, payloads[i]["out_dir"], entries[i])
        if is_failure(result):
            result = {**result, "job_index": i}
        results[i] = result
        entries[i]["status"] = "failed" if is_failure(result) else "finished"
        if is_failure(result):
            entries[i]["error"] = result["error"]
        atomic_write_json(out / MANIFEST, doc)  # as each job ends, so an interrupted sweep's record is current
        if on_job_done is not None:
            on_job_done(i, result)
        done[0] += 1
        progress.update(done[0], f"{sum(1 for r in results if is_failure(r))} failed")

    job_payloads: list[Any] = [{key: v for key, v in payloads[i].items() if key != "params"} for i in todo]
    job_function = function
    if staged:
        job_payloads, job_function = staged_jobs(function, job_payloads), run_staged
    elif backend == "ray" and shared_out:  # every node resolves a relative path against its own working folder
        job_payloads = [{**p, "out_dir": str(Path(p["out_dir"]).resolve())} for p in job_payloads]
    try:
        fresh = run_jobs(job_function, job_payloads, backend=backend, workers=workers, ray_address=ray_address,
                         on_result=on_result)
    except KeyboardInterrupt:
        for entry in entries:  # a job stopped part-way left a run directory; one that never started did not
            if entry["status"] == "pending" and Path(entry["run_dir"]).exists():
                entry["status"] = "stopped"
        doc["stopped"] = time.strftime("%Y-%m-%dT%H:%M:%S")
        atomic_write_json(out / MANIFEST, doc)
        raise
    finally:
        progress.close()
    for i, result in zip(todo, fresh):
        if results[i] is None:  # on_result has seen every job that ended; this is a safety net
            results[i] = {**result, "job_index": i} if is_failure(result) else result
    doc["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S")
    atomic_write_json(out / MANIFEST, doc)
    return results, skipped


def _receive(index: int, packed: Any, out_dir: str, entry: dict[str, Any]) -> Any:
    """A staged job's run directory written at ``out_dir``; its summary, or an error record if it was refused."""
    if not (isinstance(packed, dict) and packed.get(STAGED) == 1):
        return failure(index, f"the job for {out_dir} returned no run directory")
    try:
        result, node = receive(packed, out_dir)
    except RunTransferError as err:
        return failure(index, err)
    if node:
        entry["node"] = node
    return result


