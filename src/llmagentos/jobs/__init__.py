"""The kinds of job: one module per kind, each behind one small interface, and the registry of them.

A spec holds exactly one job-kind block, named after its kind (``train:``, ``meta:`` ...); ``llmagentos train
--seeds`` builds one too. The command line and the spec loader (:mod:`llmagentos.config`) ask this registry and
know no kind by name.

The interface
-------------
A job kind is a module that defines, at top level:

``block_type() -> type``
    the typed spec block: a pydantic model (``extra="forbid"``, ``allow_inf_nan=False``; algorithm configs embedded
    with :func:`llmagentos.kernel.validation.config_model`), or an annotated union of such models. Validation and
    ``llmagentos schema`` both come from it.
``run_job(block, seed, out_dir) -> dict``
    one seed of a validated block into ``out_dir``, returning a JSON-able summary holding ``"seed"``. It writes
    what it likes under ``out_dir`` (the kernel writes ``summary.json`` from the result when it did not); ``out_dir``
    may hold an interrupted earlier attempt.
``validate_block(raw) -> block`` *(optional)*
    checks beyond the types (values, worlds, the algorithm's own ``validate()``), raising
    :class:`~llmagentos.core.errors.UsageError` with the field path; without it the block is validated by its type.
``aggregate(results) -> dict`` *(optional)*
    keys the sweep's JSON gains over the seeds (``outcomes``, ``lifelong`` ...); it never renames the common ones.
``show(result) -> None`` *(optional)*
    the kind's own tables under the sweep's table on the terminal (the JSON of ``--json`` is ``result`` itself).
``from_train_flags(flags) -> dict`` *(optional)*
    the raw block ``llmagentos train --algo X --seeds A:B`` makes, for algorithms whose registry kind is in the
    line's ``algo_kinds``.

Modules are imported only when a spec uses their kind, so listing the kinds imports no torch. Adding a kind is
its module plus one :class:`JobKind` line in :data:`JOB_KINDS`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmagentos.core.errors import UsageError


@dataclass(frozen=True)
class JobKind:
    """One kind of job a spec can hold: its block key, the module implementing the interface, and how it is run."""

    #: the spec key of the kind's block (an identifier: train, multitask, meta, multiagent, lifelong)
    name: str
    #: the module implementing the interface above, imported on first use
    module: str
    #: one line for ``llmagentos schema`` and the docs
    summary: str
    #: registry kinds (``AlgoEntry.kind``) that ``llmagentos train --seeds`` routes to this job kind
    algo_kinds: tuple[str, ...] = ()
    #: block keys that choose where a job runs, not what it computes: changing one is not a new experiment
    execution_keys: tuple[str, ...] = ()
    #: whether the spec's ``imports`` go into the block, so that each run's job.json re-imports them on eval and resume
    records_imports: bool = False

    def _hook(self, name: str) -> Any:
        return getattr(importlib.import_module(self.module), name, None)

    def block_type(self) -> Any:
        return self._hook("block_type")()

    def validate_block(self, raw: Any) -> Any:
        validate = self._hook("validate_block")
        if validate is not None:
            return validate(raw)
        from llmagentos.kernel.validation import validate_model

        return validate_model(self.block_type(), raw, self.name)

    def run(self, block: Any, seed: int, out_dir: Path) -> dict[str, Any]:
        return self._hook("run_job")(block, seed, out_dir)

    def aggregate(self, results: list[dict[str, Any]]) -> dict[str, Any]:
        hook = self._hook("aggregate")
        return hook(results) if hook is not None else {}

    def show(self, result: dict[str, Any]) -> None:
        hook = self._hook("show")
        if hook is not None:
            hook(result)

    def from_train_flags(self, flags: dict[str, Any]) -> dict[str, Any]:
        hook = self._hook("from_train_flags")
        if hook is None:
            raise UsageError(f"the {self.name} job kind is not run by llmagentos train --seeds")
        return hook(flags)


#: every job kind a spec may hold, by its block key — one line per kind
JOB_KINDS: dict[str, JobKind] = {k.name: k for k in [
    JobKind("train", "llmagentos.jobs.train",
            "Single-task training of one algorithm on one environment (multi-seed sweeps, grids over config values).",
            algo_kinds=("agent",), records_imports=True),
    JobKind("multitask", "llmagentos.jobs.multitask",
            "Multi-task learning on a task family (hard/soft/conditioned sharing) against independent learners."),
    JobKind("meta", "llmagentos.jobs.meta",
            "Meta-learning: MAML on the sinusoid, PointNav or goal-grid family, evolution strategies (SNES, OpenAI-ES) on an env or family.",
            execution_keys=("population_backend", "population_workers")),
    JobKind("lifelong", "llmagentos.jobs.lifelong",
            "Lifelong learning: a learner through a task stream (or a drifting world) under fine-tuning, EWC, replay, PackNet."),
    JobKind("plasticity", "llmagentos.jobs.plasticity",
            "Loss of plasticity: a long stream (slowly-changing regression, permuted digits, an RL family) under plain training and the remedies (cbp, redo, shrink_perturb, l2_init, reset)."),
    JobKind("multiagent", "llmagentos.jobs.multiagent",
            "Multi-agent learning on a PettingZoo world (il, jal, distributed-q, hysteretic, fmq, lenient); matrix games add outcome counts.",
            algo_kinds=("multiagent",), records_imports=True),
]}


def job_kind(name: str) -> JobKind:
    """The registered kind ``name``; UsageError naming the kinds there are otherwise."""
    if name not in JOB_KINDS:
        raise UsageError(f"unknown job kind {name!r}; choose one of: {', '.join(JOB_KINDS)}")
    return JOB_KINDS[name]
