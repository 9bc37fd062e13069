"""Train multi-agent learners on PettingZoo Parallel worlds, with the same run directories and summary as single agents.

:func:`train` is what ``llmagentos train`` reaches when the algorithm is a multi-agent one (``il``, ``jal``,
``distributed-q``, ``hysteretic``, ``fmq``, ``lenient``) or the world is a multi-agent world (then a single-agent
algorithm such as ``q-learning`` or ``dqn`` runs as independent learners). The run directory has the same files
as a single-agent run, and ``summary.json`` has the same keys plus:

- ``"agents"``: per-agent returns, ``{agent: {"eval_mean_return", "online_mean_return_last_100"}}``;
- on normal-form games, ``"greedy_joint_action"`` (each player's greedy action), ``"greedy_payoff"`` (what it pays
  each player), ``"optimal"`` (whether it is a joint action of greatest welfare — the common payoff of a team game,
  else the players' total; ``None`` when every joint action is worth the same, as in zero-sum games), and
  ``"outcome"``, ``"nash"``, ``"optimal_joint_actions"``.

The team's return (``eval.mean_return``, ``online.episode_returns``) is the mean of the agents' returns, which is
the common payoff itself in a team game. Each episode is reset with a seed derived from the run's seed and the
episode's number, so a run checkpointed between episodes resumes exactly.
"""

from __future__ import annotations

import dataclasses
import shutil
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from llmagentos import __version__
from llmagentos.core.config import to_dict
from llmagentos.core.errors import UsageError
from llmagentos.core.parallel import ParallelInteraction, evaluate_parallel
from llmagentos.core.seeding import derive_seed, seed_everything
from llmagentos.jobs.trainer import Trainer
from llmagentos.kernel.checkpoint import load_state, save_state
from llmagentos.kernel.run import read_job, run_attempt, spec_from_block, typed_overrides
from llmagentos.kernel.run import train_block_from_flags as from_train_flags  # noqa: F401  (the kind's hook)
from llmagentos.learners import registry


def is_multiagent_job(env: Any, algo: str) -> bool:
    """Whether (env, algo) is a multi-agent run; a multi-agent algorithm on a single-agent world raises UsageError."""
    from llmagentos.envs.multiagent import MULTI_AGENT_ENVS, is_multiagent_env

    entry = registry.get(algo)
    if entry.kind == "multiagent":
        if not is_multiagent_env(env):
            raise UsageError(f"{algo} trains agents of a multi-agent world; choose one of {', '.join(MULTI_AGENT_ENVS)} "
                             "or a PettingZoo world by module path (pettingzoo.classic.rps_v2) or module:Class")
        return True
    return entry.kind == "agent" and is_multiagent_env(env)


def refuse_wrappers(spec: Any) -> None:
    if spec.wrappers:
        raise UsageError(f"--wrapper applies Gymnasium wrappers to single-agent worlds; {spec.env} is a "
                         "multi-agent (PettingZoo) world")


def make_multiagent_config(spec: Any) -> tuple[str, Any]:
    """(registry name of the multi-agent learner, its config) for a job; a single-agent algo becomes ``il``."""
    from llmagentos.kernel.run import make_config

    entry = registry.get(spec.algo)
    if entry.kind == "multiagent":
        config = make_config(spec.algo, spec.config, spec.env)
        if spec.algo == "il" and "learner_config" not in spec.config and not _tabular(config.learner):
            config = dataclasses.replace(config, learner_config={})  # `--set learner=ppo`: the preset is for tables
        return spec.algo, config
    # `--algo q-learning` on a multi-agent world: independent learners running that algorithm, `--set` for it
    config = make_config("il", {"learner": spec.algo}, spec.env)
    if spec.config:
        given = make_config(spec.algo, spec.config)  # coerced and checked by the learner's own config class
        learner_config = {k: getattr(given, k) for k in spec.config}
    else:  # the il preset's exploration fits the tabular TD learners only
        learner_config = config.learner_config if _tabular(spec.algo) else {}
    return "il", dataclasses.replace(config, learner_config=learner_config)


def _tabular(algo: str) -> bool:
    """Whether ``algo`` is a tabular TD learner, the kind the il presets' exploration schedules are for."""
    return registry.get(algo).config == registry.get("q-learning").config


