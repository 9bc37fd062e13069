"""Who coordinates? Independent learners, joint action learners and the remedies on the climbing and penalty games.

Every cell is SEEDS independent runs of `llmagentos train --env GAME --algo ALGO --steps 3000 --seed S` (the
kernel's own path, through the process backend), with each algorithm's default config (Boltzmann exploration,
τ from 500 to 0.05 exponentially over 2,500 steps, α = 0.1; the il preset gives its Q-learners the same). A run
*converges to the optimum* when the agents' greedy joint action at the end is a joint action of greatest payoff.
The other runs are listed by where they ended: a pure Nash equilibrium (NE) or not.

    nice -n 10 python benchmarks/matrix_games.py                 # 100 seeds per cell, 2 worker processes
    python benchmarks/matrix_games.py --seeds 20 --workers 1     # a quick look
    python benchmarks/matrix_games.py --log runs.jsonl ...; python benchmarks/matrix_games.py --from-log runs.jsonl
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

GAMES = [
    ("climbing", "llmagentos/ClimbingGame-v0", {}),
    ("penalty k=0", "llmagentos/PenaltyGame-v0", {"k": 0}),
    ("penalty k=-10", "llmagentos/PenaltyGame-v0", {"k": -10}),
    ("penalty k=-100", "llmagentos/PenaltyGame-v0", {"k": -100}),
]
ALGOS = ["il", "jal", "distributed-q", "hysteretic", "fmq", "lenient"]


def run_one(job: dict) -> dict:
    """One seed of one cell through the kernel (run directory in a scratch folder, thrown away afterwards)."""
    from llmagentos.jobs.train import train
    from llmagentos.kernel.run import TrainSpec

    scratch = Path(tempfile.mkdtemp(prefix="llmagentos-bench-"))
    try:
        spec = TrainSpec(env=job["env"], algo=job["algo"], seed=job["seed"], steps=job["steps"], env_args=job["env_args"],
                         eval_every=job["steps"], eval_episodes=1, out=str(scratch / "run"), tensorboard=False)
        summary = train(spec, quiet=True)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return {k: summary[k] for k in ("outcome", "optimal", "nash", "greedy_payoff", "wall_seconds")}


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """95 % Wilson score interval of a share."""
    if n == 0:
        return (math.nan, math.nan)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=100, help="runs per cell (seeds 0..N-1)")
    parser.add_argument("--steps", type=int, default=3000, help="joint steps per run")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (1 runs inline)")
    parser.add_argument("--json", dest="json_path", default=None, help="also write the cells as JSON here")
    parser.add_argument("--log", default=None, help="append each finished run to this JSONL file as it ends")
    parser.add_argument("--from-log", default=None, help="tabulate the runs already in this JSONL file, run nothing")
    args = parser.parse_args()

    from llmagentos import make_parallel_env
    from llmagentos.kernel.backends import is_failure, run_jobs

    # seed-major order: a run stopped early still covers every cell with the same seeds
    jobs = [{"cell": (name, algo), "env": env_id, "env_args": env_args, "algo": algo, "seed": seed, "steps": args.steps}
            for seed in range(args.seeds) for name, env_id, env_args in GAMES for algo in ALGOS]
    started = time.perf_counter()
    if args.from_log:
        lines = [json.loads(line) for line in Path(args.from_log).read_text().splitlines() if line.strip()]
        done = {(tuple(x["cell"]), x["seed"]): x["result"] for x in lines}
        jobs = [j for j in jobs if (j["cell"], j["seed"]) in done]
        results = [done[(j["cell"], j["seed"])] for j in jobs]
    else:
        log = open(args.log, "a") if args.log else None

        def record(index: int, result: dict) -> None:
            if log is not None and not is_failure(result):
                job = jobs[index]
                log.write(json.dumps({"cell": list(job["cell"]), "seed": job["seed"], "result": result}) + "\n")
                log.flush()

        results = run_jobs(run_one, jobs, backend="inline" if args.workers == 1 else "processes", workers=args.workers,
                           on_result=record)
    wall = time.perf_counter() - started
    failures = [r for r in results if is_failure(r)]
    if failures:
        print(f"{len(failures)} runs failed, first: {failures[0]['error']}", file=sys.stderr)
        sys.exit(1)

    cells = []
    for name, env_id, env_args in GAMES:
        game = make_parallel_env(env_id, **env_args)
        for algo in ALGOS:
            runs = [r for j, r in zip(jobs, results) if j["cell"] == (name, algo)]
            if not runs:
                continue
            optimal = sum(bool(r["optimal"]) for r in runs)
            low, high = wilson(optimal, len(runs))
            outcomes = Counter(r["outcome"] for r in runs)
            others = []
            for label, count in outcomes.most_common():
                joint = tuple(int(x) for x in label.strip("()").split(","))
                if joint in game.optimal_joint_actions():
                    continue
                tag = "NE" if joint in game.pure_nash_equilibria() else "not NE"
                others.append(f"{label}={game.payoffs[joint][0]:g} {tag}: {count}")
            cells.append({"game": name, "algo": algo, "runs": len(runs), "optimal": optimal, "share": optimal / len(runs),
                          "ci95": [low, high], "outcomes": dict(outcomes.most_common()),
                          "elsewhere": "; ".join(others) or "-",
                          "median_run_seconds": sorted(r["wall_seconds"] for r in runs)[len(runs) // 2]})

    print(f"| game | algorithm | runs | optimal share (95% CI) | the other runs ended at (greedy joint action = payoff) |")
    print("|---|---|---|---|---|")
    for c in cells:
        print(f"| {c['game']} | {c['algo']} | {c['runs']} | {c['share']:.2f} ({c['ci95'][0]:.2f}–{c['ci95'][1]:.2f}) "
              f"| {c['elsewhere']} |")
    print(f"\n{len(jobs)} runs of {args.steps} steps in {wall:.0f} s wall on {args.workers} worker(s)"
          f"{' (tabulated from ' + args.from_log + ')' if args.from_log else ''}; "
          f"median run {sorted(c['median_run_seconds'] for c in cells)[len(cells) // 2]:.2f} s")
    if args.json_path:
        Path(args.json_path).write_text(json.dumps({"seeds": args.seeds, "steps": args.steps, "cells": cells}, indent=1) + "\n")


if __name__ == "__main__":
    main()
