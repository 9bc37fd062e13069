"""LLMAgentOS: an operating system for learning agents.

Python API::

    from llmagentos import train, plan, make_agent, make_env
    summary = train(env="CliffWalking-v1", algo="sarsa", steps=20_000, seed=0)
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["train", "resume", "plan", "make_agent", "make_env", "make_parallel_env", "__version__"]

# registers the project's worlds with Gymnasium (cheap: string entry points, no torch), so that a user's own script
# can gymnasium.make("llmagentos/PointNav-v0") after import llmagentos
import llmagentos.envs  # noqa: E402,F401


def train(*args: Any, **kwargs: Any) -> dict[str, Any]:
    from llmagentos.kernel.run import train as _train

    return _train(*args, **kwargs)


def resume(run_dir: str, quiet: bool = True) -> dict[str, Any]:
    from llmagentos.kernel.run import resume as _resume

    return _resume(run_dir, quiet=quiet)


def plan(env: str, algo: str = "value-iteration", **kwargs: Any) -> dict[str, Any]:
    from llmagentos.learners.planning import plan as _plan

    return _plan(env, algo, **kwargs)


def make_agent(algo: str, env: Any, **kwargs: Any) -> Any:
    from llmagentos.kernel.run import make_agent as _make_agent

    return _make_agent(algo, env, **kwargs)


def make_env(env_id: str, **env_args: Any) -> Any:
    from llmagentos.envs.make import make_env as _make_env

    return _make_env(env_id, env_args)


def make_parallel_env(env_id: str, **kwargs: Any) -> Any:
    from llmagentos.envs.multiagent import make_parallel_env as _make

    return _make(env_id, **kwargs)
