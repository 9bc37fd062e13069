"""``llmagentos demo``: the main job — a lifelong agent through a stream of tasks, with and without consolidation.

:func:`lifelong_demo` runs a DQN agent through four goal-grid tasks (the goal moves; the descriptor is
part of the observation, so one network can serve every task) once per strategy — fine-tuning, online
EWC, replay with behaviour cloning — on several seeds through the scheduler, and reports the
continual-learning metrics with bootstrap intervals, R-matrix heat maps and the return over the whole
life with the task boundaries marked.

``llmagentos demo --cliff`` keeps the foundation's demo, :func:`cliff_walking_demo`: Sarsa against
Q-learning on CliffWalking (Sutton & Barto, Example 6.6). Sarsa learns the safe path and earns more
online; Q-learning learns the optimal cliff-edge path (greedy return −13) but falls off while exploring.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from llmagentos.kernel.plots import learning_curves, smooth
from llmagentos.kernel.progress import Progress
from llmagentos.jobs.train import train
from llmagentos.kernel.run import TrainSpec


def cliff_walking_demo(seeds: int = 5, episodes: int = 500, out: str = "runs/demo", quiet: bool = False,
                       table: bool = True) -> dict[str, Any]:
    out_dir = Path(out)
    algos = ["sarsa", "q-learning"]
    progress = Progress(len(algos) * seeds, "runs", enabled=not quiet, label="demo ")
    results: dict[str, list[dict[str, Any]]] = {a: [] for a in algos}
    for algo in algos:
        for seed in range(seeds):
            spec = TrainSpec(env="CliffWalking-v1", algo=algo, seed=seed, episodes=episodes,
                             config={"alpha": 0.5, "epsilon": 0.1, "gamma": 1.0}, eval_every=1000, eval_episodes=1,
                             out=str(out_dir / f"{algo}_s{seed}"), tensorboard=False)
            if Path(spec.out).exists():
                import shutil

                shutil.rmtree(spec.out)
            results[algo].append(train(spec, quiet=True))
            progress.update(len(results["sarsa"]) + len(results["q-learning"]))
    progress.close()
    curves = {}
    table = {}
    for algo, runs in results.items():
        online = np.array([smooth(r["online"]["episode_returns"][:episodes], 10) for r in runs])
        curves[algo] = (np.arange(1, episodes + 1), online)
        table[algo] = {
            "online_mean_return_last_100": float(np.mean([r["online"]["mean_return_last_100"] for r in runs])),
            "greedy_return": float(np.mean([r["eval"]["mean_return"] for r in runs])),
            "seeds": len(runs),
        }
    plot = learning_curves(curves, out_dir / "cliff_walking.png", "CliffWalking-v1: Sarsa vs Q-learning (ε = 0.1, α = 0.5)",
                           "episode", "sum of rewards per episode (10-episode average)", ylim=(-100, 0))
    if table:
        from llmagentos.kernel.progress import print_table

        print_table(["algorithm", "online return (last 100 episodes)", "greedy return", "seeds"],
                    [[a, t["online_mean_return_last_100"], t["greedy_return"], t["seeds"]] for a, t in table.items()])
        print(f"plot: {plot}")
    return {"algorithms": table, "plot": str(plot), "run_dir": str(out_dir)}


# -- the lifelong demo ------------------------------------------------------------------------------------

#: the demo's stream: four goals of a 5×5 grid, far from the start (a random walk rarely finds them)
DEMO_TASKS = [{"goal": [4, 4]}, {"goal": [0, 4]}, {"goal": [4, 0]}, {"goal": [2, 4]}]
#: DQN settings that learn one goal in a few thousand steps (small memory, fast target sync)
DEMO_DQN = {"learning_starts": 200, "exploration_steps": 1500, "buffer_size": 5000, "target_update_interval": 100,
            "train_freq": 4, "learning_rate": 2e-3}
DEMO_STRATEGIES = ["finetune", "ewc", "si", "lwf", "replay"]


#: the worlds ``llmagentos demo --world`` streams through, with their default steps per task and seeds
DEMO_WORLDS = {"goal-grid": {"steps_per_task": 2500, "seeds": 3}, "minatar": {"steps_per_task": 6000, "seeds": 1}}


def demo_block(steps_per_task: int = 2500, strategies: list[str] | None = None, world: str = "goal-grid") -> Any:
    from llmagentos.jobs.lifelong import LifelongBlock

    if world == "minatar":
        from llmagentos.jobs.demo_minatar import minatar_block

        return minatar_block(steps_per_task, strategies)
    return LifelongBlock(family="goal-grid", tasks=DEMO_TASKS, steps_per_task=steps_per_task, append_task=True,
                         learner="dqn", config=dict(DEMO_DQN), strategies=strategies or list(DEMO_STRATEGIES),
                         lifelong={"ewc_lambda": 10_000.0, "si_c": 100.0}, eval_episodes=1, curve_points=5)


def task_labels(block: Any) -> list[str]:
    """Short names of the stream's tasks for the heat maps."""
    if block.family == "minatar":
        return [t["game"].replace("space_invaders", "invaders") for t in block.tasks]
    return [f"g{t['goal'][0]}{t['goal'][1]}" for t in block.tasks]