def make_learner(name: str, env: Any, config: Any, seed: int) -> Any:
    entry = registry.get(name, kinds=("multiagent",))
    cls = registry.load(entry.target)
    agents = list(env.possible_agents)
    return cls({a: env.observation_space(a) for a in agents}, {a: env.action_space(a) for a in agents}, config, seed=seed)


def matrix_game(env: Any) -> Any:
    """The :class:`MatrixGameEnv` under ``env``, or None for other worlds."""
    from llmagentos.envs.matrix_games import MatrixGameEnv

    base = getattr(env, "unwrapped", env)
    return base if isinstance(base, MatrixGameEnv) else None


def greedy_outcome(learner: Any, game: Any, seed: int) -> dict[str, Any]:
    """The learners' greedy joint action in a normal-form game's first stage, what it pays, and how it ranks."""
    obs, _ = game.reset(seed=seed)
    actions = learner.act(obs, explore=False)
    joint = tuple(int(actions[a]) for a in game.possible_agents)
    optimal = game.optimal_joint_actions()
    return {"greedy_joint_action": list(joint), "greedy_payoff": game.payoffs[joint].tolist(),
            "optimal": (joint in optimal) if optimal else None, "outcome": game.describe(joint),
            "nash": joint in game.pure_nash_equilibria(), "optimal_joint_actions": [list(j) for j in optimal]}


class MultiAgentTrainer(Trainer):
    """The kernel's loop for one multi-agent run: the single-agent :class:`Trainer`'s bookkeeping (evaluation,
    logging, checkpoints, resume) over joint steps of a PettingZoo world, with per-agent results in the summary."""

    def __init__(self, spec: Any, run_dir: Path | None = None, quiet: bool = False) -> None:
        from llmagentos.envs.multiagent import make_parallel_env

        spec.validate()
        if getattr(spec, "agent", None):
            raise UsageError("--agent continues a stored single-agent learner; multi-agent runs do not take it")
        world = spec.prepare_world()
        refuse_wrappers(spec)
        self.spec, self.quiet = spec, quiet
        self.learner_name, self.config = make_multiagent_config(spec)
        spec.config = typed_overrides(spec.algo, spec.config, spec.env)
        seed_everything(spec.seed)
        self.env = make_parallel_env(world, **spec.env_args)
        self.eval_env = make_parallel_env(world, **spec.env_args)
        self.learner = make_learner(self.learner_name, self.env, self.config, spec.seed)
        self.game = matrix_game(self.eval_env)
        self.threshold = spec.threshold
        if self.threshold is None and self.game is not None and self.game.optimal_joint_actions():
            best = self.game.welfare(self.game.optimal_joint_actions()[0])
            per_agent = best if self.game.common else best / self.game.n_players
            self.threshold = per_agent * self.game.episode_length
        self.interaction = ParallelInteraction(self.learner, self.env, seed=derive_seed(spec.seed, "env"))
        self._init_bookkeeping(run_dir)
        # the shared bookkeeping calls the trained thing "agent"; runs are recorded in the store by train()
        self.agent = self.learner
        self.store, self.run_id = None, None

    def checkpoint_meta(self) -> dict[str, Any]:
        return {"algo": self.learner_name, "agents": list(self.env.possible_agents),
                "observation_spaces": [str(self.env.observation_space(a)) for a in self.env.possible_agents],
                "action_spaces": [str(self.env.action_space(a)) for a in self.env.possible_agents],
                "llmagentos_version": __version__}

    def _evaluate(self) -> dict[str, Any]:
        per_episode = evaluate_parallel(self.learner, self.eval_env, self.spec.eval_episodes, self.eval_seed)
        team = [float(np.mean(list(r.values()))) for r in per_episode]
        agents = {a: float(np.mean([r[a] for r in per_episode])) for a in self.env.possible_agents}
        return {"mean_return": float(np.mean(team)), "std_return": float(np.std(team)), "episodes": len(team),
                "agents": agents}

    def _eval_record(self, result: dict[str, Any]) -> dict[str, Any]:
        return {**super()._eval_record(result), **{f"return/{a}": v for a, v in result["agents"].items()}}

    def _checkpoint_ready(self) -> bool:
        # checkpoints wait for the end of an episode (episodes are reset from seeds, so that is exact)
        return self.interaction.between_episodes

    def _save_final(self) -> None:
        save_state(self.run_dir / "agent", self.learner.state_dict(), {**self.checkpoint_meta(), "config": to_dict(self.config)})

    def _summary(self) -> dict[str, Any]:
        summary = super()._summary()
        inter = self.interaction
        if self.threshold is not None:  # payoffs are sums of floats: a hair under the optimum still counts
            summary["solved_at_step"] = next((p["step"] for p in self.curve if p["mean_return"] >= self.threshold - 1e-9), None)
        summary["eval"] = {k: v for k, v in self.last_eval.items() if k != "agents"}
        summary["learner"] = self.learner_name
        summary["agents"] = {a: {"eval_mean_return": self.last_eval["agents"][a],
                                 "online_mean_return_last_100": float(np.mean(inter.agent_returns[a][-100:]))
                                 if inter.agent_returns[a] else None} for a in self.env.possible_agents}
        if self.game is not None:
            summary.update(greedy_outcome(self.learner, self.game, self.eval_seed))
        return summary


