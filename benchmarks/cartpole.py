"""CartPole-v1: our DQN and PPO (their defaults) against Stable-Baselines3's with the rl-baselines3-zoo hyperparameters.

Each run evaluates 10 greedy episodes every 5,000 steps. Printed per library and algorithm: median
steps to first reach a mean eval return >= 475, how many seeds end (final eval) >= 475, median wall
seconds to that first solve, and training steps per second (evaluation included, for both sides).
Ours and SB3's runs alternate seed by seed so that both see the same load on a shared machine.

    nice -n 10 python benchmarks/cartpole.py                    # seeds 0-4, dqn and ppo, ours and sb3
    nice -n 10 python benchmarks/cartpole.py --seeds 3 --algos dqn --libs ours
    python benchmarks/cartpole.py --seeds 0 --merge out/a.json out/b.json   # only the table of earlier runs

SB3 runs in ``benchmarks/.venv-peers`` (built by ``benchmarks/setup_peers.sh`` on first use), never in
this package's environment. Torch uses one thread on both sides.
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
PEERS = HERE / ".venv-peers"
SOLVED = 475.0

# rl-baselines3-zoo hyperparams/{dqn,ppo}.yml, CartPole-v1
SB3_SCRIPT = r'''
import json, sys, time
import numpy as np, torch, gymnasium as gym
torch.set_num_threads(1)
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env

algo, seed, every, episodes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
stop_when_solved = len(sys.argv) > 5 and sys.argv[5] == "stop"  # benchmarks/limits.py: only the time to 475 counts

def lin(start):
    return lambda progress: progress * start

class Eval(BaseCallback):
    def __init__(self):
        super().__init__()
        self.env, self.next, self.curve, self.start = gym.make("CartPole-v1"), every, [], time.perf_counter()
    def evaluate(self):
        returns = []
        for i in range(episodes):
            obs, _ = self.env.reset(seed=10_000 + seed * 100 + i)
            total, done = 0.0, False
            while not done:
                action, _ = self.model.predict(obs, deterministic=True)
                obs, r, term, trunc, _ = self.env.step(int(action))
                total += r
                done = term or trunc
            returns.append(total)
        return float(np.mean(returns))
    def _on_step(self):
        if self.num_timesteps >= self.next:
            self.curve.append({"step": self.num_timesteps, "mean_return": self.evaluate(),
                               "wall_seconds": time.perf_counter() - self.start})
            while self.next <= self.num_timesteps:
                self.next += every
            if stop_when_solved and self.curve[-1]["mean_return"] >= 475:
                return False
        return True

if algo == "dqn":
    steps = 50_000
    model = DQN("MlpPolicy", "CartPole-v1", learning_rate=2.3e-3, batch_size=64, buffer_size=100_000,
                learning_starts=1000, gamma=0.99, target_update_interval=10, train_freq=256, gradient_steps=128,
                exploration_fraction=0.16, exploration_final_eps=0.04, policy_kwargs=dict(net_arch=[256, 256]),
                seed=seed, verbose=0)
else:
    steps = 100_000
    env = make_vec_env("CartPole-v1", n_envs=8, seed=seed)
    model = PPO("MlpPolicy", env, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20, ent_coef=0.0,
                learning_rate=lin(1e-3), clip_range=lin(0.2), seed=seed, verbose=0)
callback = Eval()
start, cpu = time.perf_counter(), time.process_time()
model.learn(total_timesteps=steps, callback=callback)
wall = time.perf_counter() - start
final = callback.curve[-1] if callback.curve and callback.curve[-1]["step"] >= model.num_timesteps else None
if final is None:
    final = {"step": model.num_timesteps, "mean_return": callback.evaluate(), "wall_seconds": time.perf_counter() - start}
    callback.curve.append(final)
print(json.dumps({"steps": model.num_timesteps, "wall": wall, "cpu": time.process_time() - cpu,
                  "curve": callback.curve, "final": final["mean_return"]}))
'''


def run_ours(algo: str, seed: int, every: int, episodes: int) -> dict:
    import torch

    torch.set_num_threads(1)
    from llmagentos.jobs.train import train
    from llmagentos.kernel.run import TrainSpec
    from llmagentos.learners.registry import config_class

    with tempfile.TemporaryDirectory() as tmp:
        cpu = time.process_time()
        # the algorithm's own default budget for CartPole-v1 (what `llmagentos train --env CartPole-v1 --algo X`
        # runs), else SB3's budget
        steps = getattr(config_class(algo), "DEFAULT_STEPS", {}).get("CartPole-v1") or {"dqn": 50_000, "ppo": 100_000}[algo]
        s = train(TrainSpec(env="CartPole-v1", algo=algo, seed=seed, steps=steps, eval_every=every, eval_episodes=episodes,
                            tensorboard=False, out=os.path.join(tmp, "run")))
    return {"steps": s["steps"], "wall": s["wall_seconds"], "cpu": time.process_time() - cpu,
            "curve": s["curve"], "final": s["eval"]["mean_return"]}


def run_sb3(algo: str, seed: int, every: int, episodes: int) -> dict:
    if not (PEERS / "bin" / "python").exists():
        subprocess.run(["bash", str(HERE / "setup_peers.sh")], check=True)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([str(PEERS / "bin" / "python"), "-c", SB3_SCRIPT, algo, str(seed), str(every), str(episodes)],
                         capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"SB3 {algo} seed {seed} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def first_solve(run: dict) -> tuple[int | None, float | None]:
    for point in run["curve"]:
        if point["mean_return"] >= SOLVED:
            return point["step"], point["wall_seconds"]
    return None, None


def median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1")
    parser.add_argument("--seed-list", type=int, nargs="+", default=None, help="exactly these seeds (overrides --seeds)")
    parser.add_argument("--algos", nargs="+", default=["dqn", "ppo"], choices=["dqn", "ppo"])
    parser.add_argument("--libs", nargs="+", default=["ours", "sb3"], choices=["ours", "sb3"])
    parser.add_argument("--eval-every", type=int, default=5_000)
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--json", default=None, help="also write every run's record to this file")
    parser.add_argument("--merge", nargs="*", default=[], help="records (--json files) of earlier runs to add to the table")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent / "src"))
    runners = {"ours": run_ours, "sb3": run_sb3}
    records = [r for path in args.merge for r in json.loads(Path(path).read_text())]
    for algo in args.algos:
        for seed in args.seed_list or range(args.seeds):
            for lib in args.libs:  # alternate libraries seed by seed: both see the same machine load
                run = runners[lib](algo, seed, args.eval_every, args.eval_episodes)
                solve_step, solve_wall = first_solve(run)
                records.append({"lib": lib, "algo": algo, "seed": seed, "solve_step": solve_step, "solve_wall": solve_wall, **run})
                print(f"{lib:4s} {algo} seed {seed}: first >= {SOLVED:.0f} at {solve_step} steps ({solve_wall and round(solve_wall, 1)} s), "
                      f"final {run['final']:.1f}, {run['steps'] / run['wall']:.0f} steps/s, {run['cpu']:.1f} cpu s  |  "
                      + " ".join(f"{p['mean_return']:.0f}" for p in run["curve"]), flush=True)
                if args.json:  # after every run, so a stopped benchmark keeps what it measured
                    Path(args.json).write_text(json.dumps(records, indent=1))
    from llmagentos.cli import print_table

    rows = []
    for algo in sorted({r["algo"] for r in records}):
        for lib in ("ours", "sb3"):
            rs = [r for r in records if r["lib"] == lib and r["algo"] == algo]
            if not rs:
                continue
            # CPU seconds to the first solve, from the run's CPU share: robust to the machine's load
            cpu_to_solve = [r["cpu"] * r["solve_wall"] / r["wall"] if r["solve_wall"] is not None else None for r in rs]
            rows.append([lib, algo, len(rs), median([r["solve_step"] for r in rs]),
                         f"{sum(r['final'] >= SOLVED for r in rs)}/{len(rs)}", median([r["solve_wall"] for r in rs]),
                         median(cpu_to_solve), median([r["steps"] / r["wall"] for r in rs]),
                         median([r["steps"] / r["cpu"] for r in rs]), median([r["cpu"] for r in rs])])
    print()
    print_table(["library", "algo", "seeds", "median steps to 475", "seeds ending >= 475", "median wall s to 475",
                 "median cpu s to 475", "steps/s (wall)", "steps/cpu s", "median cpu s (run)"], rows)


if __name__ == "__main__":
    main()
