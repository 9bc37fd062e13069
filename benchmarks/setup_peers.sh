#!/usr/bin/env bash
# Build benchmarks/.venv-peers for benchmarks/cartpole.py: Stable-Baselines3 on CPU torch 2.13.0,
# outside the package's dependencies. A constraints file keeps pip from replacing the CPU torch.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PY="${PYTHON:-python3}"
VENV="$HERE/.venv-peers"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import stable_baselines3, gymnasium" 2>/dev/null; then
  exit 0
fi
rm -rf "$VENV"
"$PY" -m venv "$VENV"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
printf 'torch==2.13.0\n' > "$WORK/constraints.txt"
"$VENV/bin/pip" install -q -c "$WORK/constraints.txt" torch==2.13.0 stable-baselines3 "gymnasium[classic-control]"
"$VENV/bin/python" -c "import stable_baselines3, torch, gymnasium; print('stable-baselines3', stable_baselines3.__version__, 'torch', torch.__version__, 'gymnasium', gymnasium.__version__)"
