"""The lifelong agent: any learner, kept learning across a stream of tasks without forgetting the old ones.

:class:`LifelongAgent` wraps a learner (DQN, PPO, A2C, REINFORCE, or a tabular TD learner) and, across
its life:

- notices change when nobody announces it (:mod:`~llmagentos.lifelong.detection`) and records when;
- on a new or changed task chooses what to start from in its knowledge (``transfer``): the current
  weights, the stored task whose descriptor is closest, or the stored task whose weights earn the most
  when probed on the new task;
- consolidates what it learned (:mod:`~llmagentos.lifelong.consolidation`): fine-tuning, online EWC,
  synaptic intelligence, learning without forgetting, replay with behaviour cloning, or PackNet;
- keeps everything in :meth:`state_dict` (learner, consolidation, detector, knowledge entries), so the
  kernel can store it and continue it later or on another machine.

:func:`run_stream` trains one lifelong agent through a :class:`~llmagentos.lifelong.stream.TaskStream`
and fills the evaluation matrix; :func:`run_drifting` lives in a :class:`DriftingWorld` without
boundaries. Both are pure functions of their seeds; the lifelong job (``jobs/lifelong.py``) builds the
learners, schedules the seeds and stores the results.

The learner is reached only through the agent contract: ``begin_task`` / ``end_task`` at the boundaries,
``weights`` / ``load_weights`` for the knowledge store, and, for deep learners, the documented accessors
(``output_module``, ``value_module``, ``prepare_observations``, ``add_loss_term``, ``add_update_hook``,
``recent_transitions``, ``td_loss``, ``weights_changed``) from which :func:`network_view` is built.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Callable, ClassVar, Iterator, Literal

import numpy as np
import torch

from llmagentos.core.agent import Agent, Transition
from llmagentos.core.config import param
from llmagentos.core.errors import UsageError
from llmagentos.core.loop import Interaction, evaluate
from llmagentos.core.schedules import Every
from llmagentos.core.seeding import derive_seed, make_rng, rng_state, set_rng_state
from llmagentos.lifelong.consolidation import ConsolidationConfig, NetworkView, make_consolidation
from llmagentos.lifelong.detection import ChangeDetector, DetectionConfig
from llmagentos.lifelong.plasticity import task_diagnostics


@dataclass
class LifelongConfig(ConsolidationConfig, DetectionConfig):
    """How a lifelong agent consolidates, detects change and transfers (plus the fields of its two parents)."""

    transfer: Literal["continue", "closest", "probe"] = param("continue", "what a new task starts from: the current weights, the stored task with the closest descriptor, or the stored weights that earn most when probed on it")
    transfer_part: Literal["full", "trunk"] = param("full", "what is copied from the chosen stored task (transfer modes of lifelong/transfer.py): the whole network or Q table, or all but the output layers")
    probe_episodes: int = param(3, "greedy episodes per stored task when transfer is 'probe'", gt=0)
    reset_exploration: bool = param(True, "restart the learner's schedules (ε, step size, clip range) on each new task, over the task's budget; False continues them on the life's clock")
    reset_buffer: bool = param(True, "empty the learner's own replay memory on each new task (old tasks are then kept only by consolidation)")
    state_memory: int = param(2_000, "states kept (reservoir sample) from the current task for the Fisher and for replay", gt=0)

    #: how check_bounds words a field outside its bounds (the fields of the strategies and the detector included):
    #: "lifelong replay_batch must be positive, got 0"
    BOUNDS_PREFIX: ClassVar[str] = "lifelong "
    BOUNDS_POSITIVE: ClassVar[str] = "positive"


def network_view(learner: Agent) -> NetworkView | None:
    """What consolidation protects in ``learner``, from its documented accessors; None for agents without a network."""
    if not learner.parameter_groups():
        return None
    off_policy = learner.learns_off_policy
    return NetworkView(learner.output_module(), learner.prepare_observations, discrete=learner.discrete_outputs,
                       value_module=learner.value_module(),
                       transitions=learner.recent_transitions if off_policy else None,
                       td_loss=learner.td_loss if off_policy else None,
                       weights_changed=learner.weights_changed)


class LifelongAgent(Agent):
    """A learner plus change detection, transfer, consolidation and a knowledge store of past tasks."""

    algo = "lifelong"
    Config = LifelongConfig

    def __init__(self, learner: Agent, config: LifelongConfig | None = None, seed: int = 0,
                 boundaries_known: bool = True) -> None:
        config = config or LifelongConfig()
        super().__init__(learner.observation_space, learner.action_space, config, seed)
        self.learner = learner
        self.boundaries_known = boundaries_known
        self.view = network_view(learner)
        if self.view is None and config.transfer_part == "trunk":
            raise UsageError(f"transfer_part trunk needs a network; {learner.algo} keeps a table, use transfer_part full")
        if self.view is None and config.strategy != "finetune":
            raise UsageError(f"the {config.strategy} strategy needs a learner with a network "
                             f"(dqn, ppo, a2c, reinforce); {learner.algo} only supports strategy finetune")
        self.consolidation = (make_consolidation(self.view, config, derive_seed(seed, "consolidation"))
                              if self.view is not None else None)
        if self.consolidation is not None:
            learner.add_loss_term(self.consolidation.penalty)
            learner.add_update_hook(self.consolidation.after_update)
            self.view.current_states = self._current_states
        self.detector = ChangeDetector(config)
        self.rng = make_rng(derive_seed(seed, "lifelong"))
        self.task = -1
        self._tasks_left: int | None = None
        self.knowledge: list[dict[str, Any]] = []
        self.steps = 0
        self._memory: list[np.ndarray] = []
        # the network's outputs on each kept state when it acted there (CLEAR's behaviour-time targets)
        self._memory_outputs: list[np.ndarray] = []
        self._record_outputs = self.consolidation is not None and self.consolidation.wants_outputs
        self._seen = 0
        self.changes: list[dict[str, Any]] = []
        #: greedy return of the current weights in the current world (set by the loop; used by transfer "probe")
        self.probe_current: Callable[[], float] | None = None

    # -- the agent contract (delegated) ----------------------------------------------------------------
    def act(self, observation: Any, explore: bool = True) -> Any:
        return self.learner.act(observation, explore)

    def observe(self, transition: Transition) -> dict[str, float]:
        self._remember(transition.observation)  # before the learner's update: the outputs it acted with
        metrics = self.learner.observe(transition)
        self.steps += 1
        signal = metrics.get("td_error", metrics.get("loss"))
        self.detector.observe_step(signal)
        return metrics

    def end_episode(self) -> None:
        self.learner.end_episode()

    def train_metrics(self) -> dict[str, float]:
        return self.learner.train_metrics()

    def _remember(self, observation: Any) -> None:
        """Reservoir sampling: every state of the current task is kept with equal probability."""
        obs = np.array(observation, copy=True)
        single = getattr(self.observation_space, "shape", None)
        rows = obs if single is not None and obs.ndim > len(single) else obs[None]  # a vector env's batch: a state per row
        slots = []
        for row in rows:
            self._seen += 1
            if len(self._memory) < self.config.state_memory:
                self._memory.append(row)
                slots.append(len(self._memory) - 1)
                continue
            j = int(self.rng.integers(self._seen))
            if j < self.config.state_memory:
                self._memory[j] = row
                slots.append(j)
        if self._record_outputs and slots:
            with torch.no_grad():
                outputs = self.view.outputs(np.stack([self._memory[j] for j in slots])).numpy()
            for j, out in zip(slots, outputs):
                if j == len(self._memory_outputs):
                    self._memory_outputs.append(out)
                else:
                    self._memory_outputs[j] = out

    def _current_states(self, n: int, rng: np.random.Generator) -> np.ndarray | None:
        """Up to ``n`` states of the task being learned (drawn from the reservoir), for LwF's distillation."""
        if not self._memory:
            return None
        return np.stack([self._memory[j] for j in rng.integers(len(self._memory), size=n)])

    # -- tasks ----------------------------------------------------------------------------------------------
    def episode_finished(self, episode_return: float) -> bool:
        """Feed a finished episode's return; without known boundaries, a detected change starts a new task."""
        if self.boundaries_known:
            return False
        if self.detector.end_episode(episode_return, self.steps):
            self.changes.append({"step": self.steps, "task": self.task + 1})
            self.begin_task(None, probe=self.probe_current)
            return True
        return False

    def begin_task(self, descriptor: dict[str, Any] | None = None, vector: np.ndarray | None = None,
                   tasks_left: int | None = None, probe: Callable[[], float] | None = None,
                   budget: int | None = None) -> dict[str, Any]:
        """End the current task if still open, then start the next; returns the transfer choice.

        ``tasks_left`` counts this task and the ones after it (PackNet shares its free weights by it);
        ``budget`` is the task's environment steps, the horizon of the learner's schedules.
        """
        self.end_task()
        choice = self._transfer(vector, probe)
        c = self.config
        self.learner.begin_task(descriptor, budget=budget, restart_schedules=c.reset_exploration, clear_memory=c.reset_buffer)
        if self.consolidation is not None:
            self.consolidation.begin_task()
        self.task += 1
        self._tasks_left = tasks_left
        self._memory, self._memory_outputs, self._seen = [], [], 0
        self.knowledge.append({"task": self.task, "descriptor": descriptor,
                               "vector": None if vector is None else [float(v) for v in vector],
                               "started_at": self.steps, "start_from": choice, "score": None, "weights": None})
        return choice

    def task_open(self) -> bool:
        return self.task >= 0 and self.knowledge[self.task].get("weights") is None

    def end_task(self) -> dict[str, float]:
        """End the current task: the learner closes what would span the boundary, consolidation keeps what it
        learned, and its weights are stored. Nothing happens when no task is open."""
        if not self.task_open():
            return {}
        metrics = self.learner.end_task()
        states = np.asarray(self._memory) if self._memory else np.zeros((0,))
        outputs = np.asarray(self._memory_outputs) if self._record_outputs and self._memory_outputs else None
        if self.consolidation is not None and len(states):
            self.consolidation.end_task(self.task, states, self._tasks_left, steps=self._seen, outputs=outputs)
        entry = self.knowledge[self.task]
        entry["weights"] = self.learner.weights()
        entry["ended_at"] = self.steps
        return metrics

    def finish(self) -> None:
        """End the last task (its knowledge is stored; no new task starts)."""
        self.end_task()

    def record_score(self, score: float) -> None:
        """The greedy return reached on the current task (what 'probe' and the store compare)."""
        self.knowledge[self.task]["score"] = float(score)

    def _transfer(self, vector: np.ndarray | None, probe: Callable[[], float] | None) -> dict[str, Any]:
        stored = [e for e in self.knowledge if e.get("weights") is not None]
        mode = self.config.transfer
        if mode == "continue" or not stored:
            return {"mode": "continue", "source": None}
        if mode == "closest" and vector is not None:
            with_vectors = [e for e in stored if e["vector"] is not None]
            if with_vectors:
                distances = [float(np.linalg.norm(np.asarray(e["vector"]) - vector)) for e in with_vectors]
                best = with_vectors[int(np.argmin(distances))]
                self._start_from(best["weights"])
                return {"mode": "closest", "source": best["task"], "distance": min(distances)}
        if probe is not None:
            # probed return of every stored task's weights and of the current weights; start from the best
            current = self.learner.weights()
            scores = {"current": probe()}
            for e in stored:
                self.learner.load_weights(e["weights"])
                scores[e["task"]] = probe()
            best = max(scores, key=lambda k: scores[k])
            self.learner.load_weights(current)
            if best != "current":
                self._start_from(stored[[e["task"] for e in stored].index(best)]["weights"])
            return {"mode": "probe", "source": None if best == "current" else best, "probed": {str(k): v for k, v in scores.items()}}
        return {"mode": "continue", "source": None}

    def _start_from(self, weights: dict[str, Any]) -> None:
        """Load a stored task's weights: all of them, or (``transfer_part: trunk``) all but the output layers."""
        self.learner.load_weights(weights, trunk_only=self.config.transfer_part == "trunk")

    @contextlib.contextmanager
    def evaluating(self, task: int) -> Iterator[None]:
        """The agent as it acts on task ``task`` of its life (PackNet masks the weights of later tasks)."""
        if self.consolidation is None:
            yield
            return
        with self.consolidation.evaluating(task, self.task):
            yield

    # -- persistence ----------------------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {"learner": self.learner.state_dict(),
                "consolidation": self.consolidation.state_dict() if self.consolidation is not None else None,
                "detector": self.detector.state_dict(), "rng": rng_state(self.rng), "task": self.task,
                "knowledge": [dict(e) for e in self.knowledge], "steps": self.steps,
                "memory": np.asarray(self._memory) if self._memory else None, "seen": self._seen,
                "memory_outputs": np.asarray(self._memory_outputs) if self._memory_outputs else None,
                "tasks_left": self._tasks_left, "changes": list(self.changes)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.learner.load_state_dict(state["learner"])
        if self.consolidation is not None:
            self.consolidation.load_state_dict(state["consolidation"])
        self.detector.load_state_dict(state["detector"])
        set_rng_state(self.rng, state["rng"])
        self.task = int(state["task"])
        self.knowledge = [dict(e) for e in state["knowledge"]]
        self.steps = int(state["steps"])
        memory = state.get("memory")
        self._memory = [np.array(m, copy=True) for m in memory] if memory is not None else []
        self._seen = int(state["seen"])
        outputs = state.get("memory_outputs")
        self._memory_outputs = [np.array(m, copy=True) for m in outputs] if outputs is not None else []
        self._tasks_left = None if state.get("tasks_left") is None else int(state["tasks_left"])
        self.changes = [dict(c) for c in state["changes"]]


