"""The result directories the dashboard shows beside recorded runs: sweeps, lifelong demos, transfer comparisons,
found under the configured roots and beside recorded runs, and read as the jobs wrote them (never written)."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np

from llmagentos.kernel.report import mean_ci, sweep_groups
from llmagentos.kernel.sweep import MANIFEST
from llmagentos.ui.data import SCAN_DEPTH, StoreReader, _read_json, overlay

class Results:
    """The result directories under the configured roots and beside recorded runs, found again when they change."""

    def __init__(self, store: StoreReader, roots: list[Path], ttl: float = 10.0) -> None:
        self.store = store
        self.roots = [Path(r) for r in roots]
        self.ttl = ttl
        self._found: dict[str, dict[str, Any]] = {}
        self._stamp: Any = None
        self._when = 0.0
        self._lock = threading.Lock()

    def scan(self) -> dict[str, dict[str, Any]]:
        """{absolute path: {path, name, kind, ...}} of every result directory (cached for ``ttl`` seconds)."""
        with self._lock:
            stamp = self.store.index.stamp()
            if self._stamp == stamp and time.monotonic() - self._when < self.ttl:
                return self._found
            found: dict[str, dict[str, Any]] = {}
            for root in self.roots:
                if root.is_dir():
                    _scan_tree(found, root.resolve(), SCAN_DEPTH)
            parents = {str(Path(d).parent) for d in self.store.index.run_dirs()}
            for parent in parents | {str(Path(p).parent) for p in parents}:
                if (Path(parent) / MANIFEST).is_file():
                    _classify_into(found, Path(parent).resolve())
            self._found, self._stamp, self._when = found, stamp, time.monotonic()
            return found

    def listing(self, kind: str | None = None) -> list[dict[str, Any]]:
        items = [v for v in self.scan().values() if kind in (None, "", v["kind"])]
        return sorted(items, key=lambda v: v.get("modified", 0), reverse=True)

    def get(self, path: str) -> dict[str, Any] | None:
        """The full view of the result directory ``path``, which must be one :meth:`scan` found."""
        entry = self.scan().get(path)
        if entry is None:
            return None
        directory = Path(entry["path"])
        if entry["source"] == "sweep":
            return {**entry, **self._sweep_view(directory, entry["kind"])}
        summary = _read_json(directory / "summary.json") or {}
        if entry["kind"] == "lifelong":
            return {**entry, **lifelong_view(summary.get("per_seed") or [], summary.get("strategies"))}
        return {**entry, **transfer_view(summary)}

    def _sweep_view(self, directory: Path, kind: str) -> dict[str, Any]:
        manifest = _read_json(directory / MANIFEST) or {}
        _, groups = sweep_groups(directory)
        ids = self.store.run_ids_for([str(Path(j["run_dir"]).resolve()) for g in groups for j in g["jobs"]])
        jobs = [{"seed": j["seed"], "run_dir": j["run_dir"], "run_id": ids.get(str(Path(j["run_dir"]).resolve())),
                 "params": g["params"], "finished": j["summary"] is not None, "error": j["error"]}
                for g in groups for j in g["jobs"]]
        summaries = [j["summary"] for g in groups for j in g["jobs"] if j["summary"]]
        view: dict[str, Any] = {"spec": manifest.get("spec"), "jobs": jobs, "started": manifest.get("started"),
                                "finished": manifest.get("finished")}
        if kind == "lifelong":
            return view | lifelong_view(summaries)
        if kind == "meta":
            view["meta"] = meta_view(summaries)
        if kind == "multiagent":
            from llmagentos.jobs.multiagent import seed_outcomes

            view["outcomes"] = seed_outcomes(summaries) | {"per_seed": [
                {"seed": s.get("seed"), "outcome": s.get("outcome"), "optimal": s.get("optimal")} for s in summaries]}
        view["groups"] = []
        for group in groups:
            done = [j["summary"] for j in group["jobs"] if j["summary"]]
            label = ",".join(f"{k.split('.')[-1]}={v}" for k, v in group["params"].items()) or "all seeds"
            view["groups"].append({"label": label, "params": group["params"], "seeds": len(done),
                                   "metrics": _headline(done),
                                   "curve": overlay({str(i): s.get("curve") or [] for i, s in enumerate(done)})})
        return view


def lifelong_view(per_seed: list[dict[str, Any]], aggregated: dict[str, Any] | None = None) -> dict[str, Any]:
    """Per strategy: the metrics over seeds (the kernel's aggregate), the mean R matrix, and every seed's life."""
    from llmagentos.jobs.lifelong import aggregate

    metrics = aggregated if aggregated is not None else aggregate(per_seed).get("lifelong", {})
    strategies: dict[str, Any] = {}
    for name, values in metrics.items():
        lives = []
        for seed_summary in per_seed:
            arm = (seed_summary.get("strategies") or {}).get(name) or {}
            if "life" in arm or "detections" in arm:
                lives.append({"seed": seed_summary.get("seed"), "life": arm.get("life") or [],
                              "boundaries": arm.get("boundaries") or arm.get("switches") or [],
                              "alarms": arm.get("detections") or arm.get("changes") or [], "steps": arm.get("steps")})
        strategies[name] = {"metrics": {k: v for k, v in values.items() if k != "matrix"},
                            "matrix": values.get("matrix"), "lives": lives}
    return {"lifelong": strategies}


def meta_view(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """MAML's return after 0..k adaptation steps per method: the mean over seeds with a 95 % interval."""
    adapted = [s for s in summaries if isinstance(s.get("return"), dict)]
    if not adapted:
        return {"adaptation": None, "values": {k: v for k, v in (summaries[0] if summaries else {}).items()
                                               if isinstance(v, (int, float)) and not isinstance(v, bool)}}
    methods: dict[str, Any] = {}
    for method in adapted[0]["return"]:
        curves = np.array([s["return"][method] for s in adapted], dtype=float)
        if len(adapted) == 1:  # one seed: the interval over evaluation tasks the job itself reports
            ci = adapted[0].get("ci95", {}).get(method) or [None] * curves.shape[1]
            methods[method] = {"mean": curves[0].tolist(), "ci95": ci}
        else:
            stats = [mean_ci(list(column)) for column in curves.T]
            methods[method] = {"mean": [s["mean"] for s in stats], "ci95": [s["ci95"] for s in stats]}
    return {"adaptation": {"steps": list(range(len(next(iter(methods.values()))["mean"]))), "methods": methods,
                           "seeds": len(adapted)}}


def transfer_view(summary: dict[str, Any]) -> dict[str, Any]:
    """Transfer against scratch: both curves (mean and each seed), jumpstart, threshold and when each reached it."""
    curves = summary.get("curves") or {}
    return {"transfer": {"steps": curves.get("steps"), "transfer": curves.get("transfer"), "scratch": curves.get("scratch"),
                         "threshold": summary.get("threshold"), "jumpstart": summary.get("jumpstart"),
                         "time_to_threshold": summary.get("time_to_threshold"),
                         "metrics": {k: summary.get(k) for k in ("jumpstart", "asymptotic_gain", "total_reward_gain",
                                                                 "transfer_ratio")},
                         "ci": {k: summary.get(k + "_ci") for k in ("jumpstart", "asymptotic_gain", "total_reward_gain",
                                                                     "transfer_ratio")},
                         "source": summary.get("source"), "env": summary.get("env"), "mode": summary.get("mode"),
                         "algo": summary.get("algo"), "seeds": summary.get("seeds")}}


def _headline(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean ± 95 % CI over seeds of the evaluation return and the numeric top-level fields."""
    out = {}
    values = [(s.get("eval") or {}).get("mean_return") if isinstance(s.get("eval"), dict) else None for s in summaries]
    if any(v is not None for v in values):
        out["eval_return"] = mean_ci(values)
    for key in ("solved_at_step", "steps", "episodes", "wall_seconds"):
        numbers = [s.get(key) for s in summaries if isinstance(s.get(key), (int, float)) and not isinstance(s.get(key), bool)]
        if numbers:
            out[key] = mean_ci(numbers)
    return out


def _classify_into(found: dict[str, dict[str, Any]], directory: Path, names: set[str] | None = None) -> None:
    """Add ``directory`` to ``found`` if it is a sweep, a lifelong demo or a transfer comparison.

    ``names``: the directory's entries when the caller has listed it already (spares a stat per probe).
    """
    key = str(directory)
    if key in found:
        return
    has = (lambda name: name in names) if names is not None else (lambda name: (directory / name).is_file())
    entry = None
    if has(MANIFEST):
        doc = _read_json(directory / MANIFEST) or {}
        spec = doc.get("spec") or {}
        entry = {"kind": "sweep" if spec.get("kind", "train") == "train" else spec.get("kind"), "source": "sweep",
                 "name": spec.get("name") or directory.name, "jobs": len(doc.get("jobs") or []),
                 "seeds": len(spec.get("seeds") or []), "started": doc.get("started"),
                 "modified": _mtime(directory / MANIFEST)}
    elif has("summary.json") and not has("job.json"):
        summary = _read_json(directory / "summary.json") or {}
        if "per_seed" in summary and "strategies" in summary:
            entry = {"kind": "lifelong", "source": "demo", "seeds": len(summary["per_seed"])}
        elif "jumpstart" in summary and "curves" in summary:
            entry = {"kind": "transfer", "source": "transfer", "seeds": len(summary.get("seeds") or [])}
        if entry is not None:
            entry |= {"name": directory.name, "modified": _mtime(directory / "summary.json")}
    if entry is not None:
        found[key] = {"path": key, **entry}


def _scan_tree(found: dict[str, dict[str, Any]], directory: Path, depth: int) -> None:
    """Classify ``directory`` and the directories below it, down to ``depth`` levels; a sweep's or a run's own
    subdirectories (seeds, checkpoints, TensorBoard) are not entered. One ``scandir`` per directory."""
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return
    names = {e.name for e in entries}
    _classify_into(found, directory, names)
    if depth == 0 or names & {MANIFEST, "summary.json", "job.json"}:
        return
    for entry in sorted(entries, key=lambda e: e.name):
        if not entry.name.startswith(".") and entry.is_dir(follow_symlinks=False):
            _scan_tree(found, directory / entry.name, depth - 1)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
