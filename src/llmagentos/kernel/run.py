"""Run directories and the agents in them: the kernel's services behind every training job.

A run directory holds ``job.json`` (what was asked), ``metrics.jsonl`` and TensorBoard events
(what happened), ``checkpoints/`` (where to continue from), ``agent.safetensors``/``agent.json``
(the trained agent) and ``summary.json`` (the result, the JSON contract of ``llmagentos train``).
Everything is validated before the directory is created, so bad input never leaves one behind.
The loop that fills a run directory is a job's (``llmagentos.jobs.trainer``); this module keeps what every
job shares: the job record (:class:`TrainSpec`, ``job.json``), making, saving and loading agents, naming run
directories, and the global random state a checkpoint carries.
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
from llmagentos.core.errors import UsageError
from llmagentos.core.limits import check_finite, check_name, check_seed
from llmagentos.envs.make import available_envs, make_env  # noqa: F401  (re-exported for kernel users)
from llmagentos.envs.vector import VECTOR_MODES
from llmagentos.kernel.checkpoint import (
    atomic_write_json, load_state, read_json, save_state)
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


#: TrainSpec fields that belong to one job (seed, directory), not to a spec's train block: a stored agent is
#: continued by one run, not by a sweep
JOB_FIELDS = ("seed", "out", "agent", "agent_version", "world")


def train_block_fields() -> list[str]:
    """The train block's keys: TrainSpec's fields but those of one job."""
    return [f.name for f in dataclasses.fields(TrainSpec) if f.name not in JOB_FIELDS]


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


def new_run_dir(spec: TrainSpec) -> Path:
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


def global_rng_state() -> dict[str, Any]:
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


def set_global_rng_state(state: dict[str, Any]) -> None:
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    numpy_state = state["numpy"]
    np.random.set_state(("MT19937", np.asarray(numpy_state["keys"], dtype=np.uint32), numpy_state["pos"],
                         numpy_state["has_gauss"], numpy_state["cached"]))
    if "torch" in state:
        import torch

        torch.set_rng_state(state["torch"])


#: the type of each piece of the kernel's bookkeeping a checkpoint carries
KERNEL_STATE_TYPES = {"curve": list, "next_eval": int, "next_checkpoint": (int, type(None)), "sums": dict,
                       "counts": dict, "metrics_lines": int, "elapsed": (int, float), "last_eval": dict}


def check_kernel_state(kernel: Any) -> None:
    """Raise TypeError unless a checkpoint's kernel state has the types the loop relies on."""
    if not isinstance(kernel, dict):
        raise TypeError("the kernel state is not a mapping")
    for key, types in KERNEL_STATE_TYPES.items():
        if not isinstance(kernel.get(key), types) or isinstance(kernel.get(key), bool):
            raise TypeError(f"kernel.{key} is a {type(kernel.get(key)).__name__}")
    if not all(isinstance(p, dict) and isinstance(p.get("step"), int) for p in kernel["curve"]):
        raise TypeError("kernel.curve holds something other than evaluation points")




def spec_from_block(block: Any, seed: int, out: str | None) -> TrainSpec:
    """The TrainSpec for one seed of a validated train or multiagent block (a pydantic model; only the config keys
    given count, so per-env presets still apply)."""
    data = block.model_dump(mode="json", exclude={"config"})
    data["config"] = block.config.model_dump(mode="json", exclude_unset=True)
    return TrainSpec(**data, seed=seed, out=out)


def train_block_from_flags(flags: dict[str, Any]) -> dict[str, Any]:
    """The raw train (or multiagent) block of ``llmagentos train ... --seeds A:B``: the given flags, and the ``--set``
    values typed by the algorithm's config exactly as for a single run."""
    from llmagentos.core.config import parse_key_values

    overrides = parse_key_values(flags.get("overrides", ()), "--set")
    config = make_config(flags["algo"], overrides, flags["env"], flags.get("preset"))
    # the flags that are block fields (config and wrappers below); a flag not given is left to the block's default
    block = {k: flags[k] for k in train_block_fields() if k not in ("config", "wrappers") and flags.get(k) is not None}
    if flags.get("wrappers"):  # only when given, so the blocks (and fingerprints) of existing sweeps stay the same
        block["wrappers"] = flags["wrappers"]
    block["config"] = {k: getattr(config, k) for k in overrides}
    return block


def run_attempt(out_dir: str | Path, start: Any, resume: Any) -> dict[str, Any]:
    """One attempt at a sweep's job in ``out_dir``: ``resume()`` an earlier attempt that checkpointed, else
    ``start()`` afresh (an attempt that died before its first checkpoint left nothing worth keeping)."""
    out_dir = Path(out_dir)
    if (out_dir / "checkpoints" / "latest.json").exists() and (out_dir / JOB_FILE).exists():
        return resume()
    if out_dir.exists():
        shutil.rmtree(out_dir)
    return start()
