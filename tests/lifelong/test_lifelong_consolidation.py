"""The interfering CartPole task (reversed push), CLEAR replay's RL + cloning loss, PackNet's retraining."""

import copy

import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

from llmagentos.core.errors import UsageError
from llmagentos.envs.families import get_family
from llmagentos.learners.common.buffers import ReplayBatch
from llmagentos.learners.dqn import DQN, DQNConfig, dqn_loss
from llmagentos.lifelong.agent import network_view
from llmagentos.lifelong.consolidation import ConsolidationConfig, log_policy
from llmagentos.lifelong.strategies.packnet import PackNet
from llmagentos.lifelong.strategies.replay import Replay


def test_negative_force_reverses_the_push_and_is_in_the_descriptor():
    family = get_family("cartpole")
    normal = family.make({}, append_task=True)
    mirrored = family.make({"force_mag": -10.0}, append_task=True)
    check_env(mirrored.unwrapped, skip_render_check=True)
    a, _ = normal.reset(seed=3)
    b, _ = mirrored.reset(seed=3)
    actions = np.random.default_rng(0).integers(2, size=40)
    for action in actions:  # action 1 with a negative force is action 0 with the positive one
        a, _, done_a, _, _ = normal.step(int(action))
        b, _, done_b, _, info = mirrored.step(int(1 - action))
        np.testing.assert_allclose(a[:4], b[:4], rtol=0, atol=1e-6)
        assert done_a == done_b
        if done_a:
            break
    assert b[-1] == -1.0 and a[-1] == 1.0 and info["task"]["force_mag"] == -10.0  # the descriptor tells them apart
    assert family.validate({"force_mag": -5}) == {**family.default(), "force_mag": -5.0}
    for bad in ({"force_mag": 0.0}, {"pole_length": -1.0}):
        with pytest.raises(UsageError, match="must be a"):
            family.validate(bad)
        with pytest.raises(UsageError, match="must be a"):
            mirrored.unwrapped.set_task(bad)
    assert get_family("cartpole").make().unwrapped.force_mag == 10.0  # the default is still CartPole-v1's


def _learner_with_data(steps: int = 60, seed: int = 0) -> DQN:
    config = DQNConfig(hidden=[16], batch_size=8, learning_starts=10_000, buffer_size=200, n_step=2)
    env = get_family("cartpole").make({}, append_task=True)
    learner = DQN(env.observation_space, env.action_space, config, seed=seed)
    from llmagentos.core.agent import Transition

    obs, _ = env.reset(seed=seed)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        action = int(rng.integers(2))
        nxt, r, term, trunc, _ = env.step(action)
        learner.observe(Transition(obs, action, r, nxt, term, trunc))
        obs = env.reset()[0] if term or trunc else nxt
    return learner


def test_clear_replay_adds_the_td_loss_to_behaviour_and_value_cloning_on_old_transitions():
    learner = _learner_with_data(steps=60)
    view = network_view(learner)
    config = ConsolidationConfig(strategy="replay", replay_per_task=10, replay_batch=6, bc_policy_weight=0.5,
                                 bc_value_weight=2.0, replay_td_weight=3.0)
    replay = Replay(view, config, seed=1)
    recent = 25
    rows = len(learner.buffer)
    states = learner.buffer.obs[rows - 30:rows].copy()
    with torch.no_grad():  # what the network gave on those states when it acted there (behaviour time) ...
        behaviour = learner.q_net(torch.as_tensor(states)).numpy() + 0.25
    replay.end_task(0, states, steps=recent, outputs=behaviour)
    last = {tuple(o) for o in learner.buffer.obs[rows - recent:rows]}
    assert len(replay.states) == 10 and all(tuple(o) in {tuple(s) for s in states} for o in replay.states)
    kept = [next(i for i, s in enumerate(states) if np.array_equal(s, o)) for o in replay.states]
    # ... is what replay clones, not the outputs when the task ended (CLEAR stores behaviour-time outputs)
    assert torch.equal(replay.targets, torch.as_tensor(behaviour[kept]))
    assert set(replay.transitions) == set(ReplayBatch.FIELDS)
    assert all(tuple(o) in last for o in replay.transitions["obs"])  # TD rows from the task's own recent memory
    with torch.no_grad():  # the network moves on (a later task), so cloning and TD terms are non-zero
        for p in learner.q_net.parameters():
            p.add_(0.1 * torch.randn_like(p))
    rng = copy.deepcopy(replay.rng)
    penalty = replay.penalty()
    idx = rng.integers(10, size=6)
    out = learner.q_net(torch.as_tensor(replay.states[idx]))
    old = replay.targets[torch.as_tensor(idx)]
    p_old = torch.softmax(old, -1)
    kl = (p_old * (torch.log(p_old) - log_policy(out, 1.0))).sum(-1).mean()
    value = ((out - old) ** 2).sum(-1).mean()
    rows_td = rng.integers(len(replay.transitions["obs"]), size=6)
    batch = ReplayBatch(*(torch.as_tensor(replay.transitions[f][rows_td]) for f in ReplayBatch.FIELDS))
    td, _ = dqn_loss(learner.q_net, learner.target_net, batch, learner.config.gamma, True, True)
    assert td > 0 and kl > 0 and value > 0
    assert penalty.item() == pytest.approx((0.5 * kl + 2.0 * value + 3.0 * td).item(), rel=1e-5)
    penalty.backward()  # the whole penalty trains the online network
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in learner.q_net.parameters())


