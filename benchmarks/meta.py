"""Meta-learning benchmarks: our MAML against learn2learn's, our SNES against EvoTorch's, and the process backend's speed-up.

    bash benchmarks/setup_meta_peers.sh            # once: builds benchmarks/.venv-l2l and benchmarks/.venv-evotorch
    nice -n 10 python benchmarks/meta.py           # everything, printed in one run (~30 min on a quiet 2-core box)
    python benchmarks/meta.py --iterations 2000 --l2l-iterations 300   # a quicker look

1. Sinusoid (Finn et al., 2017): MLP 1-40-40-1, K = 10 + 10, α = 0.01, meta-batch 25, Adam 1e-3, second order,
   one inner step; mean-squared error over 600 held-out tasks (the same tasks for every run and for the peer)
   after 0, 1 and 10 steps, for MAML, the pretrained baseline and a random init; milliseconds per meta-iteration.
   learn2learn runs the same loop (``l2l.algorithms.MAML``: clone, adapt, query loss) on the same task sampler.
2. CartPole-v1, linear policy (10 weights), population 10, fitness = mean of 5 episodes: generations and wall
   seconds until the centre's mean return over 10 episodes reaches 475 (at most 50 generations), ours against
   EvoTorch's SNES (``GymNE`` + ``SNES``, the same σ₀ and the same centre evaluation).
3. A heavier problem (MLP 64-64 policy on Acrobot-v1, whose unsolved episodes run their full 500 steps;
   population 32, 5 episodes): seconds per generation on the inline backend and on the processes backend with
   2 workers (the same populations, and the check that both give identical fitness).

The peers run in their own venvs (this file re-executes itself there with ``--peer``); if a venv is missing the
peer's rows say why and ours are printed alone.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
L2L_PYTHON = HERE / ".venv-l2l" / "bin" / "python"
EVOTORCH_PYTHON = HERE / ".venv-evotorch" / "bin" / "python"
SOLVED = 475.0


def load_sinusoid_module():
    """envs/sinusoid.py by path (numpy only), so a peer venv without llmagentos draws exactly our tasks."""
    spec = importlib.util.spec_from_file_location("sinusoid", ROOT / "src" / "llmagentos" / "envs" / "sinusoid.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["sinusoid"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


# -- peers (run inside their venvs) ---------------------------------------------------------------------

def peer_l2l(seed: int, iterations: int, eval_tasks: int, eval_seed: int) -> dict:
    import types

    sys.modules["learn2learn.vision"] = types.ModuleType("learn2learn.vision")  # see setup_meta_peers.sh
    import learn2learn as l2l
    import numpy as np
    import torch
    from torch import nn

    torch.set_num_threads(1)
    family = load_sinusoid_module().SinusoidFamily()
    torch.manual_seed(seed)
    model = nn.Sequential(nn.Linear(1, 40), nn.ReLU(), nn.Linear(40, 40), nn.ReLU(), nn.Linear(40, 1))
    maml = l2l.algorithms.MAML(model, lr=0.01, first_order=False)
    optimizer = torch.optim.Adam(maml.parameters(), lr=1e-3)
    rng = np.random.default_rng(seed + 10_000)
    mse = nn.MSELoss()
    started = time.perf_counter()
    for _ in range(iterations):
        xs, ys, xq, yq = (torch.from_numpy(a) for a in family.batch(25, 10, 10, rng))
        optimizer.zero_grad()
        total = 0.0
        for i in range(25):
            learner = maml.clone()
            learner.adapt(mse(learner(xs[i]), ys[i]))
            loss = mse(learner(xq[i]), yq[i]) / 25
            loss.backward()
            total += loss.item()
        optimizer.step()
    ms = 1000 * (time.perf_counter() - started) / iterations
    xs, ys, xq, yq = (torch.from_numpy(a) for a in family.batch(eval_tasks, 10, 10, np.random.default_rng(eval_seed)))
    errors = []
    for i in range(eval_tasks):
        learner = maml.clone()
        row = [mse(learner(xq[i]), yq[i]).item()]
        for _ in range(10):
            learner.adapt(mse(learner(xs[i]), ys[i]))
            row.append(mse(learner(xq[i]), yq[i]).item())
        errors.append(row)
    errors = np.array(errors)
    mean, half = errors.mean(0), 1.96 * errors.std(0, ddof=1) / np.sqrt(eval_tasks)
    return {"meta_iteration_ms": ms, "mse": [float(mean[s]) for s in (0, 1, 10)], "ci95": [float(half[s]) for s in (0, 1, 10)]}


def peer_evotorch(seed: int, sigma: float, generations: int) -> dict:
    import gymnasium as gym
    import numpy as np
    import torch
    from evotorch.algorithms import SNES
    from evotorch.neuroevolution import GymNE

    torch.set_num_threads(1)
    torch.manual_seed(seed)
    np.random.seed(seed)
    started = time.perf_counter()
    problem = GymNE(env="CartPole-v1", network="Linear(obs_length, act_length)", num_episodes=5)
    searcher = SNES(problem, stdev_init=sigma)
    env = gym.make("CartPole-v1")
    solved = None
    for generation in range(1, generations + 1):
        searcher.step()
        policy = problem.to_policy(searcher.status["center"])
        returns = []
        for e in range(10):
            obs, _ = env.reset(seed=100_000 * seed + 10 * generation + e)
            total, done = 0.0, False
            while not done:
                with torch.no_grad():
                    action = int(torch.argmax(policy(torch.as_tensor(obs, dtype=torch.float32))))
                obs, reward, terminated, truncated, _ = env.step(action)
                total += reward
                done = terminated or truncated
            returns.append(total)
        if np.mean(returns) >= SOLVED:
            solved = generation
            break
    return {"solved_at_generation": solved, "wall_seconds": time.perf_counter() - started,
            "popsize": len(searcher.population)}


def run_peer(python: Path, args: list[str], timeout: float) -> dict:
    if not python.exists():
        return {"error": f"{python.parent.parent.name} is missing: run bash benchmarks/setup_meta_peers.sh"}
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONWARNINGS="ignore")
    try:
        out = subprocess.run([str(python), str(Path(__file__).resolve()), *args], capture_output=True, text=True,
                             timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return {"error": f"timed out after {timeout:.0f} s"}
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


# -- ours -----------------------------------------------------------------------------------------------

def ours_sinusoid(seed: int, iterations: int, init: str = "orthogonal") -> dict:
    from llmagentos.learners.maml_sinusoid import SinusoidMAMLConfig, sinusoid_experiment

    result = sinusoid_experiment(SinusoidMAMLConfig(meta_iterations=iterations, init=init), seed)
    result.pop("model")
    return result


def ours_nes(seed: int, generations: int, config_overrides: dict) -> dict:
    import tempfile

    from llmagentos.kernel.logging import MetricsLog
    from llmagentos.jobs.meta import MetaBlock, _run_nes
    from llmagentos.learners.nes import NESConfig

    with tempfile.TemporaryDirectory() as tmp:
        log = MetricsLog(Path(tmp), tensorboard=False)
        r = _run_nes(MetaBlock(algo="nes", env="CartPole-v1"), NESConfig(generations=generations, **config_overrides),
                     seed, Path(tmp), log)
        log.close()
    solved = r["solved_at_generation"]
    wall = next((p["wall_seconds"] for p in r["curve"] if p["generation"] == solved), r["wall_seconds"])
    return {"solved_at_generation": solved, "wall_seconds": wall, "population": r["population"]}


def _cpu_seconds(pids: list[int]) -> list[float]:
    """User + system CPU seconds of each process so far (Linux /proc; zeros elsewhere)."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    out = []
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            out.append((int(fields[11]) + int(fields[12])) / ticks)
        except (OSError, IndexError, ValueError):
            out.append(0.0)
    return out