# -- running a stream --------------------------------------------------------------------------------------

class RandomPolicy(Agent):
    """Uniformly random actions: the lower end of the normalisation."""

    algo = "random"

    def __init__(self, action_space: Any, seed: int) -> None:
        self.action_space = action_space
        self.action_space.seed(seed)

    def act(self, observation: Any, explore: bool = True) -> Any:
        return self.action_space.sample()


def random_returns(stream: Any, episodes: int, seed: int) -> list[float]:
    """Mean return of a uniformly random policy on each task of the stream."""
    out = []
    for j in range(len(stream)):
        env = stream.make_env(j)
        out.append(float(np.mean(evaluate(RandomPolicy(env.action_space, derive_seed(seed, "random", j)), env, episodes,
                                          seed=derive_seed(seed, "eval", j)))))
        env.close()
    return out


@dataclass
class StreamRunConfig:
    eval_episodes: int = param(5, "greedy episodes per evaluation of one task")
    curve_points: int = param(5, "evaluations of the current task during its training (for forward transfer)")


def run_stream(agent: LifelongAgent, stream: Any, seed: int, run: StreamRunConfig | None = None,
               state: dict[str, Any] | None = None,
               on_task_end: Callable[[int, dict[str, Any]], bool] | None = None,
               on_progress: Callable[[int], None] | None = None,
               tasks: list[int] | None = None) -> dict[str, Any]:
    """Train ``agent`` through ``stream`` (boundaries known) and evaluate every task after each one.

    Returns ``{"raw_matrix": R_raw (stages × tasks), "curves": [[return at each curve point] per task],
    "life": [[global step, episode return], ...], "boundaries", "knowledge", "transfers"}`` and, for a deep
    learner, ``"dormant_fraction"`` and ``"effective_rank"``: the network's plasticity diagnostics at each task's end. ``state`` (from
    ``on_task_end``) continues a stopped run at the next task; ``on_task_end(i, state)`` returning False stops
    after task i. ``tasks`` restricts the stream to those task indices (single-task references).
    """
    run = run or StreamRunConfig()
    order = list(range(len(stream))) if tasks is None else list(tasks)
    result: dict[str, Any] = {"raw_matrix": [], "curves": [], "life": [], "boundaries": [], "transfers": [],
                              "scores": []}
    start = 0
    if state is not None:
        agent.load_state_dict(state["agent"])
        result = state["result"]
        start = int(state["next"])
    eval_envs = {j: stream.make_env(j) for j in order}
    done_steps = start * stream.steps_per_task

    def greedy(j: int, episodes: int) -> float:
        with agent.evaluating(order.index(j) if j in order[: agent.task + 1] else agent.task):
            return float(np.mean(evaluate(agent, eval_envs[j], episodes, seed=derive_seed(seed, "eval", j))))

    num_envs = int(getattr(agent.learner.config, "num_envs", 1) or 1)
    for position in range(start, len(order)):
        j = order[position]
        env = stream.make_env(j, num_envs)
        probe_fn = (lambda: float(np.mean(evaluate(agent, eval_envs[j], agent.config.probe_episodes,
                                                   seed=derive_seed(seed, "probe", j)))))
        choice = agent.begin_task(stream.tasks[j], stream.vector(j), tasks_left=len(order) - position, probe=probe_fn,
                                  budget=stream.steps_per_task)
        result["transfers"].append(choice)
        result["boundaries"].append(position * stream.steps_per_task)
        interaction = Interaction(agent, env, seed=derive_seed(seed, "env", j))
        # curve points at round(k · S / points), k = 0 … points − 1 (the task's end adds the last one below)
        curve_points = Every(Fraction(stream.steps_per_task, max(run.curve_points, 1)), next_at=0)
        curve = []
        seen_episodes = 0
        while interaction.steps < stream.steps_per_task:
            if curve_points.due(interaction.steps):
                curve_points.done(interaction.steps)
                curve.append(greedy(j, run.eval_episodes))
            interaction.step()
            while seen_episodes < len(interaction.episode_returns):
                ret = interaction.episode_returns[seen_episodes]
                result["life"].append([done_steps + interaction.steps, ret])
                seen_episodes += 1
            if on_progress is not None and interaction.steps % 500 == 0:
                on_progress(done_steps + interaction.steps)
        done_steps += interaction.steps
        env.close()
        # the task ends before its last measurements, so that the diagonal R[j, j], the final curve point and
        # the row R[j, ·] all see the agent as consolidation left it (PackNet pruned and retrained, for one)
        agent.end_task()
        final = greedy(j, run.eval_episodes)
        curve.append(final)
        agent.record_score(final)
        result["curves"].append(curve)
        result["scores"].append(final)
        result["raw_matrix"].append([greedy(k, run.eval_episodes) for k in order])
        # plasticity at the task's end (deep learners): probe states from an env of their own, seeded per task
        diagnostics = task_diagnostics(agent.learner, lambda: stream.make_env(j), derive_seed(seed, "plasticity", j))
        if diagnostics is not None:
            for key in ("dormant_fraction", "effective_rank"):
                result.setdefault(key, []).append(diagnostics.get(key, 0.0))
        if on_progress is not None:
            on_progress(done_steps)
        if on_task_end is not None:
            snapshot = {"agent": agent.state_dict(), "result": result, "next": position + 1}
            if on_task_end(position, snapshot) is False:
                result["stopped_after"] = position
                break
    for e in eval_envs.values():
        e.close()
    result["knowledge"] = [{k: v for k, v in e.items() if k != "weights"} for e in agent.knowledge]
    return result


