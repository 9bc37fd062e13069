"""Keeping old tasks: the registry of the consolidation strategies a lifelong agent applies to its learner's network.

Each strategy is a module of its own in :mod:`llmagentos.lifelong.strategies` — a
:class:`~llmagentos.lifelong.strategies.base.Consolidation` subclass with its ``name``, its ``summary`` and, when
it has hyperparameters, its ``Fields`` dataclass — and one line in :data:`STRATEGY_TARGETS` below. Everything that
lists strategies derives from that line: :data:`STRATEGIES`, the choices of ``strategy``, the fields of
:class:`ConsolidationConfig` (so ``--set``, specs, the JSON Schema and ``llmagentos algos``), the lifelong spec
block's ``strategies`` and its error messages.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Literal

from llmagentos.core.config import param
from llmagentos.lifelong.strategies.base import Consolidation, NetworkView, distillation_kl, log_policy

#: every strategy as "module:Class", one line each, in the order they are listed everywhere — add yours here
STRATEGY_TARGETS = [
    "llmagentos.lifelong.strategies.finetune:FineTuning",
    "llmagentos.lifelong.strategies.ewc:EWC",
    "llmagentos.lifelong.strategies.si:SynapticIntelligence",
    "llmagentos.lifelong.strategies.lwf:LearningWithoutForgetting",
    "llmagentos.lifelong.strategies.replay:Replay",
    "llmagentos.lifelong.strategies.packnet:PackNet",
]


def _load(target: str) -> type[Consolidation]:
    module, attribute = target.split(":")
    return getattr(importlib.import_module(module), attribute)


#: name -> strategy class, in registry order
STRATEGY_CLASSES: dict[str, type[Consolidation]] = {cls.name: cls for cls in map(_load, STRATEGY_TARGETS)}
#: the strategies' names (what ``lifelong.strategies`` and ``strategy=`` accept)
STRATEGIES = tuple(STRATEGY_CLASSES)


@dataclass
class StrategyFields:
    """The fields every strategy shares: which one runs, and the temperature that turns outputs into a policy."""

    strategy: Literal[STRATEGIES] = param("finetune", "how old tasks are kept: " + ", ".join(  # type: ignore[valid-type]
        f"{cls.name} ({cls.summary})" for cls in STRATEGY_CLASSES.values()))
    temperature: float = param(1.0, "softmax temperature τ turning network outputs into a policy (Fisher, cloning)", gt=0)


#: the consolidation config: the shared fields, then each strategy's ``Fields`` in registry order
ConsolidationConfig = dataclass(type("ConsolidationConfig", tuple(
    cls.Fields for cls in reversed(STRATEGY_CLASSES.values()) if cls.Fields is not None) + (StrategyFields,),
    {"__doc__": "How a lifelong agent consolidates: the strategy and every strategy's fields.",
     "__module__": __name__}))


def make_consolidation(view: NetworkView, config: ConsolidationConfig, seed: int = 0) -> Consolidation:
    return STRATEGY_CLASSES[config.strategy](view, config, seed)


__all__ = ["STRATEGIES", "STRATEGY_CLASSES", "STRATEGY_TARGETS", "Consolidation", "ConsolidationConfig",
           "NetworkView", "distillation_kl", "log_policy", "make_consolidation"]
