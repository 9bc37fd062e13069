#!/usr/bin/env bash
# Build benchmarks/.venv-pixel-peers for benchmarks/pixels.py: Stable-Baselines3 on CPU torch 2.13.0 with the
# pixel worlds (MinAtar, ale-py and OpenCV for Gymnasium's AtariPreprocessing), outside the package's
# dependencies.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/peer_venv.sh"
build_peer_venv "$HERE/.venv-pixel-peers" "stable_baselines3, minatar, ale_py, cv2" \
  torch==2.13.0 stable-baselines3 gymnasium minatar ale-py opencv-python-headless
