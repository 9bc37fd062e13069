"""Learning from pixels against Stable-Baselines3: MinAtar returns and wall time, Atari DQN throughput and memory.

Two tables, every peer measured in the same run, ours and SB3 alternating run by run so both see the same
load on a shared machine; torch uses one thread on both sides.

1. **MinAtar** (Breakout, Space Invaders; DQN and PPO): our presets (``llmagentos.learners.world_presets``) against
   SB3's DQN and PPO given the same hyperparameters and a features extractor that fits a 10×10 frame (the
   MinAtar paper's network: one 3×3 convolution of 16 channels, a dense layer of 128; SB3's NatureCNN needs 36
   pixels a side). Each run evaluates ``--eval-episodes`` greedy episodes ``--evals`` times. Printed per game,
   algorithm and library: the final return, the steps per second, and the wall seconds to first reach the
   *common return* (the lower of the two libraries' best evaluations on that seed), so "time to the same
   return" compares like with like.
2. **Atari** (``ALE/Pong-v5`` through Gymnasium's AtariPreprocessing and a stack of 4, the same wrappers on
   both sides): DQN training steps per second with the Nature CNN (ours: the ALE preset with updates from step
   ``--atari-learning-starts``; SB3: ``CnnPolicy`` with the same settings), and the replay memory's bytes per
   stored transition at a 1M-transition capacity (ours: frame-once; SB3: s and s' stored whole, and with its
   ``optimize_memory_usage``).

    nice -n 10 python benchmarks/pixels.py                               # the defaults: 1 seed, 60k MinAtar steps
    nice -n 10 python benchmarks/pixels.py --games Breakout --algos dqn --minatar-steps 200000 --seeds 3
    python benchmarks/pixels.py --skip-minatar --atari-steps 3000        # the Atari table only

SB3 runs in ``benchmarks/.venv-pixel-peers`` (built by ``benchmarks/setup_pixel_peers.sh`` on first use).
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
PEERS = HERE / ".venv-pixel-peers"

SB3_SCRIPT = r'''
import json, sys, time
import numpy as np, torch, gymnasium as gym
from torch import nn
torch.set_num_threads(1)
from stable_baselines3 import DQN, PPO
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.env_util import make_vec_env
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
import minatar.gym
minatar.gym.register_envs()

job = json.loads(sys.argv[1])
P = job["preset"]

class MinAtarNet(BaseFeaturesExtractor):
    """One 3x3 conv of 16 channels, then a dense layer (the MinAtar paper's network), for H x W x C frames."""
    def __init__(self, space, features_dim=128):
        super().__init__(space, features_dim)
        h, w, c = space.shape
        self.conv = nn.Sequential(nn.Conv2d(c, 16, 3), nn.ReLU(), nn.Flatten())
        self.dense = nn.Sequential(nn.Linear(16 * (h - 2) * (w - 2), features_dim), nn.ReLU())
    def forward(self, x):
        return self.dense(self.conv(x.permute(0, 3, 1, 2).float()))

class Eval(BaseCallback):
    def __init__(self, env_id, every, episodes, seed):
        super().__init__()
        self.env, self.every, self.episodes, self.seed = gym.make(env_id), every, episodes, seed
        self.next, self.curve, self.start = every, [], time.perf_counter()
    def evaluate(self):
        returns = []
        for i in range(self.episodes):
            obs, _ = self.env.reset(seed=10_000 + self.seed * 100 + i)
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
                self.next += self.every
        return True

if job["kind"] == "atari":
    import ale_py
    gym.register_envs(ale_py)
    def make():
        env = gym.make("ALE/Pong-v5", frameskip=1)
        env = gym.wrappers.AtariPreprocessing(env, frame_skip=4, noop_max=30, screen_size=84, terminal_on_life_loss=False)
        return gym.wrappers.FrameStackObservation(env, 4)
    model = DQN("CnnPolicy", make(), learning_rate=P["learning_rate"], buffer_size=job["buffer"], batch_size=P["batch_size"],
                learning_starts=job["learning_starts"], train_freq=P["train_freq"], gamma=P["gamma"],
                target_update_interval=P["target_update_interval"] * P["train_freq"], max_grad_norm=P["max_grad_norm"],
                exploration_fraction=min(1.0, P["exploration_steps"] / job["steps"]), exploration_final_eps=P["epsilon_final"],
                seed=job["seed"], verbose=0, device="cpu")
    start = time.perf_counter()
    model.learn(total_timesteps=job["steps"])
    wall = time.perf_counter() - start
    print(json.dumps({"steps": model.num_timesteps, "wall": wall}))
    sys.exit(0)

env_id, steps, seed = job["env"], job["steps"], job["seed"]
kwargs = dict(features_extractor_class=MinAtarNet)
if job["algo"] == "dqn":
    model = DQN("MlpPolicy", env_id, learning_rate=P["learning_rate"], buffer_size=P["buffer_size"], batch_size=P["batch_size"],
                learning_starts=P["learning_starts"], train_freq=P["train_freq"], gradient_steps=P["gradient_steps"],
                gamma=P["gamma"], target_update_interval=P["target_update_interval"] * P["train_freq"],
                exploration_fraction=min(1.0, P["exploration_steps"] / steps), exploration_final_eps=P["epsilon_final"],
                max_grad_norm=P["max_grad_norm"], policy_kwargs=dict(net_arch=[], **kwargs), seed=seed, verbose=0, device="cpu")
else:
    lr = P["learning_rate"]
    model = PPO("MlpPolicy", make_vec_env(env_id, n_envs=P["num_envs"], seed=seed), n_steps=P["n_steps"], batch_size=P["batch_size"],
                n_epochs=P["n_epochs"], gamma=P["gamma"], gae_lambda=P["gae_lambda"], ent_coef=P["ent_coef"],
                clip_range=P["clip_range"], learning_rate=lambda progress: progress * lr,
                policy_kwargs=dict(net_arch=[], share_features_extractor=True, **kwargs), seed=seed, verbose=0, device="cpu")
callback = Eval(env_id, job["every"], job["episodes"], seed)
start = time.perf_counter()
model.learn(total_timesteps=steps, callback=callback)
wall = time.perf_counter() - start
if not callback.curve or callback.curve[-1]["step"] < model.num_timesteps:
    callback.curve.append({"step": model.num_timesteps, "mean_return": callback.evaluate(), "wall_seconds": time.perf_counter() - start})
print(json.dumps({"steps": model.num_timesteps, "wall": wall, "curve": callback.curve}))
'''


def run_sb3(job: dict) -> dict:
    if not (PEERS / "bin" / "python").exists():
        subprocess.run(["bash", str(HERE / "setup_pixel_peers.sh")], check=True)
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = subprocess.run([str(PEERS / "bin" / "python"), "-c", SB3_SCRIPT, json.dumps(job)], capture_output=True, text=True, env=env)
    if out.returncode != 0:
        raise RuntimeError(f"SB3 {job} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def run_ours_minatar(job: dict) -> dict:
    from llmagentos.jobs.train import train
    from llmagentos.kernel.run import TrainSpec

    with tempfile.TemporaryDirectory() as tmp:
        config = {"schedule_steps": job["steps"]} if job["algo"] == "ppo" else {}
        s = train(TrainSpec(env=job["env"], algo=job["algo"], seed=job["seed"], steps=job["steps"], config=config,
                            eval_every=job["every"], eval_episodes=job["episodes"], tensorboard=False,
                            out=os.path.join(tmp, "run")))
    return {"steps": s["steps"], "wall": s["wall_seconds"], "curve": s["curve"]}


def run_ours_atari(job: dict) -> dict:
    from llmagentos.jobs.train import train
    from llmagentos.kernel.run import TrainSpec

    with tempfile.TemporaryDirectory() as tmp:
        s = train(TrainSpec(env="ALE/Pong-v5", algo="dqn", seed=job["seed"], steps=job["steps"],
                            config={"learning_starts": job["learning_starts"], "buffer_size": job["buffer"]},
                            eval_every=10 * job["steps"], eval_episodes=1, tensorboard=False, out=os.path.join(tmp, "run"),
                            env_args={"max_num_frames_per_episode": 400}))
    # the kernel's wall seconds include one short (capped) final evaluation; SB3's learn() has none
    return {"steps": s["steps"], "wall": s["wall_seconds"]}


def seconds_to(curve: list[dict], target: float) -> float | None:
    return next((p["wall_seconds"] for p in curve if p["mean_return"] >= target), None)


def median(values: list) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def bytes_per_transition() -> dict[str, float]:
    """Replay bytes per stored transition at 1M transitions (zeroed pages are never touched, so this is cheap)."""
    import numpy as np

    from llmagentos.learners.common.frame_replay import FrameReplayBuffer

    ours = FrameReplayBuffer(1_000_000, (4, 84, 84), np.uint8).nbytes_per_row()
    frame = 84 * 84
    # SB3's ReplayBuffer: obs and next_obs (4×84×84 uint8 each), action int64, reward, done, timeout float32;
    # optimize_memory_usage drops next_obs (and is refused with timeouts handled)
    sb3 = 2 * 4 * frame + 8 + 4 + 4 + 4
    return {"ours (frame-once)": ours, "SB3 ReplayBuffer": sb3, "SB3 optimize_memory_usage": sb3 - 4 * frame}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=1)
    parser.add_argument("--games", nargs="+", default=["Breakout", "SpaceInvaders"])
    parser.add_argument("--algos", nargs="+", default=["dqn", "ppo"], choices=["dqn", "ppo"])
    parser.add_argument("--minatar-steps", type=int, default=60_000)
    parser.add_argument("--evals", type=int, default=6, help="evaluations per MinAtar run")
    parser.add_argument("--eval-episodes", type=int, default=10)
    parser.add_argument("--atari-steps", type=int, default=3_000, help="DQN steps on Pong per library (throughput)")
    parser.add_argument("--atari-learning-starts", type=int, default=1_000)
    parser.add_argument("--skip-minatar", action="store_true")
    parser.add_argument("--skip-atari", action="store_true")
    parser.add_argument("--json", default=None, help="also write every run's record to this file")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE.parent / "src"))
    import torch

    torch.set_num_threads(1)
    from llmagentos.kernel.progress import print_table
    from llmagentos.learners.world_presets import ATARI_DQN, MINATAR_DQN, MINATAR_PPO

    records: list[dict] = []

    def keep(record: dict) -> None:
        records.append(record)
        if args.json:
            Path(args.json).write_text(json.dumps(records, indent=1))

    if not args.skip_minatar:
        every = max(args.minatar_steps // args.evals, 1)
        for seed in range(args.seeds):
            for game in args.games:
                for algo in args.algos:
                    job = {"env": f"MinAtar/{game}-v1", "algo": algo, "seed": seed, "steps": args.minatar_steps, "every": every,
                           "episodes": args.eval_episodes, "kind": "minatar",
                           "preset": dict(MINATAR_DQN if algo == "dqn" else MINATAR_PPO)}
                    pair = {"ours": run_ours_minatar(job), "sb3": run_sb3(job)}
                    common = min(max(p["mean_return"] for p in r["curve"]) for r in pair.values())
                    for lib, r in pair.items():
                        keep({"table": "minatar", "lib": lib, "game": game, "algo": algo, "seed": seed, "common": common,
                              "to_common": seconds_to(r["curve"], common), "final": r["curve"][-1]["mean_return"], **r})
                        print(f"{lib:4s} {game} {algo} seed {seed}: final {r['curve'][-1]['mean_return']:.2f}, "
                              f"{r['steps'] / r['wall']:.0f} steps/s, {records[-1]['to_common']} s to {common:.2f} | "
                              + " ".join(f"{p['mean_return']:.1f}" for p in r["curve"]), flush=True)
        rows = []
        for game in args.games:
            for algo in args.algos:
                for lib in ("ours", "sb3"):
                    rs = [r for r in records if r["table"] == "minatar" and (r["game"], r["algo"], r["lib"]) == (game, algo, lib)]
                    rows.append([game, algo, lib, len(rs), median([r["final"] for r in rs]), median([r["common"] for r in rs]),
                                 median([r["to_common"] for r in rs]), median([r["steps"] / r["wall"] for r in rs])])
        print(f"\nMinAtar, {args.minatar_steps} steps, {args.eval_episodes} greedy episodes × {args.evals} evaluations")
        print_table(["game", "algo", "library", "seeds", "median final return", "common return",
                     "median wall s to common return", "steps/s"], rows)
    if not args.skip_atari:
        rows = []
        for seed in range(args.seeds):
            job = {"kind": "atari", "seed": seed, "steps": args.atari_steps, "learning_starts": args.atari_learning_starts,
                   "buffer": 100_000, "preset": ATARI_DQN}
            for lib, r in (("ours", run_ours_atari(job)), ("sb3", run_sb3(job))):
                keep({"table": "atari", "lib": lib, "seed": seed, **r})
                print(f"{lib:4s} Pong dqn seed {seed}: {r['steps'] / r['wall']:.0f} steps/s", flush=True)
        ours = median([r["steps"] / r["wall"] for r in records if r["table"] == "atari" and r["lib"] == "ours"])
        sb3 = median([r["steps"] / r["wall"] for r in records if r["table"] == "atari" and r["lib"] == "sb3"])
        print(f"\nALE/Pong-v5 DQN, {args.atari_steps} steps, updates from step {args.atari_learning_starts} (batch 32 every 4 steps)")
        print_table(["library", "steps/s", "ratio to SB3"], [["ours", ours, ours / sb3], ["sb3 CnnPolicy", sb3, 1.0]])
        sizes = bytes_per_transition()
        print_table(["replay memory (1M transitions)", "bytes per transition", "× 84·84"],
                    [[k, v, v / (84 * 84)] for k, v in sizes.items()])


if __name__ == "__main__":
    main()