def train(spec: Any, quiet: bool = True, store: Any = None) -> dict[str, Any]:
    """Run one multi-agent job and return its summary (recorded in ``store`` when given); bad input leaves no
    run directory behind."""
    trainer = MultiAgentTrainer(spec, quiet=quiet)
    try:
        summary = trainer.run()
    except BaseException:
        if not (trainer.run_dir / "checkpoints" / "latest.json").exists() and not isinstance(sys.exc_info()[1], KeyboardInterrupt):
            shutil.rmtree(trainer.run_dir, ignore_errors=True)
        raise
    _record(store, spec, summary)
    return summary


def resume(spec: Any, run_dir: Path, quiet: bool = True, store: Any = None) -> dict[str, Any]:
    """Continue a multi-agent run from its last checkpoint (the caller returns finished runs' summaries)."""
    summary = MultiAgentTrainer(spec, run_dir=Path(run_dir), quiet=quiet).run(resuming=True)
    _record(store, spec, summary)
    return summary


def _record(store: Any, spec: Any, summary: dict[str, Any]) -> None:
    if store is not None:
        store.record_run(summary["run_dir"], status="finished", env=spec.env, algo=spec.algo, seed=spec.seed,
                         summary=summary)


def load_learner(run_dir: str | Path, world: Any = None) -> Any:
    """The trained multi-agent learner of a finished run (``agent.safetensors`` + ``agent.json``); ``world`` replaces
    the recorded world."""
    from llmagentos.envs.multiagent import make_parallel_env

    run_dir = Path(run_dir)
    spec = read_job(run_dir, world=world)
    name, config = make_multiagent_config(spec)
    env = make_parallel_env(spec.prepare_world(), **spec.env_args)
    learner = make_learner(name, env, config, spec.seed)
    state, _ = load_state(run_dir / "agent", expect={"algo": name, "agents": list(env.possible_agents)})
    learner.load_state_dict(state)
    return learner


# -- many seeds --------------------------------------------------------------------------------------

def seed_outcomes(summaries: list[dict[str, Any]]) -> dict[str, Any]:
    """``{"outcomes": {joint action: count}, "optimal_share": share of runs whose greedy joint action is optimal}``
    over the normal-form-game runs among ``summaries`` (both None when there are none)."""
    games = [s for s in summaries if isinstance(s, dict) and "greedy_joint_action" in s]
    if not games:
        return {"outcomes": None, "optimal_share": None}
    counts = Counter(s["outcome"] for s in games)
    rated = [s["optimal"] for s in games if s["optimal"] is not None]
    return {"outcomes": dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))),
            "optimal_share": (sum(rated) / len(rated)) if rated else None}


#: the kind's ``aggregate`` hook: where the seeds' greedy joint actions landed
aggregate = seed_outcomes


def show(result: dict[str, Any]) -> None:
    """The outcome table of a many-seed run on a normal-form game (joint action, runs, share, payoff, Nash, optimal)."""
    if not result.get("outcomes"):
        return
    import click

    from llmagentos.kernel.progress import print_table

    click.echo("")
    print_table(["greedy joint action", "runs", "share", "payoff", "Nash", "optimal"],
                outcome_rows(result, sweep_game(result)))
    if result.get("optimal_share") is not None:
        click.echo(f"optimal share: {result['optimal_share']:.3f}")


