"""What the dashboard shows, read without ever writing: the store's index opened read-only, and run directories.

:class:`StoreReader` opens ``index.sqlite`` as a read-only SQLite URI (``mode=ro``): it takes no write lock,
so running jobs keep writing while the dashboard reads, and a store that does not exist yet reads as empty
(nothing is created). Run and result directories are read as the kernel wrote them (``summary.json``,
``metrics.jsonl``, ``sweep.json``); the kind-specific aggregates reuse the kernel's own functions, so the
dashboard shows the numbers the command line prints.

A result directory (a sweep, a lifelong demo, a transfer comparison) is only ever opened when it was found
by :meth:`Results.scan` under the configured roots or next to a recorded run; a file is only ever served from
inside a recorded run directory (:meth:`StoreReader.run_file`).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote


from llmagentos.kernel.report import common_eval_curve, mean_ci
from llmagentos.kernel.store import default_root
from llmagentos.kernel.sweep import MANIFEST

#: runs per page of the runs table when the request names none, and the most a request may ask for
PAGE_SIZE = 50
MAX_PAGE_SIZE = 500
#: result directories are looked for this many levels below each root
SCAN_DEPTH = 4


def job_kind_sql() -> str:
    """A SQL expression giving a run's job kind from its algorithm (and, for runs without one, its summary).

    The registry says which algorithms are multi-agent or meta-learners; a run without an algorithm is a
    lifelong arm (its summary has ``strategies``) or a multi-task job. Only those rows' summaries are parsed.
    """
    from llmagentos.learners import registry

    def names(kind: str) -> str:
        return ", ".join("'" + n.replace("'", "''") + "'" for n, e in registry.ALGORITHMS.items() if e.kind == kind)

    return (f"CASE WHEN algo IN ({names('multiagent')}) THEN 'multiagent' "
            f"WHEN algo IN ({names('meta')}) THEN 'meta' "
            f"WHEN algo IN ({names('planning')}) THEN 'planning' "
            "WHEN algo IS NULL THEN CASE WHEN json_extract(summary, '$.strategies') IS NOT NULL THEN 'lifelong' "
            "ELSE 'multitask' END ELSE 'train' END")


class RunIndex:
    """The runs table's small columns (no summaries) in an in-memory SQLite database with an index per filter.

    The store's ``runs`` rows carry whole summaries, so every scan of them (a filtered count, the distinct
    values of a column) reads megabytes on a large store; and the dashboard may not add indexes to a store it
    only reads. This copy is rebuilt from one scan whenever ``PRAGMA data_version`` says another connection
    committed (a run recorded or finished), and answers the table's filters, counts and pages in milliseconds.
    """

    COLUMNS = ("id", "run_dir", "agent", "env", "algo", "status", "created", "kind")

    def __init__(self, reader: "StoreReader") -> None:
        self.reader = reader
        self.memory = sqlite3.connect(":memory:", check_same_thread=False)
        self.memory.execute(f"CREATE TABLE runs ({', '.join(self.COLUMNS)})")
        for column in ("agent", "env", "algo", "status", "kind", "created"):
            self.memory.execute(f"CREATE INDEX runs_{column} ON runs ({column}, id)")
        self.lock = threading.Lock()
        self.version: Any = None
        self._watch: sqlite3.Connection | None = None
        self._choices: dict[str, list[str]] = {}

    def refresh(self) -> Any:
        """Rebuild the copy if the store changed since the last look; returns the store's change stamp."""
        if self._watch is None:
            self._watch = self.reader.connect()
            if self._watch is None:
                return None
        version = self._watch.execute("PRAGMA data_version").fetchone()[0]
        if version != self.version:
            rows = self._watch.execute(f"SELECT id, run_dir, agent, env, algo, status, created, {self.reader.kind_sql} "
                                       "FROM runs").fetchall()
            self.memory.execute("DELETE FROM runs")
            self.memory.executemany(f"INSERT INTO runs VALUES ({', '.join('?' * len(self.COLUMNS))})", rows)
            self._choices = {c: [r[0] for r in self.memory.execute(
                f"SELECT DISTINCT {c} FROM runs WHERE {c} IS NOT NULL ORDER BY {c}")]
                for c in ("agent", "env", "algo", "status", "kind")}
            self.version = version
        return self.version

    def page(self, where: str, args: list[Any], limit: int, offset: int) -> tuple[int, list[int], dict[str, list[str]]]:
        """(matching runs, the ids of one page of them newest first, the values each filter can take)."""
        with self.lock:
            self.refresh()
            clause = f"WHERE {where}" if where else ""
            total = self.memory.execute(f"SELECT COUNT(*) FROM runs {clause}", args).fetchone()[0]
            ids = [r[0] for r in self.memory.execute(f"SELECT id FROM runs {clause} ORDER BY id DESC LIMIT ? OFFSET ?",
                                                     [*args, limit, offset])]
            return total, ids, self._choices

    def stamp(self) -> Any:
        """Changes whenever a job commits a change to the store."""
        with self.lock:
            return self.refresh()

    def run_dirs(self) -> list[str]:
        with self.lock:
            self.refresh()
            return [r[0] for r in self.memory.execute("SELECT run_dir FROM runs")]


