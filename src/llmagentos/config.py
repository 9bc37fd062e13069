"""Experiment specs: YAML files validated by pydantic models generated from the algorithm configs.

A spec is a YAML mapping with a few common keys and exactly one *job-kind block*, named after its kind::

    name: cartpole-sweep          # optional; the default output directory is runs/<name or file stem>
    out: runs/cartpole-sweep      # optional
    seeds: "0:10"                 # an int N (seeds 0..N-1), "A:B" (A..B-1) or a list of ints; default [0]
    backend: processes            # inline (default) | processes | ray
    workers: 2                    # processes / Ray tasks in flight
    ray_address: null             # "auto" or "ray://head:10001" to join a cluster
    grid:                         # optional: every combination, × every seed, is one job
      config.alpha: [0.1, 0.5]    # dotted paths inside the kind block
    train:                        # the job-kind block (here the built-in "train" kind)
      env: CliffWalking-v1
      algo: sarsa
      episodes: 200
      config: {epsilon: 0.1}      # checked against the sarsa config's own fields and types

Validation happens before any work starts; a wrong type, an unknown key or an unknown algorithm
raises :class:`UsageError` naming the field path (``train.config.alpha: ...``), and the command line
exits 2. ``llmagentos schema`` prints the JSON Schema of every kind's spec.

Job kinds are registered in :mod:`llmagentos.jobs` (one module per kind, one line each in ``JOB_KINDS``);
this module knows none of them by name.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, create_model

from llmagentos.core.errors import UsageError
from llmagentos.envs.resolve import import_modules
from llmagentos.core.limits import MAX_JOBS, SEED_LIMIT, check_finite, check_name, check_seed, load_yaml
# the generated models and path-naming validation live in the kernel (its job kinds use them); they stay
# importable from here, where the spec format is documented
from llmagentos.kernel.validation import (  # noqa: F401
    algo_config_model, config_model, format_validation_error, model_name, train_block_model, validate_model)
from llmagentos.jobs import JOB_KINDS, JobKind, job_kind  # noqa: F401  (the registry, re-exported where specs are read)
from llmagentos.learners import registry


# -- whole specs ------------------------------------------------------------------------------

class SpecHeader(BaseModel):
    """The keys every spec may have beside its one job-kind block."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    name: str | None = Field(None, description="experiment name; the default output directory is runs/<name>")
    description: str | None = Field(None, description="free text for people")
    out: str | None = Field(None, description="output directory (default runs/<name or spec file stem>)")
    seeds: int | str | list[int] = Field(default_factory=lambda: [0],
                                         description='seeds: N (0..N-1), "A:B" (A..B-1) or a list')
    backend: Literal["inline", "processes", "ray"] = Field("inline", description="where jobs run")
    workers: int | None = Field(None, gt=0, description="worker processes / Ray tasks in flight (default: CPUs)")
    ray_address: str | None = Field(None, description='Ray cluster to join ("auto", "ray://head:10001")')
    shared_out: bool = Field(False, description="ray backend: out is on storage every node mounts at the same path, so "
                                                "jobs write their run directories there instead of returning them")
    grid: dict[str, list[Any]] = Field(default_factory=dict,
                                       description="dotted path inside the kind block -> values; every combination × every seed is a job")
    imports: list[str] = Field(default_factory=list,
                               description="modules imported before anything is made, in every job's process "
                                           "(modules that register or define your worlds), e.g. [mypkg.envs]")


COMMON_KEYS = tuple(SpecHeader.model_fields)


