"""``llmagentos ui`` on a large store: 1,000 requests against a store of 10,000 runs, median and tail latency.

The store is filled through the store's own API (``Store.record_run``, ``put_agent``, ``add_knowledge``):
10,000 finished train runs over 20 agents, 4 environments and 3 algorithms, each with a realistic summary
(a 20-point evaluation curve and 100 episode returns) and a run directory holding a 120-line
``metrics.jsonl``. Then the dashboard runs in a child process (``llmagentos --store S ui``) and this script
sends 1,000 requests in a loop, one at a time, cycling through what the pages ask for: runs-table pages
(first, deep and last, with and without filters), single runs, their metrics, agents and the HTML pages.
Target: median under 100 ms.

    nice -n 10 python benchmarks/ui.py                         # 10,000 runs, 1,000 requests
    nice -n 10 python benchmarks/ui.py --runs 2000 --requests 200
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ENVS = ["CliffWalking-v1", "FrozenLake-v1", "CartPole-v1", "Taxi-v3"]
ALGOS = ["q-learning", "sarsa", "dqn"]


def fill(root: Path, runs: int, agents: int = 20) -> None:
    from llmagentos.kernel.store import Store

    store = Store(root / "store")
    tasks = [store.record_task(env) for env in ENVS]
    for a in range(agents):
        store.put_agent(f"agent-{a}", {"q": [float(a)]}, algo=ALGOS[a % len(ALGOS)], task=tasks[a % len(tasks)])
    for i in range(runs):
        run_dir = root / "runs" / f"run-{i:05d}"
        run_dir.mkdir(parents=True)
        curve = [{"step": 500 * (k + 1), "mean_return": float(k - i % 7), "wall_seconds": 0.1 * k} for k in range(20)]
        lines = [{"kind": "episode", "step": 100 * k, "episode": k, "return": float(k % 13), "length": 100}
                 for k in range(100)] + [{"kind": "eval", "step": p["step"], "mean_return": p["mean_return"],
                                          "std_return": 0.0} for p in curve]
        (run_dir / "metrics.jsonl").write_text("".join(json.dumps(line) + "\n" for line in lines))
        summary = {"env": ENVS[i % len(ENVS)], "algo": ALGOS[i % len(ALGOS)], "seed": i % 10, "steps": 10_000,
                   "eval": {"mean_return": curve[-1]["mean_return"], "std_return": 0.0, "episodes": 10},
                   "curve": curve, "online": {"episode_returns": [float(k % 13) for k in range(100)]}}
        agent = f"agent-{i % agents}" if i % 3 == 0 else None
        store.record_run(run_dir, status="finished" if i % 50 else "failed", env=summary["env"], algo=summary["algo"],
                         seed=summary["seed"], agent=agent, task=tasks[i % len(tasks)], summary=summary)
        if agent and i % 30 == 0:
            store.add_knowledge(tasks[i % len(tasks)], agent, score=summary["eval"]["mean_return"])
    store.close()


def requests(runs: int, count: int) -> list[str]:
    last_page = (runs + 49) // 50
    cycle = ["/api/runs", f"/api/runs?page={last_page // 2}", f"/api/runs?page={last_page}",
             "/api/runs?env=FrozenLake-v1&status=finished", "/api/runs?kind=train&algo=dqn&page=20",
             "/api/runs?agent=agent-3", "/api/agents", "/api/agents/agent-3", "/runs", "/agents", "/api/results"]
    out = []
    for i in range(count):
        if i % 4 == 1:
            out.append(f"/api/runs/{1 + (i * 7919) % runs}")
        elif i % 4 == 3:
            out.append(f"/api/runs/{1 + (i * 104729) % runs}/metrics")
        else:
            out.append(cycle[(i // 2) % len(cycle)])
    return out


def label(path: str) -> str:
    """The request's kind for the table: one run's record or metrics whatever its id, else the path itself."""
    if path.startswith("/api/runs/"):
        return "/api/runs/ID/metrics" if path.endswith("/metrics") else "/api/runs/ID"
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--out", default=None,
                        help="Where the store is made (default: a temporary directory); a store already there is reused.")
    args = parser.parse_args()
    root = Path(args.out or tempfile.mkdtemp(prefix="llmagentos-ui-bench-"))
    if (root / "store" / "index.sqlite").exists():
        print(f"reusing the store filled earlier in {root}", flush=True)
    else:
        started = time.perf_counter()
        fill(root, args.runs)
        print(f"filled {args.runs} runs in {time.perf_counter() - started:.1f} s  ({root})", flush=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "llmagentos.cli", "--store", str(root / "store"), "ui",
                               "--port", str(port), "--runs", str(root / "runs")], stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                urllib.request.urlopen(base + "/api/agents", timeout=5).read()
                break
            except OSError:
                time.sleep(0.2)
        times: dict[str, list[float]] = {}
        for path in requests(args.runs, args.requests):
            t0 = time.perf_counter()
            with urllib.request.urlopen(base + path, timeout=60) as response:
                response.read()
            times.setdefault(label(path), []).append((time.perf_counter() - t0) * 1000)
    finally:
        server.terminate()
        server.wait()
    every = [t for ts in times.values() for t in ts]
    width = max(len(k) for k in times) + 2
    print(f"{'request':{width}s} {'n':>5s} {'median ms':>10s} {'p95 ms':>8s}")
    for kind, ts in sorted(times.items()):
        print(f"{kind:{width}s} {len(ts):5d} {statistics.median(ts):10.1f} {sorted(ts)[int(0.95 * (len(ts) - 1))]:8.1f}")
    print(f"{'all':{width}s} {len(every):5d} {statistics.median(every):10.1f} {sorted(every)[int(0.95 * (len(every) - 1))]:8.1f}")
    print(f"target: median < 100 ms — {'met' if statistics.median(every) < 100 else 'NOT met'}; "
          f"load average {open('/proc/loadavg').read().split()[:3] if os.path.exists('/proc/loadavg') else '?'}")


if __name__ == "__main__":
    main()