def test_packnet_retrains_only_the_weights_it_kept_and_leaves_pruned_ones_at_zero():
    results = {}
    for steps in (0, 30):
        learner = _learner_with_data(steps=80)
        view = network_view(learner)
        packnet = PackNet(view, ConsolidationConfig(strategy="packnet", packnet_retrain_steps=steps,
                                                    packnet_retrain_batch=16, packnet_retrain_lr=1e-2))
        before = {n: p.detach().clone() for n, p in learner.q_net.named_parameters()}
        packnet.end_task(0, np.zeros((0, 9), np.float32), tasks_left=2, steps=80)
        results[steps] = {n: p.detach().clone() for n, p in learner.q_net.named_parameters()}
        for n, p in learner.q_net.named_parameters():
            kept = packnet.owner[n] == 0
            assert torch.all(p[~kept] == 0)  # pruned weights stay free (zero) for later tasks
            assert torch.equal(packnet.frozen[n], p.detach())  # what is kept is frozen after retraining
            if steps == 0:
                assert torch.equal(p[kept], before[n][kept])
    weight = "trunk.0.weight"
    assert not torch.equal(results[30][weight], results[0][weight])  # retraining moved the kept weights


def test_return_floor_scales_with_the_return_and_either_signal_raises_the_alarm():
    from llmagentos.lifelong.detection import ChangeDetector, Cusum, DetectionConfig

    # CartPole-sized returns that never vary: a return of 499 is no change, a fall to 300 is
    absolute = Cusum("down", slack=1.0, threshold=5.0, window=20, warmup=10, min_scale=0.05)
    relative = Cusum("down", slack=1.0, threshold=5.0, window=20, warmup=10, min_scale=0.05, min_relative=0.05)
    series = [500.0] * 30 + [499.0] * 3
    assert any(absolute.update(x) for x in series)  # σ floor 0.05: one point lost is 20 σ
    assert not any(relative.update(x) for x in series)  # floor 5 % of 500 = 25
    assert any(relative.update(x) for x in [300.0, 300.0])
    # "both": returns steady, TD errors jump -> the TD detector alone raises the alarm (and both detectors reset)
    detector = ChangeDetector(DetectionConfig(detect_signal="both", detect_warmup=10, detect_window=20))
    fired = []
    for episode in range(60):
        for _ in range(10):
            detector.observe_step(0.01 if episode < 40 else 1.0)
        if detector.end_episode(1.0, step=episode):
            fired.append(episode)
    assert fired == [40] and detector.detections[0]["signals"] == ["td_error"]


def test_strategy_names_come_from_the_registry():
    """One registry line per strategy: its name, the ``strategy`` choices, the config's fields, the spec block's
    choices and the docs' table all follow from the strategy classes listed in ``STRATEGY_TARGETS``."""
    import dataclasses
    import typing
    from pathlib import Path

    from llmagentos.jobs.lifelong import LifelongBlock
    from llmagentos.lifelong.consolidation import STRATEGIES, STRATEGY_CLASSES, STRATEGY_TARGETS

    assert STRATEGIES == ("finetune", "ewc", "si", "lwf", "replay", "packnet") and len(STRATEGY_TARGETS) == len(STRATEGIES)
    assert typing.get_args(typing.get_type_hints(ConsolidationConfig)["strategy"]) == STRATEGIES
    fields = {f.name for f in dataclasses.fields(ConsolidationConfig)}
    for cls in STRATEGY_CLASSES.values():
        assert cls.Fields is None or {f.name for f in dataclasses.fields(cls.Fields)} <= fields
    schema = LifelongBlock.model_json_schema()
    assert tuple(schema["properties"]["strategies"]["items"]["enum"]) == STRATEGIES
    docs = (Path(__file__).parents[2] / "docs" / "lifelong.md").read_text(encoding="utf-8")
    assert all(f"`{name}`" in docs for name in STRATEGIES)


@pytest.mark.parametrize("name", ["os:system", "llmagentos.lifelong.strategies.ewc:EWC", "subprocess:run"])
def test_a_spec_cannot_name_a_module_as_a_strategy(name):
    """Strategy classes are loaded from the registry's own targets only: a spec naming anything else is refused
    before a module is imported."""
    from llmagentos.jobs.lifelong import validate_block

    with pytest.raises(UsageError, match="lifelong.strategies"):
        validate_block({"family": "goal-grid", "tasks": 2, "steps_per_task": 10, "learner": "q-learning",
                        "strategies": [name]})
