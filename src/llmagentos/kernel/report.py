"""Reports over seeds: mean ± 95 % confidence interval per grid point, and learning curves as PNG.

``make_report(path)`` accepts a sweep directory (``sweep.json``, written by ``llmagentos run`` and
``train --seeds``) or a single run directory (``summary.json``). Jobs are grouped by their grid
values; each group's metrics get the mean and a Student-t 95 % interval over its seeds
(``mean ± t₀.₉₇₅,ₙ₋₁ · s/√n``; none for one seed). Train runs also get two plots: greedy evaluation
return against environment steps, and online return per episode (both interpolated/cut to the
range every seed reached; the band is :func:`llmagentos.kernel.plots.learning_curves`' ±1.96 SE).
Summaries of other job kinds are reported on their numeric top-level fields.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from llmagentos.core.errors import UsageError
from llmagentos.core.statistics import t_half_width
from llmagentos.kernel.plots import learning_curves, smooth
from llmagentos.kernel.sweep import MANIFEST, finished_summary

#: the train summary's headline metrics, in table order: (name, path inside summary.json)
TRAIN_METRICS = (("eval_return", ("eval", "mean_return")), ("online_return_last_100", ("online", "mean_return_last_100")),
                 ("solved_at_step", ("solved_at_step",)), ("steps", ("steps",)), ("episodes", ("episodes",)),
                 ("wall_seconds", ("wall_seconds",)))
_SKIP = {"seed", "job_index"}


def mean_ci(values: list[float], confidence: float = 0.95) -> dict[str, Any]:
    """Mean and Student-t confidence half-width of ``values`` (half-width None for fewer than two values)."""
    xs = np.asarray([v for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))], dtype=float)
    n = len(xs)
    if n == 0:
        return {"mean": None, "ci95": None, "low": None, "high": None, "n": 0}
    mean = float(xs.mean())
    if n < 2:
        return {"mean": mean, "ci95": None, "low": None, "high": None, "n": n}
    half = t_half_width(xs, confidence)
    return {"mean": mean, "ci95": half, "low": mean - half, "high": mean + half, "n": n}


def _dig(summary: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = summary
    for key in path:
        if not isinstance(node, dict):
            return None
        node = node.get(key)
    return node if isinstance(node, (int, float)) and not isinstance(node, bool) else None


def sweep_groups(path: Path) -> tuple[str, list[dict[str, Any]]]:
    """('sweep'|'run', [{"params", "jobs": [{"seed", "run_dir", "summary"|None, "error"}]}])."""
    if (path / MANIFEST).exists():
        from llmagentos.kernel.checkpoint import read_json

        manifest = read_json(path / MANIFEST, "sweep manifest")
        groups: dict[str, dict[str, Any]] = {}
        try:
            for job in manifest.get("jobs", []):
                key = json.dumps(job.get("params", {}), sort_keys=True)
                group = groups.setdefault(key, {"params": job.get("params", {}), "jobs": []})
                run_dir = job_dir(path, manifest, job["run_dir"])
                group["jobs"].append({"seed": job["seed"], "run_dir": str(run_dir),
                                      "summary": finished_summary(run_dir), "error": job.get("error")})
        except (KeyError, TypeError, AttributeError):
            raise UsageError(f"{path / MANIFEST} is not a sweep manifest (its jobs are not the records a sweep "
                             "writes); it was edited or corrupted") from None
        return "sweep", list(groups.values())
    if (path / "summary.json").exists() or (path / "job.json").exists():
        summary = finished_summary(path)
        seed = summary.get("seed") if summary else None
        return "run", [{"params": {}, "jobs": [{"seed": seed, "run_dir": str(path), "summary": summary,
                                                "error": None if summary else "not finished"}]}]
    raise UsageError(f"{path} is neither a sweep directory (with {MANIFEST}) nor a run directory (with summary.json)")


def job_dir(sweep_dir: Path, manifest: dict[str, Any], run_dir: str) -> Path:
    """A job's run directory: as recorded, or, when that path was relative to another working directory,
    the same place under ``sweep_dir`` (the manifest's ``spec.out`` is the recorded sweep directory)."""
    recorded = Path(run_dir)
    out = (manifest.get("spec") or {}).get("out")
    if recorded.is_absolute() or recorded.exists() or not out:
        return recorded
    try:
        return sweep_dir / recorded.relative_to(out)
    except ValueError:
        return recorded


def _metric_paths(summaries: list[dict[str, Any]]) -> list[tuple[str, tuple[str, ...]]]:
    if any("curve" in s and "eval" in s for s in summaries):
        return list(TRAIN_METRICS)
    names: list[str] = []
    for s in summaries:
        for key, value in s.items():
            if key not in _SKIP and key not in names and isinstance(value, (int, float)) and not isinstance(value, bool):
                names.append(key)
    return [(n, (n,)) for n in names]


def make_report(path: str | Path, out: str | Path | None = None) -> dict[str, Any]:
    """The report of a sweep or run directory as JSON; writes its PNG plots under ``out`` (default PATH/report)."""
    path = Path(path)
    if not path.is_dir():
        raise UsageError(f"{path} is not a directory; give a run or sweep directory")
    kind, groups = sweep_groups(path)
    out_dir = Path(out) if out else path / "report"
    all_summaries = [j["summary"] for g in groups for j in g["jobs"] if j["summary"]]
    metrics = _metric_paths(all_summaries)
    rows = []
    eval_curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    online_curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for group in groups:
        label = ",".join(f"{k.split('.')[-1]}={v}" for k, v in group["params"].items()) or "all seeds"
        summaries = [j["summary"] for j in group["jobs"] if j["summary"]]
        row = {"params": group["params"], "label": label, "seeds": [j["seed"] for j in group["jobs"] if j["summary"]],
               "unfinished": [{"seed": j["seed"], "error": j["error"]} for j in group["jobs"] if not j["summary"]],
               "metrics": {name: {**mean_ci([_dig(s, p) for s in summaries]),
                                  "values": [_dig(s, p) for s in summaries]} for name, p in metrics}}
        rows.append(row)
        curve = common_eval_curve(summaries)
        if curve is not None:
            eval_curves[label] = curve
        online = _online_curve(summaries)
        if online is not None:
            online_curves[label] = online
    plots = []
    title = path.name
    if eval_curves:
        plots.append(str(learning_curves(eval_curves, out_dir / "eval_return.png", f"{title}: greedy evaluation return",
                                         "environment steps", "mean evaluation return")))
    if online_curves:
        plots.append(str(learning_curves(online_curves, out_dir / "online_return.png",
                                         f"{title}: online return per episode", "episode",
                                         "return (10-episode moving average)")))
    return {"path": str(path), "type": kind, "groups": rows, "metrics": [n for n, _ in metrics], "plots": plots}


def common_eval_curve(summaries: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray] | None:
    """(steps, one row of evaluation returns per summary) on the steps every curve covers (interpolated), or None."""
    curves = [s.get("curve") for s in summaries if s.get("curve")]
    if len(curves) != len(summaries) or not curves:
        return None
    last = min(c[-1]["step"] for c in curves)
    first = max(c[0]["step"] for c in curves)
    steps = sorted({p["step"] for c in curves for p in c if first <= p["step"] <= last})
    if len(steps) < 2:
        return None
    x = np.asarray(steps, dtype=float)
    ys = np.array([np.interp(x, [p["step"] for p in c], [p["mean_return"] for p in c]) for c in curves])
    return x, ys


def _online_curve(summaries: list[dict[str, Any]]) -> tuple[np.ndarray, np.ndarray] | None:
    returns = [(s.get("online") or {}).get("episode_returns") for s in summaries]
    if not returns or any(not r for r in returns):
        return None
    n = min(len(r) for r in returns)
    if n < 2:
        return None
    return np.arange(1, n + 1), np.array([smooth(np.asarray(r[:n], dtype=float), 10) for r in returns])


def report_rows(result: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """The report as a table: one row per grid point, ``mean ± ci`` per metric."""
    headers = ["group", "seeds"] + result["metrics"]
    rows = []
    for group in result["groups"]:
        cells: list[Any] = [group["label"], f"{len(group['seeds'])}" + (f" (+{len(group['unfinished'])} unfinished)"
                                                                         if group["unfinished"] else "")]
        for name in result["metrics"]:
            m = group["metrics"][name]
            if m["mean"] is None:
                cells.append(None)
            elif m["ci95"] is None:
                cells.append(f"{m['mean']:.3f}")
            else:
                cells.append(f"{m['mean']:.3f} ± {m['ci95']:.3f}")
        rows.append(cells)
    return headers, rows
