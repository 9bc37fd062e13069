"""The multi-agent worlds, by id, and :func:`make_parallel_env`, the one way to make any of them.

Every world is a PettingZoo ``ParallelEnv`` (``pettingzoo.utils.parallel_to_aec`` gives its AEC form).
Besides the project's ids, :func:`make_parallel_env` accepts any PettingZoo env from outside the project by the
one rule of :mod:`llmagentos.envs.resolve`: ``"package.module"`` (its conventional factory, as PettingZoo's own
environments have, e.g. ``pettingzoo.butterfly.pistonball_v6``) or ``"package.module:Attr"`` (an env class or a
conventional factory); AEC envs are converted to Parallel ones.
"""

from __future__ import annotations

from typing import Any

from llmagentos.core.errors import UsageError
from llmagentos.envs.multiagent_ids import MULTI_AGENT_ENVS  # the ids, beside the making of them


def is_multiagent_env(env_id: Any) -> bool:
    """Whether ``env_id`` names a multi-agent (PettingZoo) world; an unresolvable name raises UsageError."""
    from llmagentos.envs.resolve import world_from_object

    return world_from_object(env_id).multiagent


def make_parallel_env(env_id: Any, **kwargs: Any) -> Any:
    """A PettingZoo Parallel env of any multi-agent world :mod:`llmagentos.envs.resolve` resolves."""
    from llmagentos.envs.make import make_world
    from llmagentos.envs.resolve import world_from_object

    world = world_from_object(env_id)
    if not world.multiagent:
        raise UsageError(f"{world.name} is a single-agent Gymnasium world, not a multi-agent one; choose one of "
                         f"{', '.join(MULTI_AGENT_ENVS)}, a PettingZoo module (pettingzoo.classic.rps_v2) or "
                         "module:Class naming a PettingZoo env")
    return make_world(world, kwargs)
