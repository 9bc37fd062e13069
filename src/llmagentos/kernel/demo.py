"""``llmagentos demo``: Sarsa against Q-learning on CliffWalking (Sutton & Barto, Example 6.6).

Sarsa learns the safe path and earns more online; Q-learning learns the optimal cliff-edge path
(greedy return −13) but falls off the cliff while exploring.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from llmagentos.kernel.plots import learning_curves, smooth
from llmagentos.kernel.progress import Progress
from llmagentos.kernel.run import TrainSpec, train


def cliff_walking_demo(seeds: int = 5, episodes: int = 500, out: str = "runs/demo", quiet: bool = False) -> dict[str, Any]:
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
    if not quiet:
        from llmagentos.cli import print_table

        print_table(["algorithm", "online return (last 100 episodes)", "greedy return", "seeds"],
                    [[a, t["online_mean_return_last_100"], t["greedy_return"], t["seeds"]] for a, t in table.items()])
        print(f"plot: {plot}")
    return {"algorithms": table, "plot": str(plot), "run_dir": str(out_dir)}
