#!/usr/bin/env bash
# Build the two peer venvs for benchmarks/meta.py, outside the package's dependencies:
#   benchmarks/.venv-l2l       learn2learn 0.2.0 (numpy < 2, CPU torch 2.13.0 pinned)
#   benchmarks/.venv-evotorch  EvoTorch 0.6.1   (its own numpy; CPU torch 2.13.0 pinned)
# learn2learn 0.2.0 ships only an sdist whose pre-generated C files do not compile on Python 3.11
# (longintrepr.h), so its three .pyx files are regenerated with Cython 3 and the folder is installed
# with --no-build-isolation. A constraints file keeps torchvision from replacing the CPU torch.
# The only torchvision wheel that matches torch==2.13.0 (0.28.0) is built against CUDA torch: its
# C ops do not load beside the CPU torch, so `import torchvision` fails. learn2learn imports it only
# in learn2learn.vision (datasets); L2L_IMPORT stubs that subpackage, which MAML never touches.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PY="${PYTHON:-python3.11}"
command -v "$PY" >/dev/null || PY=python3
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
CONSTRAINTS="$WORK/constraints.txt"
L2L_IMPORT='import sys, types; sys.modules["learn2learn.vision"] = types.ModuleType("learn2learn.vision"); import learn2learn'
printf 'torch==2.13.0\n' > "$CONSTRAINTS"

if [ ! -x "$HERE/.venv-l2l/bin/python" ] || ! "$HERE/.venv-l2l/bin/python" -c "$L2L_IMPORT" 2>/dev/null; then
  rm -rf "$HERE/.venv-l2l"
  "$PY" -m venv "$HERE/.venv-l2l"
  L2L="$HERE/.venv-l2l/bin/pip"
  "$L2L" install -q -c "$CONSTRAINTS" torch==2.13.0 "numpy<2" "cython>=3" setuptools wheel
  "$L2L" install -q -c "$CONSTRAINTS" torchvision "numpy<2" scipy tqdm requests "gym>=0.14.0" "qpth>=0.0.15"
  (cd "$WORK" && "$L2L" download -q --no-deps --no-binary :all: learn2learn==0.2.0 && tar xzf learn2learn-0.2.0.tar.gz)
  SRC="$WORK/learn2learn-0.2.0"
  for pyx in meta_dataset task_dataset transforms; do
    "$HERE/.venv-l2l/bin/cython" -3 "$SRC/learn2learn/data/$pyx.pyx" -o "$SRC/learn2learn/data/$pyx.c"
  done
  # gsutil is only used to download datasets, never by MAML: leave it (and its large tree) out
  "$L2L" install -q --no-build-isolation --no-deps -c "$CONSTRAINTS" "$SRC"
  "$HERE/.venv-l2l/bin/python" -c "$L2L_IMPORT; import torch, numpy; print('learn2learn', learn2learn.__version__, 'torch', torch.__version__, 'numpy', numpy.__version__)"
fi

if [ ! -x "$HERE/.venv-evotorch/bin/python" ] || ! "$HERE/.venv-evotorch/bin/python" -c "import evotorch" 2>/dev/null; then
  rm -rf "$HERE/.venv-evotorch"
  "$PY" -m venv "$HERE/.venv-evotorch"
  EVO="$HERE/.venv-evotorch/bin/pip"
  "$EVO" install -q -c "$CONSTRAINTS" torch==2.13.0 evotorch==0.6.1 "gymnasium[classic-control]"
  "$HERE/.venv-evotorch/bin/python" -c "import evotorch, torch, gymnasium; print('evotorch', evotorch.__version__, 'torch', torch.__version__, 'gymnasium', gymnasium.__version__)"
fi