def outcome_rows(result: dict[str, Any], game: Any | None = None) -> list[list[Any]]:
    """Rows (joint action, runs, share, payoff, Nash?, optimal?) for the terminal table of a many-seed run."""
    outcomes = result.get("outcomes") or {}
    total = sum(outcomes.values()) or 1
    rows = []
    for label, count in outcomes.items():
        row: list[Any] = [label, count, count / total]
        if game is not None:
            joint = tuple(int(x) for x in label.strip("()").split(","))
            optimal = game.optimal_joint_actions()
            row += [game.payoffs[joint].tolist(), "yes" if joint in game.pure_nash_equilibria() else "no",
                    ("yes" if joint in optimal else "no") if optimal else "-"]
        rows.append(row)
    return rows


# -- the "multiagent" job kind of experiment specs (and of `llmagentos train --seeds`) ---------------

def multiagent_algorithms() -> list[str]:
    return [name for name, e in registry.ALGORITHMS.items() if e.kind == "multiagent"]


def block_type() -> Any:
    """The spec block of a multi-agent job: the train block's fields, ``config`` typed by the chosen algorithm."""
    import typing

    from pydantic import Field

    from llmagentos.kernel.validation import train_block_model

    models = tuple(train_block_model(a) for a in multiagent_algorithms())
    return typing.Annotated[typing.Union[models], Field(discriminator="algo")]  # type: ignore[valid-type]


def validate_block(raw: Any) -> Any:
    """The block checked in order: a mapping, a multi-agent algorithm, field types, the budget and config values,
    then the world (it is made once, so a wrong ``env_args`` is refused before any job starts)."""
    from llmagentos.kernel.validation import train_block_model, validate_model
    from llmagentos.envs.multiagent import make_parallel_env
    from llmagentos.kernel.run import make_config

    if not isinstance(raw, dict):
        raise UsageError(f"invalid spec: multiagent: expected a mapping of train fields, got {type(raw).__name__}")
    algo = raw.get("algo")
    choices = multiagent_algorithms()
    if algo not in choices:
        raise UsageError(f"invalid spec: multiagent.algo: {algo!r} is not a multi-agent algorithm; choose one of: "
                         f"{', '.join(choices)}")
    block = validate_model(train_block_model(algo), raw, "multiagent")
    spec = spec_from_block(block, seed=0, out=None)
    try:
        spec.validate()
        is_multiagent_job(spec.prepare_world(), spec.algo)
        refuse_wrappers(spec)
        make_config(spec.algo, spec.config, spec.env)
        env = make_parallel_env(spec.prepare_world(), **spec.env_args)
        try:  # the learners check their configs against the world's agents and spaces (il's batch sizes, say)
            name, config = make_multiagent_config(spec)
            make_learner(name, env, config, seed=0)
        finally:
            env.close()
    except UsageError as err:
        raise UsageError(f"invalid spec: multiagent: {err}") from None
    return block


def run_job(block: Any, seed: int, out_dir: Path) -> dict[str, Any]:
    """One seed of a multiagent block into ``out_dir``; a killed earlier attempt resumes from its last checkpoint."""
    return run_attempt(out_dir, start=lambda: train(spec_from_block(block, seed, str(out_dir)), quiet=True),
                       resume=lambda: resume(read_job(Path(out_dir)), Path(out_dir), quiet=True))


def sweep_game(result: dict[str, Any]) -> Any | None:
    """The normal-form game of a many-seed result (made from its first finished run), for labelling outcomes."""
    from llmagentos.envs.multiagent import make_parallel_env

    run = next((r for r in result.get("runs", []) if isinstance(r, dict) and "greedy_joint_action" in r), None)
    if run is None:
        return None
    try:
        return matrix_game(make_parallel_env(run["env"], **run.get("env_args", {})))
    except UsageError:
        return None


def evaluate_run(run_dir: str | Path, episodes: int = 10, seed: int | None = None, world: Any = None) -> dict[str, Any]:
    """Greedy returns of a finished multi-agent run's learners on its world (``llmagentos eval RUN``)."""
    from llmagentos.envs.multiagent import make_parallel_env

    job = read_job(Path(run_dir), world=world)
    env = make_parallel_env(job.prepare_world(), **job.env_args)
    learner = load_learner(run_dir, world=world)
    per_episode = evaluate_parallel(learner, env, episodes, derive_seed(job.seed, "eval") if seed is None else seed)
    team = [float(np.mean(list(r.values()))) for r in per_episode]
    return {"run_dir": str(run_dir), "env": job.env, "algo": job.algo, "episodes": episodes,
            "mean_return": float(np.mean(team)), "std_return": float(np.std(team)), "returns": team,
            "agents": {a: float(np.mean([r[a] for r in per_episode])) for a in env.possible_agents}}
