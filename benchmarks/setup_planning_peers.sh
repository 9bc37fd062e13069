#!/usr/bin/env bash
# The planning benchmark's peer, pymdptoolbox, in its own venv (never a dependency of llmagentos).
set -euo pipefail
cd "$(dirname "$0")"
if [ ! -x .venv-mdptoolbox/bin/python ]; then
  python3 -m venv .venv-mdptoolbox
fi
.venv-mdptoolbox/bin/pip install --quiet numpy scipy pymdptoolbox==4.0b3
.venv-mdptoolbox/bin/python -c "import mdptoolbox.mdp; print('pymdptoolbox ready')"
