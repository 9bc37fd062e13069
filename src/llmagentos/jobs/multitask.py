"""Multi-task jobs: train one learner on several tasks of a family with shared weights, against independent learners.

The spec's ``multitask`` block (``llmagentos run SPEC``)::

    multitask:
      family: cartpole            # cartpole | goal-grid | pointnav (llmagentos.envs.families)
      family_options: {}          # e.g. {size: 5} for goal-grid, {ranges: {...}} for cartpole
      tasks: 4                    # drawn with task_seed, or an explicit list of descriptors
      learner: dqn                # dqn | a2c | ppo
      sharing: hard               # hard | soft | conditioned | independent
      soft_lambda: 0.001          # λ of the soft-sharing penalty
      steps: 60000                # environment steps, all tasks together
      config: {}                  # the learner's config fields

Each task gets its own env and its own :class:`~llmagentos.core.loop.Interaction`; the loop gives the
tasks turns of ``turn_steps`` env calls, round-robin or sampled. The summary gives each task's greedy
return, their mean and the total environment steps; with ``baseline: true`` the same budget also trains
independent single-task learners through the same loop, and the summary says at which total step each
arm first reached the independent learners' final mean return.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from llmagentos.core.errors import UsageError
from llmagentos.core.loop import Interaction, evaluate
from llmagentos.core.schedules import Every
from llmagentos.core.seeding import derive_seed, make_rng, seed_everything
from llmagentos.kernel.validation import FamilyTasksBlock


class MultiTaskBlock(FamilyTasksBlock):
    """One multi-task job: a family, its tasks, a learner and a sharing mode, and a step budget."""

    learner: Literal["dqn", "a2c", "ppo"] = Field(default="dqn", description="the single-task learner whose update rule every task uses")
    sharing: Literal["hard", "soft", "conditioned", "independent"] = Field(default="hard", description="how the tasks share weights")
    soft_lambda: float = Field(default=1e-3, description="λ of the soft-sharing penalty λ Σ_i ‖θ_i − θ̄‖²")
    config: dict[str, Any] = Field(default_factory=dict, description="the learner's config fields (llmagentos algos lists them)")
    env_args: dict[str, Any] = Field(default_factory=dict, description="extra keyword arguments for every task's env (goal-grid: one_hot)")
    steps: int = Field(description="environment steps of all tasks together")
    interleave: Literal["round-robin", "sampled"] = Field(default="round-robin", description="which task takes the next turn")
    turn_steps: int = Field(default=1, description="env calls per turn before the next task's turn")
    eval_every: int | None = Field(default=None, description="greedy evaluation of every task every K total steps (default steps/10)")
    eval_episodes: int = Field(default=5, description="greedy episodes per task per evaluation")
    baseline: bool = Field(default=True, description="also train independent single-task learners on the same budget")


def validate_block(raw: Any) -> MultiTaskBlock:
    """The block, type-checked, then its values: family and tasks, learner config, budget."""
    from llmagentos.kernel.validation import validate_model

    block = validate_model(MultiTaskBlock, raw, "multitask")
    try:
        resolve_tasks(block)
    except UsageError as err:
        raise UsageError(f"invalid spec: multitask.tasks: {err}") from None
    from llmagentos.learners.multitask import learner_config

    try:
        learner_config(block.learner, block.config)
    except UsageError as err:
        raise UsageError(f"invalid spec: multitask.config: {err}") from None
    for name in ("steps", "turn_steps", "eval_episodes"):
        if getattr(block, name) <= 0:
            raise UsageError(f"invalid spec: multitask.{name}: must be positive, got {getattr(block, name)}")
    if block.eval_every is not None and block.eval_every <= 0:
        raise UsageError(f"invalid spec: multitask.eval_every: must be positive, got {block.eval_every}")
    if block.soft_lambda < 0:
        raise UsageError(f"invalid spec: multitask.soft_lambda: must be >= 0, got {block.soft_lambda}")
    return block


def resolve_tasks(block: MultiTaskBlock) -> tuple[Any, list[dict[str, Any]]]:
    """(family, descriptors) of a block."""
    from llmagentos.envs.families import get_family

    family = get_family(block.family, **block.family_options)
    if isinstance(block.tasks, int):
        tasks = family.tasks(block.tasks, seed=block.task_seed)
    else:
        if not block.tasks:
            raise UsageError("the task list is empty")
        tasks = [family.validate(t) for t in block.tasks]
    return family, tasks


def _make_env(family: Any, task: dict[str, Any], append_task: bool, env_args: dict[str, Any], num_envs: int) -> Any:
    import gymnasium as gym
    from gymnasium.vector import AutoresetMode

    kwargs = {**family.to_env_kwargs(task), **env_args, "append_task": append_task}
    try:
        if num_envs > 1:
            return gym.make_vec(family.env_id, num_envs=num_envs, vectorization_mode="sync",
                                vector_kwargs={"autoreset_mode": AutoresetMode.SAME_STEP}, **kwargs)
        return gym.make(family.env_id, **kwargs)
    except TypeError as err:
        raise UsageError(f"the {family.name} family's env does not accept those env_args ({err})") from None


def train_multitask(block: MultiTaskBlock, seed: int = 0, sharing: str | None = None,
                    progress: Any = None) -> tuple[dict[str, Any], Any]:
    """Train one arm (``sharing`` overrides the block's) and return (result, the MultiTaskAgents)."""
    import torch

    from llmagentos.learners.multitask import MultiTaskAgents, learner_config

    sharing = sharing or block.sharing
    family, tasks = resolve_tasks(block)
    config = learner_config(block.learner, block.config)
    num_envs = int(getattr(config, "num_envs", 1) or 1)
    conditioned = sharing == "conditioned"
    seed_everything(seed)
    torch.set_num_threads(1)
    envs = [_make_env(family, t, conditioned, block.env_args, num_envs) for t in tasks]
    eval_envs = [_make_env(family, t, conditioned, block.env_args, 1) for t in tasks]
    obs_space = getattr(envs[0], "single_observation_space", envs[0].observation_space)
    act_space = getattr(envs[0], "single_action_space", envs[0].action_space)
    team = MultiTaskAgents(block.learner, sharing, obs_space, act_space, config, len(tasks), seed=seed,
                           soft_lambda=block.soft_lambda)
    loops = [Interaction(agent, env, seed=derive_seed(seed, "env", i)) for i, (agent, env) in enumerate(zip(team.agents, envs))]
    schedule_rng = make_rng(derive_seed(seed, "schedule"))
    eval_every = block.eval_every or max(block.steps // 10, 1)
    eval_seed = derive_seed(seed, "eval")

    def evaluate_all(total: int) -> dict[str, Any]:
        returns = [float(np.mean(evaluate(agent, env, block.eval_episodes, seed=eval_seed)))
                   for agent, env in zip(team.agents, eval_envs)]
        return {"step": total, "mean_return": float(np.mean(returns)), "returns": returns}

    curve = [evaluate_all(0)]
    evals, total, turn = Every(eval_every), 0, 0
    while total < block.steps:
        task = turn % len(tasks) if block.interleave == "round-robin" else int(schedule_rng.integers(len(tasks)))
        turn += 1
        for _ in range(block.turn_steps):
            loops[task].step()
            total = sum(loop.steps for loop in loops)
            if total >= block.steps:
                break
        if evals.due(total) and total < block.steps:
            curve.append(evaluate_all(total))
            evals.done(total)
        if progress is not None:
            progress(total)
    curve.append(evaluate_all(total))
    final = curve[-1]
    result = {"sharing": sharing, "steps": total, "per_task_steps": [loop.steps for loop in loops],
              "per_task_return": final["returns"], "mean_return": final["mean_return"], "curve": curve,
              "episodes": [loop.episodes for loop in loops], "parameters": team.shared_parameter_count()}
    return result, team


def first_step_reaching(curve: list[dict[str, Any]], target: float) -> int | None:
    """The first total step whose mean greedy return is ≥ ``target`` (None if never)."""
    return next((p["step"] for p in curve if p["mean_return"] >= target), None)


def block_type() -> type:
    return MultiTaskBlock


def run_job(block: MultiTaskBlock, seed: int, out_dir: Path) -> dict[str, Any]:
    """The ``multitask`` job kind's runner: the sharing arm, then (``baseline``) independent learners."""
    from llmagentos.kernel.checkpoint import save_state
    from llmagentos.kernel.plots import learning_curves

    out_dir = Path(out_dir)
    if out_dir.exists():  # an interrupted attempt: start over (jobs are short and seeded)
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    family, tasks = resolve_tasks(block)
    shared, team = train_multitask(block, seed)
    save_state(out_dir / "agent", team.state_dict(), {"learner": block.learner, "sharing": block.sharing,
                                                        "family": family.name, "tasks": tasks})
    summary: dict[str, Any] = {
        "seed": seed, "family": family.name, "env": family.env_id, "tasks": tasks,
        "task_names": [family.key(t) for t in tasks], "learner": block.learner, "sharing": block.sharing,
        "steps": shared["steps"], "per_task_return": shared["per_task_return"], "mean_return": shared["mean_return"],
        "shared": shared,
    }
    curves = {block.sharing: (np.array([p["step"] for p in shared["curve"]]), np.array([[p["mean_return"] for p in shared["curve"]]]))}
    if block.baseline and block.sharing != "independent":
        independent, _ = train_multitask(block, seed, sharing="independent")
        target = independent["mean_return"]
        summary["independent"] = independent
        summary["comparison"] = {
            "target_return": target,
            "shared_steps_to_target": first_step_reaching(shared["curve"], target),
            "independent_steps_to_target": first_step_reaching(independent["curve"], target),
            "return_gain": shared["mean_return"] - target,
        }
        curves["independent"] = (np.array([p["step"] for p in independent["curve"]]),
                                 np.array([[p["mean_return"] for p in independent["curve"]]]))
    learning_curves(curves, out_dir / "curves.png", f"{family.name}: {len(tasks)} tasks, {block.learner}",
                    "environment steps (all tasks)", "mean greedy return over tasks")
    summary["plot"] = str(out_dir / "curves.png")
    return summary


def aggregate(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Across seeds: the mean return of each arm and the steps each took to reach the independent return."""
    ok = [r for r in results if not r.get("failed")]
    if not ok:
        return {}
    out: dict[str, Any] = {"mean_return": {"shared": float(np.mean([r["mean_return"] for r in ok]))}}
    with_baseline = [r for r in ok if "independent" in r]
    if with_baseline:
        out["mean_return"]["independent"] = float(np.mean([r["independent"]["mean_return"] for r in with_baseline]))
        for arm in ("shared", "independent"):
            reached = [r["comparison"][f"{arm}_steps_to_target"] for r in with_baseline]
            hit = [s for s in reached if s is not None]
            out.setdefault("steps_to_target", {})[arm] = float(np.median(hit)) if hit else None
            out.setdefault("reached_target", {})[arm] = f"{len(hit)}/{len(reached)}"
    return out
