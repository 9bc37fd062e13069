"""Meta-learning jobs: MAML on the sinusoid family, PointNav or the goal grid, and evolution strategies on an env or a task family.

The spec's ``meta`` block (``llmagentos run SPEC``)::

    meta:
      algo: maml                  # maml | nes
      family: sinusoid            # maml: sinusoid | pointnav | goal-grid;  nes: a task family (cartpole, pointnav, ...) or null
      env: CartPole-v1            # nes without a family: the Gymnasium id whose return is the fitness
      tasks: 1                    # nes with a family: tasks drawn with task_seed; fitness = mean over them
      population_backend: inline  # nes: where a generation's fitness evaluations run (inline | processes | ray)
      population_workers: 2
      config: {}                  # the algorithm's config fields (llmagentos algos lists them)

A MAML job writes ``metrics.jsonl`` (the meta-loss), ``adaptation.png`` (error or return against adaptation
steps for MAML, the pretrained baseline and a random init) and returns ``{"mse": {...}, "ci95": {...},
"meta_iterations", "meta_iteration_ms", ...}`` (PointNav, goal grid: ``"return"`` in place of ``"mse"``). An NES job
writes ``metrics.jsonl``, ``curve.png`` (the centre's return per generation) and returns
``{"solved_at_generation", "curve": [{"generation", "mean_return", "wall_seconds"}], ...}``.

The learners never see the scheduler: this runner hands :func:`llmagentos.learners.nes.evolve` an evaluator
that submits a generation as one job per worker (a chunk of members) to a :class:`~llmagentos.kernel.backends.JobPool`
held open for the whole run. Every member of
a generation is scored on the same episode seeds (common random numbers), and the seeds travel inside the
jobs, so a seed gives the same search on every backend.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from llmagentos.core.config import from_dict, to_dict
from llmagentos.core.errors import UsageError
from llmagentos.core.seeding import derive_seed

#: each family MAML runs on, and its experiment's config class (imported on use: naming them imports no torch)
MAML_CONFIGS = {"sinusoid": "llmagentos.learners.maml_sinusoid:SinusoidMAMLConfig",
                "pointnav": "llmagentos.learners.maml_rl:PointNavMAMLConfig",
                "goal-grid": "llmagentos.learners.maml_rl:GoalGridMAMLConfig"}
MAML_FAMILIES = tuple(MAML_CONFIGS)
NES_CONFIG = "llmagentos.learners.nes:NESConfig"
#: a MAML job's meta-training checkpoint inside its run directory (removed once the job finishes)
CHECKPOINT = "checkpoint"


class MetaBlock(BaseModel):
    """One meta-learning job: MAML on a task family, or an evolution strategy on an env or a family."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    algo: Literal["maml", "nes"] = Field(description="maml (gradient-based meta-learning) or nes (evolution strategies)")
    family: str | None = Field(default=None, description="maml: sinusoid, pointnav or goal-grid; nes: a task family name, or null for a single env")
    env: str | None = Field(default=None, description="nes without a family: the Gymnasium id (default CartPole-v1)")
    tasks: int = Field(default=1, description="nes with a family: tasks drawn with task_seed; the fitness is the mean over them")
    task_seed: int = Field(default=0, description="seed that draws the nes tasks (the same tasks for every run seed)")
    population_backend: Literal["inline", "processes", "ray"] = Field(default="inline", description="nes: where a generation's evaluations run")
    population_workers: int | None = Field(default=None, gt=0, description="nes: worker processes / Ray tasks for a generation")
    config: dict[str, Any] = Field(default_factory=dict, description="the algorithm's config fields (llmagentos algos)")


def config_class(block: MetaBlock) -> type:
    from llmagentos.learners import registry

    return registry.load(NES_CONFIG if block.algo == "nes" else MAML_CONFIGS[block.family])


def validate_block(raw: Any) -> MetaBlock:
    """The block's types, then its values: the family or env, and the algorithm's config."""
    from llmagentos.kernel.validation import validate_model

    block = validate_model(MetaBlock, raw, "meta")
    if block.algo == "maml":
        if block.family not in MAML_FAMILIES:
            raise UsageError(f"invalid spec: meta.family: maml runs on {' or '.join(MAML_FAMILIES)}, got {block.family!r}")
        if block.env is not None:
            raise UsageError("invalid spec: meta.env: maml takes a family, not an env")
    else:
        if block.family is not None and block.env is not None:
            raise UsageError("invalid spec: meta: give nes either a family or an env, not both")
        if block.family is not None:
            from llmagentos.envs.families import get_family

            try:
                get_family(block.family)
            except UsageError as err:
                raise UsageError(f"invalid spec: meta.family: {err}") from None
        else:
            import gymnasium as gym

            import llmagentos.envs  # noqa: F401

            env = block.env or "CartPole-v1"
            if env not in gym.registry:
                raise UsageError(f"invalid spec: meta.env: unknown environment {env!r} (llmagentos envs lists them)")
        if block.tasks <= 0:
            raise UsageError(f"invalid spec: meta.tasks: must be positive, got {block.tasks}")
    try:
        from_dict(config_class(block), block.config, owner=f"{block.algo} config")
    except UsageError as err:
        raise UsageError(f"invalid spec: meta.config: {err}") from None
    return block


