#!/usr/bin/env bash
# Build benchmarks/.venv-pixel-peers for benchmarks/pixels.py: Stable-Baselines3 on CPU torch 2.13.0 with the
# pixel worlds (MinAtar, ale-py and OpenCV for Gymnasium's AtariPreprocessing), outside the package's
# dependencies. A constraints file keeps pip from replacing the CPU torch.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PY="${PYTHON:-python3}"
VENV="$HERE/.venv-pixel-peers"
if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import stable_baselines3, minatar, ale_py, cv2" 2>/dev/null; then
  exit 0
fi
rm -rf "$VENV"
"$PY" -m venv "$VENV"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
printf 'torch==2.13.0\n' > "$WORK/constraints.txt"
"$VENV/bin/pip" install -q -c "$WORK/constraints.txt" torch==2.13.0 stable-baselines3 gymnasium minatar ale-py \
  opencv-python-headless
"$VENV/bin/python" -c "import stable_baselines3, torch, gymnasium, ale_py; print('stable-baselines3', stable_baselines3.__version__, 'torch', torch.__version__, 'gymnasium', gymnasium.__version__, 'ale-py', ale_py.__version__)"
