"""Resolving a world's name into what makes it: one rule for the CLI, specs, Python, streams and multi-agent runs.

A name is tried in this order:

1. one of the project's multi-agent worlds (``llmagentos/ClimbingGame-v0``, ...);
2. a Gymnasium id registered here (the project's own, Gymnasium's, or one registered by an imported module);
3. a name an installed package declares in the entry-point group ``llmagentos.envs`` (its factory is called with the
   env args and must return a Gymnasium env or a PettingZoo env);
4. an id that an installed package declares through Gymnasium's plugin entry-point group ``gymnasium.envs`` (as
   MinAtar does; Gymnasium 1.x no longer loads that group, so :func:`load_plugins` does, the first time an id is
   not found);
5. ``module:Id-vN``, Gymnasium's own form: the module is imported (it registers its ids), then the id is made;
6. ``module:Attr`` naming a ``gymnasium.Env`` subclass (single agent), a PettingZoo ``ParallelEnv`` or ``AECEnv``
   subclass, or one of the module's conventional PettingZoo factories ``parallel_env``, ``env``, ``raw_env``
   (multi-agent); ``module`` alone stands for its first conventional factory (``pettingzoo.classic.rps_v2``).

An AEC env becomes a Parallel env with PettingZoo's ``aec_to_parallel`` when its metadata says it may
(``is_parallelizable``). Nothing else is ever called: a spec, a run directory or a flag names data, not code, so
``os:system`` is refused — before anything of it runs — with one sentence.
"""

from __future__ import annotations

import copy
import importlib
import inspect
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from llmagentos.core.errors import UsageError

#: the module-level factory names PettingZoo's environments use, in the order a bare module path tries them
CONVENTIONAL_FACTORIES = ("parallel_env", "env", "raw_env")
#: entry-point group in which installed packages declare factories of worlds, by name
ENTRY_POINT_GROUP = "llmagentos.envs"
#: Gymnasium's plugin entry-point group (each entry registers a package's ids)
GYMNASIUM_PLUGIN_GROUP = "gymnasium.envs"

#: how a run records a world that was a Python object no other process can make (see :func:`recorded_name`)
PYTHON_PREFIX = "python:"

_VERSIONED_ID = re.compile(r".+-v\d+$")
_plugins_loaded = False
#: plugin entry-point name -> the Gymnasium ids it registered (filled by :func:`load_plugins`)
PLUGIN_IDS: dict[str, list[str]] = {}


@dataclass(frozen=True)
class World:
    """What a world's name resolved to: how to make one env of it, and which API it speaks."""

    #: the name as the user gave it (what job.json records)
    name: str
    #: True for a PettingZoo world (made as a Parallel env), False for a Gymnasium env
    multiagent: bool
    #: ``make(env_args) -> env``: a Gymnasium env, or a PettingZoo Parallel env when ``multiagent``
    make: Callable[[dict[str, Any]], Any]
    #: the Gymnasium id when the world is a registered one (it can then be vectorised by ``gymnasium.make_vec``)
    gym_id: str | None = None
    #: the arguments an env instance was made with (its Gymnasium spec's kwargs), recorded in the run with ``name``
    env_args: dict[str, Any] = field(default_factory=dict)


def load_plugins() -> None:
    """Run every registration hook of Gymnasium's ``gymnasium.envs`` entry-point group, once per process."""
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    import gymnasium as gym

    for entry in _entry_points(GYMNASIUM_PLUGIN_GROUP):
        before = set(gym.registry)
        try:
            hook = entry.load()  # loading the module alone registers the ids of some packages
            if callable(hook) and not inspect.isclass(hook):
                hook()  # a registration function an installed package declared, not a name from user data
        except Exception:  # noqa: BLE001  (a broken plugin must not hide every other world)
            continue
        PLUGIN_IDS[entry.name] = sorted(set(gym.registry) - before)
    from llmagentos.envs.pixels import register_ale

    ale_ids = register_ale()  # ale-py registers its ids on request only, through no entry point
    if ale_ids:
        PLUGIN_IDS["ale_py"] = ale_ids


