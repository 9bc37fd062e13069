"""TD loop throughput against the raw env: how much of the environment's speed the kernel's loop keeps.

For FrozenLake-v1 and CliffWalking-v1, in one process and interleaved (so both see the same machine load):

* raw env: ``gymnasium.make(id)`` stepped with random actions (``env.action_space.sample()``), resetting at
  episode ends — the usual "random agent" figure; also with pre-drawn actions (the env's own cost only);
* core loop: ``core.loop.Interaction.step`` driving a learning Q-learning or Sarsa agent (ε = 0.1, α = 0.5);
* kernel: ``llmagentos train`` as the kernel runs it (``Trainer``: the core loop plus per-step metric sums,
  a metrics.jsonl record and a TensorBoard event per episode, a final greedy evaluation).

Each figure is steps per CPU second of this process (``time.process_time``), which other jobs on a shared
machine barely disturb; ``--clock wall`` uses wall time instead. Medians over ``--repeats``.

Run:  nice -n 10 python benchmarks/td_throughput.py [--steps 100000] [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import gymnasium as gym
import numpy as np

import llmagentos.envs  # noqa: F401
from llmagentos.core.loop import Interaction
from llmagentos.jobs.trainer import Trainer
from llmagentos.kernel.run import TrainSpec, make_agent, make_env

clock = time.process_time


def raw_steps_per_second(env_id: str, steps: int, seed: int, predrawn: bool) -> float:
    env = gym.make(env_id)
    env.reset(seed=seed)
    env.action_space.seed(seed)
    actions = np.random.default_rng(seed).integers(env.action_space.n, size=steps).tolist() if predrawn else None
    start = clock()
    if predrawn:
        for a in actions:
            _, _, terminated, truncated, _ = env.step(a)
            if terminated or truncated:
                env.reset()
    else:
        sample = env.action_space.sample
        for _ in range(steps):
            _, _, terminated, truncated, _ = env.step(sample())
            if terminated or truncated:
                env.reset()
    return steps / (clock() - start)


def core_loop_steps_per_second(env_id: str, algo: str, steps: int, seed: int) -> float:
    env = make_env(env_id)
    agent = make_agent(algo, env, seed=seed, alpha=0.5, epsilon=0.1, gamma=0.99)
    step = Interaction(agent, env, seed=seed).step
    start = clock()
    for _ in range(steps):
        step()
    return steps / (clock() - start)


def loop_steps_per_second(env_id: str, algo: str, steps: int, seed: int, tensorboard: bool) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        spec = TrainSpec(env=env_id, algo=algo, seed=seed, steps=steps, eval_every=steps, eval_episodes=1,
                         config={"alpha": 0.5, "epsilon": 0.1, "gamma": 0.99}, out=str(Path(tmp) / "run"),
                         tensorboard=tensorboard)
        trainer = Trainer(spec, quiet=True)
        start = clock()
        summary = trainer.run()
        elapsed = clock() - start
    return summary["steps"] / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--envs", nargs="+", default=["FrozenLake-v1", "CliffWalking-v1"])
    parser.add_argument("--algos", nargs="+", default=["q-learning", "sarsa"])
    parser.add_argument("--clock", choices=["cpu", "wall"], default="cpu")
    args = parser.parse_args()
    global clock
    clock = time.process_time if args.clock == "cpu" else time.perf_counter
    print(f"clock: {args.clock}; steps per measurement: {args.steps:,}; repeats: {args.repeats} (median shown)\n")
    header = f"{'env':<16} {'what':<36} {'steps/s':>12} {'vs raw random':>14}"
    print(header)
    print("-" * len(header))
    for env_id in args.envs:
        rows: dict[str, list[float]] = {}
        names = ["raw env, action_space.sample()", "raw env, pre-drawn actions"]
        names += [f"core loop {algo}" for algo in args.algos] + [f"kernel train {algo}" for algo in args.algos]
        for name in names:
            rows[name] = []
        for r in range(args.repeats):
            # interleave every measurement in each repeat so load changes hit all of them alike
            rows[names[0]].append(raw_steps_per_second(env_id, args.steps, r, predrawn=False))
            rows[names[1]].append(raw_steps_per_second(env_id, args.steps, r, predrawn=True))
            for algo in args.algos:
                rows[f"core loop {algo}"].append(core_loop_steps_per_second(env_id, algo, args.steps, r))
                rows[f"kernel train {algo}"].append(loop_steps_per_second(env_id, algo, args.steps, r, tensorboard=True))
        raw = statistics.median(rows[names[0]])
        raw_bare = statistics.median(rows[names[1]])
        for name in names:
            median = statistics.median(rows[name])
            extra = "" if name.startswith("raw") else f"  ({median / raw_bare:.0%} of pre-drawn)"
            print(f"{env_id:<16} {name:<36} {median:>12,.0f} {median / raw:>13.0%}{extra}")
        print()


if __name__ == "__main__":
    main()
