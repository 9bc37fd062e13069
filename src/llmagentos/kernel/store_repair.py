"""Checking the store and rebuilding a lost or corrupted index from its blobs and the run directories
(``llmagentos store check``, ``llmagentos store rebuild``)."""

from __future__ import annotations

import os
import sqlite3
import time
from pathlib import Path
from typing import Any

from llmagentos.core.errors import UsageError
from llmagentos.kernel.store import INDEX, Store, agent_blobs, blob_sha, default_root

def check_store(root: str | Path | None = None) -> list[str]:
    """Every problem of the store at ``root``, one line each (empty when it is sound); opens nothing for writing."""
    root = Path(root) if root is not None else default_root()
    index = root / INDEX
    blobs = agent_blobs(root)
    if not index.exists():
        return [f"{index} is missing while {len(blobs)} agent blobs exist: llmagentos store rebuild re-indexes them"] \
            if blobs else []
    try:
        conn = sqlite3.connect(f"file:{index}?mode=ro", uri=True)
        try:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
            problems = [f"{index}: {r[0]}" for r in rows if r[0] != "ok"]
            known = {r[0] for r in conn.execute("SELECT blob FROM agent_versions").fetchall()}
        finally:
            conn.close()
    except sqlite3.DatabaseError as err:
        return [f"{index} is unreadable ({err}): llmagentos store rebuild re-indexes the blobs and run directories"]
    if problems:
        return problems
    with Store(root) as store:
        problems = store.verify()
    for manifest in blobs:
        blob = str(manifest.relative_to(root).with_suffix(""))
        if blob not in known:
            problems.append(f"blob {manifest.with_suffix('')} is not in the index (llmagentos store rebuild adds it)")
    return problems


def rebuild_store(root: str | Path | None = None, run_roots: list[str | Path] = ()) -> dict[str, Any]:
    """A new index for the store at ``root``: agents from their blobs, runs from run and sweep directories.

    The old index (if any) is kept beside it as ``index.sqlite.broken-TIME``. Each agent's versions are
    numbered in the order their blobs were saved; runs are found under ``run_roots`` (``job.json`` for a
    run, ``sweep.json`` for a sweep's jobs). Returns what was indexed.
    """
    from llmagentos.kernel.checkpoint import read_json

    root = Path(root) if root is not None else default_root()
    moved = None
    if (root / INDEX).exists():
        moved = root / f"{INDEX}.broken-{time.strftime('%Y%m%d-%H%M%S')}"
        for suffix in ("", "-wal", "-shm"):
            if (root / f"{INDEX}{suffix}").exists():
                os.replace(root / f"{INDEX}{suffix}", Path(f"{moved}{suffix}"))
    versions: list[tuple[str, float, str, dict[str, Any]]] = []
    skipped = []
    for manifest in agent_blobs(root):
        try:
            meta = read_json(manifest, "agent blob").get("meta", {})
            sha = blob_sha(manifest.with_suffix(""))
        except (UsageError, AttributeError):
            skipped.append(str(manifest))
            continue
        saved = meta.get("saved", manifest.stat().st_mtime)
        versions.append((manifest.parent.name, float(saved), sha, meta | {"blob": str(manifest.relative_to(root).with_suffix(""))}))
    with Store(root, new_index=True) as store:
        for name, saved, sha, meta in sorted(versions, key=lambda v: (v[0], v[1])):
            extra = {k: v for k, v in meta.items() if k not in ("algo", "observation_space", "action_space", "config",
                                                                "saved", "blob")}
            store._commit_version(name, meta["blob"], sha, meta.get("algo", "unknown"), meta.get("config", {}),
                                  meta.get("observation_space"), meta.get("action_space"),
                                  {k: meta.get(k) for k in ("algo", "observation_space", "action_space")} | extra,
                                  None, None, saved)
        runs = _index_runs(store, run_roots)
    return {"store": str(root), "agent_versions": len(versions), "runs": runs, "unreadable_blobs": skipped,
            "old_index": str(moved) if moved else None}


def _index_runs(store: Store, run_roots: list[str | Path]) -> int:
    """Record every run directory (``job.json``) and sweep job (``sweep.json``) under ``run_roots``; returns how many."""
    from llmagentos.kernel.checkpoint import read_json

    count = 0
    for top in run_roots:
        for job_file in sorted(Path(top).rglob("job.json")):
            run_dir = job_file.parent
            try:
                job = read_json(job_file, "job file")
            except UsageError:
                continue
            if not isinstance(job, dict):
                continue
            summary = _summary_or_none(run_dir)
            store.record_run(run_dir, status="finished" if summary else "stopped", env=job.get("env"),
                             algo=job.get("algo"), seed=job.get("seed"), agent=job.get("agent"), summary=summary)
            count += 1
        for manifest in sorted(Path(top).rglob("sweep.json")):
            try:
                jobs = read_json(manifest, "sweep manifest").get("jobs", [])
            except (UsageError, AttributeError):
                continue
            for entry in jobs:
                run_dir = Path(entry.get("run_dir", ""))
                if not run_dir.is_dir() or (run_dir / "job.json").exists():
                    continue  # never started, or a train job already indexed above
                summary = _summary_or_none(run_dir)
                store.record_run(run_dir, status="finished" if summary else "stopped", seed=entry.get("seed"),
                                 summary=summary)
                count += 1
    return count


def _summary_or_none(run_dir: Path) -> dict[str, Any] | None:
    from llmagentos.kernel.checkpoint import read_json

    try:
        summary = read_json(run_dir / "summary.json", "run summary")
    except UsageError:
        return None
    return summary if isinstance(summary, dict) else None