def _entry_points(group: str) -> list[Any]:
    from importlib.metadata import entry_points

    return list(entry_points(group=group))


def import_modules(names: list[str] | tuple[str, ...], where: str = "imports") -> None:
    """Import each module (a spec's ``imports:`` list: modules that register worlds or define them)."""
    for name in names:
        if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][\w.]*", name):
            raise UsageError(f"{where}: {name!r} is not a module name like mypkg.envs")
        import_named(name, f"{where}: cannot import {name}")


def import_named(module_name: str, why: str) -> Any:
    """The module, or UsageError saying ``why`` it is needed and how it failed to import."""
    try:
        return importlib.import_module(module_name)
    except UsageError:
        raise
    except Exception as err:  # noqa: BLE001  (a module that fails to import for any reason: one sentence)
        raise UsageError(f"{why} ({type(err).__name__}: {err}); is it on the Python path "
                         "(the current directory is, from the command line)?") from None


def resolve_world(name: str) -> World:
    """The world ``name`` names (see the module's docstring for the rule); UsageError with the way out if none."""
    import gymnasium as gym

    import llmagentos.envs  # noqa: F401  (registers the project's worlds)
    from llmagentos.envs.multiagent_ids import MULTI_AGENT_ENVS

    if not isinstance(name, str) or not name:
        raise UsageError(f"an environment is named by a string (an id, module:Id or module:Class), got {name!r}")
    if name in MULTI_AGENT_ENVS:
        return _factory_world(name, MULTI_AGENT_ENVS[name])
    if name.startswith(PYTHON_PREFIX):
        raise UsageError(f"environment {name!r} was a Python object of the process that trained the run; pass it "
                         "again (llmagentos.load(run, env=...), llmagentos.evaluate(run, env=...)) or train with an "
                         "id, module:Id or module:Class that a new process can make")
    if name in gym.registry:
        return _gym_id_world(name, name)
    declared = next((e for e in _entry_points(ENTRY_POINT_GROUP) if e.name == name), None)
    if declared is not None:
        return _declared_world(name, declared)
    could_be_id = ":" not in name and ("." not in name or "/" in name or _VERSIONED_ID.fullmatch(name) is not None)
    if could_be_id:
        load_plugins()  # a package's plugin may register it (a module path such as pettingzoo.classic.rps_v2 cannot be)
        if name in gym.registry:
            return _gym_id_world(name, name)
        ours = [i for i in gym.registry if i.startswith("llmagentos/")]
        raise UsageError(f"unknown environment {name!r}; try one of {', '.join(ours)}, any Gymnasium id "
                         "(llmagentos envs lists them all), module:Id-vN, or module:Class")
    module_name, colon, attribute = name.partition(":")
    module = import_named(module_name, f"environment {name!r}: cannot import {module_name}")
    if not colon:  # a PettingZoo module path: its conventional factory
        attribute = next((f for f in CONVENTIONAL_FACTORIES if callable(getattr(module, f, None))), "")
        if not attribute:
            raise UsageError(f"environment {name!r}: {module_name} has none of PettingZoo's factories "
                             f"({', '.join(CONVENTIONAL_FACTORIES)}); name a class with {module_name}:Class")
    if attribute in gym.registry:  # Gymnasium's module:Id form: importing the module registered the id
        return _gym_id_world(name, attribute)
    target = getattr(module, attribute, None)
    if target is None:
        raise UsageError(f"environment {name!r}: {module_name} has no {attribute!r} and no Gymnasium id "
                         f"{attribute!r} was registered by importing it")
    return _attribute_world(name, target, attribute)


def _gym_id_world(name: str, gym_id: str) -> World:
    import gymnasium as gym

    return World(name, False, lambda env_args: gym.make(gym_id, **env_args), gym_id=gym_id)


