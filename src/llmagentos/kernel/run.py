"""Run one training job — agent × env × budget — into a run directory, and resume or evaluate it later.

A run directory holds ``job.json`` (what was asked), ``metrics.jsonl`` and TensorBoard events
(what happened), ``checkpoints/`` (where to continue from), ``agent.safetensors``/``agent.json``
(the trained agent) and ``summary.json`` (the result, the JSON contract of ``llmagentos train``).
Everything is validated before the directory is created, so bad input never leaves one behind.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
import re
import shutil
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from llmagentos import __version__
from llmagentos.core.agent import Agent, space_text
from llmagentos.core.config import apply_overrides, to_dict
from llmagentos.core.errors import UsageError, arguments_refused_as_usage
from llmagentos.core.limits import check_finite, check_name, check_seed
from llmagentos.core.loop import Interaction, evaluate
from llmagentos.core.seeding import derive_seed, seed_everything
from llmagentos.envs.make import available_envs, make_env  # noqa: F401  (re-exported for kernel users)
from llmagentos.envs.vector import VECTOR_MODES
from llmagentos.kernel.checkpoint import (
    CheckpointError, atomic_write_json, load_state, read_json, remove_stale_temporaries, save_state)
from llmagentos.kernel.logging import MetricsLog
from llmagentos.kernel.progress import Progress
from llmagentos.kernel.signals import defer_stop_signals, raise_if_stopped, restore_stop_signals
from llmagentos.learners import presets, registry

#: keys of summary.json that differ between identical runs (timings and paths)
VOLATILE_KEYS = ("wall_seconds", "steps_per_second", "run_dir")


@dataclass
class TrainSpec:
    """One training job. The command line's ``train`` flags and a spec file's ``train`` block map onto it."""

    env: str
    algo: str
    seed: int = 0
    steps: int | None = None
    episodes: int | None = None
    config: dict[str, Any] = field(default_factory=dict)
    env_args: dict[str, Any] = field(default_factory=dict)
    eval_every: int | None = None
    eval_episodes: int = 10
    threshold: float | None = None
    checkpoint_every: int | None = None
    out: str | None = None
    tensorboard: bool = True
    #: name of an agent in the store to continue training (created when new); needs a store
    agent: str | None = None
    #: the stored agent's version the run started from (set by the kernel, so a resume starts from it too)
    agent_version: int | None = None
    imports: list[str] = field(default_factory=list, metadata={
        "doc": "modules imported before the world is made (they register or define it), e.g. [mypkg.envs]"})
    wrappers: list[dict[str, Any]] = field(default_factory=list, metadata={
        "doc": "Gymnasium wrappers applied in order: [{name: FlattenObservation}, {name: mypkg:Clip, args: {...}}]"})
    preset: str | None = field(default=None, metadata={
        "doc": "a named preset of the algorithm (fast: tuned for wall-clock time on CartPole-v1; llmagentos algos "
               "lists them), applied after the world's preset and before config"})
    vector: Literal["sync", "async", "native"] | None = field(default=None, metadata={
        "doc": "how num_envs > 1 envs are stepped: sync (in this process), async (subprocesses) or native (one "
               "numpy implementation, CartPole); default: the preset's, else sync"})
    #: the world as a Python object (an env instance, class or callable given to the Python API); job.json records
    #: ``env``, its name, instead — so only this process can use it
    world: Any = field(default=None, repr=False, compare=False)

    def prepare_world(self) -> Any:
        """Import ``imports``, check ``wrappers``, and return what names the world (``world`` or ``env``)."""
        from llmagentos.envs.make import check_wrappers
        from llmagentos.envs.resolve import import_modules, world_from_object

        import_modules(self.imports)
        self.wrappers = check_wrappers(self.wrappers)
        if self.world is None and not isinstance(self.env, str):  # the Python API's env= object
            self.world = world_from_object(self.env)
            self.env = self.world.name
            self.env_args = self.env_args or dict(self.world.env_args)
        return self.world if self.world is not None else self.env

    def to_json(self) -> dict[str, Any]:
        """What job.json records: every field but the in-process ``world``."""
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "world"}

    def validate(self) -> None:
        check_seed(self.seed, "--seed")
        if not isinstance(self.env_args, dict):
            raise UsageError(f"env_args must be a mapping of keyword arguments, got {type(self.env_args).__name__}")
        check_finite(self.env_args, "--env-arg")
        if self.threshold is not None:
            check_finite(float(self.threshold), "--threshold")
        if self.agent is not None:
            check_name(self.agent, "--agent name")
        if self.steps is None and self.episodes is None:
            # no budget given: the algorithm's config may suggest one for this env (DEFAULT_STEPS)
            self.steps = getattr(registry.config_class(self.algo), "DEFAULT_STEPS", {}).get(self.env)
        if (self.steps is None) == (self.episodes is None):
            raise UsageError("give exactly one budget: --steps N or --episodes N")
        budget = self.steps if self.steps is not None else self.episodes
        if budget is None or budget <= 0:
            raise UsageError(f"the budget must be a positive number of {'steps' if self.steps is not None else 'episodes'}, got {budget}")
        if self.eval_every is not None and self.eval_every <= 0:
            raise UsageError(f"--eval-every must be positive, got {self.eval_every}")
        if self.eval_episodes <= 0:
            raise UsageError(f"--eval-episodes must be positive, got {self.eval_episodes}")
        if self.checkpoint_every is not None and self.checkpoint_every <= 0:
            raise UsageError(f"--checkpoint-every must be positive, got {self.checkpoint_every}")
        if self.vector is not None and self.vector not in VECTOR_MODES:
            raise UsageError(f"unknown vector mode {self.vector!r}; choose one of: {', '.join(VECTOR_MODES)}")
        presets.get(self.preset, self.algo, self.env)  # refuses an unknown preset, or one not made for this world


# -- agents ---------------------------------------------------------------------------------------

def make_config(algo: str, overrides: dict[str, Any] | None = None, env_id: str | None = None,
                preset: str | None = None) -> Any:
    """The algorithm's config: defaults, then the per-env preset (if the config class has one), then the named
    ``preset`` (:mod:`llmagentos.learners.presets`), then overrides."""
    entry = registry.get(algo)
    config_cls = registry.load(entry.config)
    env_presets = getattr(config_cls, "PRESETS", {})
    config = config_cls()
    if env_id is not None and env_id in env_presets:
        config = apply_overrides(config, env_presets[env_id], owner=f"{algo} preset for {env_id}")
    named = presets.get(preset, algo, env_id)
    if named is not None:
        config = apply_overrides(config, named.config, owner=f"{algo} preset {preset}")
    return apply_overrides(config, dict(overrides or {}), owner=f"{algo} config")


def typed_overrides(algo: str, overrides: dict[str, Any], env_id: str | None = None) -> dict[str, Any]:
    """``--set`` values as the algorithm's config (with the env's preset) types them, so job.json keeps 0.05, not "0.05"."""
    if not overrides:
        return overrides
    config = make_config(algo, overrides, env_id)
    return {key: getattr(config, key) for key in overrides}


def make_agent(algo: str, env: Any, config: Any = None, seed: int = 0, **overrides: Any) -> Agent:
    """An untrained agent of algorithm ``algo`` for ``env``'s spaces (Python API)."""
    entry = registry.get(algo, kinds=("agent",))
    agent_cls = registry.load(entry.target)
    if config is None:
        env_id = getattr(getattr(env, "spec", None), "id", None)
        config = make_config(algo, overrides, env_id)
    elif overrides:
        config = apply_overrides(config, overrides, owner=f"{algo} config")
    obs_space = getattr(env, "single_observation_space", env.observation_space)
    act_space = getattr(env, "single_action_space", env.action_space)
    return agent_cls(obs_space, act_space, config, seed=seed)


