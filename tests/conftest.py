"""Test set-up: one torch thread (small networks gain nothing from two, and xdist runs two workers)."""

import os
import tempfile

os.environ.setdefault("OMP_NUM_THREADS", "1")
# commands that record runs (llmagentos train, run, ...) write to a throw-away store, not ./.llmagentos
os.environ.setdefault("LLMAGENTOS_STORE", tempfile.mkdtemp(prefix="llmagentos-test-store-"))

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass
