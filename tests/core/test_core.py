"""The contracts every layer relies on: configs, schedules, checkpoints, env snapshots, the loop."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

import gymnasium as gym
import numpy as np
import pytest

from llmagentos.core.agent import Agent, Transition, greedy_argmax
from llmagentos.core.config import apply_overrides, describe, param
from llmagentos.core.env_state import restore, snapshot
from llmagentos.core.errors import UsageError
from llmagentos.core.loop import Interaction, evaluate
from llmagentos.core.schedules import exponential, linear
from llmagentos.core.seeding import make_rng
from llmagentos.kernel.checkpoint import CheckpointError, load_state, save_state


@dataclass
class ToyConfig:
    lr: float = param(0.1, "step size")
    layers: list[int] = param([64, 64], "hidden widths")
    mode: Literal["a", "b"] = param("a", "which mode")
    limit: int | None = param(None, "optional cap")


def test_overrides_coerce_types_and_refuse_unknown_keys():
    cfg = apply_overrides(ToyConfig(), {"lr": "0.5", "layers": "[32]", "mode": "b", "limit": "7"})
    assert (cfg.lr, cfg.layers, cfg.mode, cfg.limit) == (0.5, [32], "b", 7)
    assert apply_overrides(ToyConfig(), {"limit": "none"}).limit is None
    with pytest.raises(UsageError, match="no field 'lrr'"):
        apply_overrides(ToyConfig(), {"lrr": "1"})
    with pytest.raises(UsageError, match="not a number"):
        apply_overrides(ToyConfig(), {"lr": "fast"})
    with pytest.raises(UsageError, match="not one of a, b"):
        apply_overrides(ToyConfig(), {"mode": "c"})
    rows = describe(ToyConfig)
    assert [r["name"] for r in rows] == ["lr", "layers", "mode", "limit"] and rows[0]["doc"] == "step size"


def test_schedules_hit_their_end_points():
    lin = linear(1.0, 0.1, 100)
    assert lin(0) == 1.0 and abs(lin(50) - 0.55) < 1e-12 and lin(100) == pytest.approx(0.1) and lin(10_000) == pytest.approx(0.1)
    exp = exponential(1.0, 0.01, 100)
    assert exp(50) == pytest.approx(0.1) and exp(100) == pytest.approx(0.01)


def test_greedy_argmax_breaks_ties_at_random_with_the_agents_generator():
    rng = make_rng(0)
    picks = {greedy_argmax(np.array([1.0, 3.0, 3.0, 0.0]), rng) for _ in range(50)}
    assert picks == {1, 2}


def test_checkpoint_round_trip_and_refusals(tmp_path):
    torch = pytest.importorskip("torch")
    state = {"w": torch.arange(6, dtype=torch.float32).reshape(2, 3), "table": np.eye(3), "t": 7,
             "nested": {"rng": make_rng(1).bit_generator.state, "items": [np.ones(2), 3.5]}, "by_index": {0: np.zeros(1)}}
    save_state(tmp_path / "ckpt", state, {"algo": "toy"})
    loaded, meta = load_state(tmp_path / "ckpt", expect={"algo": "toy"})
    assert meta["algo"] == "toy" and torch.equal(loaded["w"], state["w"]) and isinstance(loaded["w"], torch.Tensor)
    assert np.array_equal(loaded["table"], np.eye(3)) and loaded["t"] == 7 and list(loaded["by_index"]) == [0]
    assert loaded["nested"]["rng"] == state["nested"]["rng"]
    with pytest.raises(CheckpointError, match="made for algo='toy'"):
        load_state(tmp_path / "ckpt", expect={"algo": "other"})
    blob = tmp_path / "ckpt.safetensors"
    data = bytearray(blob.read_bytes())
    data[-1] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="checksum"):
        load_state(tmp_path / "ckpt")
    doc = json.loads((tmp_path / "ckpt.json").read_text())
    doc["format_version"] = 99
    (tmp_path / "ckpt.json").write_text(json.dumps(doc))
    with pytest.raises(CheckpointError, match="format version 99"):
        load_state(tmp_path / "ckpt")


def _rollout(env, actions):
    out = []
    for a in actions:
        obs, r, term, trunc, _ = env.step(a)
        out.append((np.asarray(obs).tolist(), r, term, trunc))
        if term or trunc:
            out.append(("reset", np.asarray(env.reset()[0]).tolist()))
    return out


@pytest.mark.parametrize("env_id, actions", [("CartPole-v1", [0, 1] * 40),
                                             # FrozenLake's map is an array of bytes, which JSON cannot hold as a list
                                             ("FrozenLake-v1", [1, 2, 2, 1, 0, 3] * 10)])
def test_env_snapshot_restores_mid_episode_exactly(env_id, actions):
    env = gym.make(env_id)
    env.reset(seed=3)
    _rollout(env, [1, 0, 1])
    snap = json.loads(json.dumps(snapshot(env)))  # it must survive JSON
    assert snap["exact"]
    expected = _rollout(env, actions)
    other = gym.make(env_id)
    other.reset(seed=99)
    restore(other, snap)
    assert _rollout(other, actions) == expected


class RandomAgent(Agent):
    algo = "random"
    supports_vector_env = True

    def __init__(self, space, seed=0):
        super().__init__(None, space, None, seed)
        self.rng = make_rng(seed)
        self.seen: list[Transition] = []

    def act(self, observation, explore=True):
        n = len(observation) if np.ndim(observation) > 1 else None
        return self.rng.integers(2, size=n) if n else int(self.rng.integers(2))

    def observe(self, transition):
        self.seen.append(transition)
        return {}


def test_vector_loop_passes_true_final_observations():
    env = gym.make_vec("CartPole-v1", num_envs=3, vectorization_mode="sync",
                       vector_kwargs={"autoreset_mode": gym.vector.AutoresetMode.SAME_STEP})
    agent = RandomAgent(env.single_action_space)
    loop = Interaction(agent, env, seed=0)
    while loop.episodes < 4:
        loop.step()
    assert loop.steps == 3 * len(agent.seen)
    ends = [(t, i) for t in agent.seen for i in np.flatnonzero(t.terminated)]
    assert ends
    for t, i in ends:
        # a CartPole episode terminates because the pole or cart left its bounds: the final obs shows it
        x, theta = t.next_observation[i][0], t.next_observation[i][2]
        assert abs(x) > 2.4 or abs(theta) > 0.2095
    assert len(loop.episode_returns) == loop.episodes and all(r == n for r, n in zip(loop.episode_returns, loop.episode_lengths))


def test_evaluation_caps_steps_when_the_env_has_no_time_limit():
    env = gym.make("CliffWalking-v1")

    class Looper(Agent):
        def act(self, observation, explore=True):
            return 0  # walk into the top wall forever

    returns = evaluate(Looper(None, None, None), env, episodes=2, seed=0, step_cap=50)
    assert returns == [-50.0, -50.0]


def test_every_fires_once_per_due_step_even_when_steps_jump():
    from llmagentos.core.schedules import Every

    evals, fired = Every(10), []
    for step in (4, 9, 10, 13, 35, 36, 40):  # a vector env's step count jumps past several multiples at once
        if evals.due(step):
            fired.append(step)
            evals.done(step)
    assert fired == [10, 35, 40] and evals.next == 50
    never = Every(None)
    assert not never.due(10**9)


def test_every_spreads_points_over_a_budget_and_resumes_on_the_same_multiples():
    """A fractional period is due at round(k · total / points), the lifelong curve points; ``Every.after`` gives a
    resumed loop (MAML's logs and checkpoints) the multiples the uninterrupted loop had."""
    from fractions import Fraction

    from llmagentos.core.schedules import Every

    for total, points in ((1000, 3), (600, 5), (7, 4), (2500, 1)):
        spread, fired = Every(Fraction(total, points), next_at=0), []
        for step in range(total):
            if spread.due(step):
                spread.done(step)
                fired.append(step)
        assert fired == [round(k * total / points) for k in range(points)]
    resumed = Every.after(500, 1000)
    assert not resumed.due(1499) and resumed.due(1500) and Every.after(500, 0).next == 500
    assert not Every.after(None, 10).due(10**9)


class _CyclingAgent(Agent):
    """Acts 0, 1, 2, 3, 0, … and learns nothing: the loop's own bookkeeping is all there is to compare."""

    def __init__(self) -> None:
        self.t = 0

    def act(self, observation, explore: bool = True):
        self.t += 1
        return self.t % 4

    def observe(self, transition: Transition) -> dict[str, float]:
        return {}


def test_a_restored_interaction_steps_and_snapshots_as_the_uninterrupted_one():
    """A loop restored after the env checker's first step goes on exactly as the uninterrupted loop: same
    transitions and the same recorded env state (the checker's own state included) at the next snapshot."""
    def run(steps, loop=None, agent=None):
        agent = agent or _CyclingAgent()
        loop = loop or Interaction(agent, gym.make("CliffWalking-v1", max_episode_steps=30), seed=3)
        for _ in range(steps):
            loop.step()
        return loop, agent

    whole, _ = run(80)
    half, half_agent = run(40)
    agent = _CyclingAgent()
    agent.t = half_agent.t
    resumed = Interaction(agent, gym.make("CliffWalking-v1", max_episode_steps=30), seed=3)
    resumed.load_state(json.loads(json.dumps(half.state())))
    run(40, resumed, agent)
    assert json.dumps(resumed.state(), sort_keys=True) == json.dumps(whole.state(), sort_keys=True)