def agent_meta(agent: Agent) -> dict[str, Any]:
    obs_space = agent.observation_space
    act_space = agent.action_space
    return {"algo": agent.algo, "observation_space": space_text(obs_space), "action_space": space_text(act_space),
            "llmagentos_version": __version__}


def save_agent(agent: Agent, base: Path) -> None:
    save_state(base, agent.state_dict(), {**agent_meta(agent), "config": to_dict(agent.config)})


def load_agent(run_dir: str | Path, env: Any | None = None, world: Any = None) -> Agent:
    """The trained agent of a finished run (its ``agent.safetensors`` + ``agent.json``); ``world`` replaces the
    recorded world (see :func:`read_job`)."""
    run_dir = Path(run_dir)
    job = read_job(run_dir, world=world)
    env = env or make_env(job.prepare_world(), job.env_args, wrappers=job.wrappers)
    base = run_dir / "agent"
    _, meta = load_state(base)
    agent = make_agent(job.algo, env, config=make_config(job.algo, meta.get("config", job.config)), seed=job.seed)
    state, _ = load_state(base, expect=agent_meta(agent) | {"llmagentos_version": meta.get("llmagentos_version")})
    agent.load_state_dict(state)
    return agent


# -- run directories ------------------------------------------------------------------------------

JOB_FILE = "job.json"


