"""CartPole-v1 at the machine's limit: PureJaxRL's PPO, SB3's PPO and DQN, and ours (defaults and --preset fast).

Every contender runs as its own process, started by this script, and the clock starts when the process does:
"wall s to 475" includes interpreter start-up, imports and (PureJaxRL) jit compilation. Runs are interleaved
seed by seed, the order rotating each seed, so every contender sees the same machine load. Printed per
contender: medians with (min–max) over the seeds of

* steps/s: environment steps per wall second of training (ours and SB3: evaluation included; PureJaxRL: its
  jitted run, which evaluates nothing); ``ours-*-noeval`` rows measure ours without evaluations;
* steps to 475: the first evaluation with a mean greedy return ≥ 475 (10 episodes every ``--eval-every`` steps)
  for ours and SB3; for PureJaxRL the first update whose finished training episodes average ≥ 475 (its own
  script's measure: a stochastic policy, not a greedy evaluation);
* wall s to 475: from process start to that point;
* seeds ending ≥ 475: the final greedy evaluation (ours), the last training returns (PureJaxRL); SB3 stops at its
  first 475 here (only its time to 475 is compared), so it has none.

Peers live in their own virtual environments: ``benchmarks/setup_peers.sh`` (SB3) and
``benchmarks/setup_limits_peers.sh`` (jax, gymnax, flax, optax, distrax for PureJaxRL, whose code stays at
``$PUREJAXRL``, default /work/shared/peers/purejaxrl). PureJaxRL's script runs seeds 0..N-1 in one process after one
compile, and jax on a CPU is deterministic: this script starts it once per round with ``--seeds 1`` (PRNGKey 0 every
round, so its rows show the spread of timings under the machine's load, not over seeds) and ``--pjx-seeds N`` runs it
once more at the end with ``--seeds N`` for its spread over seeds. Torch and BLAS use one thread everywhere.

    nice -n 10 python benchmarks/limits.py --seeds 5 --pjx-seeds 5 --json limits.json
    python benchmarks/limits.py --seeds 2 --only ours-ppo-fast purejaxrl-ppo
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SOLVED = 475.0
PUREJAXRL = Path(os.environ.get("PUREJAXRL", "/work/shared/peers/purejaxrl"))
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}


def timed(cmd: list[str]) -> tuple[dict, float]:
    """Run ``cmd``; (the JSON object on its stdout's last line, the process's wall seconds)."""
    start = time.perf_counter()
    out = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, **ONE_THREAD))
    wall = time.perf_counter() - start
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} ... failed:\n{out.stderr[-2000:]}")
    try:  # ours prints one (indented) JSON object; the peers print one JSON line after anything else
        return json.loads(out.stdout), wall
    except json.JSONDecodeError:
        return json.loads(out.stdout.strip().splitlines()[-1]), wall


def ours(algo: str, preset: str | None, seed: int, every: int, episodes: int, evaluate: bool = True) -> dict:
    from llmagentos.learners.registry import config_class

    steps = config_class(algo).DEFAULT_STEPS["CartPole-v1"]
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-c", "from llmagentos.cli import main; main()", "train", "--env", "CartPole-v1",
               "--algo", algo, "--seed", str(seed), "--steps", str(steps), "--eval-every", str(every if evaluate else steps),
               "--eval-episodes", str(episodes), "--quiet", "--json", "--out", os.path.join(tmp, "run")]
        summary, wall = timed(cmd + (["--preset", preset] if preset else []))
    startup = wall - summary["wall_seconds"]
    # without evaluations only the final one exists: no time to 475 is measured
    solve = next((p for p in summary["curve"] if p["mean_return"] >= SOLVED), None) if evaluate else None
    return {"steps_per_s": summary["steps"] / summary["wall_seconds"], "solve_step": solve and solve["step"],
            "solve_wall": solve and startup + solve["wall_seconds"], "final": summary["eval"]["mean_return"],
            "startup_s": startup, "process_s": wall}


def sb3(algo: str, seed: int, every: int, episodes: int) -> dict:
    sys.path.insert(0, str(HERE))
    from cartpole import PEERS, SB3_SCRIPT

    if not (PEERS / "bin" / "python").exists():
        subprocess.run(["bash", str(HERE / "setup_peers.sh")], check=True)
    run, wall = timed([str(PEERS / "bin" / "python"), "-c", SB3_SCRIPT, algo, str(seed), str(every), str(episodes), "stop"])
    startup = wall - run["wall"]
    solve = next((p for p in run["curve"] if p["mean_return"] >= SOLVED), None)
    return {"steps_per_s": run["steps"] / run["wall"], "solve_step": solve and solve["step"],
            "solve_wall": solve and startup + solve["wall_seconds"], "final": None, "startup_s": startup, "process_s": wall}


def purejaxrl(seeds: int = 1) -> list[dict]:
    """One process of PureJaxRL's script over PRNGKeys 0..seeds-1: a record per key, timed from process start."""
    venv = HERE / ".venv-jax"
    if not (venv / "bin" / "python").exists():
        subprocess.run(["bash", str(HERE / "setup_limits_peers.sh")], check=True)
    out, wall = timed([str(venv / "bin" / "python"), str(PUREJAXRL / "run_cartpole.py"), "--seeds", str(seeds)])
    before = wall - sum(r["run_s"] for r in out["runs"])  # start-up, imports and the jit compile
    rows, elapsed = [], before
    for row in out["runs"]:
        rows.append({"steps_per_s": row["steps_per_s"], "solve_step": row["first_step_train_return_ge_475"],
                     "solve_wall": None if row["wall_to_475_s"] is None else elapsed + row["wall_to_475_s"],
                     "final": row["final_train_return"], "startup_s": before, "compile_s": out["compile_s"],
                     "process_s": wall})
        elapsed += row["run_s"]
    return rows


