"""Named presets: whole settings chosen by one word (``--preset fast``, a spec's ``preset: fast``).

A config class's ``PRESETS`` adapt its sample-efficient defaults to each world and always apply; a named preset
is a different goal the user asks for. ``fast`` is tuned for the wall-clock seconds to a greedy return of 475
on CartPole-v1 (the kernel's evaluation) on a small CPU: many environments stepped by one numpy call
(``vector: native``), acting on the whole batch in one forward pass, and fewer, larger gradient steps per
environment step. It buys speed with samples, and with a different random stream from the defaults.

The kernel applies a named preset after the world's ``PRESETS`` and before ``--set``. This module imports no
torch, so ``llmagentos algos`` lists the presets cheaply.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from llmagentos.core.errors import UsageError


@dataclass(frozen=True)
class Preset:
    """One named preset of one algorithm."""

    #: the word that selects it
    name: str
    #: the algorithm it configures
    algo: str
    #: the worlds it is tuned for; any other world is refused
    envs: tuple[str, ...]
    #: config fields it sets (before ``--set``)
    config: dict[str, Any] = field(default_factory=dict)
    #: how its vector env is built (``--vector`` overrides it; see :mod:`llmagentos.envs.vector`)
    vector: str = "sync"
    #: one line for ``llmagentos algos``
    summary: str = ""
    #: play the greedy evaluation's episodes at once, one per copy of a vector env that steps exactly as single envs
    #: (the same episodes; only the batched forward pass may round differently), where the world has one
    batch_evaluation: bool = True


_CARTPOLE = ("CartPole-v1",)

_FAST = [
    Preset("fast", "ppo", _CARTPOLE, vector="native",
           summary="16 native envs × 32 steps, 4 epochs of 4 minibatches, ReLU, step size 2.5e-3 annealed over 60k",
           # ReLU, not the defaults' tanh: with tanh one seed in five fell back below 475 by 60k steps
           config={"activation": "relu", "num_envs": 16, "n_steps": 32, "batch_size": 128, "n_epochs": 4,
                   "learning_rate": 2.5e-3, "lr_final": 0.0, "clip_range_final": 0.0, "schedule_steps": 60_000,
                   "gamma": 0.99, "gae_lambda": 0.95}),
    Preset("fast", "a2c", _CARTPOLE, vector="native", summary="16 native envs × 5 steps (the defaults' 8 sync envs)",
           config={"num_envs": 16}),
    Preset("fast", "reinforce", _CARTPOLE, vector="native", summary="8 native envs, 8 episodes per update",
           config={"num_envs": 8, "episodes_per_update": 8}),
    Preset("fast", "dqn", _CARTPOLE, vector="native",
           summary="4 native envs acting in one batch; the default updates (one per 4 env steps)",
           config={"num_envs": 4}),
]
PRESETS: dict[str, dict[str, Preset]] = {"fast": {p.algo: p for p in _FAST}}


def names() -> list[str]:
    return sorted(PRESETS)


def for_algo(algo: str) -> list[Preset]:
    """The named presets ``algo`` has (what ``llmagentos algos`` lists)."""
    return [by_algo[algo] for by_algo in PRESETS.values() if algo in by_algo]


def get(name: str | None, algo: str, env: str | None) -> Preset | None:
    """The preset ``name`` of ``algo`` for ``env`` (None for no preset); an unknown name, an algorithm without that
    preset or a world it is not tuned for raises UsageError."""
    if name is None:
        return None
    if name not in PRESETS:
        raise UsageError(f"unknown preset {name!r}; choose one of: {', '.join(names())} (llmagentos algos lists them)")
    preset = PRESETS[name].get(algo)
    if preset is None:
        raise UsageError(f"{algo} has no {name!r} preset; algorithms with one: {', '.join(sorted(PRESETS[name]))}")
    if env not in preset.envs:
        raise UsageError(f"the {name!r} preset of {algo} is tuned for {', '.join(preset.envs)}, not {env}; "
                         "set the fields you want with --set instead")
    return preset
