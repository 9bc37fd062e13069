"""The store: what agents learned, kept beyond any one process.

One root directory (default ``./.llmagentos/``; ``LLMAGENTOS_STORE`` or ``llmagentos --store PATH``
moves it) holds ``index.sqlite`` — agents, their versions, runs, tasks and knowledge entries — and
``blobs/``, the agents' states as safetensors + JSON written by :mod:`llmagentos.kernel.checkpoint`
(checksummed, written to a temporary name and renamed).

Safety with several processes at once: SQLite runs in WAL mode with a busy timeout, every change is
one ``BEGIN IMMEDIATE`` transaction, and a blob is written completely under a fresh unique name
*before* the transaction that points the index at it commits. A writer killed at any moment therefore
leaves the previous state intact (at worst an unreferenced blob file), and a blob that fails its
checksum is reported by :meth:`Store.get_agent` / :meth:`Store.verify`, never loaded.

Python API (what the lifelong and transfer code uses)::

    store = Store("path/to/store")                  # or Store() for the default root
    store.put_agent("alice", agent.state_dict(), algo="q-learning", config=to_dict(agent.config),
                    observation_space=str(obs_space), action_space=str(act_space),
                    task=store.record_task("CliffWalking-v1"))
    state, record = store.get_agent("alice")        # latest version; version=N for an older one
    task = store.record_task("llmagentos/GoalGrid-v0", descriptor=[0.2, 0.8])
    store.add_knowledge(task, "alice", score=-13.0, descriptor=[0.2, 0.8])
    best = store.query_knowledge(descriptor=[0.25, 0.8], k=3)   # nearest tasks first, then best score
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import math
import os
import shutil
import sqlite3
import time
import uuid
from pathlib import Path
from typing import Any, Iterator

from llmagentos.core.errors import UsageError
from llmagentos.core.limits import check_name
from llmagentos.kernel.checkpoint import CheckpointError, load_state, remove_stale_temporaries, save_state
from llmagentos.kernel.store_schema import (  # noqa: F401  (AgentRecord and StoreError are part of the store's API)
    SCHEMA as _SCHEMA, AgentRecord, StoreError, knowledge_json as _knowledge_json, run_json as _run_json,
    task_json as _task_json)

#: environment variable that moves the store (the command line's --store sets it for child processes too)
STORE_ENV = "LLMAGENTOS_STORE"
INDEX = "index.sqlite"
DEFAULT_ROOT = ".llmagentos"
SCHEMA_VERSION = 1

def default_root() -> Path:
    """``$LLMAGENTOS_STORE`` if set, else ``./.llmagentos``."""
    return Path(os.environ.get(STORE_ENV) or DEFAULT_ROOT)


def _now() -> float:
    return round(time.time(), 3)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


class Store:
    """A SQLite-indexed store of agents, runs, tasks and knowledge under one root directory."""

    def __init__(self, root: str | Path | None = None, *, new_index: bool = False) -> None:
        """Open the store at ``root``; ``new_index`` allows starting an empty index beside existing blobs (rebuild)."""
        self.root = Path(root) if root is not None else default_root()
        self.path = self.root / INDEX
        if not new_index and not self.path.exists() and agent_blobs(self.root):
            raise StoreError(f"the store {self.root} holds agent blobs but no {INDEX} (deleted or moved?); refusing to "
                             "start it empty: re-index it with llmagentos store rebuild")
        try:
            (self.root / "blobs").mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(f"cannot create the store at {self.root}: {err.strerror}") from None
        for agent_dir in (self.root / "blobs" / "agents").glob("*/"):  # blobs torn by writers that died
            remove_stale_temporaries(agent_dir)
        try:
            self._conn = sqlite3.connect(self.path, timeout=60.0, isolation_level=None)
            self._conn.row_factory = sqlite3.Row
            self._conn.execute("PRAGMA busy_timeout = 60000")
            self._retry(lambda: self._conn.execute("PRAGMA journal_mode = WAL"))
            self._conn.execute("PRAGMA synchronous = NORMAL")
            with self.transaction() as db:
                db.executescript_safe(_SCHEMA)
                db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
        except sqlite3.DatabaseError as err:  # not a database, a torn page, a table of the wrong shape
            raise self._unreadable(err) from None

    # -- plumbing -----------------------------------------------------------------------------
    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def _retry(self, action, attempts: int = 50):
        for i in range(attempts):
            try:
                return action()
            except sqlite3.OperationalError as err:
                if "locked" not in str(err) and "busy" not in str(err):
                    raise self._unreadable(err) from None
                if i == attempts - 1:
                    raise
                time.sleep(0.05 * (i + 1))
            except sqlite3.DatabaseError as err:
                raise self._unreadable(err) from None

    def _unreadable(self, err: sqlite3.DatabaseError) -> StoreError:
        return StoreError(f"the store index {self.path} is unreadable ({err}); see what is wrong with "
                          "llmagentos store check and re-index it with llmagentos store rebuild")

    @contextlib.contextmanager
    def transaction(self) -> Iterator["_Tx"]:
        """One atomic change: ``BEGIN IMMEDIATE`` (takes the write lock, waits for other writers) ... ``COMMIT``."""
        self._retry(lambda: self._conn.execute("BEGIN IMMEDIATE"))
        try:
            yield _Tx(self._conn)
        except sqlite3.DatabaseError as err:
            with contextlib.suppress(sqlite3.DatabaseError):
                self._conn.execute("ROLLBACK")
            raise self._unreadable(err) from None
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise
        else:
            self._retry(lambda: self._conn.execute("COMMIT"))

    def _query(self, sql: str, args: tuple = ()) -> list[sqlite3.Row]:
        return self._retry(lambda: self._conn.execute(sql, args).fetchall())

    # -- agents -------------------------------------------------------------------------------
    def put_agent(self, name: str, state: Any, *, algo: str, config: dict[str, Any] | None = None,
                  observation_space: str | None = None, action_space: str | None = None,
                  meta: dict[str, Any] | None = None, task: int | None = None, run: int | None = None) -> AgentRecord:
        """Save a new version of agent ``name`` (created if new); returns its record.

        The state is written to a new blob first and the index updated in one transaction after, so a
        crash leaves the previous version current. An existing agent keeps its algorithm and spaces:
        a different one is refused.
        """
        _check_name(name)
        current = self.agent(name)
        if current is not None:  # checked again under the write lock below; this spares writing a blob in vain
            _check_same_agent(current, algo, observation_space, action_space)
        blob = f"blobs/agents/{name}/{uuid.uuid4().hex}"
        full_meta = {"algo": algo, "observation_space": observation_space, "action_space": action_space,
                     **(meta or {})}
        # the blob carries what a rebuild of a lost index needs: the agent's config and when it was saved
        save_state(self.root / blob, state, {**full_meta, "config": config or {}, "saved": _now()})
        sha = blob_sha(self.root / blob)
        now = _now()
        try:
            version = self._commit_version(name, blob, sha, algo, config, observation_space, action_space, full_meta,
                                           task, run, now)
        except BaseException:
            for suffix in (".json", ".safetensors"):
                (self.root / blob).with_suffix(suffix).unlink(missing_ok=True)
            raise
        record = self.agent(name, version)
        assert record is not None
        return record

    def _commit_version(self, name, blob, sha, algo, config, observation_space, action_space, full_meta, task, run,
                        now) -> int:
        with self.transaction() as db:
            row = db.execute("SELECT name, version, algo, observation_space, action_space FROM agents WHERE name = ?",
                             (name,)).fetchone()
            if row is not None:
                _check_same_agent(AgentRecord(row["name"], row["algo"], row["observation_space"], row["action_space"],
                                              row["version"], 0, 0, "", "", {}, {}),
                                  algo, observation_space, action_space)
            if row is None:
                version = 1
                db.execute("INSERT INTO agents VALUES (?, ?, ?, ?, ?, ?, ?)",
                           (name, algo, observation_space, action_space, version, now, now))
            else:
                version = row["version"] + 1
                db.execute("UPDATE agents SET version = ?, updated = ? WHERE name = ?", (version, now, name))
            db.execute("INSERT INTO agent_versions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                       (name, version, blob, sha, _json(config or {}), _json(full_meta), task, run, now))
        return version

    def agent(self, name: str, version: int | None = None) -> AgentRecord | None:
        """The record of agent ``name`` (its latest version, or ``version``), or None if there is none."""
        rows = self._query(
            "SELECT a.name, a.algo, a.observation_space, a.action_space, v.version, a.created, v.created AS updated, "
            "v.blob, v.sha256, v.config, v.meta FROM agents a JOIN agent_versions v ON v.agent = a.name "
            "WHERE a.name = ? AND v.version = COALESCE(?, a.version)", (name, version))
        if not rows:
            return None
        r = rows[0]
        return AgentRecord(r["name"], r["algo"], r["observation_space"], r["action_space"], r["version"], r["created"],
                           r["updated"], r["blob"], r["sha256"], json.loads(r["config"]), json.loads(r["meta"]))

    def require_agent(self, name: str, version: int | None = None) -> AgentRecord:
        record = self.agent(name, version)
        if record is None:
            names = [a.name for a in self.agents()]
            if version is not None and self.agent(name) is not None:
                raise StoreError(f"agent {name!r} has no version {version} (latest: {self.agent(name).version})")
            raise StoreError(f"no agent named {name!r} in the store {self.root}"
                             + (f"; it has: {', '.join(names)}" if names else " (it is empty)"))
        return record

    def get_agent(self, name: str, version: int | None = None) -> tuple[Any, AgentRecord]:
        """(state, record) of agent ``name``; a blob that fails its checksum raises CheckpointError."""
        record = self.require_agent(name, version)
        base = self.root / record.blob
        if blob_sha(base) != record.sha256:
            raise CheckpointError(f"agent {name!r} version {record.version}: its blob {base}.safetensors fails its "
                                  "checksum (corrupted or replaced); refusing to load it")
        state, _ = load_state(base)
        return state, record

    def agents(self) -> list[AgentRecord]:
        names = [r["name"] for r in self._query("SELECT name FROM agents ORDER BY name")]
        return [rec for rec in (self.agent(n) for n in names) if rec is not None]

    def agent_history(self, name: str) -> list[dict[str, Any]]:
        """Every version of ``name``, oldest first, with the task and run that produced it."""
        self.require_agent(name)
        rows = self._query(
            "SELECT v.version, v.created, v.sha256, v.task_id, v.run_id, t.env, t.name AS task_name, "
            "t.descriptor, r.run_dir FROM agent_versions v LEFT JOIN tasks t ON t.id = v.task_id "
            "LEFT JOIN runs r ON r.id = v.run_id WHERE v.agent = ? ORDER BY v.version", (name,))
        return [{"version": r["version"], "created": r["created"], "sha256": r["sha256"], "task_id": r["task_id"],
                 "env": r["env"], "task": r["task_name"],
                 "descriptor": json.loads(r["descriptor"]) if r["descriptor"] else None,
                 "run_id": r["run_id"], "run_dir": r["run_dir"]} for r in rows]

    def remove_agent(self, name: str) -> None:
        """Forget agent ``name`` and delete its blobs (its runs and knowledge entries stay, for the record)."""
        self.require_agent(name)
        with self.transaction() as db:
            db.execute("DELETE FROM agent_versions WHERE agent = ?", (name,))
            db.execute("DELETE FROM agents WHERE name = ?", (name,))
        shutil.rmtree(self.root / "blobs" / "agents" / name, ignore_errors=True)

    # -- tasks --------------------------------------------------------------------------------
    def record_task(self, env: str, env_args: dict[str, Any] | None = None, descriptor: Any = None,
                    name: str | None = None) -> int:
        """The id of the task (env, env_args, descriptor), created on first sight; the same task gets the same id."""
        key = hashlib.sha256(_json([env, env_args or {}, descriptor]).encode()).hexdigest()
        with self.transaction() as db:
            db.execute("INSERT OR IGNORE INTO tasks (key, name, env, env_args, descriptor, created) VALUES (?, ?, ?, ?, ?, ?)",
                       (key, name, env, _json(env_args or {}), None if descriptor is None else _json(descriptor), _now()))
            return int(db.execute("SELECT id FROM tasks WHERE key = ?", (key,)).fetchone()["id"])

    def task(self, task_id: int) -> dict[str, Any] | None:
        rows = self._query("SELECT * FROM tasks WHERE id = ?", (task_id,))
        return _task_json(rows[0]) if rows else None

    def tasks(self) -> list[dict[str, Any]]:
        return [_task_json(r) for r in self._query("SELECT * FROM tasks ORDER BY id")]

    # -- runs ---------------------------------------------------------------------------------
    def record_run(self, run_dir: str | Path, *, status: str, env: str | None = None, algo: str | None = None,
                   seed: int | None = None, agent: str | None = None, task: int | None = None,
                   summary: dict[str, Any] | None = None, error: str | None = None) -> int:
        """Create or update the run at ``run_dir`` (its absolute path is its key); returns the run id."""
        key = str(Path(run_dir).resolve())
        now = _now()
        with self.transaction() as db:
            row = db.execute("SELECT id FROM runs WHERE run_dir = ?", (key,)).fetchone()
            if row is None:
                db.execute("INSERT INTO runs (run_dir, agent, task_id, env, algo, seed, status, created, updated, "
                           "summary, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           (key, agent, task, env, algo, seed, status, now, now,
                            None if summary is None else _json(summary), error))
                return int(db.execute("SELECT id FROM runs WHERE run_dir = ?", (key,)).fetchone()["id"])
            sets = {"status": status, "updated": now}
            for column, value in (("agent", agent), ("task_id", task), ("env", env), ("algo", algo), ("seed", seed),
                                  ("summary", None if summary is None else _json(summary)), ("error", error)):
                if value is not None:
                    sets[column] = value
            db.execute(f"UPDATE runs SET {', '.join(f'{c} = ?' for c in sets)} WHERE id = ?", (*sets.values(), row["id"]))
            return int(row["id"])

    def run(self, ref: str | int) -> dict[str, Any] | None:
        """A run by id (``12``) or by its run directory."""
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
            rows = self._query("SELECT * FROM runs WHERE id = ?", (int(ref),))
        else:
            rows = self._query("SELECT * FROM runs WHERE run_dir = ?", (str(Path(ref).resolve()),))
        return _run_json(rows[0]) if rows else None

    def require_run(self, ref: str | int) -> dict[str, Any]:
        record = self.run(ref)
        if record is None:
            raise StoreError(f"no run {ref!r} in the store {self.root} (llmagentos runs ls lists them)")
        return record

    def runs(self, agent: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        rows = self._query("SELECT * FROM runs WHERE (? IS NULL OR agent = ?) AND (? IS NULL OR status = ?) ORDER BY id",
                           (agent, agent, status, status))
        return [_run_json(r) for r in rows]

    # -- knowledge ----------------------------------------------------------------------------
    def add_knowledge(self, task: int | None, agent: str, score: float, *, descriptor: Any = None,
                      version: int | None = None, metric: str = "mean_return",
                      meta: dict[str, Any] | None = None) -> int:
        """Remember that ``agent`` (``version``, default its latest) scored ``score`` on a task; returns the entry id.

        ``descriptor`` (default: the task's) is what :meth:`query_knowledge` matches on: a list of numbers
        (distance-matched) or any JSON value (matched exactly).
        """
        if descriptor is None and task is not None:
            found = self.task(task)
            descriptor = found["descriptor"] if found else None
        if version is None:
            record = self.agent(agent)
            version = record.version if record else None
        if not isinstance(score, (int, float)) or math.isnan(float(score)):
            raise UsageError(f"a knowledge entry's score must be a number, got {score!r}")
        with self.transaction() as db:
            db.execute("INSERT INTO knowledge (task_id, descriptor, agent, version, score, metric, meta, created) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                       (task, None if descriptor is None else _json(descriptor), agent, version, float(score), metric,
                        _json(meta or {}), _now()))
            return int(db.execute("SELECT last_insert_rowid() AS id").fetchone()["id"])

    def query_knowledge(self, descriptor: Any = None, k: int | None = None, *, agent: str | None = None,
                        env: str | None = None, metric: str | None = None) -> list[dict[str, Any]]:
        """Knowledge entries, best match first.

        With a numeric ``descriptor``: nearest (Euclidean, over entries whose descriptor has the same length)
        first, ties by higher score. With another descriptor: exact matches by score. Without: all by score.
        ``k`` keeps the first k; ``agent``/``env``/``metric`` filter.
        """
        rows = self._query(
            "SELECT k.*, t.env FROM knowledge k LEFT JOIN tasks t ON t.id = k.task_id "
            "WHERE (? IS NULL OR k.agent = ?) AND (? IS NULL OR t.env = ?) AND (? IS NULL OR k.metric = ?)",
            (agent, agent, env, env, metric, metric))
        entries = [_knowledge_json(r) for r in rows]
        if descriptor is not None:
            if _is_vector(descriptor):
                entries = [e for e in entries if _is_vector(e["descriptor"]) and len(e["descriptor"]) == len(descriptor)]
                for e in entries:
                    e["distance"] = math.dist([float(x) for x in descriptor], [float(x) for x in e["descriptor"]])
                entries.sort(key=lambda e: (e["distance"], -e["score"], e["id"]))
            else:
                entries = [e for e in entries if e["descriptor"] == descriptor]
                entries.sort(key=lambda e: (-e["score"], e["id"]))
        else:
            entries.sort(key=lambda e: (-e["score"], e["id"]))
        return entries[:k] if k is not None else entries

    # -- integrity ----------------------------------------------------------------------------
    def verify(self) -> list[str]:
        """One line per problem: a missing blob or one that fails its checksum (nothing is loaded)."""
        problems = []
        for r in self._query("SELECT agent, version, blob, sha256 FROM agent_versions ORDER BY agent, version"):
            base = self.root / r["blob"]
            if not base.with_suffix(".safetensors").exists() or not base.with_suffix(".json").exists():
                problems.append(f"agent {r['agent']!r} version {r['version']}: blob {base} is missing")
            elif blob_sha(base) != r["sha256"]:
                problems.append(f"agent {r['agent']!r} version {r['version']}: blob {base}.safetensors fails its checksum")
            else:
                try:
                    doc = json.loads(base.with_suffix(".json").read_text())
                    if doc.get("sha256") != r["sha256"]:
                        problems.append(f"agent {r['agent']!r} version {r['version']}: {base}.json does not match its blob")
                except (OSError, json.JSONDecodeError):
                    problems.append(f"agent {r['agent']!r} version {r['version']}: {base}.json is not valid JSON")
        return problems


    # -- one writer per agent ----------------------------------------------------------------
    @contextlib.contextmanager
    def agent_lock(self, name: str, holder: str, wait: bool = False) -> Iterator[None]:
        """Hold agent ``name`` for one run: a second run is refused naming ``holder`` of the first, or waits.

        The lock is an OS file lock, so it is released when its process ends in any way (even SIGKILL).
        """
        import fcntl

        _check_name(name)
        path = self.root / "locks" / f"{name}.lock"
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "a+", encoding="utf-8") as f:
            try:
                fcntl.flock(f, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
            except BlockingIOError:
                f.seek(0)
                running = f.read().strip() or "another process"
                raise StoreError(f"agent {name!r} is being trained by another run ({running}); wait for it with "
                                 "--wait or choose another agent name") from None
            f.seek(0)
            f.truncate()
            f.write(holder)
            f.flush()
            try:
                yield
            finally:
                f.seek(0)
                f.truncate()
                fcntl.flock(f, fcntl.LOCK_UN)


def agent_blobs(root: Path) -> list[Path]:
    """The manifests (``.json``) of every agent blob under the store's ``blobs/agents/``."""
    return sorted(p for p in (Path(root) / "blobs" / "agents").glob("*/*.json") if not p.name.startswith("."))


class _Tx:
    """The connection inside one transaction (``execute`` and a multi-statement helper that stays inside it)."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn

    def execute(self, sql: str, args: tuple = ()) -> sqlite3.Cursor:
        return self._conn.execute(sql, args)

    def executescript_safe(self, script: str) -> None:
        # executescript() would COMMIT first; run the statements one by one inside the open transaction
        for statement in script.split(";"):
            if statement.strip():
                self._conn.execute(statement)


def blob_sha(base: Path) -> str:
    path = Path(base).with_suffix(".safetensors")
    if not path.exists():
        raise CheckpointError(f"blob {path} is missing from the store")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _check_name(name: str) -> None:
    check_name(name, "agent name")


def _check_same_agent(current: AgentRecord, algo: str, observation_space: str | None, action_space: str | None) -> None:
    if current.algo != algo:
        raise UsageError(f"agent {current.name!r} is a {current.algo} agent; it cannot continue as {algo}")
    for what, have, new in (("observation", current.observation_space, observation_space),
                            ("action", current.action_space, action_space)):
        if have is not None and new is not None and have != new:
            raise UsageError(f"agent {current.name!r} was trained with {what} space {have}; this task has {new}, "
                             "so it cannot continue here (choose a task with the same spaces or a new agent name)")


def _is_vector(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(x, (int, float)) and not isinstance(x, bool)
                                                           for x in value)
