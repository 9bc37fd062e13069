"""LLMAgentOS: an operating system for learning agents.

Python API (docs/python_api.md)::

    import llmagentos
    summary = llmagentos.train(env="CliffWalking-v1", algo="sarsa", steps=20_000, seed=0)
    agent = llmagentos.load(summary["run_dir"])
    print(llmagentos.evaluate(agent, episodes=10)["mean_return"])
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

__all__ = ["train", "load", "evaluate", "resume", "plan", "make_agent", "make_env", "make_parallel_env", "__version__"]

# registers the project's worlds with Gymnasium (cheap: string entry points, no torch), so that a user's own script
# can gymnasium.make("llmagentos/PointNav-v0") after import llmagentos
import llmagentos.envs  # noqa: E402,F401


def train(env: Any, algo: str, steps: int | None = None, **kwargs: Any) -> dict[str, Any]:
    """Train ``algo`` on ``env`` (an id, module:Id, module:Class, env instance, class or callable); its summary."""
    from llmagentos.api import train as _train

    return _train(env, algo, steps, **kwargs)


def load(run_dir: Any, env: Any = None) -> Any:
    """The trained agent of a run directory; ``agent.act(obs)`` is greedy."""
    from llmagentos.api import load as _load

    return _load(run_dir, env=env)


def evaluate(run: Any, episodes: int = 10, seed: int | None = None, env: Any = None) -> dict[str, Any]:
    """Greedy returns of a run directory's (or a loaded agent's) agent, as ``llmagentos eval``."""
    from llmagentos.api import evaluate as _evaluate

    return _evaluate(run, episodes=episodes, seed=seed, env=env)


def resume(run_dir: str, quiet: bool = True, env: Any = None) -> dict[str, Any]:
    """Continue a stopped run from its last checkpoint (``env`` for a run trained on a Python object)."""
    from llmagentos.jobs.train import resume as _resume

    return _resume(run_dir, quiet=quiet, world=env)


def plan(env: str, algo: str = "value-iteration", **kwargs: Any) -> dict[str, Any]:
    from llmagentos.learners.planning import plan as _plan

    return _plan(env, algo, **kwargs)


def make_agent(algo: str, env: Any, **kwargs: Any) -> Any:
    from llmagentos.kernel.run import make_agent as _make_agent

    return _make_agent(algo, env, **kwargs)


def make_env(env_id: Any, **env_args: Any) -> Any:
    from llmagentos.envs.make import make_env as _make_env

    return _make_env(env_id, env_args)


def make_parallel_env(env_id: str, **kwargs: Any) -> Any:
    from llmagentos.envs.multiagent import make_parallel_env as _make

    return _make(env_id, **kwargs)