def _attribute_world(name: str, target: Any, attribute: str) -> World:
    """A world from a module's attribute: an env class, or a conventional PettingZoo factory; nothing else."""
    kind = env_class_kind(target)
    if kind == "gymnasium":
        return World(name, False, lambda env_args: target(**env_args))
    if kind is not None:
        return _factory_world(name, target)
    if attribute in CONVENTIONAL_FACTORIES and inspect.isfunction(target):
        return _factory_world(name, target)
    raise UsageError(f"environment {name!r}: {attribute} is not an environment; name a gymnasium.Env subclass, a "
                     "PettingZoo ParallelEnv/AECEnv subclass or a module's PettingZoo factory "
                     f"({', '.join(CONVENTIONAL_FACTORIES)}) — no other callable is ever called")


def _declared_world(name: str, entry: Any) -> World:
    try:
        target = entry.load()
    except Exception as err:  # noqa: BLE001
        raise UsageError(f"environment {name!r}: its entry point {entry.value} does not load ({err})") from None
    if env_class_kind(target) == "gymnasium":
        return World(name, False, lambda env_args: target(**env_args))
    if not callable(target):
        raise UsageError(f"environment {name!r}: its entry point {entry.value} is not an env class or factory")
    # a factory an installed package declared may make either kind: call it once to learn which
    probe = _checked_env(name, target, {})
    multiagent = not _is_gym_env(probe)
    probe.close()
    if multiagent:
        return _factory_world(name, target)
    return World(name, False, lambda env_args: _checked_env(name, target, env_args))


def env_class_kind(target: Any) -> str | None:
    """``"gymnasium"``, ``"parallel"`` or ``"aec"`` when ``target`` is an env class of that API, else None."""
    import gymnasium as gym
    from pettingzoo import AECEnv, ParallelEnv

    if not inspect.isclass(target) or target in (gym.Env, ParallelEnv, AECEnv):  # the abstract bases make nothing
        return None
    if issubclass(target, gym.Env):
        return None if issubclass(target, gym.Wrapper) else "gymnasium"  # a wrapper needs an env: --wrapper takes it
    if issubclass(target, ParallelEnv):
        return "parallel"
    if issubclass(target, AECEnv):
        return "aec"
    return None


def _is_gym_env(env: Any) -> bool:
    import gymnasium as gym

    return isinstance(env, gym.Env)


def _factory_world(name: str, factory: Callable[..., Any]) -> World:
    """A multi-agent world made by calling ``factory(**env_args)``: its Parallel env (an AEC env converted)."""
    return World(name, True, lambda env_args: as_parallel(name, _checked_env(name, factory, env_args)))


def _checked_env(name: str, factory: Callable[..., Any], env_args: dict[str, Any]) -> Any:
    try:
        return factory(**env_args)
    except UsageError:
        raise
    except TypeError as err:
        raise UsageError(f"environment {name} does not accept those --env-arg values ({err})") from None


def as_parallel(name: str, env: Any) -> Any:
    """``env`` as a PettingZoo Parallel env: as it is, or an AEC env converted where PettingZoo allows it."""
    from pettingzoo import AECEnv, ParallelEnv

    if isinstance(env, ParallelEnv):
        return env
    if isinstance(env, AECEnv):
        if not env.metadata.get("is_parallelizable", False):
            raise UsageError(f"environment {name} is a PettingZoo AEC env whose agents act in turns, which PettingZoo "
                             "does not allow to run as a Parallel env (its metadata lacks is_parallelizable); the "
                             "multi-agent learners need a Parallel env or a parallelizable AEC env")
        from pettingzoo.utils.conversions import aec_to_parallel

        return aec_to_parallel(env)
    if hasattr(env, "possible_agents") and hasattr(env, "step"):  # duck-typed Parallel env
        return env
    raise UsageError(f"{name} made a {type(env).__name__}, not a PettingZoo ParallelEnv or AECEnv")


