"""A reinforcement-learning plasticity stream: one lifelong agent (DQN, PPO, ...) through many tasks of a family.

Each task gets the same fixed budget of environment steps; the figure of a task is the greedy return the agent
reaches on it by the end of its budget. The learner is wrapped by :class:`~llmagentos.lifelong.agent.LifelongAgent`
with any forgetting strategy (``consolidation``), and a plasticity remedy is attached beside it through the same
documented accessors (``add_loss_term``, ``add_update_hook``), so the two compose.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
from torch import nn

from llmagentos.core.agent import Agent
from llmagentos.core.loop import Interaction, evaluate
from llmagentos.core.seeding import derive_seed
from llmagentos.lifelong.plasticity import agent_diagnostics, probe_observations, trace_hidden_layers
from llmagentos.lifelong.remedies import RemedyConfig, make_remedy


def attach_remedy(learner: Agent, strategy: str, remedies: RemedyConfig, probe: np.ndarray, seed: int) -> Any:
    """``strategy``'s remedy on ``learner``'s network(s), hooked into its updates; returns the remedy."""
    x = learner.prepare_observations(probe)
    output, value = learner.output_module(), learner.value_module()
    root = nn.ModuleList([output] + ([value] if value is not None else []))

    def forward() -> None:
        output(x)
        if value is not None:
            value(x)

    layers = trace_hidden_layers(root, forward)
    params = [p for group in learner.parameter_groups().values() for p in group]
    # the optimiser's moments of reinitialised weights are cleared (Dohare et al. and Sokar et al. do the same)
    remedy = make_remedy(strategy, remedies, layers, params, getattr(learner, "optimizer", None), seed)
    learner.add_loss_term(remedy.penalty)
    learner.add_update_hook(remedy.after_update)
    return remedy


def run_rl_stream(make_agent: Callable[[], Any], stream: Any, strategy: str, remedies: RemedyConfig, seed: int,
                  eval_episodes: int, tau: float, tasks: list[int] | None = None) -> dict[str, Any]:
    """A fresh lifelong agent (``make_agent()``) through ``stream`` (or only ``tasks``) under ``strategy``.

    Returns per task: ``performance`` (greedy return at the end of its budget), ``dormant_fraction`` and
    ``effective_rank`` on a probe batch of the task's states.
    """
    agent = make_agent()
    learner = agent.learner
    order = list(range(len(stream))) if tasks is None else list(tasks)
    probe_env = stream.make_env(order[0])
    remedy = attach_remedy(learner, strategy, remedies, probe_observations(probe_env, 256, seed), seed)
    probe_env.close()
    num_envs = int(getattr(learner.config, "num_envs", 1) or 1)
    out: dict[str, Any] = {"tasks": order, "performance": [], "dormant_fraction": [], "effective_rank": []}
    for position, j in enumerate(order):
        env = stream.make_env(j, num_envs)
        agent.begin_task(stream.tasks[j], stream.vector(j), tasks_left=len(order) - position, budget=stream.steps_per_task)
        interaction = Interaction(agent, env, seed=derive_seed(seed, "env", j))
        while interaction.steps < stream.steps_per_task:
            interaction.step()
        env.close()
        agent.end_task()
        if remedy.end_task():
            learner.weights_changed()  # shrink-and-perturb or a reset changed the weights: DQN re-syncs θ⁻
        eval_env = stream.make_env(j)
        out["performance"].append(float(np.mean(evaluate(agent, eval_env, eval_episodes, seed=derive_seed(seed, "eval", j)))))
        diag = agent_diagnostics(learner, probe_observations(eval_env, 256, derive_seed(seed, "probe", j)), tau) or {}
        eval_env.close()
        out["dormant_fraction"].append(diag.get("dormant_fraction", 0.0))
        out["effective_rank"].append(diag.get("effective_rank", 0.0))
    out["remedy"] = remedy.state_dict()
    return out
