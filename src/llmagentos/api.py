"""The Python API: train, load, act and evaluate from a script, as the command line does (docs/python_api.md).

::

    import llmagentos

    summary = llmagentos.train(env="CartPole-v1", algo="dqn", steps=20_000, out="runs/cartpole")
    agent = llmagentos.load(summary["run_dir"])
    action = agent.act(observation)                 # greedy
    result = llmagentos.evaluate(agent, episodes=10)

``env`` is anything the command line's ``--env`` takes (an id, ``module:Id-vN``, ``module:Class``) or, from Python,
an env instance, an env class or a zero-argument callable that returns an env.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


class TrainedAgent:
    """The trained agent of a finished run (a multi-agent run's learners act for every agent of a joint observation).

    ``act`` is greedy unless ``explore=True``; ``make_env()`` makes the run's world again (same name, arguments and
    wrappers) for stepping it yourself.
    """

    def __init__(self, run_dir: Path, agent: Any, job: Any, multiagent: bool) -> None:
        #: the run directory the agent was loaded from
        self.run_dir = run_dir
        #: the underlying learner (an :class:`~llmagentos.core.agent.Agent`, or a multi-agent learner)
        self.agent = agent
        #: the run's job (its TrainSpec: env, algo, env_args, wrappers, imports, config)
        self.job = job
        #: True when the agent is a team of learners for a PettingZoo world
        self.multiagent = multiagent

    def act(self, observation: Any, explore: bool = False) -> Any:
        """An action for ``observation`` (a dict agent -> observation for a multi-agent run); greedy by default."""
        return self.agent.act(observation, explore=explore)

    def make_env(self) -> Any:
        """A fresh env of the run's world: a Gymnasium env, or a PettingZoo Parallel env for a multi-agent run."""
        from llmagentos.envs.make import make_env
        from llmagentos.envs.multiagent import make_parallel_env

        world = self.job.prepare_world()
        if self.multiagent:
            return make_parallel_env(world, **self.job.env_args)
        return make_env(world, self.job.env_args, wrappers=self.job.wrappers)

    def __repr__(self) -> str:
        return f"TrainedAgent({self.job.algo} on {self.job.env}, run_dir={str(self.run_dir)!r})"


def train(env: Any, algo: str, steps: int | None = None, *, out: str | Path | None = None, overwrite: bool = False,
          quiet: bool = True, store: Any = None, **fields: Any) -> dict[str, Any]:
    """Train ``algo`` on ``env`` and return the run's summary (``summary["run_dir"]`` is where it went).

    ``fields`` are the other train settings (``episodes``, ``seed``, ``config``, ``env_args``, ``wrappers``,
    ``imports``, ``eval_every``, ``eval_episodes``, ``threshold``, ``checkpoint_every``, ``tensorboard``, ``agent``).
    When ``out`` already holds something, the run goes to a fresh ``out-2``, ``out-3``, ... beside it, or replaces
    it with ``overwrite=True`` (only a run directory is ever replaced), so a script can run twice and lose nothing.
    """
    from llmagentos.jobs.train import train as run_train
    from llmagentos.kernel.run import TrainSpec, fresh_run_dir

    spec = TrainSpec(env=env, algo=algo, steps=steps, out=fresh_run_dir(out, overwrite), **fields)
    return run_train(spec, quiet=quiet, store=store)


def load(run_dir: str | Path, env: Any = None) -> TrainedAgent:
    """The trained agent of a finished run. ``env`` replaces the recorded world (needed when the run was trained on
    a Python object that another process cannot make again, recorded as ``python:Class``)."""
    from llmagentos.jobs import multiagent
    from llmagentos.kernel.run import load_agent, read_job

    run_dir = Path(run_dir)
    job = read_job(run_dir, world=env)
    if multiagent.is_multiagent_job(job.prepare_world(), job.algo):
        return TrainedAgent(run_dir, multiagent.load_learner(run_dir, world=env), job, True)
    return TrainedAgent(run_dir, load_agent(run_dir, world=env), job, False)


def evaluate(run: str | Path | TrainedAgent, episodes: int = 10, seed: int | None = None, env: Any = None) -> dict[str, Any]:
    """Greedy returns of a run's agent (a run directory or a :class:`TrainedAgent`) on its world, or on ``env``;
    the JSON of ``llmagentos eval``."""
    from llmagentos.jobs.train import evaluate_run

    if isinstance(run, TrainedAgent):
        env = run.job.world if env is None else env
        run = run.run_dir
    return evaluate_run(run, episodes, seed, world=env)
