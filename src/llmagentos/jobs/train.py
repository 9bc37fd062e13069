"""The train job kind: one algorithm on one world, alone or — on a PettingZoo world — as several agents.

:func:`train`, :func:`resume` and :func:`evaluate_run` are the one entry for both: a multi-agent algorithm or a
multi-agent world goes to :mod:`llmagentos.jobs.multiagent`, everything else to the single-agent
:class:`~llmagentos.jobs.trainer.Trainer`. The rest of the module is the ``train`` block of specs (generated
from :class:`~llmagentos.kernel.run.TrainSpec` and the algorithm's config) and its runner.
"""

from __future__ import annotations

import shutil
import sys
import time
import typing
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from llmagentos.core.errors import UsageError
from llmagentos.core.limits import check_name
from llmagentos.core.loop import evaluate
from llmagentos.core.seeding import derive_seed
from llmagentos.jobs import multiagent
from llmagentos.jobs.trainer import Trainer
from llmagentos.kernel.checkpoint import read_json
from llmagentos.kernel.run import (
    TrainSpec, load_agent, make_config, make_env, read_job, run_attempt, spec_from_block,
    train_block_from_flags as from_train_flags)  # noqa: F401  (the kind's from_train_flags hook)
from llmagentos.kernel.validation import train_block_model, validate_model
from llmagentos.learners import registry


def train(spec: TrainSpec | None = None, quiet: bool = True, store: Any = None, wait: bool = False,
          **kwargs: Any) -> dict[str, Any]:
    """Run one training job and return its summary (Python API: ``train(env=..., algo=..., steps=...)``).

    With ``store`` (a :class:`~llmagentos.kernel.store.Store`) the run is recorded there, and
    ``spec.agent`` names a stored agent to continue (or to create) and save back when the run ends.
    Only one run trains a stored agent at a time: another one is refused, or with ``wait`` waits its turn.
    """
    spec = spec or TrainSpec(**kwargs)
    if multiagent.is_multiagent_job(spec.prepare_world(), spec.algo):  # PettingZoo worlds have their own loop
        return multiagent.train(spec, quiet=quiet, store=store)
    with _agent_held(spec, store, wait):
        return _train(spec, quiet, store)


def _agent_held(spec: TrainSpec, store: Any, wait: bool) -> Any:
    """The store's lock on ``spec.agent`` for this run (nothing to hold without an agent or a store)."""
    import contextlib
    import os

    if spec.agent is None or store is None:
        return contextlib.nullcontext()
    check_name(spec.agent, "--agent name")
    holder = f"pid {os.getpid()}, {spec.algo} on {spec.env}, started {time.strftime('%Y-%m-%d %H:%M:%S')}"
    return store.agent_lock(spec.agent, holder, wait=wait)


def _train(spec: TrainSpec, quiet: bool, store: Any) -> dict[str, Any]:
    trainer = Trainer(spec, quiet=quiet, store=store)
    try:
        return trainer.run()
    except BaseException as err:
        _record_stop(trainer, err)
        # bad input found only once running must not leave a half-written run behind
        if not (trainer.run_dir / "checkpoints" / "latest.json").exists() and not isinstance(sys.exc_info()[1], KeyboardInterrupt):
            shutil.rmtree(trainer.run_dir, ignore_errors=True)
        raise


def _record_stop(trainer: Trainer, err: BaseException) -> None:
    if trainer.store is not None and trainer.run_id is not None:
        status = "stopped" if isinstance(err, KeyboardInterrupt) else "failed"
        trainer.store.record_run(trainer.run_dir, status=status, error=str(err) or type(err).__name__)


def resume(run_dir: str | Path, quiet: bool = True, store: Any = None, world: Any = None) -> dict[str, Any]:
    """Continue a stopped or killed run from its last checkpoint; a finished run returns its summary (``world``
    replaces the recorded world, see :func:`read_job`)."""
    run_dir = Path(run_dir)
    spec = read_job(run_dir, world=world)
    summary_path = run_dir / "summary.json"
    if summary_path.exists():
        return read_json(summary_path, "run summary")
    if multiagent.is_multiagent_job(spec.prepare_world(), spec.algo):
        return multiagent.resume(spec, run_dir, quiet=quiet, store=store)
    with _agent_held(spec, store, wait=False):
        trainer = Trainer(spec, run_dir=run_dir, quiet=quiet, store=store)
        try:
            return trainer.run(resuming=True)
        except BaseException as err:
            _record_stop(trainer, err)
            raise


