"""Making the worlds by id: Gymnasium's registry with the project's worlds in it, and friendly errors.

It lives in the envs layer so that the learners (planning converts an env's table) and the kernel
make environments the one same way.
"""

from __future__ import annotations

from typing import Any

from llmagentos.core.errors import UsageError


def available_envs() -> list[str]:
    """Gymnasium ids that can be made here: the project's worlds first, then Gymnasium's own."""
    import gymnasium as gym

    import llmagentos.envs  # noqa: F401  (registers the project's worlds)

    ids = sorted(gym.registry)
    return [i for i in ids if i.startswith("llmagentos/")] + [i for i in ids if not i.startswith("llmagentos/")]


def make_env(env_id: str, env_args: dict[str, Any] | None = None, num_envs: int = 1) -> Any:
    """``gymnasium.make`` (or a same-step-autoreset vector env when ``num_envs > 1``) with friendly errors."""
    import gymnasium as gym
    from gymnasium.vector import AutoresetMode

    import llmagentos.envs  # noqa: F401

    env_args = dict(env_args or {})
    if env_id not in gym.registry:
        ours = [i for i in available_envs() if i.startswith("llmagentos/")]
        raise UsageError(f"unknown environment {env_id!r}; try one of {', '.join(ours)} or any Gymnasium id "
                         "(llmagentos envs lists them all)")
    try:
        if num_envs > 1:
            return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="sync",
                                vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP}, **env_args)
        return gym.make(env_id, **env_args)
    except UsageError:
        raise
    except TypeError as err:
        raise UsageError(f"environment {env_id} does not accept those --env-arg values ({err})") from None
    except (gym.error.Error, ImportError, ModuleNotFoundError) as err:
        raise UsageError(f"environment {env_id} cannot be made here: {err}") from None
