"""Wall time of a 10-seed sweep: inline against local processes (2 workers) and Ray (2 CPUs).

Every backend runs the same spec (Q-learning on CliffWalking, one job per seed) and must give the same
summaries; the script checks that before printing any time. Times include everything a user waits
for: pool start-up and imports for ``processes``; for Ray both the sweep on an already running
instance (a cluster's case) and ``ray.init`` itself are shown. Median of ``--repeats`` runs.

    nice -n 10 python benchmarks/sweep.py                       # 10 seeds, 2 workers, 3 repeats
    nice -n 10 python benchmarks/sweep.py --steps 20000 --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")


def strip(summary: dict) -> dict:
    out = {k: v for k, v in summary.items() if k not in ("wall_seconds", "steps_per_second", "run_dir")}
    out["curve"] = [{k: v for k, v in p.items() if k != "wall_seconds"} for p in summary.get("curve", [])]
    return out


def sweep(backend: str, out: Path, seeds: int, steps: int, workers: int) -> tuple[float, list[dict]]:
    from llmagentos.config import run_spec, validate_spec

    spec = validate_spec({"out": str(out), "seeds": seeds, "backend": backend, "workers": workers,
                          "train": {"env": "CliffWalking-v1", "algo": "q-learning", "steps": steps, "eval_every": steps // 4,
                                    "eval_episodes": 1, "tensorboard": False}})
    start = time.perf_counter()
    result = run_spec(spec)
    wall = time.perf_counter() - start
    failed = [r for r in result["runs"] if r.get("failed")]
    if failed:
        raise SystemExit(f"{backend}: {len(failed)} jobs failed: {failed[0]['error']}")
    return wall, result["runs"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=40_000, help="environment steps per seed")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-ray", action="store_true", help="skip the Ray backend")
    args = parser.parse_args()

    times: dict[str, list[float]] = {"inline": [], "processes": [], "ray": []}
    # Σ of the jobs' own wall_seconds: what the jobs cost where they ran; the rest is the scheduler's overhead
    job_seconds: dict[str, list[float]] = {"inline": [], "processes": [], "ray": []}
    ray_init = None
    reference = None
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            for backend in ("inline", "processes"):
                wall, runs = sweep(backend, Path(tmp) / f"{backend}{repeat}", args.seeds, args.steps, args.workers)
                times[backend].append(wall)
                job_seconds[backend].append(sum(r["wall_seconds"] for r in runs))
                reference = reference or [strip(r) for r in runs]
                assert [strip(r) for r in runs] == reference, f"{backend} gave other results than inline"
        if not args.no_ray:
            import ray

            from llmagentos.kernel.backends import init_local_ray

            start = time.perf_counter()
            init_local_ray(num_cpus=args.workers)
            ray_init = time.perf_counter() - start
            try:
                for repeat in range(args.repeats):
                    wall, runs = sweep("ray", Path(tmp) / f"ray{repeat}", args.seeds, args.steps, args.workers)
                    times["ray"].append(wall)
                    job_seconds["ray"].append(sum(r["wall_seconds"] for r in runs))
                    assert [strip(r) for r in runs] == reference, "ray gave other results than inline"
            finally:
                ray.shutdown()

    inline = statistics.median(times["inline"])
    result = {"seeds": args.seeds, "steps_per_seed": args.steps, "workers": args.workers, "repeats": args.repeats,
              "cpus": os.cpu_count(), "identical_results": True,
              "median_seconds": {b: round(statistics.median(t), 2) for b, t in times.items() if t},
              "all_seconds": {b: [round(x, 2) for x in t] for b, t in times.items() if t},
              "ray_init_seconds": None if ray_init is None else round(ray_init, 2)}
    result["ratio_to_inline"] = {b: round(statistics.median(t) / inline, 3) for b, t in times.items() if t}
    # per repeat: sweep wall − Σ job seconds / parallel jobs (1 inline, workers otherwise)
    result["overhead_seconds"] = {
        b: round(statistics.median(w - j / (1 if b == "inline" else args.workers) for w, j in zip(times[b], job_seconds[b])), 2)
        for b in times if times[b]}
    result["median_job_seconds"] = {b: round(statistics.median(j) / args.seeds, 3) for b, j in job_seconds.items() if j}
    print(f"{args.seeds}-seed sweep, Q-learning on CliffWalking, {args.steps} steps per seed, "
          f"{args.workers} workers, median of {args.repeats} (all backends gave identical summaries)")
    print(f"{'backend':<10} {'median s':>9} {'× inline':>9} {'s per job':>10} {'overhead s':>11}")
    for backend, seconds in result["median_seconds"].items():
        print(f"{backend:<10} {seconds:>9.2f} {result['ratio_to_inline'][backend]:>9.3f} "
              f"{result['median_job_seconds'][backend]:>10.3f} {result['overhead_seconds'][backend]:>11.2f}")
    print("(s per job: a seed's own wall time where it ran — it grows when the workers do not get a core each;"
          " overhead: sweep wall time − Σ job time / parallel jobs)")
    if ray_init is not None:
        print(f"(ray.init of a local 2-CPU instance: {ray_init:.2f} s, not included above)")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
