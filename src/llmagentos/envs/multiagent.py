"""The multi-agent worlds, by id, and :func:`make_parallel_env`, the one way to make any of them.

Every world is a PettingZoo ``ParallelEnv`` (``pettingzoo.utils.parallel_to_aec`` gives its AEC form).
Besides the project's ids, :func:`make_parallel_env` accepts any PettingZoo Parallel env from outside the
project by import path: ``"package.module"`` (its ``parallel_env`` factory, as PettingZoo's own
environments have, e.g. ``pettingzoo.butterfly.pistonball_v6``) or ``"package.module:factory"``.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any

from llmagentos.core.errors import UsageError
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


def is_multiagent_env(env_id: str) -> bool:
    """Whether ``env_id`` names one of the project's multi-agent worlds or looks like an import path of one."""
    return env_id in MULTI_AGENT_ENVS or _is_import_path(env_id)


def _is_import_path(env_id: str) -> bool:
    # Gymnasium ids end in -vN (and may name a module, "pkg:Env-v0"); a PettingZoo import path does not
    return "/" not in env_id and ("." in env_id or ":" in env_id) and re.search(r"-v\d+$", env_id) is None


def make_parallel_env(env_id: str, **kwargs: Any) -> Any:
    """A PettingZoo Parallel env: one of :data:`MULTI_AGENT_ENVS`, or ``module[:factory]`` from outside the project."""
    if env_id in MULTI_AGENT_ENVS:
        factory = MULTI_AGENT_ENVS[env_id]
    elif _is_import_path(env_id):
        factory = _import_factory(env_id)
    else:
        raise UsageError(f"unknown multi-agent environment {env_id!r}; choose one of {', '.join(MULTI_AGENT_ENVS)} "
                         "or a PettingZoo module path such as pettingzoo.butterfly.pistonball_v6")
    try:
        env = factory(**kwargs)
    except UsageError:
        raise
    except TypeError as err:
        raise UsageError(f"environment {env_id} does not accept those --env-arg values ({err})") from None
    from pettingzoo import ParallelEnv

    if not isinstance(env, ParallelEnv) and not hasattr(env, "possible_agents"):
        raise UsageError(f"{env_id} made a {type(env).__name__}, not a PettingZoo ParallelEnv")
    return env


def _import_factory(path: str) -> Callable[..., Any]:
    module_name, _, attribute = path.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise UsageError(f"cannot import {module_name} for environment {path!r}: {err}") from None
    name = attribute or "parallel_env"
    factory = getattr(module, name, None)
    if factory is None or not callable(factory):
        raise UsageError(f"{module_name} has no callable {name!r}; give module:factory for a function that "
                         "returns a PettingZoo ParallelEnv")
    return factory
