"""Lifelong jobs: a learner through a stream of tasks (or a drifting world) under several consolidation strategies.

The spec's ``lifelong`` block (``llmagentos run SPEC``)::

    lifelong:
      family: cartpole              # cartpole | goal-grid | pointnav (llmagentos.envs.families)
      family_options: {}
      tasks: 4                      # drawn with task_seed, or a list of descriptors
      steps_per_task: 20000
      learner: dqn                  # any single-agent algorithm (dqn, ppo, a2c, q-learning ...)
      config: {}                    # the learner's config fields
      strategies: [finetune, ewc, replay]
      lifelong: {ewc_lambda: 100}   # LifelongConfig fields (consolidation, detection, transfer)
      drift: null                   # {mode: abrupt|gradual, total_steps: N}: one world, no boundaries given

One job is one seed: a single-task reference learner per task (the upper end of the normalisation and
the baseline of forward transfer), a random policy (the lower end), then the stream once per strategy.
After every task each arm's state is checkpointed under ``out_dir/checkpoints/`` (and, with ``agent:
NAME``, saved as a versioned agent with one knowledge entry per task in the kernel's store), so a
stopped job continues from its last finished task and ends exactly as an uninterrupted one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from llmagentos.core.config import apply_overrides
from llmagentos.core.errors import UsageError
from llmagentos.core.seeding import seed_everything
from llmagentos.kernel.checkpoint import atomic_write_json, load_state, save_state
from llmagentos.kernel.validation import FamilyTasksBlock
from llmagentos.lifelong import metrics
from llmagentos.lifelong.consolidation import STRATEGIES


class DriftBlock(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    mode: Literal["abrupt", "gradual"] = Field(default="abrupt", description="abrupt switches or gradual parameter drift")
    total_steps: int = Field(description="steps lived in the drifting world (tasks change every steps_per_task)")


class LifelongBlock(FamilyTasksBlock):
    """One lifelong job: a stream of tasks, a learner, the strategies to compare."""

    steps_per_task: int = Field(description="environment steps on each task")
    append_task: bool = Field(default=False, description="append the task descriptor to observations")
    env_args: dict[str, Any] = Field(default_factory=dict, description="extra keyword arguments for every task's env")
    learner: str = Field(default="dqn", description="the learner wrapped by the lifelong agent")
    config: dict[str, Any] = Field(default_factory=dict, description="the learner's config fields")
    strategies: list[Literal[STRATEGIES]] = Field(default_factory=lambda: ["finetune", "ewc", "replay"],  # type: ignore[valid-type]
                                                                             description="consolidation strategies run side by side")
    lifelong: dict[str, Any] = Field(default_factory=dict, description="LifelongConfig fields: consolidation, detection, transfer")
    eval_episodes: int = Field(default=5, description="greedy episodes per evaluation of one task")
    curve_points: int = Field(default=5, description="evaluations of the current task during its training")
    references: bool = Field(default=True, description="train single-task references (needed for normalisation and forward transfer)")
    drift: DriftBlock | None = Field(default=None, description="live in one drifting world without boundaries instead of a stream")
    agent: str | None = Field(default=None, description="keep each strategy's lifelong agent in the store as NAME-STRATEGY-sSEED (a new version after every task); a stored one is continued")


def resolve_stream(block: LifelongBlock) -> Any:
    from llmagentos.lifelong.stream import TaskStream

    kwargs = {"append_task": block.append_task, "env_kwargs": dict(block.env_args)}
    if isinstance(block.tasks, int):
        return TaskStream.sample(block.family, block.tasks, block.steps_per_task, seed=block.task_seed,
                                 family_options=block.family_options, **kwargs)
    return TaskStream(block.family, list(block.tasks), block.steps_per_task, dict(block.family_options), **kwargs)


def lifelong_config(block: LifelongBlock, strategy: str) -> Any:
    from llmagentos.lifelong.agent import LifelongConfig

    return apply_overrides(LifelongConfig(), {**block.lifelong, "strategy": strategy}, owner="lifelong.lifelong")


def validate_block(raw: Any) -> LifelongBlock:
    from llmagentos.kernel.run import make_config
    from llmagentos.kernel.validation import validate_model
    from llmagentos.learners import registry

    block = validate_model(LifelongBlock, raw, "lifelong")
    try:
        stream = resolve_stream(block)
    except UsageError as err:
        raise UsageError(f"invalid spec: lifelong.tasks: {err}") from None
    try:
        registry.get(block.learner, kinds=("agent",))
        make_config(block.learner, block.config, stream.family_object().env_id)
    except UsageError as err:
        raise UsageError(f"invalid spec: lifelong.config: {err}") from None
    if not block.strategies:
        raise UsageError("invalid spec: lifelong.strategies: name at least one of " + ", ".join(STRATEGIES))
    for strategy in block.strategies:
        try:
            lifelong_config(block, strategy)
        except UsageError as err:
            raise UsageError(f"invalid spec: lifelong.lifelong: {err}") from None
    for name in ("eval_episodes", "curve_points"):
        if getattr(block, name) <= 0:
            raise UsageError(f"invalid spec: lifelong.{name}: must be positive, got {getattr(block, name)}")
    if block.drift is not None and block.drift.total_steps <= 0:
        raise UsageError(f"invalid spec: lifelong.drift.total_steps: must be positive, got {block.drift.total_steps}")
    return block


def build_agent(block: LifelongBlock, stream: Any, strategy: str, seed: int, boundaries_known: bool = True) -> Any:
    """A fresh lifelong agent around a fresh learner for ``stream``'s spaces."""
    from llmagentos.kernel.run import make_agent, make_config
    from llmagentos.lifelong.agent import LifelongAgent

    env = stream.make_env(0)
    config = make_config(block.learner, block.config, stream.family_object().env_id)
    learner = make_agent(block.learner, env, config=config, seed=seed)
    env.close()
    return LifelongAgent(learner, lifelong_config(block, strategy), seed=seed, boundaries_known=boundaries_known)