def lifelong_demo(seeds: int = 3, steps_per_task: int = 2500, out: str = "runs/demo-lifelong", backend: str = "processes",
                  workers: int | None = 4, quiet: bool = False, strategies: list[str] | None = None,
                  table: bool = True, world: str = "goal-grid") -> dict[str, Any]:
    """Fine-tuning, EWC, SI, LwF and replay side by side on a four-task goal-grid stream (``world="minatar"``: the
    Continual MinAtar stream of five games, with PackNet); returns the metrics per strategy."""
    import shutil

    from llmagentos.core.errors import UsageError
    from llmagentos.kernel.backends import check_backend, is_failure, run_jobs
    from llmagentos.jobs.lifelong import aggregate, arms, combine, run_arm

    if seeds <= 0:
        raise UsageError(f"--seeds must be positive, got {seeds}")
    if steps_per_task <= 0:
        raise UsageError(f"--steps-per-task must be positive, got {steps_per_task}")
    if world not in DEMO_WORLDS:
        raise UsageError(f"--world must be one of {', '.join(DEMO_WORLDS)}, got {world!r}")
    check_backend(backend, workers)
    block = demo_block(steps_per_task, strategies, world)
    out_dir = Path(out)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    names = arms(block)
    jobs = [{"block": block.model_dump(), "seed": s, "arm": a} for s in range(seeds) for a in names]
    progress = Progress(len(jobs), "jobs", enabled=not quiet, label="lifelong demo ")
    finished = [0]

    def on_result(index: int, result: Any) -> None:
        finished[0] += 1
        progress.update(finished[0], f"{jobs[index]['arm']} s{jobs[index]['seed']}")

    if not quiet:
        import sys

        sys.stderr.write(f"lifelong demo: DQN through {len(block.tasks)} {block.family} tasks × {steps_per_task} steps, "
                         f"{', '.join(block.strategies)} + single-task references, {seeds} seeds, {backend}\n")
    results = run_jobs(run_arm, jobs, backend=backend, workers=workers, on_result=on_result)
    progress.close()
    failed = [r for r in results if is_failure(r)]
    if failed:
        raise RuntimeError(f"lifelong demo job {failed[0]['job_index']} failed: {failed[0]['error']}\n{failed[0]['traceback']}")
    per_seed = []
    for s in range(seeds):
        by_arm = {a: results[s * len(names) + k] for k, a in enumerate(names)}
        per_seed.append({"seed": s, **combine(block, by_arm)})
    aggregated = aggregate(per_seed)
    summary = aggregated["lifelong"]
    plots = [str(matrix_heatmaps({n: np.asarray(summary[n]["matrix"]) for n in block.strategies},
                                 out_dir / "r_matrix.png", task_labels(block))),
             str(life_plot(per_seed, block, out_dir / "life_return.png"))]
    strategies_out = {n: {k: summary[n][k] for k in ("average_performance", "forgetting", "forward_transfer", "backward_transfer",
                                                     "forward_transfer_gem", "matrix", "average_performance_ci",
                                                     "forgetting_ci", "forward_transfer_ci", "backward_transfer_ci",
                                                     "forward_transfer_gem_ci", "seeds")}
                      for n in block.strategies}
    result = {"strategies": strategies_out, "run_dir": str(out_dir), "plots": plots,
              "stream": {"family": block.family, "tasks": block.tasks, "steps_per_task": steps_per_task, "learner": "dqn"}}
    if "references_below_random" in aggregated:
        result["references_below_random"] = aggregated["references_below_random"]
    from llmagentos.kernel.checkpoint import atomic_write_json

    atomic_write_json(out_dir / "summary.json", {**result, "per_seed": [{k: v for k, v in p.items()} for p in per_seed]})
    if table:
        from llmagentos.jobs.lifelong import table as lifelong_table
        from llmagentos.kernel.progress import print_table

        print_table(*lifelong_table({"lifelong": {n: summary[n] for n in block.strategies}}))
        print(f"(mean over {seeds} seeds [bootstrap 95 % interval]; performance normalised per task: 0 = random policy, "
              "1 = single-task DQN)")
        for p in plots:
            print(f"plot: {p}")
        print(f"run directory: {out_dir}")
    return result


