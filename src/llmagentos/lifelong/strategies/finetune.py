"""``finetune``: nothing — the baseline that forgets."""

from __future__ import annotations

from llmagentos.lifelong.strategies.base import Consolidation


class FineTuning(Consolidation):
    """Keep training the same network on each new task, with nothing to protect the old ones."""

    name = "finetune"
    summary = "nothing kept, the baseline"