def evaluate_run(run_dir: str | Path, episodes: int = 10, seed: int | None = None, world: Any = None) -> dict[str, Any]:
    """Greedy returns of a finished run's agent on its env (``world`` replaces the recorded one, see read_job)."""
    if episodes <= 0:
        raise UsageError(f"--episodes must be positive, got {episodes}")
    job = read_job(Path(run_dir), world=world)
    if multiagent.is_multiagent_job(job.prepare_world(), job.algo):
        return multiagent.evaluate_run(run_dir, episodes, seed, world=world)
    env = make_env(job.prepare_world(), job.env_args, wrappers=job.wrappers)
    agent = load_agent(run_dir, env, world=world)
    returns = evaluate(agent, env, episodes, seed=derive_seed(job.seed, "eval") if seed is None else seed)
    return {"run_dir": str(run_dir), "env": job.env, "algo": job.algo, "episodes": episodes,
            "mean_return": float(np.mean(returns)), "std_return": float(np.std(returns)), "returns": returns}


# -- the train block of specs ----------------------------------------------------------------------

def agent_algorithms() -> list[str]:
    return [name for name, e in registry.ALGORITHMS.items() if e.kind == "agent"]


def block_type() -> Any:
    """All train blocks, told apart by ``algo`` (what ``llmagentos schema`` shows)."""
    models = tuple(train_block_model(a) for a in agent_algorithms())
    if len(models) == 1:
        return models[0]
    return typing.Annotated[typing.Union[models], Field(discriminator="algo")]  # type: ignore[valid-type]


def validate_block(raw: Any) -> BaseModel:
    """The train block checked in order: a mapping, a known agent algorithm, its fields' types, then the values."""
    if not isinstance(raw, dict):
        raise UsageError(f"invalid spec: train: expected a mapping of train fields, got {type(raw).__name__}")
    algo = raw.get("algo")
    if algo is None:
        raise UsageError("invalid spec: train.algo: required key is missing")
    if not isinstance(algo, str):
        raise UsageError(f"invalid spec: train.algo: expected an algorithm name, got {type(algo).__name__}")
    choices = agent_algorithms()
    if algo not in choices:
        other = registry.ALGORITHMS.get(algo)
        why = f"{algo!r} is a {other.kind} algorithm" if other else f"unknown algorithm {algo!r}"
        raise UsageError(f"invalid spec: train.algo: {why}; the train kind takes one of: {', '.join(choices)}")
    block = validate_model(train_block_model(algo), raw, "train")
    check_block(block)
    return block


def check_block(block: BaseModel) -> None:
    """Value checks the types cannot express: the budget, the config's own ``validate()``, the world and wrappers."""
    spec = spec_from_block(block, seed=0, out=None)
    try:
        spec.validate()
    except UsageError as err:
        raise UsageError(f"invalid spec: train: {err}") from None
    try:
        make_config(spec.algo, spec.config, spec.env, spec.preset)
    except UsageError as err:
        raise UsageError(f"invalid spec: train.config: {err}") from None
    from llmagentos.envs.resolve import world_from_object

    try:  # imports, wrappers, then the world's name by the one rule (only env classes and factories are ever called)
        world = world_from_object(spec.prepare_world())
    except UsageError as err:
        raise UsageError(f"invalid spec: train: {err}") from None
    if world.multiagent:
        raise UsageError(f"invalid spec: train.env: {spec.env} is a multi-agent world; run it as the multiagent "
                         f"kind, e.g. --algo il --set learner={spec.algo}")


def run_job(block: Any, seed: int, out_dir: Path) -> dict[str, Any]:
    """One seed of a train block into ``out_dir``; a killed earlier attempt resumes from its last checkpoint."""
    return run_attempt(out_dir, start=lambda: train(spec_from_block(block, seed, str(out_dir)), quiet=True),
                       resume=lambda: resume(out_dir, quiet=True))