def backend_speedup(generations: int, population: int, workers: int) -> dict:
    """Seconds per generation inline and on a processes JobPool, plus the CPU seconds each process spent.

    Wall time on a shared machine depends on how much of the CPU the other sessions leave (with the kernel's
    autogroup scheduling, all of this script's processes share one session's slice). CPU seconds do not:
    the busiest worker's CPU per generation against inline's is the speed-up the code allows on free cores.
    """
    import numpy as np

    from llmagentos.kernel.backends import JobPool
    from llmagentos.jobs.meta import population_evaluator
    from llmagentos.learners.nes import ES, NESConfig, num_weights

    hidden = [64, 64]
    dim = num_weights(6, 3, hidden)
    timings, fitness, cpu = {}, {}, {}
    for backend in ("inline", "processes"):
        es = ES(dim, NESConfig(population=population, sigma_init=0.5), seed=0)
        # one pool for all generations, as an NES run holds it (the pool's start-up is in the warm-up)
        with JobPool(backend, workers) as pool:
            evaluate = population_evaluator("Acrobot-v1", None, [None], hidden, 5, seed=0, pool=pool)
            evaluate(es.ask()[:2 * workers], 10**6)  # warm-up: starts the workers and their imports
            pids = [os.getpid()] + (list(pool._executor._processes) if pool._executor is not None else [])
            times, values, cpus = [], [], []
            for g in range(generations):
                population_g = es.ask()
                before, t = _cpu_seconds(pids), time.perf_counter()
                f = evaluate(population_g, g)
                times.append(time.perf_counter() - t)
                cpus.append([b - a for a, b in zip(before, _cpu_seconds(pids))])
                es.tell(f)
                values.append(f)
        timings[backend], fitness[backend], cpu[backend] = times, np.array(values), np.array(cpus)
    # the critical path: inline's own CPU, or the busiest worker's CPU (plus the parent's) per generation
    inline_cpu = statistics.median(cpu["inline"][:, 0])
    workers_cpu = statistics.median(cpu["processes"][:, 1:].max(axis=1) + cpu["processes"][:, 0])
    return {"population": population, "weights": dim, "workers": workers,
            "inline_seconds": timings["inline"], "processes_seconds": timings["processes"],
            "ratio_median": statistics.median(timings["processes"]) / statistics.median(timings["inline"]),
            "inline_cpu_seconds": inline_cpu, "busiest_worker_cpu_seconds": workers_cpu,
            "cpu_ratio": workers_cpu / inline_cpu,
            "same_fitness": bool(np.array_equal(fitness["inline"], fitness["processes"]))}


