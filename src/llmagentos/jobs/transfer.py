"""``llmagentos transfer``: a stored source agent against learning from scratch on a target task, same seeds.

For every seed both arms build the same fresh agent (the source run's algorithm and config, plus
``--set`` overrides) on the target env; the transfer arm then takes the source's knowledge
(:func:`llmagentos.lifelong.transfer.transfer_agent`). Both train for the same steps with greedy
evaluations at the same points, and :func:`llmagentos.lifelong.transfer.summarise` turns the curves into
Taylor & Stone's metrics with 95 % confidence intervals over seeds.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from llmagentos.core.errors import UsageError, arguments_refused_as_usage
from llmagentos.core.limits import check_finite
from llmagentos.core.seeding import seed_everything


def run_transfer(source: str | Path, env: str, env_args: dict[str, Any] | None = None, mode: str = "full",
                 steps: int = 10_000, seeds: Sequence[int] = (0, 1, 2, 3, 4), overrides: dict[str, Any] | None = None,
                 eval_every: int | None = None, eval_episodes: int = 10, threshold: float | None = None,
                 state_map: Sequence[int] | None = None, prior_fraction: float = 0.5, out: str | Path | None = None,
                 quiet: bool = True) -> dict[str, Any]:
    """Both arms on every seed; returns the metrics (the JSON of ``llmagentos transfer``), also
    written to ``OUT/summary.json`` beside the PNG."""
    from llmagentos.kernel.checkpoint import atomic_write_json, load_state
    from llmagentos.kernel.plots import learning_curves
    from llmagentos.kernel.progress import Progress
    from llmagentos.kernel.run import load_agent, make_agent, make_config, make_env, read_job
    from llmagentos.lifelong.transfer import MODES, learning_curve, summarise, transfer_agent

    source = Path(source)
    job = read_job(source)
    if not (source / "agent.json").exists():
        raise UsageError(f"{source} holds no trained agent (agent.json); let its run finish first")
    if mode not in MODES or mode == "scratch":
        raise UsageError(f"--mode must be one of full, trunk, prior, got {mode!r}")
    if steps <= 0:
        raise UsageError(f"--steps must be positive, got {steps}")
    if not seeds:
        raise UsageError("give at least one seed")
    if eval_every is not None and eval_every <= 0:
        raise UsageError(f"--eval-every must be positive, got {eval_every}")
    if eval_episodes <= 0:
        raise UsageError(f"--eval-episodes must be positive, got {eval_episodes}")
    if not 0.0 < prior_fraction <= 1.0:
        raise UsageError(f"--prior-fraction must be in (0, 1], got {prior_fraction}")
    env_args = check_finite(dict(env_args or {}), "--env-arg")
    if threshold is not None:
        check_finite(float(threshold), "--threshold")
    job.prepare_world()  # the source's imports, so the target may be a world of the same module
    wrappers = job.wrappers  # the target is seen through the source's wrappers, as its agent was trained
    _, meta = load_state(source / "agent")  # the config the source was trained with (presets included)
    config = make_config(job.algo, {**meta.get("config", job.config), **dict(overrides or {})})
    num_envs = int(getattr(config, "num_envs", 1) or 1)
    with arguments_refused_as_usage(f"environment {env}"):
        probe = make_env(env, env_args, wrappers=wrappers)
    eval_every = eval_every or max(steps // 20, 1)
    if threshold is None:
        threshold = getattr(getattr(probe, "spec", None), "reward_threshold", None)

    curves: dict[str, list[list[float]]] = {"transfer": [], "scratch": []}
    grid: list[int] | None = None
    progress = Progress(2 * len(seeds) * steps, "steps", enabled=not quiet, label=f"transfer {mode} ")
    done = 0
    try:
        for seed in seeds:
            for arm in ("scratch", "transfer"):
                seed_everything(seed)
                train_env = make_env(env, env_args, num_envs=num_envs, wrappers=wrappers)
                eval_env = make_env(env, env_args, wrappers=wrappers)
                agent = make_agent(job.algo, train_env, config=config, seed=seed)
                if arm == "transfer":
                    source_agent = load_agent(source)
                    agent = transfer_agent(source_agent, agent, mode, state_map=state_map,
                                           prior_steps=max(int(prior_fraction * steps), 1), seed=seed)
                base = done
                curve = learning_curve(agent, train_env, eval_env, steps, eval_every, eval_episodes, seed,
                                       on_step=(lambda s, b=base: progress.update(b + s)) if not quiet else None)
                done += steps
                if grid is None:
                    grid = curve.steps
                curves[arm].append(curve.returns)
    finally:
        progress.close()
    assert grid is not None
    result = summarise(grid, curves["transfer"], curves["scratch"], threshold=threshold)
    out_dir = Path(out) if out else Path("runs") / f"transfer_{env.replace('/', '-')}_{mode}_{time.strftime('%Y%m%d-%H%M%S')}"
    plot = learning_curves({f"transfer ({mode})": (np.array(grid), np.array(curves["transfer"])),
                            "scratch": (np.array(grid), np.array(curves["scratch"]))},
                           out_dir / "transfer.png", f"{job.env} → {env}", "environment steps", "greedy return")
    result.update({"source": str(source), "source_env": job.env, "env": env, "env_args": env_args, "algo": job.algo,
                   "mode": mode, "steps": steps, "seeds": list(seeds), "plot": str(plot)})
    atomic_write_json(out_dir / "summary.json", result)  # beside the plot, for llmagentos ui and later reading
    return result


def print_transfer(result: dict[str, Any]) -> None:
    """The metrics as a table with 95 % CIs, then the plot's path."""
    from llmagentos.kernel.progress import print_table

    rows = []
    for key in ("jumpstart", "asymptotic_gain", "total_reward_gain", "transfer_ratio"):
        lo, hi = result[f"{key}_ci"]
        rows.append([key, result[key], f"[{lo:.3f}, {hi:.3f}]"])
    times = result["time_to_threshold"]
    for arm in ("transfer", "scratch"):
        rows.append([f"time_to_threshold ({arm})", times[arm], f"reached {times[f'{arm}_reached']}"])
    print(f"{result['source_env']} -> {result['env']}  mode {result['mode']}  {result['algo']}  "
          f"{len(result['seeds'])} seeds × {result['steps']} steps  threshold {result['threshold']:.3f}")
    print_table(["metric", "mean", "95% CI"], rows)
    print(f"learning curves: {result['plot']}")
