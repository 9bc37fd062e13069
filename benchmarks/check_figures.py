"""Re-run the cheap documented figures (each run ≤ about a minute) and report any that moved.

Run by hand, not in CI, on a fresh clone (``pip install -e .`` first)::

    nice -n 10 python benchmarks/check_figures.py            # every figure
    nice -n 10 python benchmarks/check_figures.py --only ppo  # the figures whose name contains "ppo"

Each figure names the page that quotes it and the command that reproduces it. The script runs the command in a
fresh process per seed (as a reader would), renders the measured figure in the words the page uses, and checks
that the page contains exactly that text (white space aside): the page is the only place the expected value is written, so a
figure cannot be "expected" here and quoted differently there. Exit status 1 when any figure moved.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

ROOT = Path(__file__).resolve().parent.parent


def llmagentos(*args: str) -> dict:
    """``llmagentos ARGS --json`` in a fresh process, in a scratch folder; its JSON output."""
    with tempfile.TemporaryDirectory() as scratch:
        done = subprocess.run([sys.executable, "-m", "llmagentos.cli", *args, "--json"], cwd=scratch,
                              capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"llmagentos {' '.join(args)} failed: {done.stderr.strip()[-500:]}")
    return json.loads(done.stdout)


def first_reaching(summary: dict, threshold: float) -> int | None:
    return next((p["step"] for p in summary["curve"] if p["mean_return"] >= threshold), None)


def kilo(steps: float | None) -> str:
    return "never" if steps is None else f"{steps / 1000:g}k"


@dataclass
class Figure:
    name: str
    page: str
    command: str                    # what the page (or this table) tells a reader to run, per seed
    measure: Callable[[], str]      # runs it and renders the figure in the page's own words


def ppo_cartpole() -> str:
    # the documented command's evaluation schedule: budget/20 = every 5,000 steps, 10 greedy episodes
    firsts = [first_reaching(llmagentos("train", "--env", "CartPole-v1", "--algo", "ppo", "--steps", "30000",
                                        "--eval-every", "5000", "--seed", str(seed), "--quiet"), 475.0)
              for seed in range(5)]
    solved = sorted(s for s in firsts if s is not None)
    if len(solved) < 5:
        return f"first greedy mean ≥ 475 within 30k steps on {len(solved)}/5 seeds ({[kilo(s) for s in firsts]})"
    return f"first greedy mean ≥ 475 after {kilo(solved[0])}–{kilo(solved[-1])} steps (median {kilo(statistics.median(solved))}"


def windy_grid_episodes() -> str:
    runs = [llmagentos("train", "--env", "llmagentos/WindyGridWorld-v0", "--algo", "sarsa", "--steps", "8000",
                       "--set", "gamma=1", "--set", "alpha=0.5", "--set", "epsilon=0.1", "--seed", str(seed), "--quiet")
            for seed in range(6)]
    episodes = [r["episodes"] for r in runs]
    optimal = [seed for seed, r in enumerate(runs) if r["eval"]["mean_return"] == -15.0]
    seeds = f"seeds {optimal[0]}–{optimal[-1]}" if optimal == list(range(optimal[0], optimal[-1] + 1)) else f"seeds {optimal}"
    return (f"in 8,000 steps, {min(episodes)}–{max(episodes)} episodes complete across seeds 0–5 (Figure 6.3: about 170). "
            f"For {seeds} the greedy path afterwards is the optimal 15 steps")


def dqn_cartpole() -> str:
    # the documented command: DQN's default CartPole budget (50k steps), evaluated every 2,500 steps
    runs = [llmagentos("train", "--env", "CartPole-v1", "--algo", "dqn", "--seed", str(seed), "--quiet") for seed in range(5)]
    finals = [r["eval"]["mean_return"] for r in runs]
    firsts = [first_reaching(r, 475.0) for r in runs]
    if min(finals) < 475 or None in firsts:
        return f"seeds 0–4 end at greedy means {finals} (first ≥ 475 at {[kilo(s) for s in firsts]})"
    return (f"seeds 0–4 all end at a greedy mean ≥ 475 ({min(finals):g}–{max(finals):g}), first reaching it after a "
            f"median {kilo(statistics.median(firsts))} steps")


def frozenlake_value_iteration() -> str:
    plan = llmagentos("plan", "FrozenLake-v1", "--algo", "value-iteration", "--gamma", "0.99")
    return f'"values": [{plan["values"][0]:.3f}, {plan["values"][1]:.3f}, ...], "policy": [{plan["policy"][0]}, ' \
           f'{plan["policy"][1]}, {plan["policy"][2]}, ...], "iterations": {plan["iterations"]}'


def hysteretic_beta() -> str:
    sweep = llmagentos("run", str(ROOT / "examples" / "multiagent_climbing.yaml"), "--set", "out=climbing", "--quiet")
    optimal: dict[float, int] = {}
    at_1_1: dict[float, int] = {}  # runs that settled on the safe joint action (1, 1)
    for run, job in zip(sweep["runs"], sweep["grid"]):
        beta = job["params"]["config.beta"]
        optimal[beta] = optimal.get(beta, 0) + bool(run["optimal"])
        at_1_1[beta] = at_1_1.get(beta, 0) + (list(run["greedy_joint_action"]) == [1, 1])
    return (f"β = 0.1 = α (plain independent Q-learning) {optimal[0.1]}/20 optimal ({at_1_1[0.1]} at (1,1)); "
            f"β = 0.05 {optimal[0.05]}/20 ({at_1_1[0.05]} at (1,1)); β = 0.01 {optimal[0.01]}/20")


FIGURES = [
    Figure("ppo-cartpole-steps-to-475", "docs/deep_rl.md",
           "llmagentos train --env CartPole-v1 --algo ppo --steps 100000 --seed S (S = 0..4)", ppo_cartpole),
    Figure("dqn-cartpole-defaults", "docs/deep_rl.md",
           "llmagentos train --env CartPole-v1 --algo dqn --seed S (S = 0..4)", dqn_cartpole),
    Figure("td-windy-grid-sarsa", "docs/td.md",
           "llmagentos train --env llmagentos/WindyGridWorld-v0 --algo sarsa --steps 8000 --set gamma=1 "
           "--set alpha=0.5 --set epsilon=0.1 --seed S (S = 0..5)", windy_grid_episodes),
    Figure("planning-frozenlake-vi", "docs/planning.md",
           "llmagentos plan FrozenLake-v1 --algo value-iteration --gamma 0.99 --json", frozenlake_value_iteration),
    Figure("multiagent-hysteretic-beta", "docs/multiagent.md",
           "llmagentos run examples/multiagent_climbing.yaml --json (20 seeds per β)", hysteretic_beta),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--only", default="", help="run only the figures whose name contains this text")
    args = parser.parse_args()
    moved = 0
    for figure in FIGURES:
        if args.only not in figure.name:
            continue
        start = time.perf_counter()
        measured = figure.measure()
        page = " ".join((ROOT / figure.page).read_text(encoding="utf-8").split())  # line breaks are not figures
        ok = " ".join(measured.split()) in page
        moved += not ok
        print(f"{'same ' if ok else 'MOVED'}  {figure.name}  ({figure.page}, {time.perf_counter() - start:.0f} s)\n"
              f"       command:  {figure.command}\n       measured: {measured!r}", flush=True)
    print(f"{moved} moved" if moved else "no figure moved")
    return 1 if moved else 0


if __name__ == "__main__":
    sys.exit(main())