def block_type() -> Any:
    """The meta block as ``llmagentos schema`` shows it: one variant per algorithm (and MAML family), each with
    ``config`` typed by that experiment's config class, as the train block's is by its algorithm's."""
    import typing

    from pydantic import create_model

    from llmagentos.kernel.validation import config_model, model_name
    from llmagentos.learners import registry

    def variant(algo: str, name: str, family: Any, target: str) -> type[BaseModel]:
        config = config_model(registry.load(target))
        return create_model(model_name(f"{algo} {name}", "MetaBlock"), __base__=MetaBlock,
                            algo=(Literal[algo], Field(description=MetaBlock.model_fields["algo"].description)),
                            family=(family, Field(default=None if algo == "nes" else ...,
                                                  description=MetaBlock.model_fields["family"].description)),
                            config=(config, Field(default_factory=config, description=f"the {algo} config fields")))

    variants = [variant("maml", f, Literal[f], target) for f, target in MAML_CONFIGS.items()]
    variants.append(variant("nes", "", str | None, NES_CONFIG))
    return typing.Union[tuple(variants)]  # type: ignore[valid-type]


def run_job(block: MetaBlock, seed: int, out_dir: Path) -> dict[str, Any]:
    """The ``meta`` job kind's runner."""
    import torch

    from llmagentos.kernel.logging import MetricsLog

    torch.set_num_threads(1)
    out_dir = Path(out_dir)
    config = from_dict(config_class(block), block.config, owner=f"{block.algo} config")
    resume = _maml_checkpoint(block, config, seed, out_dir) if block.algo == "maml" else None
    if resume is None and out_dir.exists():  # an interrupted attempt without a checkpoint: start over (jobs are seeded)
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    log = MetricsLog(out_dir, tensorboard=False, keep_lines=None if resume is None else resume["log_lines"])
    try:
        if block.algo == "nes":
            summary = _run_nes(block, config, seed, out_dir, log)
        else:
            summary = _run_maml(config, seed, out_dir, log, block.family, resume)
    finally:
        log.close()
    return {"seed": seed, "algo": block.algo, "family": block.family, **summary, "config": to_dict(config),
            "run_dir": str(out_dir)}


# -- MAML ---------------------------------------------------------------------------------------------

def _adaptation_plot(curves: dict[str, list[float]], path: Path, title: str, ylabel: str) -> str:
    from llmagentos.kernel.plots import learning_curves

    data = {name: (np.arange(len(c)), np.array([[np.nan if v is None else v for v in c]], dtype=float))
            for name, c in curves.items()}
    learning_curves(data, path, title, "adaptation gradient steps", ylabel)
    return str(path)


def _checkpoint_meta(family: str | None, config: Any, seed: int) -> dict[str, Any]:
    return {"algo": "maml", "family": family, "seed": seed, "config": to_dict(config)}


def _maml_checkpoint(block: MetaBlock, config: Any, seed: int, out_dir: Path) -> dict[str, Any] | None:
    """The meta-training state a killed MAML job left in ``out_dir/checkpoint``, or None (none, or not this job's)."""
    from llmagentos.kernel.checkpoint import CheckpointError, load_state

    try:
        state, meta = load_state(out_dir / CHECKPOINT, expect=_checkpoint_meta(block.family, config, seed))
    except CheckpointError:
        return None
    return {**state, "log_lines": int(meta["log_lines"])}