# -- worlds given as Python objects (the Python API) ------------------------------------------

def world_from_object(env: Any) -> World:
    """A world from a Python object: a name (as above), an env instance (each env made is a deep copy of it, so the
    instance itself is never stepped), an env class, or a zero-argument callable returning an env.

    Its ``name`` (and ``env_args``) is what a run records, chosen so that a new process makes the same world: a class's
    ``module:Class``; an instance's Gymnasium id (``module:Id`` when a package registered it) and the arguments it was
    made with; else ``python:Class``, and a run made from it can be evaluated and resumed in this process only.
    """
    if isinstance(env, str):
        return resolve_world(env)
    if isinstance(env, World):
        return env
    kind = env_class_kind(env)
    if kind is not None:
        name = recorded_name(env)
        return World(name, False, lambda env_args: env(**env_args)) if kind == "gymnasium" else _factory_world(name, env)
    if _is_env_instance(env):
        name, args = recorded_name(env), dict(getattr(getattr(env, "spec", None), "kwargs", None) or {})

        def copy_instance(env_args: dict[str, Any]) -> Any:
            if env_args and env_args != args:
                raise UsageError("env_args cannot change an env instance; pass its class or a callable to vary them")
            return copy.deepcopy(env)

        if _is_gym_env(env):
            return World(name, False, copy_instance, env_args=args)
        return World(name, True, lambda env_args: as_parallel(name, copy_instance(env_args)))
    if callable(env):
        made = env()
        if not _is_env_instance(made):
            raise UsageError(f"env= callable {getattr(env, '__name__', env)!r} returned a {type(made).__name__}, "
                             "not a Gymnasium env or a PettingZoo env")
        name, args = recorded_name(made), dict(getattr(getattr(made, "spec", None), "kwargs", None) or {})
        made.close()
        if _is_gym_env(made):
            return World(name, False, lambda env_args: _call_factory(env, env_args, args), env_args=args)
        return World(name, True, lambda env_args: as_parallel(name, _call_factory(env, env_args, args)))
    raise UsageError(f"env= takes an id or module:Id / module:Class string, a Gymnasium or PettingZoo env instance, "
                     f"an env class or a zero-argument callable, not a {type(env).__name__}")


def _is_env_instance(obj: Any) -> bool:
    from pettingzoo import AECEnv, ParallelEnv

    return _is_gym_env(obj) or isinstance(obj, (ParallelEnv, AECEnv))


def _call_factory(factory: Callable[[], Any], env_args: dict[str, Any], recorded: dict[str, Any]) -> Any:
    if env_args and env_args != recorded:
        raise UsageError("env_args cannot reach a zero-argument env callable; close over the arguments instead")
    return factory()


def recorded_name(env: Any) -> str:
    """The name under which a run records an env object (see :func:`world_from_object`)."""
    import gymnasium as gym

    spec = getattr(env, "spec", None)
    if spec is not None and getattr(spec, "id", None) in gym.registry:
        entry = spec.entry_point
        module = entry.partition(":")[0] if isinstance(entry, str) else getattr(entry, "__module__", "")
        # an id a package registers on import is recorded as Gymnasium's module:Id, so a new process can make it
        builtin = not module or module == "__main__" or module.split(".")[0] in ("gymnasium", "llmagentos")
        return spec.id if builtin else f"{module}:{spec.id}"
    cls = env if inspect.isclass(env) else type(getattr(env, "unwrapped", env))
    # a class is remade faithfully from module:Class (its arguments are recorded as env_args); an instance made
    # without Gymnasium's registry is not (its constructor's arguments are unknown), so it stays in this process
    if inspect.isclass(env) and cls.__module__ != "__main__" and "<" not in cls.__qualname__ and "." not in cls.__qualname__:
        return f"{cls.__module__}:{cls.__qualname__}"
    return f"{PYTHON_PREFIX}{cls.__qualname__}"
