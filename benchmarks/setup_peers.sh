#!/usr/bin/env bash
# Build benchmarks/.venv-peers for benchmarks/cartpole.py: Stable-Baselines3 on CPU torch 2.13.0,
# outside the package's dependencies.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/peer_venv.sh"
build_peer_venv "$HERE/.venv-peers" "stable_baselines3, gymnasium" \
  torch==2.13.0 stable-baselines3 "gymnasium[classic-control]"
