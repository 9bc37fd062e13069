"""The lifelong agent: consolidation keeps an old task, a stopped agent resumes exactly, PackNet isolates weights."""

import numpy as np
import pytest
import torch

from llmagentos.core.errors import UsageError
from llmagentos.kernel.checkpoint import load_state, save_state
from llmagentos.jobs.lifelong import LifelongBlock, build_agent, resolve_stream, run_arm, validate_block
from llmagentos.lifelong.agent import StreamRunConfig, run_stream
from llmagentos.lifelong.consolidation import ConsolidationConfig, NetworkView
from llmagentos.lifelong.strategies.packnet import PackNet
from llmagentos.lifelong.stream import DriftingWorld, TaskStream

DQN = {"learning_starts": 100, "exploration_steps": 600, "buffer_size": 2000, "target_update_interval": 50,
       "train_freq": 1, "hidden": [64], "learning_rate": 3e-3}


def small_block(**kw):
    base = dict(family="goal-grid", family_options={"size": 3}, tasks=[{"goal": [2, 2]}, {"goal": [0, 2]}, {"goal": [2, 0]}],
                steps_per_task=400, append_task=True, learner="dqn", config=dict(DQN), eval_episodes=1, curve_points=2)
    base.update(kw)
    return LifelongBlock(**base)


def test_stopped_after_second_task_and_resumed_equals_uninterrupted(tmp_path):
    block = small_block()
    stream = resolve_stream(block)
    full = run_stream(build_agent(block, stream, "replay", seed=3), stream, seed=3, run=StreamRunConfig(1, 2))

    def stop_after_second(position, snapshot):
        if position == 1:
            save_state(tmp_path / "ckpt", snapshot, {"algo": "dqn"})
            return False
        return True

    part = run_stream(build_agent(block, stream, "replay", seed=3), stream, seed=3, run=StreamRunConfig(1, 2),
                      on_task_end=stop_after_second)
    assert part["stopped_after"] == 1 and len(part["raw_matrix"]) == 2
    state, _ = load_state(tmp_path / "ckpt")  # through safetensors + JSON, as on another machine
    resumed = run_stream(build_agent(block, stream, "replay", seed=3), stream, seed=3, run=StreamRunConfig(1, 2), state=state)
    assert resumed["raw_matrix"] == full["raw_matrix"]
    assert resumed["curves"] == full["curves"] and resumed["life"] == full["life"]


def test_arm_checkpoints_let_a_rerun_continue(tmp_path):
    block = small_block(strategies=["ewc"])
    first = run_arm({"block": block.model_dump(), "seed": 0, "arm": "ewc", "out": str(tmp_path), "stop_after": 0})
    assert len(first["raw_matrix"]) == 1
    second = run_arm({"block": block.model_dump(), "seed": 0, "arm": "ewc", "out": str(tmp_path)})
    straight = run_arm({"block": block.model_dump(), "seed": 0, "arm": "ewc"})
    assert second["raw_matrix"] == straight["raw_matrix"] and len(second["raw_matrix"]) == 3


def test_replay_keeps_the_first_task_that_finetuning_forgets():
    block = small_block(steps_per_task=1000)
    stream = resolve_stream(block)
    finals = {}
    for strategy in ("finetune", "replay"):
        r = run_stream(build_agent(block, stream, strategy, seed=0), stream, seed=0, run=StreamRunConfig(1, 2))
        finals[strategy] = r["raw_matrix"]
    # both learned task 0 when it was current; only replay still solves it at the end
    assert finals["finetune"][0][0] > 0.5 and finals["replay"][0][0] > 0.5
    assert finals["replay"][-1][0] > 0.5 > finals["finetune"][-1][0]


def test_ewc_keeps_the_first_goal_that_finetuning_forgets_and_still_learns_the_second():
    # two goals of a 3×3 grid, the goal appended to the observation: the tasks interfere only through the
    # weights they share, which EWC's Fisher marks as important for the first goal
    block = small_block(steps_per_task=600, tasks=[{"goal": [2, 2]}, {"goal": [0, 2]}], lifelong={"ewc_lambda": 1e4})
    stream = resolve_stream(block)
    R = {s: run_stream(build_agent(block, stream, s, seed=0), stream, seed=0, run=StreamRunConfig(2, 2))["raw_matrix"]
         for s in ("finetune", "ewc")}
    assert R["finetune"][0][0] > 0.5 and R["ewc"][0][0] > 0.5  # both learned the first goal while it was current
    assert R["finetune"][1][0] < 0 < 0.5 < R["ewc"][1][0]  # only EWC still reaches it after the second task
    assert R["ewc"][1][1] > 0.5  # and EWC learned the second goal too