CONTENDERS = {
    "purejaxrl-ppo": lambda seed, every, episodes: purejaxrl()[0],
    "sb3-ppo": lambda seed, every, episodes: sb3("ppo", seed, every, episodes),
    "sb3-dqn": lambda seed, every, episodes: sb3("dqn", seed, every, episodes),
    "ours-ppo": lambda seed, every, episodes: ours("ppo", None, seed, every, episodes),
    "ours-ppo-fast": lambda seed, every, episodes: ours("ppo", "fast", seed, every, episodes),
    "ours-ppo-fast-noeval": lambda seed, every, episodes: ours("ppo", "fast", seed, every, episodes, evaluate=False),
    "ours-dqn": lambda seed, every, episodes: ours("dqn", None, seed, every, episodes),
    "ours-dqn-fast": lambda seed, every, episodes: ours("dqn", "fast", seed, every, episodes),
}


def spread(values: list) -> str:
    values = [v for v in values if v is not None]
    if not values:
        return "—"
    fmt = (lambda v: f"{v:,.0f}") if max(values) >= 100 else (lambda v: f"{v:.1f}")
    return f"{fmt(statistics.median(values))} ({fmt(min(values))}–{fmt(max(values))})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1")
    parser.add_argument("--only", nargs="+", default=list(CONTENDERS), choices=list(CONTENDERS))
    parser.add_argument("--eval-every", type=int, default=5_000)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--pjx-seeds", type=int, default=0, help="then PureJaxRL once over PRNGKeys 0..N-1")
    parser.add_argument("--json", default=None, help="also write every run's record to this file")
    parser.add_argument("--merge", nargs="*", default=[], help="records (--json files) of earlier runs to add to the table")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    records = [r for path in args.merge for r in json.loads(Path(path).read_text())]
    print(f"load average at start: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs", flush=True)
    for seed in range(args.seeds):
        order = args.only[seed % len(args.only):] + args.only[:seed % len(args.only)]
        for name in order:
            try:
                run = CONTENDERS[name](seed, args.eval_every, args.eval_episodes)
            except (RuntimeError, KeyError, ValueError, json.JSONDecodeError) as err:  # one failed run stops nothing
                print(f"{name:22s} seed {seed}: FAILED {err}", flush=True)
                continue
            records.append({"name": name, "seed": seed, "load": os.getloadavg()[0], **run})
            print(f"{name:22s} seed {seed}: {run['steps_per_s']:,.0f} steps/s, 475 at {run['solve_step']} steps, "
                  f"{run['solve_wall'] and round(run['solve_wall'], 1)} s from start (start-up {run['startup_s']:.1f} s), "
                  f"final {run['final']}, load {os.getloadavg()[0]:.1f}", flush=True)
            if args.json:
                Path(args.json).write_text(json.dumps(records, indent=1))
    if args.pjx_seeds:
        for seed, run in enumerate(purejaxrl(args.pjx_seeds)):
            records.append({"name": "purejaxrl-ppo-seeds", "seed": seed, "load": os.getloadavg()[0], **run})
            print(f"purejaxrl-ppo-seeds     seed {seed}: 475 at {run['solve_step']} steps, final {run['final']}", flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(records, indent=1))
    print(f"load average at end: {os.getloadavg()[0]:.1f}\n")
    print("| contender | seeds | steps/s | steps to 475 | wall s to 475 (from process start) | start-up s | seeds ending ≥ 475 |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in [*CONTENDERS, "purejaxrl-ppo-seeds"]:
        rs = [r for r in records if r["name"] == name]
        if not rs:
            continue
        finals = [r["final"] for r in rs if r["final"] is not None]
        ending = f"{sum(f >= SOLVED for f in finals)}/{len(finals)}" if finals and not name.endswith("noeval") else "—"
        print(f"| {name} | {len(rs)} | {spread([r['steps_per_s'] for r in rs])} | {spread([r['solve_step'] for r in rs])} "
              f"| {spread([r['solve_wall'] for r in rs])} | {spread([r['startup_s'] for r in rs])} | {ending} |")


if __name__ == "__main__":
    main()