def matrix_heatmaps(matrices: dict[str, np.ndarray], path: Path, labels: list[str]) -> Path:
    """One heat map per strategy of R[i, j] (row: trained through task i; column: evaluated on task j)."""
    from llmagentos.kernel.plots import _pyplot

    plt = _pyplot()
    fig, axes = plt.subplots(1, len(matrices), figsize=(3.6 * len(matrices), 3.4), dpi=110, squeeze=False)
    for k, (ax, (name, R)) in enumerate(zip(axes[0], matrices.items())):
        image = ax.imshow(np.clip(R, -1.0, 1.2), vmin=-1.0, vmax=1.2, cmap="viridis")
        for i in range(R.shape[0]):
            for j in range(R.shape[1]):
                ax.text(j, i, f"{R[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if R[i, j] < 0.4 else "black")
        ax.set_title(name)
        ax.set_xticks(range(len(labels)), labels)
        ax.set_yticks(range(len(labels)), [f"after {lab}" for lab in labels] if k == 0 else [])
        ax.set_xlabel("evaluated on task j")
    fig.colorbar(image, ax=axes[0].tolist(), shrink=0.8, label="normalised return")
    path = Path(path)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path


def life_plot(per_seed: list[dict[str, Any]], block: Any, path: Path, bins: int = 60) -> Path:
    """Episode return over the whole life (binned by environment step), one line per strategy, boundaries dotted."""
    total = block.steps_per_task * (len(block.tasks) if isinstance(block.tasks, list) else block.tasks)
    edges = np.linspace(0, total, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    curves = {}
    for name in block.strategies:
        ys = []
        for p in per_seed:
            life = np.asarray(p["strategies"][name]["life"], dtype=float).reshape(-1, 2)
            y = np.full(bins, np.nan)
            which = np.clip(np.searchsorted(edges, life[:, 0], side="right") - 1, 0, bins - 1)
            for b in range(bins):
                if np.any(which == b):
                    y[b] = life[which == b, 1].mean()
            # bins without a finished episode carry the last value forward
            for b in range(bins):
                if np.isnan(y[b]):
                    y[b] = y[b - 1] if b > 0 and not np.isnan(y[b - 1]) else 0.0
            ys.append(y)
        curves[name] = (centres, np.asarray(ys))
    boundaries = [block.steps_per_task * i for i in range(1, len(block.tasks) if isinstance(block.tasks, list) else block.tasks)]
    return learning_curves(curves, path, "Return over the whole life (task boundaries dotted)", "environment step",
                           "episode return (binned)", vlines=boundaries)