def parse_seeds(value: Any, where: str = "seeds") -> list[int]:
    """``5`` -> 0..4, ``"3:6"`` -> 3,4,5, ``[1, 7]`` -> [1, 7]; anything else raises UsageError."""
    if isinstance(value, bool):
        raise UsageError(f"{where}: expected N, 'A:B' or a list of ints, got {value!r}")
    if isinstance(value, int):
        seeds = _seed_range(0, value, value, where)
    elif isinstance(value, str):
        match = re.fullmatch(r"\s*(-?\d+)\s*:\s*(-?\d+)\s*", value)
        if match:
            seeds = _seed_range(int(match.group(1)), int(match.group(2)), value, where)
        elif re.fullmatch(r"\s*\d+\s*", value):  # N is a count on the command line as in a spec: seeds 0..N-1
            seeds = _seed_range(0, int(value), value, where)
        else:
            raise UsageError(f"{where}: expected N, 'A:B' (seeds A..B-1) or a list of ints, got {value!r}")
    elif isinstance(value, list) and all(isinstance(s, int) and not isinstance(s, bool) for s in value):
        seeds = list(value)
    else:
        raise UsageError(f"{where}: expected N, 'A:B' or a list of ints, got {value!r}")
    if not seeds:
        raise UsageError(f"{where}: {value!r} names no seeds (A:B runs A..B-1, so B must exceed A)")
    if len(set(seeds)) != len(seeds):
        raise UsageError(f"{where}: {value!r} repeats a seed")
    for seed in seeds:
        check_seed(seed, f"{where}: each seed")
    return seeds


def _seed_range(first: int, stop: int, value: Any, where: str) -> list[int]:
    """``range(first, stop)`` as a list, refused before it is built when it would be out of bounds or huge."""
    if first < 0 or stop > SEED_LIMIT:
        raise UsageError(f"{where}: {value!r} reaches outside the seeds 0 to {SEED_LIMIT - 1}")
    if stop - first > MAX_JOBS:
        raise UsageError(f"{where}: {value!r} asks for {stop - first} seeds; a sweep may have at most {MAX_JOBS} jobs")
    return list(range(first, stop))


@dataclass
class Job:
    """One unit of work: a kind's validated block (as JSON), one seed, one output directory."""

    index: int
    kind: str
    block: dict[str, Any]
    seed: int
    out_dir: str
    #: the grid point's values ({} without a grid)
    params: dict[str, Any]
    #: the spec's ``imports``, imported by the process that runs the job before its block is checked
    imports: list[str] = field(default_factory=list)

    def payload(self) -> dict[str, Any]:
        payload = {"kind": self.kind, "block": self.block, "seed": self.seed, "out_dir": self.out_dir}
        if self.imports:  # absent when empty, so the fingerprints of existing sweeps do not change
            payload["imports"] = self.imports
        return payload


@dataclass
class Spec:
    """A validated spec, expanded into jobs (grid points × seeds, grid-major, seeds ascending)."""

    kind: str
    header: SpecHeader
    raw_block: dict[str, Any]
    seeds: list[int]
    out: Path
    jobs: list[Job]

    def to_json(self) -> dict[str, Any]:
        return {"kind": self.kind, **self.header.model_dump(mode="json"), "seeds": self.seeds, "out": str(self.out),
                self.kind: self.raw_block}


def set_path(data: dict[str, Any], dotted: str, value: Any, where: str = "--set") -> None:
    """``data["a"]["b"] = value`` for ``"a.b"``, creating mappings on the way."""
    parts = [p for p in dotted.split(".")]
    if not all(parts):
        raise UsageError(f"{where}: {dotted!r} is not a dotted key path like train.config.alpha")
    node = data
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        if not isinstance(child, dict):
            raise UsageError(f"{where}: {'.'.join(parts[:i + 1])} is not a mapping, so {dotted} cannot be set")
        node = child
    node[parts[-1]] = value


def parse_set_value(text: str) -> Any:
    """A ``--set`` value read as YAML: ``0.5`` is a number, ``[1, 2]`` a list, ``true`` a boolean."""
    try:
        return load_yaml(text, "a --set value")
    except UsageError:
        return text


def read_spec_file(path: str | Path) -> dict[str, Any]:
    from llmagentos.core.limits import MAX_YAML_BYTES

    path = Path(path)
    if not path.is_file():
        raise UsageError(f"spec file {path} does not exist")
    try:
        if path.stat().st_size > MAX_YAML_BYTES:
            raise UsageError(f"spec file {path} is larger than {MAX_YAML_BYTES} bytes, the most a spec may have")
        text = path.read_bytes()
    except OSError as err:
        raise UsageError(f"spec file {path} cannot be read: {err.strerror}") from None
    data = load_yaml(text, f"spec file {path}")
    if not isinstance(data, dict):
        raise UsageError(f"spec file {path} must hold a mapping of keys, not {type(data).__name__}")
    return data


