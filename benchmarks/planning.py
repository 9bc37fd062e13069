"""Planning at scale: value and policy iteration on a 10,000-state random sparse MDP, against pymdptoolbox.

The MDP: 10,000 states, 4 actions, 10 random successors per (s, a) with Dirichlet(1) probabilities,
rewards uniform in [0, 1), γ = 0.99 (``llmagentos.core.mdp.random_mdp(10_000, 4, 10, seed=0)``).
Both sides get the same matrices; pymdptoolbox gets them in its sparse form (a list of A scipy CSR
matrices of shape S×S) and its defaults: value iteration stops at ε = 0.01 (an ε-optimal policy),
policy iteration solves each evaluation as a linear system.

Ours: ``value_iteration`` with θ = 1e-8 (the default; max-norm change) and with θ = ε(1−γ)/(2γ), the
max-norm threshold that gives the same ε-optimal guarantee as pymdptoolbox's stopping rule;
``policy_iteration`` (iterative evaluation, warm-started, θ = 1e-8). All single-threaded.

Times are CPU seconds of the process doing the work (``time.process_time``; the machine is shared) and wall
seconds. pymdptoolbox runs in its own venv (``benchmarks/setup_planning_peers.sh`` builds it) with one BLAS thread.

Run:  bash benchmarks/setup_planning_peers.sh && nice -n 10 python benchmarks/planning.py [--repeats 3]
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

import numpy as np

from llmagentos.core.mdp import random_mdp
from llmagentos.learners.planning import policy_iteration, value_iteration

HERE = Path(__file__).resolve().parent
PEER_PYTHON = HERE / ".venv-mdptoolbox" / "bin" / "python"

PEER_SCRIPT = r"""
import json, sys, time
import numpy as np, scipy.sparse as sp
import mdptoolbox.mdp as mdp
data = np.load(sys.argv[1]); which = sys.argv[2]; S, A = data["R"].shape
P = [sp.csr_matrix((data[f"data{a}"], data[f"indices{a}"], data[f"indptr{a}"]), shape=(S, S)) for a in range(A)]
cpu, wall = time.process_time(), time.perf_counter()
solver = mdp.ValueIteration(P, data["R"], 0.99) if which == "vi" else mdp.PolicyIteration(P, data["R"], 0.99)
setup_cpu = time.process_time() - cpu
solver.run()
np.save(sys.argv[3], np.asarray(solver.V, dtype=np.float64))
np.save(sys.argv[4], np.asarray(solver.policy, dtype=np.int64))
print(json.dumps({"cpu": time.process_time() - cpu, "wall": time.perf_counter() - wall, "setup_cpu": setup_cpu,
                  "iterations": int(solver.iter)}))