def test_packnet_freezes_kept_weights_and_masks_later_ones():
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(3, 8), torch.nn.Tanh(), torch.nn.Linear(8, 2))
    view = NetworkView(net, lambda o: torch.as_tensor(o, dtype=torch.float32))
    packnet = PackNet(view, ConsolidationConfig(strategy="packnet"))
    states = np.random.default_rng(0).normal(size=(16, 3)).astype(np.float32)
    packnet.end_task(0, states, tasks_left=2)
    kept = {n: (packnet.owner[n] == 0).clone() for n, _ in net.named_parameters()}
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    assert kept["0.weight"].float().mean() == pytest.approx(0.5, abs=0.05)
    opt = torch.optim.SGD(net.parameters(), lr=0.5)
    opt.register_step_post_hook(lambda *_: packnet.after_update())
    net(torch.as_tensor(states)).pow(2).sum().backward()
    opt.step()
    for n, p in net.named_parameters():
        assert torch.equal(p[kept[n]], before[n][kept[n]])  # task 0's weights do not move
    assert not torch.equal(net[0].weight, before["0.weight"])  # the free ones do
    with torch.no_grad():
        trained = net(torch.as_tensor(states)).clone()
    with packnet.evaluating(0, current=1):
        with torch.no_grad():
            masked = net(torch.as_tensor(states))
        assert torch.all(net[0].weight[~kept["0.weight"]] == 0)
    with torch.no_grad():
        assert torch.equal(net(torch.as_tensor(states)), trained)  # weights restored after evaluation
    assert not torch.equal(masked, trained)


def test_drifting_world_switches_without_notice_and_logs_when():
    stream = TaskStream("goal-grid", [{"goal": [2, 2]}, {"goal": [0, 2]}], 50, {"size": 3})
    world = DriftingWorld(stream, "abrupt")
    world.reset(seed=0)
    world.action_space.seed(0)  # random actions must not make episode lengths, hence switch steps, vary
    goals, reset_steps = [], []
    for step in range(1, 201):
        _, _, terminated, truncated, info = world.step(world.action_space.sample())
        goals.append(tuple(info["task"]["goal"]))
        if terminated or truncated:
            world.reset()
            reset_steps.append(step)
    assert (0, 2) in goals and (2, 2) in goals
    # the task changes at the first reset at or after each 50-step boundary, and the log says when
    first_resets = [min(r for r in reset_steps if r >= b) for b in (50, 100, 150) if any(r >= b for r in reset_steps)]
    assert world.switch_steps() == sorted(set(first_resets))


def test_bad_blocks_are_refused_with_the_field():
    with pytest.raises(UsageError, match="lifelong.lifelong"):
        validate_block({**small_block().model_dump(), "lifelong": {"ewc_lambda": "lots"}})
    with pytest.raises(UsageError, match="strategy finetune"):
        build_agent(small_block(learner="q-learning", config={}, append_task=False), resolve_stream(
            small_block(learner="q-learning", config={}, append_task=False)), "ewc", 0)


def test_agent_kept_in_the_store_continues_elsewhere(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMAGENTOS_STORE", str(tmp_path / "store"))
    from llmagentos.kernel.store import Store

    block = small_block(agent="life", strategies=["finetune"], steps_per_task=300)
    run_arm({"block": block.model_dump(), "seed": 1, "arm": "finetune", "out": str(tmp_path / "a"), "stop_after": 1})
    with Store() as store:
        assert store.agent("life-finetune-s1").version == 2
        entries = store.query_knowledge(agent="life-finetune-s1")
        assert len(entries) == 2 and all(isinstance(e["descriptor"], list) for e in entries)
    # another run directory (no checkpoint there): the stored agent is continued from its third task
    continued = run_arm({"block": block.model_dump(), "seed": 1, "arm": "finetune", "out": str(tmp_path / "b")})
    straight = run_arm({"block": small_block(strategies=["finetune"], steps_per_task=300).model_dump(), "seed": 1,
                        "arm": "finetune"})
    assert continued["raw_matrix"] == straight["raw_matrix"]


def test_unannounced_switch_is_detected_and_starts_a_new_task():
    block = LifelongBlock(family="goal-grid", family_options={"size": 4}, tasks=[{"goal": [3, 0]}, {"goal": [0, 3]}],
                          steps_per_task=4000, learner="q-learning", config={"alpha": 0.5, "epsilon": 0.1},
                          strategies=["finetune"], references=False, lifelong={"transfer": "probe"},
                          drift={"mode": "abrupt", "total_steps": 8000})
    result = run_arm({"block": block.model_dump(), "seed": 0, "arm": "finetune"})
    assert len(result["switches"]) == 1
    assert result["delays"][0] is not None and result["delays"][0] <= 300
    assert result["false_alarms"] == []
    assert len(result["knowledge"]) == 2 and result["knowledge"][1]["started_at"] == result["detections"][0]
