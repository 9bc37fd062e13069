"""The store's index: its tables, and its rows as the JSON and records the store hands out."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass
from typing import Any

from llmagentos.core.errors import UsageError

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS agents (
    name TEXT PRIMARY KEY, algo TEXT NOT NULL, observation_space TEXT, action_space TEXT,
    version INTEGER NOT NULL, created REAL NOT NULL, updated REAL NOT NULL);
CREATE TABLE IF NOT EXISTS agent_versions (
    agent TEXT NOT NULL, version INTEGER NOT NULL, blob TEXT NOT NULL, sha256 TEXT NOT NULL,
    config TEXT NOT NULL, meta TEXT NOT NULL, task_id INTEGER, run_id INTEGER, created REAL NOT NULL,
    PRIMARY KEY (agent, version));
CREATE TABLE IF NOT EXISTS tasks (
    id INTEGER PRIMARY KEY AUTOINCREMENT, key TEXT UNIQUE NOT NULL, name TEXT, env TEXT NOT NULL,
    env_args TEXT NOT NULL, descriptor TEXT, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, run_dir TEXT UNIQUE NOT NULL, agent TEXT, task_id INTEGER,
    env TEXT, algo TEXT, seed INTEGER, status TEXT NOT NULL, created REAL NOT NULL, updated REAL NOT NULL,
    summary TEXT, error TEXT);
CREATE TABLE IF NOT EXISTS knowledge (
    id INTEGER PRIMARY KEY AUTOINCREMENT, task_id INTEGER, descriptor TEXT, agent TEXT NOT NULL,
    version INTEGER, score REAL NOT NULL, metric TEXT NOT NULL, meta TEXT NOT NULL, created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS runs_agent ON runs (agent);
CREATE INDEX IF NOT EXISTS knowledge_task ON knowledge (task_id);
"""


class StoreError(UsageError):
    """A store request that cannot be met: an unknown agent or run, or a store that cannot be opened."""


@dataclass
class AgentRecord:
    name: str
    algo: str
    observation_space: str | None
    action_space: str | None
    version: int
    created: float
    updated: float
    blob: str
    sha256: str
    config: dict[str, Any]
    meta: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def task_json(r: sqlite3.Row) -> dict[str, Any]:
    return {"id": r["id"], "name": r["name"], "env": r["env"], "env_args": json.loads(r["env_args"]),
            "descriptor": json.loads(r["descriptor"]) if r["descriptor"] else None, "created": r["created"]}


def run_json(r: sqlite3.Row) -> dict[str, Any]:
    return {"id": r["id"], "run_dir": r["run_dir"], "agent": r["agent"], "task_id": r["task_id"], "env": r["env"],
            "algo": r["algo"], "seed": r["seed"], "status": r["status"], "created": r["created"],
            "updated": r["updated"], "summary": json.loads(r["summary"]) if r["summary"] else None, "error": r["error"]}


def knowledge_json(r: sqlite3.Row) -> dict[str, Any]:
    return {"id": r["id"], "task_id": r["task_id"], "env": r["env"],
            "descriptor": json.loads(r["descriptor"]) if r["descriptor"] else None, "agent": r["agent"],
            "version": r["version"], "score": r["score"], "metric": r["metric"], "meta": json.loads(r["meta"]),
            "created": r["created"]}