# -- one arm of one seed (the unit the scheduler runs) ---------------------------------------------------

def run_arm(payload: dict[str, Any]) -> dict[str, Any]:
    """One arm: ``{"block", "seed", "arm": "random" | "reference" | STRATEGY, "out", "stop_after"?}``.

    Checkpoints after every task under ``out/checkpoints/ARM`` and continues from there when re-run.
    """
    import torch

    torch.set_num_threads(1)
    from llmagentos.lifelong.agent import StreamRunConfig, random_returns, run_stream

    block = payload["block"] if isinstance(payload["block"], LifelongBlock) else LifelongBlock(**payload["block"])
    seed, arm = int(payload["seed"]), payload["arm"]
    out = Path(payload["out"]) if payload.get("out") else None
    seed_everything(seed)
    stream = resolve_stream(block)
    run = StreamRunConfig(eval_episodes=block.eval_episodes, curve_points=block.curve_points)
    if arm == "random":
        return {"arm": arm, "seed": seed, "returns": random_returns(stream, max(block.eval_episodes, 10), seed)}
    if arm == "reference":
        scores, curves = [], []
        for j in range(len(stream)):
            agent = build_agent(block, stream, "finetune", seed)
            r = run_stream(agent, stream, seed, run, tasks=[j])
            scores.append(r["scores"][0])
            curves.append(r["curves"][0])
        return {"arm": arm, "seed": seed, "scores": scores, "curves": curves}
    if block.drift is not None:
        return _run_drift_arm(block, stream, arm, seed, payload.get("progress"))
    agent = build_agent(block, stream, arm, seed)
    ckpt = out / "checkpoints" / f"{arm}-s{seed}" if out is not None else None
    state = None
    if ckpt is not None and ckpt.with_suffix(".json").exists():
        state, _ = load_state(ckpt)
    stop_after = payload.get("stop_after")
    store_name = f"{block.agent}-{arm}-s{seed}" if block.agent else None
    if state is None and store_name is not None:
        state = _stored_state(store_name)  # continue the stored agent, here or on another machine

    def on_task_end(position: int, snapshot: dict[str, Any]) -> bool:
        if ckpt is not None:
            save_state(ckpt, snapshot, {"algo": block.learner, "strategy": arm, "seed": seed})
        if store_name is not None:
            _store_task(store_name, block, stream, agent, position, snapshot)
        return stop_after is None or position < int(stop_after)

    result = run_stream(agent, stream, seed, run, state=state, on_task_end=on_task_end)
    result.update(arm=arm, seed=seed)
    return result


