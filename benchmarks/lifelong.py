"""Lifelong-learning benchmark: forgetting and transfer on the CartPole-family stream, change detection in a drifting world.

    nice -n 10 python benchmarks/lifelong.py cartpole --seeds 5 --steps-per-task 15000 --workers 2
    nice -n 10 python benchmarks/lifelong.py drift --seeds 5 --steps 300000

``cartpole``: DQN through 4 CartPole-family tasks (physics drawn with task seed 0, descriptor appended to the
observation), once per strategy (fine-tuning, online EWC, synaptic intelligence, learning without forgetting,
replay with behaviour cloning, PackNet) plus a
single-task DQN per task (the normalisation's upper end and forward transfer's baseline), on every seed,
through the scheduler. Prints the metrics with bootstrap 95 % intervals beside Continual World's CW20 figures
(Wołczyk et al., 2021, SAC on Meta-World — different tasks, learner and budget; only the shape of the result
is comparable) and checks the issue's targets.

``drift``: tabular Q-learning in a goal grid whose goal moves without notice every ``--segment`` steps
(cycling through 4 goals); the lifelong agent watches its episode returns with CUSUM. Prints each
switch's detection delay and the false alarms per 100k steps.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

from llmagentos.cli import print_table
from llmagentos.kernel.backends import is_failure, run_jobs
from llmagentos.jobs.lifelong import LifelongBlock, aggregate, arms, combine, run_arm

#: Continual World CW20 (SAC, Meta-World; Wołczyk et al. 2021, Table 2): average performance / forgetting
CW20 = {"finetune": (0.05, 0.73), "ewc": (0.60, 0.02), "replay": (0.12, 0.07), "packnet": (0.80, 0.00)}

#: the drifting world's goals. "spread": the four cells 4 steps from the start (the same optimal return), in an order
#: that puts consecutive goals 4–8 cells apart, so every switch sends the old policy somewhere useless for several
#: episodes; "antichain": no goal lies on a shortest path from the start to another, but [3, 2] -> [1, 3] (3 cells
#: apart) costs an ε-greedy agent one slow episode at most, too little for a return detector to tell from noise;
#: "overlapping": some goals lie on the way to others, so some switches do not hurt at all
DRIFT_GOALS = {"spread": [[4, 0], [1, 3], [3, 1], [0, 4]], "antichain": [[4, 0], [0, 4], [3, 2], [1, 3]],
               "overlapping": [[4, 4], [0, 4], [4, 0], [2, 4]]}

CARTPOLE_DQN = {"learning_starts": 1000, "exploration_steps": 5000, "buffer_size": 50_000, "train_freq": 4,
                "target_update_interval": 250}

#: the CartPole streams. "interfering": two tasks with CartPole's push direction, then two with it reversed (negative
#: force_mag: action 1 pushes left), the physics changing too, so what the last two teach a network contradicts the
#: first two unless the network reads the descriptor appended to its observation; "alternating": the same four
#: tasks with the direction flipping at every task; "sampled": 4 physics drawn from the family's ranges with task
#: seed 0 (similar enough that training on one improves the others: nothing to forget)
_NORMAL = [{}, {"pole_length": 1.5, "cart_mass": 1.5, "force_mag": 12.0}]
_REVERSED = [{"force_mag": -10.0}, {"pole_length": 0.75, "gravity": 12.0, "force_mag": -12.0}]
CARTPOLE_STREAMS: dict[str, int | list[dict]] = {
    "interfering": _NORMAL + _REVERSED,
    "alternating": [_NORMAL[0], _REVERSED[0], _NORMAL[1], _REVERSED[1]],
    "sampled": 4,
}


def run_blocks(block: LifelongBlock, seeds: int, workers: int, backend: str) -> list[dict]:
    names = arms(block)
    jobs = [{"block": block.model_dump(), "seed": s, "arm": a} for s in range(seeds) for a in names]
    done = [0]
    start = time.time()

    def on_result(i: int, r: dict) -> None:
        done[0] += 1
        status = "FAILED " + r["error"] if is_failure(r) else "ok"
        print(f"  [{done[0]}/{len(jobs)}] {jobs[i]['arm']} seed {jobs[i]['seed']}: {status} ({time.time() - start:.0f} s)",
              file=sys.stderr, flush=True)

    results = run_jobs(run_arm, jobs, backend=backend, workers=workers, on_result=on_result)
    failed = [r for r in results if is_failure(r)]
    if failed:
        raise SystemExit(f"job failed: {failed[0]['error']}\n{failed[0]['traceback']}")
    return [{"seed": s, **combine(block, {a: results[s * len(names) + k] for k, a in enumerate(names)})} for s in range(seeds)]


def cartpole(args: argparse.Namespace) -> dict:
    block = LifelongBlock(family="cartpole", tasks=CARTPOLE_STREAMS[args.stream], task_seed=0, steps_per_task=args.steps_per_task,
                          append_task=True, learner="dqn", config={**CARTPOLE_DQN, **_overrides(args.dqn)}, strategies=args.strategies,
                          lifelong={"ewc_lambda": args.ewc_lambda, "fisher": "policy", "si_c": args.si_c, **_overrides(args.lifelong)},
                          eval_episodes=args.eval_episodes, curve_points=5)
    per_seed = run_blocks(block, args.seeds, args.workers, args.backend)
    summary = aggregate(per_seed)["lifelong"]
    rows = []
    for name in block.strategies:
        s = summary[name]
        cw = CW20.get(name, (None, None))
        rows.append([name] + [f"{s[m]:+.2f} [{s[m + '_ci'][0]:+.2f}, {s[m + '_ci'][1]:+.2f}]"
                              for m in ("average_performance", "forgetting", "forward_transfer", "forward_transfer_gem",
                                        "backward_transfer")]
                    + [cw[0], cw[1]])
    print(f"\nCartPole-family stream ({args.stream}): 4 tasks × {args.steps_per_task} steps, DQN, {args.seeds} seeds "
          f"(mean [bootstrap 95 % CI]); CW20 = Continual World's published SAC/Meta-World figures, different tasks")
    print_table(["strategy", "avg performance", "forgetting", "forward transfer", "forward transfer (GEM)",
                 "backward transfer", "CW20 perf", "CW20 forgetting"], rows)
    ft = summary.get("finetune")
    checks = {}
    if ft:
        checks["finetune forgets (forgetting CI above 0)"] = ft["forgetting_ci"][0] > 0
        for name in ("ewc", "replay"):
            if name in summary:
                checks[f"{name} halves forgetting"] = summary[name]["forgetting"] <= 0.5 * ft["forgetting"]
                checks[f"{name} average performance >= finetune"] = summary[name]["average_performance"] >= ft["average_performance"]
    checks["forward transfer > 0 for some strategy"] = any(summary[n]["forward_transfer"] > 0 for n in block.strategies)
    print("\ntargets:")
    for k, v in checks.items():
        print(f"  {'MET ' if v else 'MISS'}  {k}")
    print("\nmean R matrices (rows: after task i; columns: task j):")
    for name in block.strategies:
        print(f"  {name}: " + json.dumps(np.round(summary[name]["matrix"], 2).tolist()))
    return {"summary": summary, "checks": checks, "random": per_seed[0].get("random_returns"),
            "references": [p.get("reference_returns") for p in per_seed]}


def _overrides(pairs: list[str]) -> dict:
    """KEY=VALUE pairs as LifelongConfig overrides (values parsed as JSON where they parse, else kept as text)."""
    out = {}
    for kv in pairs:
        key, value = kv.split("=", 1)
        try:
            out[key] = json.loads(value)
        except json.JSONDecodeError:
            out[key] = value
    return out


def drift(args: argparse.Namespace) -> dict:
    block = LifelongBlock(family="goal-grid", tasks=[{"goal": g} for g in DRIFT_GOALS[args.goals]],
                          steps_per_task=args.segment, learner="q-learning", config={"epsilon": 0.1, "alpha": 0.5},
                          strategies=["finetune"], lifelong={"transfer": args.transfer, **dict(kv.split("=", 1) for kv in args.lifelong)},
                          references=False,
                          drift={"mode": "abrupt", "total_steps": args.steps})
    per_seed = run_blocks(block, args.seeds, args.workers, args.backend)
    summary = aggregate(per_seed)["lifelong"]["finetune"]
    delays = [d for p in per_seed for d in p["strategies"]["finetune"]["delays"]]
    found = [d for d in delays if d is not None]
    print(f"\nDrifting goal grid ({args.goals} goals {DRIFT_GOALS[args.goals]}): Q-learning, goal switches every {args.segment} steps without notice, "
          f"{args.steps} steps × {args.seeds} seeds, CUSUM on {block.lifelong.get('detect_signal', 'return')}")
    print_table(["switches", "detected", "median delay (steps)", "90th pct delay", "max delay", "false alarms / 100k steps"],
                [[summary["switches"], summary["detected"], summary["median_delay_steps"],
                  float(np.percentile(found, 90)) if found else None, summary["max_delay_steps"],
                  summary["false_alarms_per_100k"]]])
    return {"summary": summary, "delays": delays}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("which", choices=["cartpole", "drift"])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--backend", default="processes")
    parser.add_argument("--steps-per-task", type=int, default=10_000)
    parser.add_argument("--stream", choices=sorted(CARTPOLE_STREAMS), default="interfering", help="cartpole: which stream of tasks")
    parser.add_argument("--strategies", nargs="+", default=["finetune", "ewc", "si", "lwf", "replay", "packnet"])
    parser.add_argument("--ewc-lambda", type=float, default=1e5, help="cartpole: EWC's λ (with the policy Fisher)")
    parser.add_argument("--si-c", type=float, default=1e3, help="cartpole: synaptic intelligence's c")
    parser.add_argument("--eval-episodes", type=int, default=5)
    parser.add_argument("--steps", type=int, default=300_000, help="drift: steps lived per seed")
    parser.add_argument("--segment", type=int, default=25_000, help="drift: steps between two unannounced switches")
    parser.add_argument("--transfer", default="probe", help="drift: what a detected new task starts from")
    parser.add_argument("--goals", choices=sorted(DRIFT_GOALS), default="spread", help="drift: the goals the world cycles through")
    parser.add_argument("--lifelong", nargs="*", default=[], metavar="KEY=VALUE", help="LifelongConfig overrides (consolidation, detector settings)")
    parser.add_argument("--dqn", nargs="*", default=[], metavar="KEY=VALUE", help="cartpole: DQN config overrides")
    parser.add_argument("--out", default=None, help="write the results as JSON here")
    args = parser.parse_args()
    started = time.time()
    result = cartpole(args) if args.which == "cartpole" else drift(args)
    print(f"\nwall time {time.time() - started:.0f} s")
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps({"args": vars(args), **result}, indent=1, default=float))


if __name__ == "__main__":
    main()