class StoreReader:
    """Read-only queries over one store's index (one SQLite connection per server thread)."""

    def __init__(self, root: str | Path | None = None) -> None:
        self.root = Path(root) if root is not None else default_root()
        self.path = self.root / "index.sqlite"
        self._local = threading.local()
        self.kind_sql = job_kind_sql()
        self.index = RunIndex(self)

    def connect(self) -> sqlite3.Connection | None:
        """A new read-only connection to the index (None while the store does not exist)."""
        if not self.path.exists():
            return None
        uri = "file:" + quote(str(self.path.resolve())) + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=10.0, check_same_thread=False)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA query_only = ON")
        return conn

    def _conn(self) -> sqlite3.Connection | None:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self.connect()
        return conn

    def query(self, sql: str, args: tuple | list = ()) -> list[sqlite3.Row]:
        conn = self._conn()
        return [] if conn is None else conn.execute(sql, tuple(args)).fetchall()

    # -- agents ----------------------------------------------------------------------------------
    def agents(self) -> list[dict[str, Any]]:
        rows = self.query("SELECT a.name, a.algo, a.version, a.observation_space, a.action_space, a.created, a.updated, "
                          "(SELECT COUNT(*) FROM runs r WHERE r.agent = a.name) AS runs, "
                          "(SELECT COUNT(DISTINCT task_id) FROM agent_versions v WHERE v.agent = a.name) AS tasks "
                          "FROM agents a ORDER BY a.name")
        return [dict(r) for r in rows]

    def agent(self, name: str) -> dict[str, Any] | None:
        """An agent's record, versions (with task and run), runs, lineage and latest score per task."""
        found = self.query("SELECT * FROM agents WHERE name = ?", (name,))
        if not found:
            return None
        versions = [dict(r) | {"meta": json.loads(r["meta"]), "descriptor": _loads(r["descriptor"])} for r in self.query(
            "SELECT v.version, v.created, v.task_id, v.run_id, v.meta, t.env, t.name AS task, t.descriptor, "
            "r.run_dir FROM agent_versions v LEFT JOIN tasks t ON t.id = v.task_id "
            "LEFT JOIN runs r ON r.id = v.run_id WHERE v.agent = ? ORDER BY v.version", (name,))]
        runs = [self._run_row(r) | {"summary_agent": _loads(r["summary_agent"])} for r in self.query(
            f"SELECT id, run_dir, agent, env, algo, seed, status, created, updated, {self.kind_sql} AS kind, "
            "json_extract(summary, '$.eval.mean_return') AS eval, json_extract(summary, '$.agent') AS summary_agent "
            "FROM runs WHERE agent = ? ORDER BY id", (name,))]
        knowledge = [dict(r) | {"meta": json.loads(r["meta"]), "descriptor": _loads(r["descriptor"])} for r in self.query(
            "SELECT k.id, k.task_id, k.version, k.score, k.metric, k.meta, k.created, k.descriptor, t.env, "
            "t.name AS task FROM knowledge k LEFT JOIN tasks t ON t.id = k.task_id WHERE k.agent = ? ORDER BY k.id",
            (name,))]
        return {"agent": dict(found[0]), "versions": versions, "runs": runs, "knowledge": knowledge,
                "lineage": _lineage(versions, runs, knowledge), "performance": _performance(knowledge)}

    # -- runs ------------------------------------------------------------------------------------
    def runs(self, *, agent: str | None = None, kind: str | None = None, env: str | None = None,
             algo: str | None = None, status: str | None = None, since: float | None = None,
             until: float | None = None, page: int = 1, per_page: int = PAGE_SIZE) -> dict[str, Any]:
        """One page of the runs table, newest first, with the total count and the values each filter can take."""
        where, args = [], []
        for column, value in (("agent", agent), ("env", env), ("algo", algo), ("status", status), ("kind", kind)):
            if value:
                where.append(f"{column} = ?")
                args.append(value)
        if since is not None:
            where.append("created >= ?")
            args.append(since)
        if until is not None:
            where.append("created < ?")
            args.append(until)
        per_page = max(1, min(int(per_page), MAX_PAGE_SIZE))
        page = max(1, int(page))
        total, ids, choices = self.index.page(" AND ".join(where), args, per_page, (page - 1) * per_page)
        rows = {r["id"]: r for r in self.query(
            f"SELECT id, run_dir, agent, env, algo, seed, status, created, updated, {self.kind_sql} AS kind, "
            f"json_extract(summary, '$.eval.mean_return') AS eval FROM runs WHERE id IN ({', '.join('?' * len(ids))})",
            ids)} if ids else {}
        return {"total": total, "page": page, "per_page": per_page,
                "runs": [self._run_row(rows[i]) for i in ids if i in rows], "choices": choices}

    @staticmethod
    def _run_row(r: sqlite3.Row) -> dict[str, Any]:
        keys = r.keys()
        return {k: r[k] for k in ("id", "run_dir", "agent", "env", "algo", "seed", "status", "created", "updated",
                                  "kind", "eval") if k in keys}

    def run(self, run_id: int) -> dict[str, Any] | None:
        rows = self.query(f"SELECT *, {self.kind_sql} AS kind, json_extract(summary, '$.eval.mean_return') AS eval "
                          "FROM runs WHERE id = ?", (run_id,))
        if not rows:
            return None
        r = rows[0]
        return {**self._run_row(r), "summary": _loads(r["summary"]), "error": r["error"], "task_id": r["task_id"]}

    def run_ids_for(self, run_dirs: list[str]) -> dict[str, int]:
        """The ids of the recorded runs among ``run_dirs`` (absolute paths), by path."""
        out: dict[str, int] = {}
        for start in range(0, len(run_dirs), 500):
            chunk = run_dirs[start:start + 500]
            for r in self.query(f"SELECT id, run_dir FROM runs WHERE run_dir IN ({', '.join('?' * len(chunk))})", chunk):
                out[r["run_dir"]] = r["id"]
        return out

    def run_file(self, run_id: int, relative: str) -> Path | None:
        """The file ``relative`` inside run ``run_id``'s directory, or None — for any path that leaves it."""
        record = self.query("SELECT run_dir FROM runs WHERE id = ?", (run_id,))
        if not record or not relative or "\x00" in relative:
            return None
        base = Path(record[0]["run_dir"]).resolve()
        target = (base / relative).resolve()
        if not target.is_relative_to(base) or target == base or not target.is_file():
            return None
        return target


