"""The single-agent training loop: steps, evaluation every K steps, logging, checkpoints, the summary.

One :class:`Trainer` fills one run directory (see :mod:`llmagentos.kernel.run` for what it holds). The
multi-agent trainer (:mod:`llmagentos.jobs.multiagent`) subclasses it and keeps its bookkeeping.
"""

from __future__ import annotations


import time
from pathlib import Path
from typing import Any, Callable

import numpy as np

from llmagentos import __version__
from llmagentos.core.agent import Agent
from llmagentos.core.config import to_dict
from llmagentos.core.errors import UsageError, arguments_refused_as_usage
from llmagentos.core.loop import Interaction, evaluate, evaluate_vector
from llmagentos.core.schedules import Every
from llmagentos.core.seeding import derive_seed, seed_everything
from llmagentos.envs.resolve import world_from_object
from llmagentos.envs.vector import exact_vector_env
from llmagentos.kernel.checkpoint import (
    CheckpointError, atomic_write_json, load_state, read_json, remove_stale_temporaries, save_state)
from llmagentos.kernel.logging import MetricsLog
from llmagentos.kernel.progress import Progress
from llmagentos.kernel.run import (
    TrainSpec, agent_meta, check_kernel_state, global_rng_state, make_agent, make_config, make_env, new_run_dir,
    save_agent, set_global_rng_state, typed_overrides, write_job)
from llmagentos.kernel.signals import defer_stop_signals, raise_if_stopped, restore_stop_signals
from llmagentos.learners import presets, registry

#: schedule values a learner reports with each update, logged at every update (``train/learning_rate`` ...)
SCHEDULE_METRICS = ("learning_rate", "clip_range")


#: at most this many steps' metrics wait to be summed (they are summed at every evaluation and checkpoint too)
FOLD_METRICS_EVERY = 4096


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
        # the plasticity probe's states come from an env of their own, never from the evaluation env
        self._make_probe_env: Callable[[], Any] | None = lambda: make_env(world, spec.env_args, wrappers=spec.wrappers)
        self.agent = make_agent(spec.algo, self.env, config=self.config, seed=spec.seed)
        self._world = world
        self._batch_eval = bool(preset is not None and preset.batch_evaluation
                                and getattr(self.agent, "supports_vector_env", False))
        self._eval_vector: Any = None  # built at the first batched evaluation (False: the world has none)
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
        self.evals, self.checkpoints = Every(self.eval_every), Every(spec.checkpoint_every)
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self._pending_metrics: list[dict[str, Any]] = []
        self.elapsed_before = 0.0
        self.last_eval: dict[str, Any] = {}
        self.run_dir = run_dir or new_run_dir(spec)
        self._probe: np.ndarray | None = None
        self._probe_collected = False

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
        if self._batch_eval and self._eval_vector is None:
            gym_id = world_from_object(self._world).gym_id
            self._eval_vector = exact_vector_env(gym_id, self.spec.env_args, self.spec.eval_episodes,
                                                 self.spec.wrappers) or False
        if self._batch_eval and self._eval_vector:  # a preset's batched evaluation (the defaults keep theirs)
            cap = getattr(getattr(self.eval_env, "spec", None), "max_episode_steps", None)
            returns = evaluate_vector(self.agent, self._eval_vector, seed=self.eval_seed, step_cap=cap)
        else:
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
        self._fold_metrics()
        train = {k: self.sums[k] / self.counts[k] for k in self.sums}
        train.update(self.agent.train_metrics())
        if train:
            log.write("train", steps, train)
        self.sums, self.counts = {}, {}
        diagnostics = self._plasticity_diagnostics()  # None without a network
        if diagnostics:
            log.write("plasticity", steps, diagnostics)

    def _plasticity_diagnostics(self) -> dict[str, float] | None:
        """The network's diagnostics on one probe batch, collected at the first evaluation (seeded with the
        evaluation seed, so every evaluation and a resumed run look at the same states)."""
        if not self.agent.parameter_groups():
            return None  # no network: a tabular run never imports torch for its diagnostics
        from llmagentos.lifelong.plasticity import agent_diagnostics, probe_batch

        make = getattr(self, "_make_probe_env", None)
        if not self._probe_collected:
            self._probe = probe_batch(self.agent, make, self.eval_seed) if make is not None else None
            self._probe_collected = True
        return agent_diagnostics(self.agent, self._probe) if self._probe is not None else None

    def _checkpoint(self, log: MetricsLog) -> None:
        ckpt_dir = self.run_dir / "checkpoints"
        steps = self.interaction.steps
        self._fold_metrics()
        state = {"agent": self.agent.state_dict(), "interaction": self.interaction.state(), "rng": global_rng_state(),
                 "kernel": {"curve": self.curve, "next_eval": self.evals.next, "next_checkpoint": self.checkpoints.next,
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
        set_global_rng_state(state["rng"])
        kernel = state["kernel"]
        check_kernel_state(kernel)
        self.curve = kernel["curve"]
        self.evals.next, self.checkpoints.next = kernel["next_eval"], kernel["next_checkpoint"]
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
        next_event = self._next_event(interaction.steps)
        show_progress = progress.enabled
        pending = self._pending_metrics.append
        deferring = defer_stop_signals()
        try:
            while (interaction.steps if by_steps else interaction.episodes) < budget:  # type: ignore[operator]
                raise_if_stopped()
                metrics = step()
                if metrics:
                    pending(metrics)  # summed in order at the next event (_fold_metrics): one call here per step
                    if "learning_rate" in metrics:  # an update that reports its step size: log the schedules in use
                        log.write("train", interaction.steps, {k: metrics[k] for k in SCHEDULE_METRICS if k in metrics})
                while seen_episodes < interaction.episodes:
                    log.write("episode", interaction.steps, {"episode": seen_episodes,
                                                             "return": interaction.episode_returns[seen_episodes],
                                                             "length": interaction.episode_lengths[seen_episodes]})
                    seen_episodes += 1
                if interaction.steps >= next_event:  # the two schedules' checks, once either can be due
                    self._fold_metrics()
                    if self.evals.due(interaction.steps) and not self._budget_done():
                        self._log_eval(log)
                        self.evals.done(interaction.steps)
                    if self.checkpoints.due(interaction.steps) and self._checkpoint_ready():
                        # advanced first, so the checkpoint records the next one and a resumed run does not repeat it
                        self.checkpoints.done(interaction.steps)
                        self._checkpoint(log)
                    next_event = self._next_event(interaction.steps)
                if show_progress:
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

    def _next_event(self, step: int) -> int:
        """The first step at which an evaluation or a checkpoint can be due, or the pending metrics are folded."""
        due = [s.next for s in (self.evals, self.checkpoints) if s.next is not None]
        return min(due + [step + FOLD_METRICS_EVERY])

    def _fold_metrics(self) -> None:
        """Add the steps' pending metrics to the running sums and counts, in the order the steps returned them."""
        sums, counts = self.sums, self.counts
        for metrics in self._pending_metrics:
            for key, value in metrics.items():
                sums[key] = sums.get(key, 0.0) + float(value)
                counts[key] = counts.get(key, 0) + 1
        self._pending_metrics.clear()  # in place: the loop holds its append

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