def run_drifting(agent: LifelongAgent, world: Any, total_steps: int, seed: int,
                 on_progress: Callable[[int], None] | None = None) -> dict[str, Any]:
    """Live ``total_steps`` in a :class:`DriftingWorld` without being told of changes; report detections."""
    if int(getattr(agent.learner.config, "num_envs", 1) or 1) > 1:
        raise UsageError("a drifting world is one env: set the learner's num_envs to 1")
    agent.begin_task(None, budget=total_steps)
    interaction = Interaction(agent, world, seed=derive_seed(seed, "env"))

    def probe() -> float:
        # a copy of the world as it is now: probing costs no steps of the agent's life
        env = world.family.make(world.task, append_task=world.stream.append_task, **world.stream.env_kwargs)
        returns = evaluate(agent, env, agent.config.probe_episodes, seed=derive_seed(seed, "probe", agent.steps))
        env.close()
        return float(np.mean(returns))

    agent.probe_current = probe
    life = []
    seen = 0
    while interaction.steps < total_steps:
        interaction.step()
        while seen < len(interaction.episode_returns):
            ret = interaction.episode_returns[seen]
            life.append([interaction.steps, ret])
            agent.episode_finished(ret)
            seen += 1
        if on_progress is not None and interaction.steps % 500 == 0:
            on_progress(interaction.steps)
    agent.finish()
    # a switch that took effect at the last step was never lived, so it cannot be noticed: it is not counted
    return {"life": life, "switches": [s for s in world.switch_steps() if s < interaction.steps],
            "detections": [c["step"] for c in agent.changes],
            "steps": interaction.steps,
            "knowledge": [{k: v for k, v in e.items() if k != "weights"} for e in agent.knowledge]}
