"""Multi-task sharing and transfer, measured on the CartPole family and the goal-grid family (≥ 5 seeds).

Part 1 — multi-task: hard and soft sharing (and the task-conditioned network) against independent DQN
learners, the same total environment steps for every arm, tasks taking turns one step at a time.
Reported per arm: the final mean greedy return over tasks (mean and 95 % CI over seeds), and the total
environment steps at which the arm's mean return first reached the independent learners' final mean
(median over seeds, with how many seeds got there).

Part 2 — transfer: a source agent trained on one task starts a learner on a related and on an unrelated
target; ``llmagentos transfer``'s metrics (jumpstart, asymptotic gain, total-reward gain, transfer ratio,
time to threshold) against learning from scratch on the same seeds.

    nice -n 10 python benchmarks/multitask_transfer.py            # the figures in benchmarks/README.md
    python benchmarks/multitask_transfer.py --quick               # a smoke run (1–2 minutes)
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

import torch

torch.set_num_threads(1)

from llmagentos.jobs.multitask import MultiTaskBlock, first_step_reaching, train_multitask  # noqa: E402
from llmagentos.jobs.train import train  # noqa: E402
from llmagentos.jobs.transfer import run_transfer  # noqa: E402
from llmagentos.lifelong.transfer import mean_ci  # noqa: E402

#: DQN settings, pinned (not the learner's defaults, which are tuned for single-task CartPole and may change):
#: constant step size, 1-step Double-DQN targets, ε decaying per task agent, so every arm explores alike
DQN_BASE = {"learning_rate": 1e-3, "learning_rate_final": None, "gamma": 0.99, "n_step": 1, "batch_size": 64,
            "buffer_size": 50_000, "train_freq": 4, "gradient_steps": 1, "target_update_interval": 250,
            "epsilon_start": 1.0, "epsilon_final": 0.05, "double": True, "dueling": False, "hidden": [64, 64],
            "max_grad_norm": 10.0, "loss": "huber"}
GRID_DQN = {**DQN_BASE, "learning_starts": 200, "exploration_steps": 1500, "train_freq": 1,
            "target_update_interval": 100, "hidden": [64], "batch_size": 32}
CARTPOLE_DQN = {**DQN_BASE, "learning_starts": 500, "exploration_steps": 5000}
CARTPOLE_SOURCE_DQN = {**DQN_BASE, "exploration_steps": 10_000}

MULTITASK = {
    "goal-grid": dict(family="goal-grid", family_options={"size": 5}, tasks=4, learner="dqn", config=GRID_DQN,
                      steps=10_000, eval_episodes=1),
    "cartpole": dict(family="cartpole", tasks=3, learner="dqn", config=CARTPOLE_DQN, steps=30_000, eval_episodes=3),
}

#: (source env args, related target, unrelated target) per family
TRANSFER = {
    "goal-grid": {"algo": "q-learning", "env": "llmagentos/GoalGrid-v0", "source_steps": 6000, "steps": 3000,
                  "source": {"size": 6, "goal": [5, 5]},
                  "related": {"size": 6, "goal": [5, 5], "slip": 0.1, "walls": [[2, 2], [3, 3]]},
                  "unrelated": {"size": 6, "goal": [0, 5]},
                  "config": {"alpha": 0.5, "gamma": 0.99, "epsilon": 0.1, "epsilon_final": None, "initial_value": 0.0}},
    "cartpole": {"algo": "dqn", "env": "llmagentos/CartPoleFamily-v0", "source_steps": 20_000, "steps": 10_000,
                 "source": {},
                 "related": {"pole_length": 1.5, "cart_mass": 1.5},
                 "unrelated": {"pole_length": 0.5, "pole_mass": 0.2, "cart_mass": 2.0, "gravity": 14.7, "force_mag": 5.0},
                 "config": CARTPOLE_SOURCE_DQN},
}


def fmt_ci(values) -> str:
    mean, lo, hi = mean_ci(values)
    return f"{mean:8.3f} [{lo:.3f}, {hi:.3f}]"


def multitask_part(seeds: list[int], arms: list[str], scale: float, soft_lambda: float, families: list[str]) -> dict:
    out = {}
    for name, spec in MULTITASK.items():
        if name not in families:
            continue
        spec = dict(spec, steps=max(int(spec["steps"] * scale), 100))
        results: dict[str, list[dict]] = {arm: [] for arm in ["independent"] + arms}
        started = time.time()
        for seed in seeds:
            for arm in results:
                block = MultiTaskBlock(**spec, sharing=arm, soft_lambda=soft_lambda)
                result, _ = train_multitask(block, seed=seed)
                results[arm].append(result)
        rows = {}
        for arm, runs in results.items():
            reached = []
            for k, run in enumerate(runs):
                target = results["independent"][k]["mean_return"]
                reached.append(first_step_reaching(run["curve"], target))
            hit = [s for s in reached if s is not None]
            rows[arm] = {"final_mean_return": [r["mean_return"] for r in runs], "steps_to_independent_final": reached,
                         "median_steps": float(np.median(hit)) if hit else None, "reached": f"{len(hit)}/{len(runs)}",
                         "total_steps": runs[0]["steps"], "parameters": runs[0]["parameters"]["total"]}
        print(f"\n== multi-task: {name}, {spec['tasks']} tasks, {spec['learner']}, {spec['steps']} total steps, "
              f"{len(seeds)} seeds ({time.time() - started:.0f} s) ==")
        print(f"{'arm':<12} {'final mean return [95% CI]':<30} {'steps to independent final (median)':<38} weights")
        for arm, row in rows.items():
            median = "-" if row["median_steps"] is None else f"{row['median_steps']:.0f}"
            print(f"{arm:<12} {fmt_ci(row['final_mean_return']):<30} {median + ' (' + row['reached'] + ')':<38} {row['parameters']}")
        out[name] = rows
    return out


def transfer_part(seeds: list[int], scale: float, workdir: Path, families: list[str]) -> dict:
    out = {}
    for name, spec in TRANSFER.items():
        if name not in families:
            continue
        source_dir = workdir / f"source-{name}"
        train(env=spec["env"], algo=spec["algo"], steps=max(int(spec["source_steps"] * scale), 200), seed=1000,
              env_args=spec["source"], config=spec["config"], out=str(source_dir), tensorboard=False)
        steps = max(int(spec["steps"] * scale), 100)
        for target in ("related", "unrelated"):
            started = time.time()
            result = run_transfer(source_dir, spec["env"], spec[target], mode="full", steps=steps, seeds=seeds,
                                  eval_episodes=5, out=workdir / f"{name}-{target}")
            times = result["time_to_threshold"]
            print(f"\n== transfer: {name} {spec['algo']}, source {spec['source'] or 'default'} -> {target} "
                  f"{spec[target]}, {steps} steps, {len(seeds)} seeds ({time.time() - started:.0f} s) ==")
            for key in ("jumpstart", "asymptotic_gain", "total_reward_gain", "transfer_ratio"):
                lo, hi = result[f"{key}_ci"]
                print(f"  {key:<18} {result[key]:8.3f} [{lo:.3f}, {hi:.3f}]")
            print(f"  time to threshold {result['threshold']:.2f}: transfer {times['transfer']} ({times['transfer_reached']}), "
                  f"scratch {times['scratch']} ({times['scratch_reached']})")
            out[f"{name}/{target}"] = {k: result[k] for k in ("jumpstart", "jumpstart_ci", "asymptotic_gain", "asymptotic_gain_ci",
                                                              "total_reward_gain", "total_reward_gain_ci", "transfer_ratio",
                                                              "transfer_ratio_ci", "time_to_threshold", "threshold")}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="2 seeds, a tenth of the budgets")
    parser.add_argument("--part", choices=["all", "multitask", "transfer"], default="all")
    parser.add_argument("--arms", default="hard,soft,conditioned", help="sharing arms besides independent")
    parser.add_argument("--soft-lambda", type=float, default=1e-2)
    parser.add_argument("--families", default="goal-grid,cartpole", help="which families to run")
    parser.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = parser.parse_args()
    seeds = list(range(2 if args.quick else args.seeds))
    scale = 0.1 if args.quick else 1.0
    figures = {}
    with tempfile.TemporaryDirectory() as tmp:
        if args.part in ("all", "multitask"):
            figures["multitask"] = multitask_part(seeds, args.arms.split(","), scale, args.soft_lambda, args.families.split(","))
        if args.part in ("all", "transfer"):
            figures["transfer"] = transfer_part(seeds, scale, Path(tmp), args.families.split(","))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=1))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