def load_spec(path: str | Path, sets: list[str] | tuple[str, ...] = ()) -> Spec:
    """Read, override (``--set a.b=c``) and validate a spec file, expanded into jobs; UsageError if bad."""
    from llmagentos.core.config import parse_key_values

    data = read_spec_file(path)
    overrides = {key: parse_set_value(value) for key, value in parse_key_values(list(sets), "--set").items()}
    for key, value in overrides.items():
        set_path(data, key, value)
    variant = {key: value for key, value in overrides.items() if not _is_execution_key(key)}
    return validate_spec(data, default_name=Path(path).stem, variant=variant)


#: spec keys that say where and how many times jobs run, never what one job computes
HEADER_EXECUTION_KEYS = ("name", "out", "seeds", "backend", "workers", "ray_address")


def _is_execution_key(dotted: str) -> bool:
    head, _, rest = dotted.partition(".")
    return head in HEADER_EXECUTION_KEYS or (head in JOB_KINDS and rest in JOB_KINDS[head].execution_keys)


def validate_spec(data: dict[str, Any], default_name: str = "spec", variant: dict[str, Any] | None = None) -> Spec:
    """A raw spec mapping checked completely (header, block, every grid point) and expanded into jobs.

    ``variant`` holds the ``--set`` overrides that change what the jobs compute: without an explicit ``out``
    they name the default output directory (``runs/NAME_key=value``), so a documented variant of an example
    runs beside the example instead of being refused as a different experiment in its directory.
    """
    if not isinstance(data, dict):
        raise UsageError(f"invalid spec: expected a mapping, got {type(data).__name__}")
    kinds = [k for k in data if k not in COMMON_KEYS]
    unknown = [k for k in kinds if k not in JOB_KINDS]
    if unknown:
        raise UsageError(f"invalid spec: {unknown[0]}: unknown key; a spec has the keys {', '.join(COMMON_KEYS)} "
                         f"and one job-kind block: {', '.join(JOB_KINDS)}")
    if len(kinds) != 1:
        raise UsageError("invalid spec: it needs exactly one job-kind block (" + ", ".join(JOB_KINDS) + ")"
                         + (f", it has {', '.join(kinds)}" if kinds else ""))
    kind = job_kind(kinds[0])
    check_finite(data, "invalid spec")
    header = validate_model(SpecHeader, {k: v for k, v in data.items() if k in COMMON_KEYS}, "")
    if header.name is not None:
        check_name(header.name, "invalid spec: name")
    import_modules(header.imports, where="invalid spec: imports")
    seeds = parse_seeds(header.seeds, where="invalid spec: seeds")
    raw_block = data[kind.name]
    if not isinstance(raw_block, dict):
        raise UsageError(f"invalid spec: {kind.name}: expected a mapping, got {type(raw_block).__name__}")
    if header.imports and kind.records_imports:
        # each run's job.json records the imports, so eval and resume of it work in a new process
        raw_block = {**raw_block, "imports": list(header.imports) + list(raw_block.get("imports") or [])}
    name = header.name or default_name
    if variant:
        name = f"{name}_{_point_name(variant)}"
    out = Path(header.out or Path("runs") / name)
    points = _grid_points(header.grid)
    if len(points) * len(seeds) > MAX_JOBS:
        raise UsageError(f"invalid spec: its grid times its seeds makes {len(points) * len(seeds)} jobs; "
                         f"a sweep may have at most {MAX_JOBS}")
    jobs: list[Job] = []
    for params in points:
        block_raw = json.loads(json.dumps(raw_block))
        for key, value in params.items():
            set_path(block_raw, key, value, where=f"grid.{key}")
        try:
            block = kind.validate_block(block_raw)
        except UsageError as err:
            where = f" (grid point {_point_name(params)})" if params else ""
            raise UsageError(f"{err}{where}") from None
        block_json = _block_json(block)
        point_dir = out / _point_name(params) if params else out
        for seed in seeds:
            jobs.append(Job(len(jobs), kind.name, block_json, seed, str(point_dir / f"seed-{seed}"), dict(params),
                            list(header.imports)))
    return Spec(kind.name, header, raw_block, seeds, out, jobs)