def _run_maml(config: Any, seed: int, out_dir: Path, log: Any, family: str,
              resume: dict[str, Any] | None = None) -> dict[str, Any]:
    """Meta-train MAML on ``family`` (sinusoid: error after k steps; RL families: return after k steps), save it, plot it.

    Every ``checkpoint_every`` meta-updates the training state goes to ``checkpoint.safetensors`` (with the number of
    metrics lines written so far); a job started again on the same directory continues from it exactly.
    """
    from llmagentos.kernel.checkpoint import save_state
    from llmagentos.learners import maml_rl, maml_sinusoid

    def on_checkpoint(state: dict[str, Any]) -> None:
        log.flush()
        save_state(out_dir / CHECKPOINT, state, {**_checkpoint_meta(family, config, seed), "log_lines": log.lines})

    if family == "sinusoid":
        experiment, metric = maml_sinusoid.sinusoid_experiment, "mse"
        title, ylabel = f"sinusoid: {config.eval_tasks} held-out tasks, K={config.k_support}", "mean-squared error on the query points"
    else:
        experiment, metric = maml_rl.rl_experiment, "return"
        world = ("PointNav: {} held-out goals" if family == "pointnav" else
                 f"goal grid {config.size}×{config.size}: {{}} {'held-out ' if config.held_out else ''}goals")
        title, ylabel = world.format(config.eval_tasks), "mean episode return"
    result = experiment(config, seed, on_log=lambda it, values: log.write("meta", it, values),
                        resume=resume, on_checkpoint=on_checkpoint)
    model = result.pop("model")
    save_state(out_dir / "maml", model.state_dict(), {"algo": "maml", "family": family, "config": to_dict(config)})
    for suffix in (".json", ".safetensors"):  # the finished θ above supersedes the training checkpoint
        (out_dir / CHECKPOINT).with_suffix(suffix).unlink(missing_ok=True)
    for name, curve in result["curves"].items():
        for step, value in enumerate(curve):
            log.write(f"adaptation/{name}", step, {metric: value})
    result["plot"] = _adaptation_plot(result["curves"], out_dir / "adaptation.png", title, ylabel)
    return result


# -- evolution strategies -----------------------------------------------------------------------------

def population_evaluator(env_id: str, family: str | None, tasks: list[Any], hidden: list[int], episodes: int,
                         seed: int, pool: Any):
    """``evaluate(population, generation) -> fitness`` on an open :class:`~llmagentos.kernel.backends.JobPool`.

    The population is cut into one contiguous chunk per worker (one chunk inline), each chunk one job
    carrying only its rows of weights and the problem's few names and numbers, so a generation costs each
    worker one round trip. Every member is scored on the same episode seeds (common random numbers).
    """
    import os

    from llmagentos.kernel.backends import is_failure
    from llmagentos.learners.nes import population_fitness

    chunks = 1 if pool.backend == "inline" else (pool.workers or os.cpu_count() or 1)

    def evaluate(population: np.ndarray, generation: int) -> list[float]:
        episode_seed = derive_seed(seed, "generation", generation) % 2**31
        parts = [part for part in np.array_split(np.asarray(population, dtype=np.float64), chunks) if len(part)]
        jobs = [{"thetas": part, "env_id": env_id, "family": family, "tasks": tasks, "hidden": hidden,
                 "episodes": episodes, "seed": episode_seed} for part in parts]
        results = pool.run(population_fitness, jobs)
        failed = [r for r in results if is_failure(r)]
        if failed:
            raise UsageError(f"a fitness evaluation failed: {failed[0]['error']}")
        return [value for r in results for value in r["mean_returns"]]

    return evaluate


def nes_problem(block: MetaBlock) -> tuple[str, str | None, list[Any], float | None]:
    """(env id, family name, task descriptors, the env's reward threshold) of an NES block."""
    import gymnasium as gym

    import llmagentos.envs  # noqa: F401

    if block.family is not None:
        from llmagentos.envs.families import get_family

        family = get_family(block.family)
        env_id, tasks = family.env_id, family.tasks(block.tasks, seed=block.task_seed)
    else:
        env_id, tasks = block.env or "CartPole-v1", [None]
    spec = gym.spec(env_id)
    return env_id, block.family, tasks, spec.reward_threshold