def job_checksum(data: dict[str, Any]) -> str:
    """The SHA-256 a run's ``job.json`` carries of its own fields, so an edited or torn one is refused."""
    return hashlib.sha256(json.dumps(data, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def write_job(run_dir: Path, spec: TrainSpec) -> None:
    data = spec.to_json()
    atomic_write_json(Path(run_dir) / JOB_FILE, {**data, "sha256": job_checksum(data)})


def read_job(run_dir: Path, world: Any = None) -> TrainSpec:
    """The run's job.json as a TrainSpec; ``world`` (a Python object or name) stands in for the recorded world."""
    path = Path(run_dir) / "job.json"
    if not path.exists():
        parent = Path(run_dir).resolve().parent
        if (parent / "sweep.json").exists():  # one seed of a spec's sweep (a meta job, say): the sweep resumes it
            raise UsageError(f"{run_dir} is one job of the sweep in {parent}; resume the sweep: llmagentos resume {parent}")
        raise UsageError(f"{run_dir} is not a run directory (it has no job.json)")
    data = read_json(path, "job file")
    if not isinstance(data, dict) or data.pop("sha256", None) != job_checksum(data):
        raise UsageError(f"{path} fails its checksum (edited or corrupted after the run was made); "
                         "refusing to evaluate or resume it")
    names = {f.name for f in dataclasses.fields(TrainSpec)} - {"world"}
    job = TrainSpec(**{k: v for k, v in data.items() if k in names})
    if world is not None:
        from llmagentos.envs.resolve import world_from_object

        job.world = world_from_object(world)
    return job

def fresh_run_dir(out: str | Path | None, overwrite: bool = False) -> str | None:
    """Where a Python API run goes: ``out``, a fresh ``out-2``, ``out-3``, ... when it holds something, or ``out``
    emptied with ``overwrite=True`` (only when it is a run directory: nothing else is ever deleted)."""
    if out is None:
        return None
    path = Path(out)
    if not path.exists() or (path.is_dir() and not any(path.iterdir())):
        return str(path)
    if overwrite:
        if not (path / "job.json").exists():
            raise UsageError(f"overwrite=True replaces a run directory, and {path} is not one (it has no job.json); "
                             "choose another out")
        shutil.rmtree(path)
        return str(path)
    suffix = 2
    while (path.parent / f"{path.name}-{suffix}").exists():
        suffix += 1
    return str(path.parent / f"{path.name}-{suffix}")


def path_safe(text: str) -> str:
    """``text`` as one file-name component: an env id such as ``mypkg.envs:Chain-v0`` or ``ALE/Pong-v5`` keeps
    its letters, digits, dots and dashes; anything else becomes ``-``."""
    return re.sub(r"[^A-Za-z0-9._=+-]+", "-", text).strip("-.") or "run"


def _new_run_dir(spec: TrainSpec) -> Path:
    if spec.out:
        path = Path(spec.out)
        if path.exists() and not path.is_dir():
            raise UsageError(f"--out {path} is a file, not a directory; choose a new directory")
        if path.exists() and any(path.iterdir()):
            raise UsageError(f"--out {path} already exists and is not empty; choose a new directory")
    else:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        name = f"{path_safe(spec.env)}_{path_safe(spec.algo)}_s{spec.seed}_{stamp}"
        path = Path("runs") / name
        suffix = 1
        while path.exists():
            suffix += 1
            path = Path("runs") / f"{name}-{suffix}"
    return path


def _global_rng_state() -> dict[str, Any]:
    state: dict[str, Any] = {"python": _jsonable_random_state(), "numpy": _numpy_legacy_state()}
    torch = sys.modules.get("torch")
    if torch is not None:
        state["torch"] = torch.get_rng_state()
    return state


def _jsonable_random_state() -> list:
    version, internal, gauss = random.getstate()
    return [version, list(internal), gauss]


def _numpy_legacy_state() -> dict[str, Any]:
    name, keys, pos, has_gauss, cached = np.random.get_state()
    return {"keys": keys.astype(np.int64), "pos": int(pos), "has_gauss": int(has_gauss), "cached": float(cached)}


def _set_global_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = state["numpy"]
    np.random.set_state(("MT19937", np.asarray(numpy_state["keys"], dtype=np.uint32), numpy_state["pos"],
                         numpy_state["has_gauss"], numpy_state["cached"]))
    if "torch" in state:
        import torch

        torch.set_rng_state(state["torch"])


#: the type of each piece of the kernel's bookkeeping a checkpoint carries
_KERNEL_STATE_TYPES = {"curve": list, "next_eval": int, "next_checkpoint": (int, type(None)), "sums": dict,
                       "counts": dict, "metrics_lines": int, "elapsed": (int, float), "last_eval": dict}


def _check_kernel_state(kernel: Any) -> None:
    """Raise TypeError unless a checkpoint's kernel state has the types the loop relies on."""
    if not isinstance(kernel, dict):
        raise TypeError("the kernel state is not a mapping")
    for key, types in _KERNEL_STATE_TYPES.items():
        if not isinstance(kernel.get(key), types) or isinstance(kernel.get(key), bool):
            raise TypeError(f"kernel.{key} is a {type(kernel.get(key)).__name__}")
    if not all(isinstance(p, dict) and isinstance(p.get("step"), int) for p in kernel["curve"]):
        raise TypeError("kernel.curve holds something other than evaluation points")


#: schedule values a learner reports with each update, logged at every update (``train/learning_rate`` ...)
SCHEDULE_METRICS = ("learning_rate", "clip_range")


class Trainer:
    """The kernel's training loop for one run: steps, periodic evaluation, logging, checkpoints, summary."""

    def __init__(self, spec: TrainSpec, run_dir: Path | None = None, quiet: bool = False, store: Any = None) -> None:
        spec.validate()
        self.spec = spec
        self.quiet = quiet
        entry = registry.get(spec.algo)
        if entry.kind != "agent":
            raise UsageError(f"{spec.algo} is a {entry.kind} algorithm; "
                             + ("use llmagentos plan" if entry.kind == "planning" else "it has no single-agent train loop"))
        self.store = store
        self.run_id: int | None = None
        stored = _stored_agent(spec, store)  # may fill spec.config and spec.agent_version
        self.config = make_config(spec.algo, spec.config, spec.env, spec.preset)
        spec.config = typed_overrides(spec.algo, spec.config, spec.env)
        num_envs = int(getattr(self.config, "num_envs", 1) or 1)
        preset = presets.get(spec.preset, spec.algo, spec.env)
        vector = spec.vector or (preset.vector if preset is not None else "sync")
        seed_everything(spec.seed)
        world = spec.prepare_world()
        with arguments_refused_as_usage(f"environment {spec.env}"):
            self.env = make_env(world, spec.env_args, num_envs=num_envs, wrappers=spec.wrappers, vector=vector)
            self.eval_env = make_env(world, spec.env_args, wrappers=spec.wrappers)
        self.agent = make_agent(spec.algo, self.env, config=self.config, seed=spec.seed)
        if stored is not None:
            _continue_agent(self.agent, *stored)
        # a run is a task of the agent's life: schedules without a horizon of their own run over its budget
        self.agent.begin_task(None, budget=spec.steps, restart_schedules=False)
        self.threshold = spec.threshold
        if self.threshold is None:
            self.threshold = getattr(getattr(self.eval_env, "spec", None), "reward_threshold", None)
        self.interaction = Interaction(self.agent, self.env, seed=derive_seed(spec.seed, "env"))
        self._init_bookkeeping(run_dir)

    def _init_bookkeeping(self, run_dir: Path | None) -> None:
        """The run's counters, curve and schedule of evaluations and checkpoints, before any step."""
        spec = self.spec
        self.eval_every = spec.eval_every or (max(spec.steps // 20, 1) if spec.steps else 1_000)
        self.eval_seed = derive_seed(spec.seed, "eval")
        self.curve: list[dict[str, Any]] = []
        self.next_eval = self.eval_every
        self.next_checkpoint = spec.checkpoint_every
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.elapsed_before = 0.0
        self.last_eval: dict[str, Any] = {}
        self.run_dir = run_dir or _new_run_dir(spec)

    # -- bookkeeping --------------------------------------------------------------------------
    def _budget_done(self) -> bool:
        if self.spec.steps is not None:
            return self.interaction.steps >= self.spec.steps
        return self.interaction.episodes >= self.spec.episodes  # type: ignore[operator]

    def _progress_total(self) -> tuple[int, int, str]:
        if self.spec.steps is not None:
            return self.interaction.steps, self.spec.steps, "steps"
        return self.interaction.episodes, self.spec.episodes, "episodes"  # type: ignore[return-value]

    def _elapsed(self) -> float:
        return self.elapsed_before + (time.perf_counter() - self.started)

    def _evaluate(self) -> dict[str, Any]:
        returns = evaluate(self.agent, self.eval_env, self.spec.eval_episodes, seed=self.eval_seed)
        return {"mean_return": float(np.mean(returns)), "std_return": float(np.std(returns)), "episodes": len(returns)}

    # -- what a kind of run changes (the multi-agent trainer overrides these) ------------------
    def checkpoint_meta(self) -> dict[str, Any]:
        """What a checkpoint must match to be loaded into this run (algorithm, spaces, version)."""
        return agent_meta(self.agent)

    def _eval_record(self, result: dict[str, Any]) -> dict[str, Any]:
        """The metrics.jsonl fields of one evaluation."""
        return {"mean_return": result["mean_return"], "std_return": result["std_return"]}

    def _checkpoint_ready(self) -> bool:
        """Whether the loop may checkpoint now (the env snapshot makes any step exact for single agents)."""
        return True

    def _save_final(self) -> None:
        save_agent(self.agent, self.run_dir / "agent")

    # -- shared by every kind of run ------------------------------------------------------------
    def _log_eval(self, log: MetricsLog) -> None:
        steps = self.interaction.steps
        result = self._evaluate()
        self.last_eval = result
        point = {"step": steps, "mean_return": result["mean_return"], "wall_seconds": round(self._elapsed(), 3)}
        self.curve.append(point)
        log.write("eval", steps, {**self._eval_record(result), "steps_per_second": steps / max(self._elapsed(), 1e-9)})
        train = {k: self.sums[k] / self.counts[k] for k in self.sums}
        train.update(self.agent.train_metrics())
        if train:
            log.write("train", steps, train)
        self.sums, self.counts = {}, {}
        from llmagentos.lifelong.plasticity import plasticity_record

        diagnostics = plasticity_record(self.agent, self.eval_env, self.eval_seed)  # None without a network
        if diagnostics:
            log.write("plasticity", steps, diagnostics)

    def _checkpoint(self, log: MetricsLog) -> None:
        ckpt_dir = self.run_dir / "checkpoints"
        steps = self.interaction.steps
        state = {"agent": self.agent.state_dict(), "interaction": self.interaction.state(), "rng": _global_rng_state(),
                 "kernel": {"curve": self.curve, "next_eval": self.next_eval, "next_checkpoint": self.next_checkpoint,
                            "sums": self.sums, "counts": self.counts, "metrics_lines": log.lines,
                            "elapsed": self._elapsed(), "last_eval": self.last_eval}}
        log.flush()
        save_state(ckpt_dir / f"step-{steps:012d}", state, self.checkpoint_meta())
        atomic_write_json(ckpt_dir / "latest.json", {"checkpoint": f"step-{steps:012d}", "step": steps})
        for old in sorted(ckpt_dir.glob("step-*.json"))[:-2]:
            old.unlink(missing_ok=True)
            old.with_suffix(".safetensors").unlink(missing_ok=True)

    def _restore(self) -> int | None:
        """Load the latest checkpoint if there is one; returns the number of metrics lines to keep."""
        remove_stale_temporaries(self.run_dir)
        remove_stale_temporaries(self.run_dir / "checkpoints")
        pointer = self.run_dir / "checkpoints" / "latest.json"
        if not pointer.exists():
            return 0
        latest = read_json(pointer, "checkpoint pointer")
        name = latest.get("checkpoint") if isinstance(latest, dict) else None
        if not isinstance(name, str) or not name.startswith("step-") or "/" in name or ".." in name:
            raise CheckpointError(f"{pointer} does not name a checkpoint of this run")
        state, _ = load_state(self.run_dir / "checkpoints" / name, expect=self.checkpoint_meta())
        try:
            return self._restore_state(state)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as err:
            raise CheckpointError(f"checkpoint {name} does not hold the state this run needs "
                                  f"({type(err).__name__}: {err}); refusing to resume from it") from None

    def _restore_state(self, state: dict[str, Any]) -> int:
        """Put a checkpoint's state back into the agent, the loop and the kernel's bookkeeping."""
        self.agent.load_state_dict(state["agent"])
        self.interaction.load_state(state["interaction"])
        _set_global_rng_state(state["rng"])
        kernel = state["kernel"]
        _check_kernel_state(kernel)
        self.curve = kernel["curve"]
        self.next_eval = kernel["next_eval"]
        self.next_checkpoint = kernel["next_checkpoint"]
        self.sums, self.counts = kernel["sums"], kernel["counts"]
        self.elapsed_before = kernel["elapsed"]
        if kernel.get("last_eval"):
            self.last_eval = kernel["last_eval"]
        return int(kernel["metrics_lines"])

    # -- the run ------------------------------------------------------------------------------
    def run(self, resuming: bool = False) -> dict[str, Any]:
        try:
            self.run_dir.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise UsageError(f"cannot make the run directory {self.run_dir}: {err.strerror}") from None
        if resuming:
            keep = self._restore()
        else:
            write_job(self.run_dir, self.spec)
            keep = 0
        if self.store is not None:
            self.run_id = self.store.record_run(self.run_dir, status="running", env=self.spec.env, algo=self.spec.algo,
                                                seed=self.spec.seed, agent=self.spec.agent)
        self.started = time.perf_counter()
        log = MetricsLog(self.run_dir, tensorboard=self.spec.tensorboard, keep_lines=keep)
        done, total, unit = self._progress_total()
        progress = Progress(total, unit, enabled=not self.quiet, label=f"{self.spec.algo} {self.spec.env} s{self.spec.seed} ")
        seen_episodes = self.interaction.episodes
        # the loop below runs once per env step: locals instead of attribute look-ups and method calls
        interaction = self.interaction
        step = interaction.step
        by_steps = self.spec.steps is not None
        budget = self.spec.steps if by_steps else self.spec.episodes
        deferring = defer_stop_signals()
        try:
            while (interaction.steps if by_steps else interaction.episodes) < budget:  # type: ignore[operator]
                raise_if_stopped()
                metrics = step()
                if metrics:
                    sums, counts = self.sums, self.counts
                    for key, value in metrics.items():
                        sums[key] = sums.get(key, 0.0) + float(value)
                        counts[key] = counts.get(key, 0) + 1
                    if "learning_rate" in metrics:  # an update that reports its step size: log the schedules in use
                        log.write("train", interaction.steps, {k: metrics[k] for k in SCHEDULE_METRICS if k in metrics})
                while seen_episodes < interaction.episodes:
                    log.write("episode", interaction.steps, {"episode": seen_episodes,
                                                             "return": interaction.episode_returns[seen_episodes],
                                                             "length": interaction.episode_lengths[seen_episodes]})
                    seen_episodes += 1
                if interaction.steps >= self.next_eval and not self._budget_done():
                    self._log_eval(log)
                    while self.next_eval <= interaction.steps:
                        self.next_eval += self.eval_every
                if (self.next_checkpoint is not None and interaction.steps >= self.next_checkpoint
                        and self._checkpoint_ready()):
                    # advanced first, so the checkpoint records the next one and a resumed run does not repeat it
                    while self.next_checkpoint <= interaction.steps:
                        self.next_checkpoint += self.spec.checkpoint_every  # type: ignore[operator]
                    self._checkpoint(log)
                if progress.enabled:
                    done = interaction.steps if by_steps else interaction.episodes
                    note = f"eval {self.curve[-1]['mean_return']:.1f}" if self.curve else ""
                    progress.update(done, note)
            self._log_eval(log)
        except KeyboardInterrupt as stop:  # a stop signal: keep the steps taken so far when the run checkpoints
            if getattr(stop, "at_safe_point", False) and self.spec.checkpoint_every is not None \
                    and self._checkpoint_ready():
                self._checkpoint(log)
            raise
        finally:
            restore_stop_signals(deferring)
            progress.close()
            log.close()
        summary = self._summary()
        self._save_final()
        if self.spec.agent is not None and self.store is not None:
            summary["agent"] = self._store_agent()
        atomic_write_json(self.run_dir / "summary.json", summary)
        if self.store is not None:
            self.store.record_run(self.run_dir, status="finished", summary=summary)
        return summary

    def _store_agent(self) -> dict[str, Any]:
        """Save the trained agent as the next version of ``spec.agent``, with the task and run that made it."""
        task = self.store.record_task(self.spec.env, self.spec.env_args)
        meta = agent_meta(self.agent)
        record = self.store.put_agent(self.spec.agent, self.agent.state_dict(), algo=self.agent.algo,
                                      config=to_dict(self.agent.config), observation_space=meta["observation_space"],
                                      action_space=meta["action_space"], task=task, run=self.run_id,
                                      meta={"llmagentos_version": __version__})
        # what this version achieved on this task, for later "which agent knows tasks like this?" queries
        self.store.add_knowledge(task, record.name, score=self.last_eval["mean_return"], version=record.version,
                                 metric="eval_mean_return", meta={"run_dir": str(self.run_dir), "steps": self.interaction.steps})
        return {"name": record.name, "version": record.version, "continued_from": self.spec.agent_version}

    def _summary(self) -> dict[str, Any]:
        wall = self._elapsed()
        returns = self.interaction.episode_returns
        solved = None
        if self.threshold is not None:
            solved = next((p["step"] for p in self.curve if p["mean_return"] >= self.threshold), None)
        return {
            "env": self.spec.env, "algo": self.spec.algo, "seed": self.spec.seed,
            "steps": self.interaction.steps, "episodes": self.interaction.episodes,
            "wall_seconds": round(wall, 3), "steps_per_second": round(self.interaction.steps / max(wall, 1e-9), 1),
            "eval": self.last_eval, "curve": self.curve,
            "online": {"episode_returns": returns,
                       "mean_return_last_100": float(np.mean(returns[-100:])) if returns else None},
            "solved_at_step": solved, "threshold": self.threshold, "run_dir": str(self.run_dir),
            "config": to_dict(self.config), "env_args": self.spec.env_args,
        }


def train(spec: TrainSpec | None = None, quiet: bool = True, store: Any = None, wait: bool = False,
          **kwargs: Any) -> dict[str, Any]:
    """Run one training job and return its summary (Python API: ``train(env=..., algo=..., steps=...)``).

    With ``store`` (a :class:`~llmagentos.kernel.store.Store`) the run is recorded there, and
    ``spec.agent`` names a stored agent to continue (or to create) and save back when the run ends.
    Only one run trains a stored agent at a time: another one is refused, or with ``wait`` waits its turn.
    """
    spec = spec or TrainSpec(**kwargs)
    from llmagentos.kernel import multiagent_run

    if multiagent_run.is_multiagent_job(spec.prepare_world(), spec.algo):  # PettingZoo worlds have their own loop
        return multiagent_run.train(spec, quiet=quiet, store=store)
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


def _stored_agent(spec: TrainSpec, store: Any) -> tuple[Any, Any] | None:
    """(state, record) of the stored agent ``spec.agent`` continues, or None for a new agent; sets its config."""
    if spec.agent is None:
        return None
    if store is None:
        raise UsageError("--agent needs a store (llmagentos --store PATH, or the default ./.llmagentos)")
    record = store.agent(spec.agent, spec.agent_version)
    if record is None:
        if spec.agent_version is not None:
            raise UsageError(f"agent {spec.agent!r} version {spec.agent_version}, which this run started from, "
                             "is no longer in the store")
        return None
    if record.algo != spec.algo:
        raise UsageError(f"agent {spec.agent!r} is a {record.algo} agent; continue it with --algo {record.algo} "
                         "or choose another agent name")
    # the stored config, then this run's overrides: written to job.json, so a resume needs no store
    spec.config = {**record.config, **spec.config}
    spec.agent_version = record.version
    state, _ = store.get_agent(spec.agent, record.version)
    return state, record


def _continue_agent(agent: Agent, state: Any, record: Any) -> None:
    meta = agent_meta(agent)
    for what in ("observation_space", "action_space"):
        if record.__dict__[what] is not None and record.__dict__[what] != meta[what]:
            raise UsageError(f"agent {record.name!r} was trained with {what.replace('_', ' ')} {record.__dict__[what]}, "
                             f"but this task has {meta[what]}; it cannot continue here "
                             "(choose a task with the same spaces or a new agent name)")
    agent.load_state_dict(state)


def resume(run_dir: str | Path, quiet: bool = True, store: Any = None, world: Any = None) -> dict[str, Any]:
    """Continue a stopped or killed run from its last checkpoint; a finished run returns its summary (``world``
    replaces the recorded world, see :func:`read_job`)."""
    run_dir = Path(run_dir)
    spec = read_job(run_dir, world=world)
    summary_path = run_dir / "summary.json"
    if summary_path.exists():
        return read_json(summary_path, "run summary")
    from llmagentos.kernel import multiagent_run

    if multiagent_run.is_multiagent_job(spec.prepare_world(), spec.algo):
        return multiagent_run.resume(spec, run_dir, quiet=quiet, store=store)
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
    from llmagentos.kernel import multiagent_run

    if multiagent_run.is_multiagent_job(job.prepare_world(), job.algo):
        return multiagent_run.evaluate_run(run_dir, episodes, seed, world=world)
    env = make_env(job.prepare_world(), job.env_args, wrappers=job.wrappers)
    agent = load_agent(run_dir, env, world=world)
    returns = evaluate(agent, env, episodes, seed=derive_seed(job.seed, "eval") if seed is None else seed)
    return {"run_dir": str(run_dir), "env": job.env, "algo": job.algo, "episodes": episodes,
            "mean_return": float(np.mean(returns)), "std_return": float(np.std(returns)), "returns": returns}