def _block_json(block: Any) -> dict[str, Any]:
    """A validated block as JSON, keeping 'unset' config keys out so per-env presets still apply."""
    if isinstance(block, BaseModel):
        data = block.model_dump(mode="json", exclude_unset=True)
        return data
    return json.loads(json.dumps(block))


def _grid_points(grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    for key, values in grid.items():
        if not values:
            raise UsageError(f"invalid spec: grid.{key}: give at least one value")
    if not grid:
        return [{}]
    if math.prod(len(values) for values in grid.values()) > MAX_JOBS:
        raise UsageError(f"invalid spec: grid: its combinations exceed {MAX_JOBS}, the most jobs a sweep may have")
    keys = list(grid)
    return [dict(zip(keys, combo)) for combo in itertools.product(*(grid[k] for k in keys))]


def _point_name(params: dict[str, Any]) -> str:
    parts = []
    for key, value in params.items():
        text = json.dumps(value) if not isinstance(value, str) else value
        parts.append(f"{key.split('.')[-1]}={text}")
    return re.sub(r"[^A-Za-z0-9=.,_+-]+", "_", ",".join(parts))


# -- running ----------------------------------------------------------------------------------

def run_job(payload: dict[str, Any]) -> dict[str, Any]:
    """Run one job (the top-level function every backend calls): validate its block again, call the runner."""
    kind = job_kind(payload["kind"])
    import_modules(payload.get("imports", []))
    block = kind.validate_block(payload["block"])
    out_dir = Path(payload["out_dir"])
    summary = kind.run(block, int(payload["seed"]), out_dir)
    summary_path = out_dir / "summary.json"
    if not summary_path.exists():
        from llmagentos.kernel.checkpoint import atomic_write_json

        atomic_write_json(summary_path, summary)
    return summary


def spec_schema() -> dict[str, Any]:
    """The JSON Schema of a spec: the common keys plus one of the kinds' blocks (each fully typed)."""
    variants = []
    for kind in JOB_KINDS.values():
        fields: dict[str, Any] = {kind.name: (kind.block_type(), Field(description=kind.summary))}
        variants.append(create_model(f"{model_name(kind.name, '')}Spec", __base__=SpecHeader, **fields))
    union = variants[0] if len(variants) == 1 else typing.Union[tuple(variants)]  # type: ignore[valid-type]
    schema = TypeAdapter(union).json_schema()
    schema["title"] = "LLMAgentOS experiment spec"
    return schema


def sweep_json(spec: Spec, results: list[dict[str, Any]], skipped: list[int] | None = None) -> dict[str, Any]:
    """The JSON of a finished spec or ``train --seeds`` run: ``{"runs": [summary, ...], ...}`` in job order.

    A failed job's entry is its error record (``{"failed": true, "error": ..., "seed": ...}``). The kind's
    ``aggregate(results)`` hook, if it has one, adds its own keys (it never renames these).
    """
    runs = []
    for job, result in zip(spec.jobs, results):
        entry = dict(result)
        if entry.get("failed"):
            entry.update({"seed": job.seed, "params": job.params, "run_dir": job.out_dir})
        runs.append(entry)
    out: dict[str, Any] = {
        "kind": spec.kind, "out": str(spec.out), "seeds": spec.seeds, "runs": runs,
        "failed": [{"job": j.index, "seed": j.seed, "params": j.params, "error": r.get("error")}
                   for j, r in zip(spec.jobs, results) if r.get("failed")],
        "skipped": list(skipped or []),
    }
    if len({json.dumps(j.params, sort_keys=True) for j in spec.jobs}) > 1:
        out["grid"] = [{"job": j.index, "seed": j.seed, "params": j.params} for j in spec.jobs]
    extra = job_kind(spec.kind).aggregate(list(results))
    out.update({k: v for k, v in extra.items() if k not in out})
    return out


def run_spec(spec: Spec, quiet: bool = True, store: Any = None) -> dict[str, Any]:
    """Run every job of a validated spec on its backend (finished jobs are skipped); returns :func:`sweep_json`.

    With ``store``, each job that ran is recorded there as a run (finished or failed) by this process,
    so workers on other machines need no access to it.
    """
    from llmagentos.kernel.backends import check_backend, is_failure
    from llmagentos.kernel.sweep import run_sweep

    header = spec.header
    check_backend(header.backend, header.workers)
    execution_keys = list(job_kind(spec.kind).execution_keys)
    payloads = [{**job.payload(), "params": job.params, "execution_keys": execution_keys} for job in spec.jobs]

    def record(index: int, result: Any) -> None:  # as each job ends: an interrupted sweep loses no row
        job = spec.jobs[index]
        block = job.block
        if is_failure(result):
            store.record_run(job.out_dir, status="failed", env=block.get("env"), algo=block.get("algo"),
                             seed=job.seed, error=result["error"])
        else:
            store.record_run(job.out_dir, status="finished", env=result.get("env", block.get("env")),
                             algo=result.get("algo", block.get("algo")), seed=job.seed, summary=result)

    try:
        results, skipped = run_sweep(run_job, payloads, spec.out, manifest={"spec": spec.to_json()},
                                     backend=header.backend, workers=header.workers, ray_address=header.ray_address,
                                     quiet=quiet, on_job_done=record if store is not None else None,
                                     shared_out=header.shared_out)
    except KeyboardInterrupt:
        if store is not None:
            _record_stopped_jobs(spec, store)
        raise
    return sweep_json(spec, results, skipped)


def _record_stopped_jobs(spec: Spec, store: Any) -> None:
    """After a stop signal: every job that started and did not finish is recorded as ``stopped``."""
    from llmagentos.kernel.sweep import finished_summary

    for job in spec.jobs:
        if Path(job.out_dir).exists() and finished_summary(job.out_dir) is None:
            store.record_run(job.out_dir, status="stopped", env=job.block.get("env"), algo=job.block.get("algo"),
                             seed=job.seed, error="stopped by a signal; llmagentos resume continues the sweep")


def train_flags_spec(flags: dict[str, Any], seeds: str, backend: str = "inline", workers: int | None = None,
                     ray_address: str | None = None, shared_out: bool = False) -> Spec:
    """The spec behind ``llmagentos train ... --seeds A:B``: one job per seed, validated like a spec file.

    ``flags`` are the train command's values (``overrides`` is the raw ``--set`` pairs). Algorithms whose
    registry kind a job kind claims (``JobKind.algo_kinds``) go to that kind, whose ``from_train_flags`` makes the block.
    """
    from llmagentos.kernel.run import path_safe

    entry = registry.get(flags["algo"])
    kind = next((k for k in JOB_KINDS.values() if entry.kind in k.algo_kinds), None)
    if kind is None:
        raise UsageError(f"{flags['algo']} is a {entry.kind} algorithm, which no job kind runs with --seeds")
    block = kind.from_train_flags(flags)
    parsed = parse_seeds(seeds, where="--seeds")
    out = flags.get("out") or f"runs/{path_safe(flags['env'])}_{path_safe(flags['algo'])}_seeds{parsed[0]}-{parsed[-1] + 1}"
    raw = {"out": out, "seeds": parsed, "backend": backend, "workers": workers, "ray_address": ray_address,
           kind.name: block}
    if shared_out:  # only when given, so the manifests of existing sweeps read the same
        raw["shared_out"] = True
    return validate_spec(raw, default_name=Path(out).name)


def sweep_spec(sweep_dir: str | Path) -> Spec:
    """The validated spec a sweep directory was made from (its ``sweep.json``), to run it again: ``resume SWEEP``."""
    from llmagentos.kernel.checkpoint import read_json
    from llmagentos.kernel.sweep import MANIFEST

    path = Path(sweep_dir) / MANIFEST
    try:
        raw = read_json(path, "sweep manifest")["spec"]
    except (UsageError, KeyError, TypeError):
        raise UsageError(f"{path} is not a readable sweep manifest") from None
    if not isinstance(raw, dict):
        raise UsageError(f"{path} is not a readable sweep manifest")
    raw = {k: v for k, v in raw.items() if k != "kind"}
    raw["out"] = str(sweep_dir)
    return validate_spec(raw, default_name=Path(sweep_dir).name)