def _run_nes(block: MetaBlock, config: Any, seed: int, out_dir: Path, log: Any) -> dict[str, Any]:
    from gymnasium import spaces

    from llmagentos.kernel.backends import JobPool
    from llmagentos.kernel.checkpoint import save_state
    from llmagentos.kernel.plots import learning_curves
    from llmagentos.learners.nes import ES, evolve, make_task_env, num_weights, policy_fitness, policy_network

    env_id, family, tasks, env_threshold = nes_problem(block)
    env = make_task_env(env_id, family, tasks[0])
    discrete = isinstance(env.action_space, spaces.Discrete)
    obs_dim = int(np.prod(env.observation_space.shape))
    act_dim = int(env.action_space.n) if discrete else int(np.prod(env.action_space.shape))
    env.close()
    dim = num_weights(obs_dim, act_dim, config.hidden)
    center = None
    if config.init == "network":
        import torch
        from torch.nn.utils import parameters_to_vector

        torch.manual_seed(derive_seed(seed, "nes-init"))
        center = parameters_to_vector(policy_network(obs_dim, act_dim, config.hidden).parameters()).detach().double().numpy()
    es = ES(dim, config, seed=derive_seed(seed, "nes"), center=center)

    def evaluate_center(mu: np.ndarray, generation: int) -> float:
        job = {"theta": mu.tolist(), "env_id": env_id, "family": family, "tasks": tasks, "hidden": config.hidden,
               "episodes": config.eval_episodes, "seed": derive_seed(seed, "center", generation) % 2**31}
        return policy_fitness(job)["mean_return"]

    threshold = config.threshold if config.threshold is not None else env_threshold
    with JobPool(block.population_backend, block.population_workers) as pool:  # one pool for the whole run
        evaluate = population_evaluator(env_id, family, tasks, config.hidden, config.episodes, seed, pool)
        result = evolve(es, evaluate, evaluate_center, config.generations, threshold,
                        on_generation=lambda p: log.write("generation", p["generation"], {k: v for k, v in p.items() if k != "generation"}))
    save_state(out_dir / "center", es.state_dict(), {"algo": "nes", "env": env_id, "config": to_dict(config)})
    curve = result["curve"]
    learning_curves({config.method: (np.array([p["generation"] for p in curve]), np.array([[p["mean_return"] for p in curve]]))},
                    out_dir / "curve.png", f"{config.method} on {env_id}" + (f" ({len(tasks)} tasks)" if family else ""),
                    "generation", f"centre's mean return ({config.eval_episodes} episodes)",
                    vlines=[result["solved_at_generation"]] if result["solved_at_generation"] else ())
    return {"env": env_id, "tasks": tasks if family else None, "threshold": threshold, "method": config.method,
            "population": es.population, "weights": dim, "backend": block.population_backend,
            "solved_at_generation": result["solved_at_generation"], "curve": curve,
            "wall_seconds": result["wall_seconds"], "plot": str(out_dir / "curve.png")}


def aggregate(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Across seeds: MAML's mean errors (or returns), or NES's median generations and seconds to solve."""
    ok = [r for r in results if not r.get("failed")]
    if not ok:
        return {}
    if ok[0].get("algo") == "maml":
        key = "mse" if "mse" in ok[0] else "return"
        means = {}
        for name in ok[0][key]:
            values = np.array([[np.nan if v is None else v for v in r[key][name]] for r in ok], dtype=float).mean(axis=0)
            means[name] = [float(v) if np.isfinite(v) else None for v in values]
        return {f"mean_{key}": means}
    solved = [r["solved_at_generation"] for r in ok]
    hit = [r for r in ok if r["solved_at_generation"] is not None]
    seconds = [next(p["wall_seconds"] for p in r["curve"] if p["generation"] == r["solved_at_generation"]) for r in hit]
    return {"solved": f"{len(hit)}/{len(ok)}", "solved_at_generation_per_seed": solved,
            "median_generations_to_solve": float(np.median([r["solved_at_generation"] for r in hit])) if hit else None,
            "median_seconds_to_solve": float(np.median(seconds)) if seconds else None}


def table(result: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """The terminal table of a meta sweep: per seed, MAML's errors (or returns) or NES's generations to solve."""
    runs = [r for r in result["runs"] if not r.get("failed")]
    if runs and runs[0].get("algo") == "maml":
        key = "mse" if "mse" in runs[0] else "return"
        steps = runs[0]["steps_reported"]
        headers = ["seed", "init"] + [f"{key} after {s}" for s in steps] + ["ms/meta-iter"]
        rows = [[r["seed"], name] + list(r[key][name]) + [r["meta_iteration_ms"] if name == "maml" else None]
                for r in runs for name in r[key]]
        return headers, rows
    headers = ["seed", "method", "population", "solved at generation", "final centre return", "wall seconds"]
    rows = [[r["seed"], r["method"], r["population"], r["solved_at_generation"],
             r["curve"][-1]["mean_return"] if r["curve"] else None, r["wall_seconds"]] for r in runs]
    return headers, rows


def show(result: dict[str, Any]) -> None:
    """The kind's table under the sweep table on the terminal (MAML's errors after k adaptation steps, NES's generations to solve)."""
    import click

    from llmagentos.kernel.progress import print_table

    click.echo("")
    print_table(*table(result))
