"""Loss-of-plasticity benchmark: plain training against the remedies on each plasticity stream.

    nice -n 10 python benchmarks/plasticity.py regression --seeds 5 --workers 2
    nice -n 10 python benchmarks/plasticity.py bits --seeds 5 --workers 2
    nice -n 10 python benchmarks/plasticity.py digits --seeds 5 --workers 2
    nice -n 10 python benchmarks/plasticity.py rl-dqn --seeds 3 --workers 2
    nice -n 10 python benchmarks/plasticity.py rl-ppo --seeds 3 --workers 2

Each section runs the stream's example spec (``examples/plasticity_<stream>.yaml``) with the seeds and workers
given, through the same scheduler as ``llmagentos run``, and prints the plasticity table: per strategy, the
performance reached within the per-task budget over the first and the last 10 % of the tasks (higher is better),
the dormant-unit percentage and the effective rank of the last hidden layer at the end of the stream, and the
average performance, each as the mean over seeds with a bootstrap 95 % interval; then the fresh-network
reference (the same first and last tasks learned from scratch) and the PNG of the plasticity curves.
``--set KEY=VALUE`` overrides any spec value (e.g. ``plasticity.tasks=200``).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import yaml

from llmagentos.cli import print_table
from llmagentos.config import load_spec, run_spec
from llmagentos.jobs.plasticity import table

SECTIONS = {"regression": "plasticity_regression.yaml", "bits": "plasticity_bits.yaml", "digits": "plasticity_digits.yaml",
            "rl-dqn": "plasticity_goalgrid_dqn.yaml", "rl-ppo": "plasticity_goalgrid_ppo.yaml"}
EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("section", choices=list(SECTIONS))
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=None, help="sweep directory (default runs/bench-plasticity-SECTION-sN)")
    parser.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--json", action="store_true", help="also print the figures as JSON")
    args = parser.parse_args()
    out = args.out or f"runs/bench-plasticity-{args.section}-s{args.seeds}"
    sets = [f"seeds=0:{args.seeds}", f"out={out}", "backend=processes" if args.workers > 1 else "backend=inline",
            *([f"workers={args.workers}"] if args.workers > 1 else []), *args.sets]
    spec = load_spec(EXAMPLES / SECTIONS[args.section], tuple(sets))
    print(f"{args.section}: {EXAMPLES / SECTIONS[args.section]} with {' '.join(sets)}")
    print(yaml.safe_dump(spec.raw_block, default_flow_style=None, sort_keys=False).strip())
    started = time.perf_counter()
    result = run_spec(spec, quiet=True)
    print(f"\n{len(spec.seeds)} seeds in {time.perf_counter() - started:.0f} s wall "
          f"({len(result['failed'])} failed, {len(result['skipped'])} already finished)")
    print_table(*table(result))
    print("(mean over seeds [bootstrap 95 % interval]; plasticity = performance within the per-task budget, higher "
          "is better: −MSE on regression, accuracy on digits, greedy return on rl)")
    print(f"plot: {result['plot']}")
    if args.json:
        print(json.dumps({k: result[k] for k in ("strategies", "fresh") if k in result}))


if __name__ == "__main__":
    main()