"""


def run_peer(model_path: Path, which: str, timeout: float) -> dict:
    values, policy = model_path.with_suffix(f".{which}.V.npy"), model_path.with_suffix(f".{which}.pi.npy")
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    try:
        done = subprocess.run([str(PEER_PYTHON), "-W", "ignore", "-c", PEER_SCRIPT, str(model_path), which, str(values),
                               str(policy)], capture_output=True, text=True, timeout=timeout, env=env, check=True)
    except subprocess.TimeoutExpired:
        return {"timeout": timeout}
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["V"], result["policy"] = np.load(values), np.load(policy)
    return result


def timed(function, *args, **kwargs):
    cpu, wall = time.process_time(), time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.process_time() - cpu, time.perf_counter() - wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--states", type=int, default=10_000)
    parser.add_argument("--actions", type=int, default=4)
    parser.add_argument("--successors", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=3, help="repeats of our solvers (the peer runs once)")
    parser.add_argument("--peer-timeout", type=float, default=1200.0, help="wall seconds allowed per peer run")
    parser.add_argument("--no-peer", action="store_true")
    args = parser.parse_args()
    gamma, epsilon = 0.99, 0.01
    mdp = random_mdp(args.states, args.actions, args.successors, seed=0)
    S, A = mdp.n_states, mdp.n_actions
    print(f"random sparse MDP: {S:,} states, {A} actions, {args.successors} successors per pair, "
          f"{mdp.nnz:,} non-zeros, γ = {gamma}\n")

    rows = []
    theta_matched = epsilon * (1 - gamma) / (2 * gamma)
    ours = {}
    for name, function, kwargs in [
        ("ours value iteration, θ = 1e-8", value_iteration, {"theta": 1e-8}),
        (f"ours value iteration, θ = {theta_matched:.1e} (ε = 0.01)", value_iteration, {"theta": theta_matched}),
        ("ours policy iteration, θ = 1e-8", policy_iteration, {"theta": 1e-8}),
    ]:
        cpus, walls = [], []
        for _ in range(args.repeats):
            result, cpu, wall = timed(function, mdp, gamma=gamma, **kwargs)
            cpus.append(cpu)
            walls.append(wall)
        ours[name] = result
        rows.append((name, statistics.median(cpus), statistics.median(walls), result.iterations, result))

    reference = ours["ours policy iteration, θ = 1e-8"]
    peers = {}
    if not args.no_peer:
        if not PEER_PYTHON.exists():
            sys.exit("pymdptoolbox venv missing: run bash benchmarks/setup_planning_peers.sh first")
        with tempfile.TemporaryDirectory() as tmp:
            model_path = Path(tmp) / "mdp.npz"
            arrays = {"R": mdp.R}
            for a in range(A):
                P_a = mdp.P[np.arange(S) * A + a]  # rows s*A + a: P[s, a, ·]
                arrays |= {f"data{a}": P_a.data, f"indices{a}": P_a.indices, f"indptr{a}": P_a.indptr}
            np.savez(model_path, **arrays)
            for which, label in [("vi", "pymdptoolbox ValueIteration (ε = 0.01)"),
                                 ("pi", "pymdptoolbox PolicyIteration (linear solves)")]:
                peer = run_peer(model_path, which, args.peer_timeout)
                peers[which] = peer
                rows.append((label, peer.get("cpu"), peer.get("wall"), peer.get("iterations"), peer))

    header = f"{'solver':<52} {'CPU s':>9} {'wall s':>9} {'iterations':>10} {'max |V − V*|':>13} {'π = π*':>7}"
    print(header)
    print("-" * len(header))
    for name, cpu, wall, iterations, result in rows:
        if isinstance(result, dict) and "timeout" in result:
            print(f"{name:<52} {'>':>9} {'>' + format(result['timeout'], '.0f'):>9}  (stopped: time limit)")
            continue
        values = result["V"] if isinstance(result, dict) else result.values
        policy = result["policy"] if isinstance(result, dict) else result.policy
        error = float(np.max(np.abs(values - reference.values)))
        same = float(np.mean(policy == reference.policy))
        print(f"{name:<52} {cpu:>9.3f} {wall:>9.3f} {iterations:>10} {error:>13.2e} {same:>7.1%}")
    print("\nV*, π*: our policy iteration's answer (exact to θ); policy iteration's iterations are improvement steps.")
    for which, ours_name in [("vi", f"ours value iteration, θ = {theta_matched:.1e} (ε = 0.01)"),
                             ("pi", "ours policy iteration, θ = 1e-8")]:
        peer = peers.get(which)
        if peer and "cpu" in peer:
            mine = next(r for r in rows if r[0] == ours_name)
            default = next(r for r in rows if r[0] == "ours value iteration, θ = 1e-8") if which == "vi" else mine
            print(f"speed-up over pymdptoolbox {which.upper()} (CPU): {peer['cpu'] / mine[1]:.0f}x at the same guarantee"
                  + (f", {peer['cpu'] / default[1]:.0f}x at θ = 1e-8" if which == "vi" else ""))


if __name__ == "__main__":
    main()