# -- run directories ------------------------------------------------------------------------------

def run_details(record: dict[str, Any]) -> dict[str, Any]:
    """What a run page shows beyond the store's record: its job, configuration and files."""
    run_dir = Path(record["run_dir"])
    job = _read_json(run_dir / "job.json")
    summary = record.get("summary") or _read_json(run_dir / "summary.json")
    files = []
    if run_dir.is_dir():
        for path in sorted(run_dir.rglob("*")):
            if path.is_file() and not path.is_symlink() and "tensorboard" not in path.parts[len(run_dir.parts):]:
                files.append({"path": str(path.relative_to(run_dir)), "bytes": path.stat().st_size})
    config = (summary or {}).get("config") if isinstance((summary or {}).get("config"), dict) else (job or {}).get("config")
    return {**record, "summary": summary, "job": job, "config": config, "files": files,
            "sweep": str(sweep_of(run_dir) or "") or None, "exists": run_dir.is_dir()}


def read_metrics(run_dir: str | Path, offset: int = 0, limit: int = 4 << 20) -> dict[str, Any]:
    """The run's ``metrics.jsonl`` from byte ``offset`` on: its evaluation points and episode returns.

    Only whole lines are read (a line being written is left for the next call); ``offset`` in the answer
    is where the next call continues, so a live page fetches only what is new.
    """
    path = Path(run_dir) / "metrics.jsonl"
    evals: list[list[float]] = []
    episodes: list[list[float]] = []
    if not path.is_file():
        return {"offset": offset, "eval": evals, "episodes": episodes, "exists": False, "more": False}
    with open(path, "rb") as f:
        f.seek(max(0, offset))
        chunk = f.read(limit)
    end = chunk.rfind(b"\n") + 1
    for line in chunk[:end].splitlines():
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if record.get("kind") == "eval" and "mean_return" in record:
            evals.append([record["step"], record["mean_return"], record.get("std_return")])
        elif record.get("kind") == "episode" and "return" in record:
            episodes.append([record["step"], record["return"]])
    return {"offset": max(0, offset) + end, "eval": evals, "episodes": episodes, "exists": True,
            "more": len(chunk) == limit and end > 0}  # the read stopped at the limit: ask again from offset


