#!/usr/bin/env bash
# Build benchmarks/.venv-jax for benchmarks/limits.py: jax, gymnax, flax, optax and distrax (CPU) from the package
# registry, to run PureJaxRL's PPO (the peer at $PUREJAXRL, default /work/shared/peers/purejaxrl) on this machine.
# The peer's code stays where it is; nothing of it is copied into the project. SB3 comes from setup_peers.sh.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PY="${PYTHON:-python3}"
VENV="$HERE/.venv-jax"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import jax, gymnax, flax, optax, distrax" 2>/dev/null; then
  exit 0
fi
rm -rf "$VENV"
"$PY" -m venv "$VENV"
"$VENV/bin/pip" install -q jax gymnax flax optax distrax
"$VENV/bin/python" -c "import jax, gymnax, flax; print('jax', jax.__version__, 'flax', flax.__version__)"
