#!/usr/bin/env bash
# Sourced by the setup_*peers.sh scripts: build_peer_venv VENV IMPORTS PIP_ARGS...
# makes VENV (a folder under benchmarks/) with PIP_ARGS installed, unless it already imports IMPORTS
# (a comma-separated module list). A constraints file pins torch to the CPU build 2.13.0 so no peer's
# requirement can pull a CUDA torch; peers live outside the package's dependencies.
build_peer_venv() {
  local venv="$1" imports="$2"
  shift 2
  if [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "import $imports" 2>/dev/null; then
    return 0
  fi
  rm -rf "$venv"
  "${PYTHON:-python3}" -m venv "$venv"
  local work
  work="$(mktemp -d)"
  printf 'torch==2.13.0\n' > "$work/constraints.txt"
  "$venv/bin/pip" install -q -c "$work/constraints.txt" "$@"
  rm -rf "$work"
  "$venv/bin/python" -c "import $imports; print('ready: $imports')"
}