def sweep_of(run_dir: Path) -> Path | None:
    """The sweep directory a run belongs to (its parent or grandparent holds ``sweep.json``), if any."""
    for parent in (run_dir.parent, run_dir.parent.parent):
        if (parent / MANIFEST).is_file():
            return parent
    return None


def overlay(curves: dict[str, list[dict[str, Any]]]) -> dict[str, Any] | None:
    """Evaluation curves of several runs on the steps they all reached: mean and Student-t 95 % band per step."""
    named = {k: v for k, v in curves.items() if v}
    found = common_eval_curve([{"curve": c} for c in named.values()]) if named else None
    if found is None:
        return None
    steps, ys = found
    stats = [mean_ci(list(column)) for column in ys.T]
    return {"steps": steps.tolist(), "mean": [s["mean"] for s in stats],
            "low": [s["low"] if s["low"] is not None else s["mean"] for s in stats],
            "high": [s["high"] if s["high"] is not None else s["mean"] for s in stats],
            "n": len(named), "runs": {k: [[p["step"], p["mean_return"]] for p in v] for k, v in named.items()}}


def _lineage(versions: list[dict[str, Any]], runs: list[dict[str, Any]],
             knowledge: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Where each version came from: the version a run continued, or the stream position (and strategy) a
    lifelong arm reached."""
    by_run = {r["id"]: r for r in runs}
    strategy = {k["version"]: k["meta"].get("strategy") for k in knowledge if k["meta"].get("strategy")}
    edges = []
    for v in versions:
        run = by_run.get(v["run_id"]) or {}
        origin = run.get("summary_agent") or {}
        source = origin.get("continued_from") if isinstance(origin, dict) else None
        if source is None and v["version"] > 1:
            source = v["version"] - 1
        edges.append({"version": v["version"], "from_version": source, "run_id": v["run_id"],
                      "task": v["task"] or v["env"], "strategy": strategy.get(v["version"]),
                      "note": _origin_note(v, strategy.get(v["version"]))})
    return edges


def _origin_note(version: dict[str, Any], strategy: str | None) -> str:
    meta = version.get("meta") or {}
    if "next_task" in meta:  # next_task counts from 1; the R matrix numbers tasks from 0
        return f"lifelong stream{f' ({strategy})' if strategy else ''}, after task {meta['next_task'] - 1}"
    return "training run" if version.get("run_id") else ""


def _performance(knowledge: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The latest knowledge entry per task: how the agent does on each task it has met."""
    latest: dict[Any, dict[str, Any]] = {}
    for entry in knowledge:
        key = (entry["task_id"], entry["metric"])
        if key not in latest or (entry["version"] or 0, entry["id"]) >= (latest[key]["version"] or 0, latest[key]["id"]):
            latest[key] = entry
    return sorted(latest.values(), key=lambda e: (e["task_id"] or 0, e["metric"]))


def _loads(text: str | None) -> Any:
    return json.loads(text) if text else None


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def parse_date(text: str | None, end: bool = False) -> float | None:
    """Seconds since the epoch at the start of day ``YYYY-MM-DD`` (local time), or of the next day with ``end``."""
    if not text:
        return None
    start = time.mktime(time.strptime(text, "%Y-%m-%d"))
    return start + 86400 if end else start