# -- the report -----------------------------------------------------------------------------------------

def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--peer", choices=["l2l", "evotorch"], help=argparse.SUPPRESS)
    parser.add_argument("--seed", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 of every comparison")
    parser.add_argument("--iterations", type=int, default=10_000, help="our MAML meta-iterations per seed")
    parser.add_argument("--maml-init", default="orthogonal", choices=["orthogonal", "torch", "finn", "spread"],
                        help="our sinusoid net's initialisation (torch: nn.Linear's default, the one learn2learn's net gets)")
    parser.add_argument("--l2l-iterations", type=int, default=None, help="learn2learn's meta-iterations per seed (default: --iterations)")
    parser.add_argument("--nes-seeds", type=int, default=None, help="seeds 0..N-1 of the NES comparison (default: --seeds)")
    parser.add_argument("--generations", type=int, default=50, help="NES generation budget per seed")
    parser.add_argument("--sigma", type=float, default=1.0, help="σ₀ of both SNES runs")
    parser.add_argument("--nes-set", action="append", default=[], metavar="FIELD=VALUE",
                        help="an NESConfig field for our runs, e.g. mirrored=false (Algorithm 6 exactly); repeatable")
    parser.add_argument("--speedup-generations", type=int, default=4)
    parser.add_argument("--speedup-population", type=int, default=32)
    parser.add_argument("--skip", default="", help="comma-separated sections to skip: maml,nes,speedup")
    parser.add_argument("--json", default=None, help="also write every figure to this JSON file")
    args = parser.parse_args()

    if args.peer == "l2l":
        print(json.dumps(peer_l2l(args.seed, args.iterations, 600, 2017)))
        return
    if args.peer == "evotorch":
        print(json.dumps(peer_evotorch(args.seed, args.sigma, args.generations)))
        return

    sys.path.insert(0, str(ROOT / "src"))
    import numpy as np
    import torch

    from llmagentos.cli import print_table

    torch.set_num_threads(1)
    skip = set(filter(None, args.skip.split(",")))
    seeds = list(range(args.seeds))
    report: dict = {}

    if "maml" not in skip:
        l2l_iterations = args.l2l_iterations or args.iterations
        ours, peers = [], []
        for s in seeds:  # interleaved, so that both see the same share of a busy machine
            ours.append(ours_sinusoid(s, args.iterations, args.maml_init))
            peers.append(run_peer(L2L_PYTHON, ["--peer", "l2l", "--seed", str(s), "--iterations", str(l2l_iterations)], 6 * 3600))
            print(f"  seed {s}: ours {ours[-1]['meta_iteration_ms']:.2f} ms/iter, learn2learn "
                  f"{peers[-1].get('meta_iteration_ms', float('nan')):.2f} ms/iter", file=sys.stderr, flush=True)
        rows = []
        for s, o, p in zip(seeds, ours, peers):
            rows.append([s, "ours", args.iterations, o["meta_iteration_ms"], *o["mse"]["maml"], *o["mse"]["pretrained"][1:]])
            if "error" in p:
                rows.append([s, "learn2learn", None, None, None, None, None, None, None])
            else:
                rows.append([s, "learn2learn", l2l_iterations, p["meta_iteration_ms"], *p["mse"], None, None])
        print(f"\nSinusoid MAML, second order, 1 inner step, 600 held-out tasks (mean-squared error after k steps)")
        print_table(["seed", "impl", "meta-iters", "ms/iter", "k=0", "k=1", "k=10", "pretrained k=1", "pretrained k=10"], rows)
        errors = sorted({p["error"] for p in peers if "error" in p})
        for e in errors:
            print(f"  learn2learn did not run: {e}")
        ms_ours = statistics.median(o["meta_iteration_ms"] for o in ours)
        ok = [p for p in peers if "error" not in p]
        summary = {"ours_ms_median": ms_ours, "ours_mse_mean": np.mean([o["mse"]["maml"] for o in ours], 0).tolist(),
                   "pretrained_mse_mean": np.mean([o["mse"]["pretrained"] for o in ours], 0).tolist(),
                   "random_mse_mean": np.mean([o["mse"]["random"] for o in ours], 0).tolist()}
        if ok:
            summary["l2l_ms_median"] = statistics.median(p["meta_iteration_ms"] for p in ok)
            summary["l2l_mse_mean"] = np.mean([p["mse"] for p in ok], 0).tolist()
            summary["time_ratio"] = ms_ours / summary["l2l_ms_median"]
        print("  mean over seeds: ours " + " / ".join(f"{v:.3f}" for v in summary["ours_mse_mean"])
              + "; pretrained " + " / ".join(f"{v:.3f}" for v in summary["pretrained_mse_mean"])
              + "; random " + " / ".join(f"{v:.3f}" for v in summary["random_mse_mean"])
              + (("; learn2learn " + " / ".join(f"{v:.3f}" for v in summary["l2l_mse_mean"])) if ok else ""))
        print(f"  ms per meta-iteration (median): ours {ms_ours:.2f}"
              + (f", learn2learn {summary['l2l_ms_median']:.2f}, ratio {summary['time_ratio']:.3f} (target ≤ 0.2)" if ok else ""))
        print(f"  targets: k=1 ≤ 0.45: {'met' if summary['ours_mse_mean'][1] <= 0.45 else 'MISSED'}; "
              f"k=10 ≤ 0.14: {'met' if summary['ours_mse_mean'][2] <= 0.14 else 'MISSED'}")
        report["maml"] = {"ours": ours, "learn2learn": peers, "summary": summary}

    if "nes" not in skip:
        ours, peers = [], []
        nes_overrides = {}
        for item in args.nes_set:
            key, _, value = item.partition("=")
            try:
                nes_overrides[key] = json.loads(value)
            except json.JSONDecodeError:
                nes_overrides[key] = value
        nes_seeds = list(range(args.nes_seeds)) if args.nes_seeds else seeds
        for s in nes_seeds:
            ours.append(ours_nes(s, args.generations, {"sigma_init": args.sigma, **nes_overrides}))
            peers.append(run_peer(EVOTORCH_PYTHON, ["--peer", "evotorch", "--seed", str(s), "--sigma", str(args.sigma),
                                                    "--generations", str(args.generations)], 1800))
        rows = []
        for s, o, p in zip(nes_seeds, ours, peers):
            rows.append([s, "ours (snes" + "".join(f", {k}={v}" for k, v in nes_overrides.items()) + ")",
                         o["population"], o["solved_at_generation"], o["wall_seconds"]])
            rows.append([s, "evotorch (SNES)", p.get("popsize"), p.get("solved_at_generation"), p.get("wall_seconds")])
        print(f"\nCartPole-v1, linear policy, population 10, fitness = mean of 5 episodes, solved = centre ≥ {SOLVED:.0f} over 10 episodes")
        print_table(["seed", "impl", "population", "solved at generation", "wall seconds"], rows)
        for e in sorted({p["error"] for p in peers if "error" in p}):
            print(f"  EvoTorch did not run: {e}")

        def med(values):
            values = [v if v is not None else float("inf") for v in values]
            return statistics.median(values)

        summary = {"ours_median_generations": med([o["solved_at_generation"] for o in ours]),
                   "ours_median_seconds": statistics.median(o["wall_seconds"] for o in ours),
                   "ours_all_solved": all(o["solved_at_generation"] is not None for o in ours)}
        ok = [p for p in peers if "error" not in p]
        if ok:
            summary["evotorch_median_generations"] = med([p["solved_at_generation"] for p in ok])
            summary["evotorch_median_seconds"] = statistics.median(p["wall_seconds"] for p in ok)
        print(f"  median generations: ours {summary['ours_median_generations']}"
              + (f", EvoTorch {summary['evotorch_median_generations']}" if ok else "")
              + f"; median seconds: ours {summary['ours_median_seconds']:.2f}"
              + (f", EvoTorch {summary['evotorch_median_seconds']:.2f}" if ok else "")
              + f"; every seed solved within {args.generations}: {summary['ours_all_solved']}")
        if len(nes_seeds) > 3:
            first = {"ours": med([o["solved_at_generation"] for o in ours[:3]])}
            if len(ok) == len(peers):
                first["EvoTorch"] = med([p["solved_at_generation"] for p in peers[:3]])
            print("  seeds 0-2 only: median generations " + ", ".join(f"{k} {v}" for k, v in first.items()))
        report["nes"] = {"ours": ours, "evotorch": peers, "summary": summary}

    if "speedup" not in skip:
        r = backend_speedup(args.speedup_generations, args.speedup_population, 2)
        print(f"\nProcess backend: Acrobot-v1, MLP 64-64 policy ({r['weights']} weights), population {r['population']}, 5 episodes each")
        print_table(["backend", "median s/generation", "per generation"],
                    [["inline", statistics.median(r["inline_seconds"]), " ".join(f"{t:.2f}" for t in r["inline_seconds"])],
                     ["processes (2)", statistics.median(r["processes_seconds"]), " ".join(f"{t:.2f}" for t in r["processes_seconds"])]])
        print(f"  ratio processes/inline: {r['ratio_median']:.3f} (target ≤ 0.6); identical fitness on both backends: {r['same_fitness']}"
              f"; load average {' '.join(f'{v:.2f}' for v in os.getloadavg())}")
        print(f"  CPU seconds per generation: inline {r['inline_cpu_seconds']:.2f}, busiest worker + parent "
              f"{r['busiest_worker_cpu_seconds']:.2f}: ratio {r['cpu_ratio']:.3f} (the wall ratio on 2 free cores)")
        report["speedup"] = r

    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1, default=float))


if __name__ == "__main__":
    main()