def _stored_state(name: str) -> dict[str, Any] | None:
    from llmagentos.kernel.store import Store

    with Store() as store:
        if store.agent(name) is None:
            return None
        state, _ = store.get_agent(name)
    return state


def _store_task(name: str, block: LifelongBlock, stream: Any, agent: Any, position: int, snapshot: dict[str, Any]) -> None:
    """The lifelong agent's state as a new version in the store, and the finished task as a knowledge entry."""
    from llmagentos.kernel.store import Store

    env_id = stream.family_object().env_id
    with Store() as store:
        task_id = store.record_task(env_id, {}, stream.tasks[position], name=stream.label(position))
        store.put_agent(name, snapshot, algo=f"lifelong-{block.learner}", config={"block": block.model_dump()},
                        observation_space=str(agent.observation_space), action_space=str(agent.action_space),
                        meta={"next_task": position + 1}, task=task_id)
        store.add_knowledge(task_id, name, float(snapshot["result"]["scores"][-1]),
                            descriptor=[float(v) for v in stream.vector(position)],
                            meta={"strategy": agent.config.strategy, "position": position})


def _run_drift_arm(block: LifelongBlock, stream: Any, arm: str, seed: int, progress: Any) -> dict[str, Any]:
    from llmagentos.lifelong.agent import run_drifting
    from llmagentos.lifelong.detection import detection_delays
    from llmagentos.lifelong.stream import DriftingWorld

    assert block.drift is not None
    agent = build_agent(block, stream, arm, seed, boundaries_known=False)
    world = DriftingWorld(stream, block.drift.mode)
    result = run_drifting(agent, world, block.drift.total_steps, seed)
    matched = detection_delays(result["switches"], result["detections"], horizon=block.steps_per_task)
    result.update(arm=arm, seed=seed, **matched,
                  false_alarms_per_100k=len(matched["false_alarms"]) * 100_000 / max(result["steps"], 1))
    return result


# -- a whole job: every arm of one seed, then the metrics ------------------------------------------------

def arms(block: LifelongBlock) -> list[str]:
    if block.drift is not None:
        return list(block.strategies)
    return (["random", "reference"] if block.references else ["random"]) + list(block.strategies)


