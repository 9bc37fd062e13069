"""Test set-up: one torch thread (small networks gain nothing from two, and xdist runs two workers)."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass
