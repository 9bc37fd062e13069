"""Seeding: every source of randomness is a generator the agent or loop owns, so runs repeat exactly."""

from __future__ import annotations

import random
from typing import Any

import numpy as np


def make_rng(seed: int | None) -> np.random.Generator:
    return np.random.Generator(np.random.PCG64(seed))


def derive_seed(seed: int, *keys: int | str) -> int:
    """A child seed for a named sub-stream (env, eval env, agent), independent of the others."""
    material = [seed] + [k if isinstance(k, int) else sum(ord(c) * 31**i for i, c in enumerate(k)) for k in keys]
    return int(np.random.SeedSequence(material).generate_state(1, dtype=np.uint32)[0])


def seed_everything(seed: int) -> None:
    """Seed Python's and numpy's global generators (and torch's, if it is loaded) for code we do not own."""
    import sys

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch = sys.modules.get("torch")
    if torch is not None:
        torch.manual_seed(seed)


def rng_state(rng: np.random.Generator) -> dict[str, Any]:
    """A JSON-able snapshot of a numpy generator."""
    return rng.bit_generator.state


def set_rng_state(rng: np.random.Generator, state: dict[str, Any]) -> None:
    rng.bit_generator.state = state
