#!/usr/bin/env bash
# Build benchmarks/.venv-jax for benchmarks/limits.py: jax, gymnax, flax, optax and distrax (CPU) from the package
# registry, to run PureJaxRL's PPO (the peer at $PUREJAXRL, default /work/shared/peers/purejaxrl) on this machine.
# The peer's code stays where it is; nothing of it is copied into the project. SB3 comes from setup_peers.sh.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
. "$HERE/peer_venv.sh"
build_peer_venv "$HERE/.venv-jax" "jax, gymnax, flax, optax, distrax" jax gymnax flax optax distrax
