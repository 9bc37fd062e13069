"""Making the worlds: any name :mod:`llmagentos.envs.resolve` resolves, with Gymnasium wrappers by name.

It lives in the envs layer so that the learners (planning converts an env's table) and the kernel
make environments the one same way.
"""

from __future__ import annotations

import inspect
from typing import Any

from llmagentos.core.errors import UsageError
from llmagentos.envs.resolve import World, load_plugins, world_from_object


def available_envs() -> list[str]:
    """Gymnasium ids that can be made here (plugins' included): the project's worlds first, then the others."""
    import gymnasium as gym

    import llmagentos.envs  # noqa: F401  (registers the project's worlds)

    load_plugins()
    ids = sorted(gym.registry)
    return [i for i in ids if i.startswith("llmagentos/")] + [i for i in ids if not i.startswith("llmagentos/")]


def make_env(env_id: Any, env_args: dict[str, Any] | None = None, num_envs: int = 1,
             wrappers: list[dict[str, Any]] | None = None, vector: str = "sync") -> Any:
    """A single-agent env of any world :func:`~llmagentos.envs.resolve.world_from_object` accepts, wrapped by
    ``wrappers`` (``[{"name", "args"}]``, see :func:`resolve_wrapper`); a same-step-autoreset vector env of
    ``num_envs`` copies when ``num_envs > 1``, built the ``vector`` way (``sync``, ``async`` or ``native``, see
    :mod:`llmagentos.envs.vector`). Bad names, arguments or wrappers raise UsageError."""
    import gymnasium as gym

    from llmagentos.envs.vector import make_vector_env

    world = world_from_object(env_id)
    if world.multiagent:
        raise UsageError(f"{world.name} is a multi-agent (PettingZoo) world; train it with a multi-agent algorithm "
                         "(--algo il, jal, ...) or a single-agent algorithm as independent learners")
    from llmagentos.envs.pixels import pixel_pipeline

    env_args, wrappers = pixel_pipeline(world.gym_id, dict(env_args or {}), check_wrappers(list(wrappers or [])))
    wrap = [_wrapper_thunk(w) for w in wrappers]

    def make_one() -> Any:
        env = world.make(env_args)
        for apply in wrap:
            env = apply(env)
        return env

    try:
        if num_envs > 1:
            return make_vector_env(make_one, num_envs, vector, world.gym_id, env_args, wrap)
        return make_one()
    except UsageError:
        raise
    except TypeError as err:
        raise UsageError(f"environment {world.name} does not accept those --env-arg or --wrapper values ({err})") from None
    except (gym.error.Error, ImportError) as err:
        raise UsageError(f"environment {world.name} cannot be made here: {err}") from None


def make_world(world: World | Any, env_args: dict[str, Any] | None = None) -> Any:
    """One env of a world of either API (a Gymnasium env, or a PettingZoo Parallel env), with friendly errors."""
    import gymnasium as gym

    world = world_from_object(world)
    try:
        return world.make(dict(env_args or {}))
    except UsageError:
        raise
    except (gym.error.Error, ImportError) as err:
        raise UsageError(f"environment {world.name} cannot be made here: {err}") from None


# -- wrappers by name -------------------------------------------------------------------------

def parse_wrapper(text: str) -> dict[str, Any]:
    """``"NAME[:k=v,...]"`` (the ``--wrapper`` flag) -> ``{"name": NAME, "args": {k: v}}``; NAME may be module:Class."""
    import re

    from llmagentos.core.config import literal_env_value, parse_key_values

    name, args_text = text, ""
    head, colon, tail = text.rpartition(":")
    if colon and "=" in tail:
        name, args_text = head, tail
    # split k=v pairs on the commas that start a new key, so JSON lists ([1,2]) stay whole
    pairs = [p for p in re.split(r",(?=\s*[A-Za-z_]\w*\s*=)", args_text) if p.strip()]
    args = {k: literal_env_value(v) for k, v in parse_key_values(pairs, f"--wrapper {text}").items()}
    return {"name": name, "args": args}


def resolve_wrapper(name: str) -> type:
    """The wrapper class ``name`` names: a class of ``gymnasium.wrappers`` or a ``module:Class`` subclass of
    ``gymnasium.Wrapper``; anything else is refused before it is called."""
    import gymnasium as gym
    import gymnasium.wrappers

    from llmagentos.envs.resolve import import_named

    if not isinstance(name, str) or not name:
        raise UsageError(f"a wrapper is named by a string (a gymnasium.wrappers class or module:Class), got {name!r}")
    module_name, colon, attribute = name.partition(":")
    if colon:
        target = getattr(import_named(module_name, f"wrapper {name!r}: cannot import {module_name}"), attribute, None)
    else:
        target = getattr(gymnasium.wrappers, name, None)
    if not (inspect.isclass(target) and issubclass(target, gym.Wrapper)):
        known = sorted(n for n in dir(gymnasium.wrappers)
                       if inspect.isclass(getattr(gymnasium.wrappers, n)) and issubclass(getattr(gymnasium.wrappers, n), gym.Wrapper))
        raise UsageError(f"unknown wrapper {name!r}; give a class of gymnasium.wrappers ({', '.join(known[:8])}, ...) "
                         "or module:Class naming a gymnasium.Wrapper subclass")
    return target


def check_wrappers(wrappers: Any) -> list[dict[str, Any]]:
    """``wrappers`` as ``[{"name", "args"}]`` with every name resolved; UsageError naming the bad entry."""
    if not isinstance(wrappers, list):
        raise UsageError(f"wrappers: expected a list of {{name, args}} mappings, got {type(wrappers).__name__}")
    out = []
    for i, entry in enumerate(wrappers):
        if not isinstance(entry, dict) or "name" not in entry or set(entry) - {"name", "args"} \
                or not isinstance(entry.get("args", {}), dict):
            raise UsageError(f"wrappers[{i}]: expected a mapping {{name: NAME, args: {{...}}}}, got {entry!r}")
        resolve_wrapper(entry["name"])
        out.append({"name": entry["name"], "args": dict(entry.get("args", {}))})
    return out


def _wrapper_thunk(entry: dict[str, Any]) -> Any:
    """``apply(env) -> wrapped env`` for one checked ``{"name", "args"}`` entry."""
    cls, args = resolve_wrapper(entry["name"]), entry["args"]

    def apply(env: Any) -> Any:
        try:
            return cls(env, **args)
        except TypeError as err:
            raise UsageError(f"wrapper {entry['name']} does not accept {args} ({err})") from None

    return apply