def combine(block: LifelongBlock, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per-seed normalised matrices and curves of every strategy from its arms' raw results."""
    if block.drift is not None:
        return {"strategies": {a: {k: results[a][k] for k in ("switches", "detections", "delays", "false_alarms",
                                                               "false_alarms_per_100k", "steps")}
                               for a in block.strategies}}
    low = results["random"]["returns"]
    ref = results.get("reference")
    out: dict[str, Any] = {"random_returns": low, "reference_returns": ref["scores"] if ref else None, "strategies": {}}
    if ref is not None:
        # tasks normalised in return units because the reference did no better than random (see metrics.normalise)
        out["references_below_random"] = metrics.references_below_random(low, ref["scores"])
    for a in block.strategies:
        r = results[a]
        raw = np.asarray(r["raw_matrix"], dtype=float)
        if ref is None:
            out["strategies"][a] = {"raw_matrix": raw.tolist(), "curves": r["curves"], "life": r["life"],
                                    "boundaries": r["boundaries"]}
            continue
        high = ref["scores"]
        norm = metrics.normalise(raw, low, high)
        curves = [metrics.normalise(np.asarray(c), [low[j]] * len(c), [high[j]] * len(c)).tolist() for j, c in enumerate(r["curves"])]
        refs = [metrics.normalise(np.asarray(c), [low[j]] * len(c), [high[j]] * len(c)).tolist() for j, c in enumerate(ref["curves"])]
        out["strategies"][a] = {"matrix": norm.tolist(), "raw_matrix": raw.tolist(), "curves": curves, "reference_curves": refs,
                                "life": r["life"], "boundaries": r["boundaries"], "transfers": r["transfers"],
                                "average_performance": metrics.average_performance(norm), "forgetting": metrics.forgetting(norm),
                                "backward_transfer": metrics.backward_transfer(norm),
                                "forward_transfer": metrics.forward_transfer(curves, refs),
                                "forward_transfer_gem": metrics.forward_transfer_gem(norm, [c[0] for c in refs])}
    for a in block.strategies:
        _add_plasticity(out["strategies"][a], results[a])
    return out


#: the plasticity diagnostics a deep learner's arm records at each task's end (lifelong/agent.py run_stream)
PLASTICITY_KEYS = ("dormant_fraction", "effective_rank")


def _add_plasticity(entry: dict[str, Any], arm: dict[str, Any]) -> None:
    """Per task at the task's end (``dormant_fraction``, ``effective_rank``) and their means over the stream
    (``..._mean``); nothing for a tabular learner."""
    for key in PLASTICITY_KEYS:
        if arm.get(key):
            entry[key] = [float(v) for v in arm[key]]
            entry[key + "_mean"] = float(np.mean(arm[key]))


def _aggregate_plasticity(per_seed: list[dict[str, Any]]) -> dict[str, Any]:
    """The stream's mean diagnostics, averaged over seeds with a bootstrap 95 % interval, and the per-task curves."""
    from llmagentos.core.statistics import bootstrap_ci

    out: dict[str, Any] = {}
    for key in PLASTICITY_KEYS:
        if not all(key + "_mean" in p for p in per_seed):
            continue
        means = [p[key + "_mean"] for p in per_seed]
        out[key], out[key + "_ci"] = float(np.mean(means)), list(bootstrap_ci(means))
        curve = "dormant_curve" if key == "dormant_fraction" else "effective_rank_curve"
        out[curve] = np.mean([p[key] for p in per_seed], axis=0).tolist()
    return out


def block_type() -> Any:
    """The lifelong block as ``llmagentos schema`` shows it: one variant per learner, ``config`` typed by the learner's
    config class and ``lifelong`` by :class:`~llmagentos.lifelong.agent.LifelongConfig`, as the train block's is."""
    import typing

    from pydantic import create_model

    from llmagentos.kernel.validation import algo_config_model, config_model, model_name
    from llmagentos.learners import registry
    from llmagentos.lifelong.agent import LifelongConfig

    lifelong = config_model(LifelongConfig)
    default = LifelongBlock.model_fields["learner"].default  # the variant a block without `learner` is
    variants = []
    for learner in (name for name, entry in registry.ALGORITHMS.items() if entry.kind == "agent"):
        config = algo_config_model(learner)
        variants.append(create_model(
            model_name(learner, "LifelongBlock"), __base__=LifelongBlock,
            learner=(Literal[learner], Field(default=default if learner == default else ...,
                                             description=LifelongBlock.model_fields["learner"].description)),
            config=(config, Field(default_factory=config, description=f"the {learner} config fields")),
            lifelong=(lifelong, Field(default_factory=lifelong, description=LifelongBlock.model_fields["lifelong"].description))))
    return typing.Union[tuple(variants)]  # type: ignore[valid-type]


def run_job(block: LifelongBlock, seed: int, out_dir: Path) -> dict[str, Any]:
    """Spec runner: every arm of ``seed`` inline (the sweep spreads seeds over workers)."""
    results = {a: run_arm({"block": block, "seed": seed, "arm": a, "out": str(out_dir)}) for a in arms(block)}
    summary = {"seed": seed, **combine(block, results)}
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    atomic_write_json(Path(out_dir) / "summary.json", summary)
    return summary


def aggregate(results: list[dict[str, Any]]) -> dict[str, Any]:
    """Metrics over seeds (mean and bootstrap 95 % interval) per strategy."""
    ok = [r for r in results if isinstance(r, dict) and "strategies" in r and not r.get("failed")]
    if not ok:
        return {}
    names = list(ok[0]["strategies"])
    out: dict[str, Any] = {}
    for name in names:
        per_seed = [r["strategies"][name] for r in ok]
        if "matrix" in per_seed[0]:
            out[name] = {k: v for k, v in metrics.summarise([p["matrix"] for p in per_seed], [p["curves"] for p in per_seed],
                                                            [p["reference_curves"] for p in per_seed]).items()}
            out[name].update(_aggregate_plasticity(per_seed))
        elif "delays" in per_seed[0]:
            delays = [d for p in per_seed for d in p["delays"]]
            found = [d for d in delays if d is not None]
            out[name] = {"switches": len(delays), "detected": len(found),
                         "median_delay_steps": float(np.median(found)) if found else None,
                         "max_delay_steps": max(found) if found else None,
                         "false_alarms_per_100k": float(np.mean([p["false_alarms_per_100k"] for p in per_seed]))}
    below = sorted({j for r in ok for j in r.get("references_below_random", [])})
    return {"lifelong": out, **({"references_below_random": below} if below else {})}


def table(result: dict[str, Any]) -> tuple[list[str], list[list[Any]]]:
    """(headers, rows) of a lifelong sweep's terminal table: metrics per strategy, or detection for a drifting world."""
    per_strategy = result.get("lifelong") or {}

    def cell(values: dict[str, Any], metric: str) -> str | None:
        if values.get(metric) is None:
            return None
        ci = values.get(metric + "_ci") or [values[metric], values[metric]]
        return f"{values[metric]:+.2f} [{ci[0]:+.2f}, {ci[1]:+.2f}]"

    if any("switches" in v for v in per_strategy.values()):
        return (["strategy", "switches", "detected", "median delay (steps)", "max delay", "false alarms / 100k steps"],
                [[n, v["switches"], v["detected"], v["median_delay_steps"], v["max_delay_steps"], v["false_alarms_per_100k"]]
                 for n, v in per_strategy.items()])
    def plasticity_cell(values: dict[str, Any], metric: str) -> str | None:
        if values.get(metric) is None:
            return None
        scale = 100.0 if metric == "dormant_fraction" else 1.0
        lo, hi = values[metric + "_ci"]
        return f"{values[metric] * scale:.3g} [{lo * scale:.3g}, {hi * scale:.3g}]"

    plasticity = [(m, label) for m, label in PLASTICITY_COLUMNS if any(v.get(m) is not None for v in per_strategy.values())]
    return (["strategy"] + [label for _, label in TABLE_METRICS] + [label for _, label in plasticity],
            [[n] + [cell(v, metric) for metric, _ in TABLE_METRICS] + [plasticity_cell(v, metric) for metric, _ in plasticity]
             for n, v in per_strategy.items()])


#: the lifelong table's columns: (summary key, header)
TABLE_METRICS = (("average_performance", "average performance"), ("forgetting", "forgetting"),
                 ("forward_transfer", "forward transfer"), ("forward_transfer_gem", "forward transfer (GEM)"),
                 ("backward_transfer", "backward transfer"))
#: the plasticity columns a deep learner's sweep adds: (summary key, header), the stream's mean at the tasks' ends
PLASTICITY_COLUMNS = (("dormant_fraction", "dormant % (mean)"), ("effective_rank", "effective rank (mean)"))


def show(result: dict[str, Any]) -> None:
    """The kind's table under the sweep table on the terminal (metrics per strategy, mean [95 % CI])."""
    import click

    from llmagentos.kernel.progress import print_table

    if not result.get("lifelong"):
        return
    click.echo("")
    print_table(*table(result))
