"""Plasticity jobs: does a learner keep the ability to learn new tasks over a long stream, and which remedy helps?

The spec's ``plasticity`` block (``llmagentos run examples/plasticity_regression.yaml``)::

    plasticity:
      stream: regression            # regression (generated) | digits (scikit-learn, permuted) | rl (a task family)
      tasks: 60
      steps_per_task: 400           # updates per task (supervised) or environment steps per task (rl)
      strategies: [plain, cbp]      # plain | cbp | redo | shrink_perturb | l2_init | reset
      remedies: {}                  # RemedyConfig fields (lifelong/remedies.py)
      network: {hidden: [5]}        # the supervised learner (OnlineNetwork fields)
      rl: null                      # {family, learner, config, consolidation, ...} for stream: rl

One job is one seed: the stream once per strategy, and a fresh network on each of the first and last 10 % of the
tasks (the same task learned from scratch). Plasticity is "higher is better": the performance reached within the
per-task budget (the negative online squared error, the online accuracy, or the greedy return) averaged over the
first and over the last 10 % of the tasks, so a learner that loses plasticity has ``plasticity_last <
plasticity_first``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from llmagentos.core.errors import UsageError
from llmagentos.kernel.checkpoint import atomic_write_json
from llmagentos.kernel.validation import FamilyTasksBlock, validate_model
from llmagentos.core.statistics import bootstrap_ci
from llmagentos.lifelong.remedies import REMEDIES, remedy_config


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


class RegressionOptions(_Strict):
    """The slowly-changing regression problem (Dohare et al. 2024)."""

    bits: int = Field(default=20, description="input bits m")
    flipping: int = Field(default=15, description="slowly-changing bits f (one flips at each task boundary)")
    teacher_units: int = Field(default=100, description="LTU units of the fixed random target network")
    beta: float = Field(default=0.7, description="LTU threshold fraction β")
    permute: bool = Field(default=False, description="the permuted variant: all bits random at every example, and "
                          "each task shows them to the teacher through its own random permutation (every task equally hard)")


class OnlineNetwork(_Strict):
    """The supervised learner: an MLP trained online, one optimiser step per batch."""

    hidden: list[int] = Field(default_factory=lambda: [5], description="hidden layer widths")
    activation: Literal["relu", "tanh", "elu", "gelu"] = Field(default="relu", description="hidden activation")
    optimizer: Literal["sgd", "adam"] = Field(default="sgd", description="optimiser")
    learning_rate: float = Field(default=0.01, description="step size")
    batch: int = Field(default=1, description="examples per update")


class RLStream(FamilyTasksBlock):
    """A reinforcement-learning stream: tasks of a family, a learner, a forgetting strategy beside the remedy."""

    tasks: int | list[dict[str, Any]] = Field(default=30, description="number of tasks drawn with task_seed, or the descriptors")
    append_task: bool = Field(default=False, description="append the task descriptor to observations")
    learner: str = Field(default="dqn", description="the learner (dqn, ppo, a2c, reinforce)")
    config: dict[str, Any] = Field(default_factory=dict, description="the learner's config fields")
    consolidation: Literal["finetune", "ewc", "si", "lwf", "replay", "packnet"] = Field(
        default="finetune", description="the forgetting strategy the remedies are composed with")
    lifelong: dict[str, Any] = Field(default_factory=dict, description="further LifelongConfig fields")
    eval_episodes: int = Field(default=5, description="greedy episodes measuring each task at the end of its budget")


class PlasticityBlock(_Strict):
    """One plasticity job: a long stream, the strategies to compare, the learner."""

    stream: Literal["regression", "digits", "rl"] = Field(description="which stream: regression, digits or rl")
    tasks: int = Field(default=50, description="tasks in the stream (rl: taken from rl.tasks when it lists descriptors)")
    steps_per_task: int = Field(description="updates per task (supervised streams) or environment steps per task (rl)")
    strategies: list[str] = Field(default_factory=lambda: ["plain", "cbp"], description="plasticity strategies run side by side: " + ", ".join(REMEDIES))
    remedies: dict[str, Any] = Field(default_factory=dict, description="RemedyConfig fields (the remedies' settings)")
    tau: float = Field(default=0.025, description="τ of the dormant-unit score (Sokar et al.)")
    references: bool = Field(default=True, description="learn the first and last 10 % of the tasks from a fresh network too")
    stream_seed: int = Field(default=0, description="seed that, with the run seed, generates a supervised stream (each run seed has its own)")
    regression: RegressionOptions = Field(default_factory=RegressionOptions, description="the regression stream's options")
    network: OnlineNetwork = Field(default_factory=OnlineNetwork, description="the supervised learner")
    rl: RLStream | None = Field(default=None, description="the rl stream's family, learner and forgetting strategy")


def validate_block(raw: Any) -> PlasticityBlock:
    block = validate_model(PlasticityBlock, raw, "plasticity")
    if not block.strategies:
        raise UsageError("invalid spec: plasticity.strategies: name at least one of " + ", ".join(REMEDIES))
    for name in block.strategies:
        if name not in REMEDIES:
            raise UsageError(f"invalid spec: plasticity.strategies: unknown strategy {name!r}; choose from {', '.join(REMEDIES)}")
    if len(set(block.strategies)) != len(block.strategies):
        raise UsageError("invalid spec: plasticity.strategies: a strategy is named twice")
    try:
        remedy_config(block.remedies)
    except UsageError as err:
        raise UsageError(f"invalid spec: plasticity.remedies: {err}") from None
    if block.tasks < 2 or block.tasks > 100_000:
        raise UsageError(f"invalid spec: plasticity.tasks: must be in 2..100000, got {block.tasks}")
    if block.steps_per_task <= 0:
        raise UsageError(f"invalid spec: plasticity.steps_per_task: must be positive, got {block.steps_per_task}")
    if not 0.0 <= block.tau < 1.0:
        raise UsageError(f"invalid spec: plasticity.tau: must be in [0, 1), got {block.tau}")
    net = block.network
    if not (net.hidden and all(0 < h <= 4096 for h in net.hidden)) or net.batch <= 0:
        raise UsageError("invalid spec: plasticity.network: hidden widths must be in 1..4096 and batch positive")
    if not (math.isfinite(net.learning_rate) and net.learning_rate > 0):
        raise UsageError(f"invalid spec: plasticity.network.learning_rate: must be > 0, got {net.learning_rate}")
    if block.stream == "regression":
        o = block.regression
        flipping_ok = o.permute or 0 < o.flipping <= o.bits  # the permuted variant has no slow bits
        if not (flipping_ok and 0 < o.bits <= 1000 and 0 < o.teacher_units <= 10_000 and 0.0 < o.beta < 1.0):
            raise UsageError("invalid spec: plasticity.regression: need 0 < flipping <= bits <= 1000, "
                             "0 < teacher_units <= 10000 and 0 < beta < 1")
    if block.stream == "rl":
        if block.rl is None:
            raise UsageError("invalid spec: plasticity.rl: stream rl needs an rl block (family, learner, config)")
        _check_rl(block)
    elif block.rl is not None:
        raise UsageError(f"invalid spec: plasticity.rl: only the rl stream takes an rl block, not {block.stream}")
    return block


def _check_rl(block: PlasticityBlock) -> None:
    from llmagentos.kernel.run import make_config
    from llmagentos.learners import registry

    assert block.rl is not None
    try:
        stream = rl_stream(block)
    except UsageError as err:
        raise UsageError(f"invalid spec: plasticity.rl.tasks: {err}") from None
    try:
        registry.get(block.rl.learner, kinds=("agent",))
        make_config(block.rl.learner, block.rl.config, stream.family_object().env_id)
    except UsageError as err:
        raise UsageError(f"invalid spec: plasticity.rl.config: {err}") from None
    if block.rl.eval_episodes <= 0:
        raise UsageError(f"invalid spec: plasticity.rl.eval_episodes: must be positive, got {block.rl.eval_episodes}")
    agent = rl_agent(block, stream, 0)
    if not agent.learner.parameter_groups():
        raise UsageError(f"invalid spec: plasticity.rl.learner: {block.rl.learner} has no network; choose dqn, ppo, a2c or reinforce")


def rl_stream(block: PlasticityBlock) -> Any:
    from llmagentos.lifelong.stream import TaskStream

    rl = block.rl
    assert rl is not None
    if isinstance(rl.tasks, list):
        return TaskStream(rl.family, list(rl.tasks), block.steps_per_task, dict(rl.family_options), append_task=rl.append_task)
    return TaskStream.sample(rl.family, block.tasks, block.steps_per_task, seed=rl.task_seed,
                             family_options=rl.family_options, append_task=rl.append_task)


def rl_agent(block: PlasticityBlock, stream: Any, seed: int) -> Any:
    from llmagentos.core.config import apply_overrides
    from llmagentos.kernel.run import make_agent, make_config
    from llmagentos.lifelong.agent import LifelongAgent, LifelongConfig

    rl = block.rl
    assert rl is not None
    env = stream.make_env(0)
    learner = make_agent(rl.learner, env, config=make_config(rl.learner, rl.config, stream.family_object().env_id), seed=seed)
    env.close()
    config = apply_overrides(LifelongConfig(), {**rl.lifelong, "strategy": rl.consolidation}, owner="plasticity.rl.lifelong")
    return LifelongAgent(learner, config, seed=seed)


def reference_tasks(n: int) -> tuple[list[int], list[int]]:
    """The first and the last 10 % of ``n`` tasks (at least one each)."""
    k = max(1, round(0.1 * n))
    return list(range(k)), list(range(n - k, n))


def run_strategy(block: PlasticityBlock, strategy: str, seed: int, tasks: list[int] | None = None) -> dict[str, Any]:
    """One network through the block's stream (or only ``tasks``) under ``strategy``."""
    import torch

    torch.set_num_threads(1)
    remedies = remedy_config(block.remedies)
    if block.stream == "rl":
        from llmagentos.lifelong.plasticity_rl import run_rl_stream

        stream = rl_stream(block)
        assert block.rl is not None
        return run_rl_stream(lambda: rl_agent(block, stream, seed), stream, strategy, remedies, seed,
                             block.rl.eval_episodes, block.tau, tasks)
    from llmagentos.lifelong.plasticity_streams import OnlineConfig, PermutedDigits, SlowlyChangingRegression, run_online

    from llmagentos.core.seeding import derive_seed

    # every run seed lives through its own stream (its own teacher and flips, or permutations)
    stream_seed = derive_seed(block.stream_seed, "stream", seed)
    if block.stream == "regression":
        stream: Any = SlowlyChangingRegression(block.tasks, seed=stream_seed, **block.regression.model_dump())
    else:
        stream = PermutedDigits(block.tasks, seed=stream_seed)
    net = block.network
    config = OnlineConfig(hidden=tuple(net.hidden), activation=net.activation, optimizer=net.optimizer,
                          learning_rate=net.learning_rate, batch=net.batch, steps_per_task=block.steps_per_task, tau=block.tau)
    return run_online(stream, config, strategy, remedies, seed, tasks)


