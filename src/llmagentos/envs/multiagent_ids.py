"""The multi-agent worlds the project ships, by id: a table of its own, so that resolving a name
(:mod:`llmagentos.envs.resolve`) reads it without importing the making of worlds."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llmagentos.envs import coop_grid, matrix_games

#: id -> factory; one line per multi-agent world the project ships (``llmagentos envs`` lists them)
MULTI_AGENT_ENVS: dict[str, Callable[..., Any]] = {
    "llmagentos/ClimbingGame-v0": matrix_games.climbing_game,
    "llmagentos/PenaltyGame-v0": matrix_games.penalty_game,
    "llmagentos/PrisonersDilemma-v0": matrix_games.prisoners_dilemma,
    "llmagentos/MatchingPennies-v0": matrix_games.matching_pennies,
    "llmagentos/RockPaperScissors-v0": matrix_games.rock_paper_scissors,
    "llmagentos/MatrixGame-v0": matrix_games.matrix_game,
    "llmagentos/CoopGrid-v0": coop_grid.coop_grid,
}