def stream_length(block: PlasticityBlock) -> int:
    return len(block.rl.tasks) if block.rl is not None and isinstance(block.rl.tasks, list) else block.tasks


def block_type() -> type:
    return PlasticityBlock


def run_job(block: PlasticityBlock, seed: int, out_dir: Path) -> dict[str, Any]:
    """Spec runner: every strategy of ``seed`` through the stream, then the fresh-network references."""
    summary: dict[str, Any] = {"seed": seed, "stream": block.stream, "tasks": stream_length(block), "run_dir": str(out_dir),
                               "strategies": {name: run_strategy(block, name, seed) for name in block.strategies}}
    if block.references:
        first, last = reference_tasks(stream_length(block))
        # each reference task is learned by its own fresh network: the stream restricted to that one task
        summary["fresh"] = {"tasks": first + last,
                            "performance": [run_strategy(block, "plain", seed, [j])["performance"][0] for j in first + last]}
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    atomic_write_json(Path(out_dir) / "summary.json", summary)
    return summary


def _mean_ci(values: list[float]) -> tuple[float, list[float]]:
    lo, hi = bootstrap_ci(values)
    return float(np.mean(values)), [lo, hi]


def aggregate(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Per strategy over seeds: plasticity at the first and last 10 % of tasks, dormant %, rank, average performance."""
    ok = [r for r in results if isinstance(r, dict) and "strategies" in r and not r.get("failed")]
    if not ok:
        return {}
    n = int(ok[0]["tasks"])
    first, last = reference_tasks(n)
    out: dict[str, Any] = {}
    per_seed: dict[str, np.ndarray] = {}
    for name in ok[0]["strategies"]:
        runs = [r["strategies"][name] for r in ok]
        perf = per_seed[name] = np.asarray([r["performance"] for r in runs], dtype=float)
        entry: dict[str, Any] = {"seeds": len(runs)}
        for key, values in (("plasticity_first", perf[:, first].mean(axis=1)), ("plasticity_last", perf[:, last].mean(axis=1)),
                            ("average_performance", perf.mean(axis=1)),
                            ("dormant_fraction", np.asarray([r["dormant_fraction"] for r in runs])[:, last].mean(axis=1)),
                            ("effective_rank", np.asarray([r["effective_rank"] for r in runs])[:, last].mean(axis=1))):
            entry[key], entry[key + "_ci"] = _mean_ci(values.tolist())
        entry["plasticity_curve"] = perf.mean(axis=0).tolist()
        entry["dormant_curve"] = np.mean([r["dormant_fraction"] for r in runs], axis=0).tolist()
        entry["effective_rank_curve"] = np.mean([r["effective_rank"] for r in runs], axis=0).tolist()
        out[name] = entry
    result: dict[str, Any] = {"strategies": out, "first_tasks": first, "last_tasks": last}
    if all("fresh" in r for r in ok):
        fresh = np.asarray([r["fresh"]["performance"] for r in ok], dtype=float)
        k = len(first)
        result["fresh"] = {"plasticity_first": float(fresh[:, :k].mean()), "plasticity_last": float(fresh[:, k:].mean())}
    result["plot"] = str(plasticity_plot(per_seed, Path(ok[0]["run_dir"]).parent / "plasticity.png", ok[0]["stream"]))
    return result


def plasticity_plot(per_seed: dict[str, np.ndarray], path: Path, stream: str) -> Path:
    """Performance reached within each task's budget against the task's position: one line per strategy, the
    band ±1.96 standard errors over seeds."""
    from llmagentos.kernel.plots import learning_curves

    curves = {name: (np.arange(1, perf.shape[1] + 1), perf) for name, perf in per_seed.items()}
    ylabel = {"regression": "− mean squared error (online)", "digits": "accuracy (online)"}.get(stream, "greedy return")
    return learning_curves(curves, path, f"Plasticity over the {stream} stream (higher is better)", "task", ylabel)


#: the table's columns: (key, header)
TABLE_METRICS = (("plasticity_first", "plasticity (first 10 %)"), ("plasticity_last", "plasticity (last 10 %)"),
                 ("dormant_fraction", "dormant % (end)"), ("effective_rank", "effective rank (end)"),
                 ("average_performance", "average performance"))


def table(result: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """(headers, rows): each strategy's figures as mean [95 % bootstrap interval over seeds]."""
    rows = []
    for name, v in (result.get("strategies") or {}).items():
        row: list[Any] = [name]
        for key, _ in TABLE_METRICS:
            scale = 100.0 if key == "dormant_fraction" else 1.0
            lo, hi = v[key + "_ci"]
            row.append(f"{v[key] * scale:.3g} [{lo * scale:.3g}, {hi * scale:.3g}]")
        rows.append(row)
    if result.get("fresh"):
        f = result["fresh"]
        rows.append(["(fresh network)", f"{f['plasticity_first']:.3g}", f"{f['plasticity_last']:.3g}", None, None, None])
    return ["strategy"] + [header for _, header in TABLE_METRICS], rows


def show(result: dict[str, Any]) -> None:
    """The kind's table under the sweep table on the terminal (plasticity per strategy, mean [95 % CI]) and its plot."""
    if not result.get("strategies"):
        return
    import click

    from llmagentos.kernel.progress import print_table

    click.echo("")
    print_table(*table(result))
    click.echo(f"plot: {result['plot']}")
