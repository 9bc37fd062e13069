"""DQN: the target's formula by hand, the replay memory's bookkeeping, learning on CartPole, logging."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from llmagentos.cli import main
from llmagentos.kernel.checkpoint import load_state, save_state
from llmagentos.jobs.train import train
from llmagentos.kernel.run import TrainSpec
from llmagentos.learners.common.buffers import ReplayBatch, ReplayBuffer
from llmagentos.learners.dqn import DQN, DQNConfig, dqn_loss, dqn_target


class TableQ(nn.Module):
    """Q(s, ·) read from a fixed table; observations are state indices (as floats)."""

    def __init__(self, table: list[list[float]]) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.tensor(table, dtype=torch.float32))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.table[obs.long().view(-1)]


def batch_of(rows: list[tuple[int, int, float, int, float, float]]) -> ReplayBatch:
    obs, action, reward, next_obs, terminated, n = map(list, zip(*rows))
    return ReplayBatch(torch.tensor(obs, dtype=torch.float32), torch.tensor(action), torch.tensor(reward),
                       torch.tensor(next_obs, dtype=torch.float32), torch.tensor(terminated), torch.tensor(n))


def test_target_cuts_bootstrap_at_termination_but_not_at_truncation():
    gamma = 0.9
    online = TableQ([[0.0, 0.0], [0.0, 0.0], [0.0, 0.0]])
    target = TableQ([[0.0, 0.0], [3.0, 5.0], [0.0, 0.0]])
    buffer = ReplayBuffer(4, (), np.float32)
    buffer.add(0.0, 0, 1.0, 1.0, True, False)   # s' terminal: y = r
    buffer.add(0.0, 1, 1.0, 1.0, False, True)   # time limit: y = r + γ max Q'(s')
    buffer.add(0.0, 1, 1.0, 1.0, False, False)  # ordinary step: same as the truncation
    assert buffer.terminated[:3].tolist() == [1.0, 0.0, 0.0]
    batch = ReplayBatch(*(torch.from_numpy(getattr(buffer, f)[:3].copy()) for f in ReplayBatch.FIELDS))
    y = dqn_target(online, target, batch, gamma)
    assert y.tolist() == pytest.approx([1.0, 1.0 + 0.9 * 5.0, 1.0 + 0.9 * 5.0])


def test_double_dqn_values_the_online_argmax_with_the_target_network():
    online = TableQ([[0.0, 0.0], [1.0, 0.0]])   # online prefers action 0 in s'=1
    target = TableQ([[0.0, 0.0], [2.0, 5.0]])   # the target network would prefer action 1
    batch = batch_of([(0, 0, 1.0, 1, 0.0, 1.0)])
    assert dqn_target(online, target, batch, 0.5, double=False).item() == pytest.approx(1.0 + 0.5 * 5.0)
    assert dqn_target(online, target, batch, 0.5, double=True).item() == pytest.approx(1.0 + 0.5 * 2.0)
    # the loss is the Huber (or squared) error between Q(s, a) and that target
    loss, q = dqn_loss(online, target, batch, 0.5, double=True, huber=False)
    assert q.item() == 0.0 and loss.item() == pytest.approx(2.0 ** 2)
    loss, _ = dqn_loss(online, target, batch, 0.5, double=True, huber=True)
    assert loss.item() == pytest.approx(2.0 - 0.5)


def test_n_step_returns_match_a_hand_computation():
    g = 0.5
    buffer = ReplayBuffer(10, (), np.float32, n_step=3, gamma=g)
    for s, r in enumerate([1.0, 2.0, 3.0, 4.0]):
        buffer.add(float(s), s % 2, r, float(s + 1), False, False)
    # two full windows: (s0: 1 + .5·2 + .25·3, s'=3) and (s1: 2 + .5·3 + .25·4, s'=4)
    assert buffer.size == 2
    assert buffer.reward[:2].tolist() == pytest.approx([2.75, 4.5])
    assert buffer.next_obs[:2].tolist() == [3.0, 4.0] and buffer.n_steps[:2].tolist() == [3.0, 3.0]
    buffer.add(4.0, 0, 5.0, 5.0, True, False)  # termination flushes the open windows with fewer rewards
    assert buffer.size == 5
    assert buffer.obs[2:5].tolist() == [2.0, 3.0, 4.0]
    assert buffer.reward[2:5].tolist() == pytest.approx([3 + g * 4 + g * g * 5, 4 + g * 5, 5.0])
    assert buffer.n_steps[2:5].tolist() == [3.0, 2.0, 1.0]
    assert buffer.terminated[2:5].tolist() == [1.0, 1.0, 1.0] and buffer.next_obs[2:5].tolist() == [5.0] * 3
    buffer.add(10.0, 1, 1.0, 11.0, False, False)
    buffer.add(11.0, 1, 1.0, 12.0, False, True)  # truncation: flushed, but never marked terminal
    assert buffer.terminated[5:7].tolist() == [0.0, 0.0] and buffer.reward[5:7].tolist() == pytest.approx([1.5, 1.0])
    # and the target uses γ^n for those rows: y = R + γ^n max Q'(s')
    online = target = TableQ([[0.0]] * 12 + [[8.0]])
    batch = ReplayBatch(*(torch.from_numpy(getattr(buffer, f)[5:7].copy()) for f in ReplayBatch.FIELDS))
    assert dqn_target(online, target, batch, g).tolist() == pytest.approx([1.5 + g ** 2 * 8, 1.0 + g * 8])


def test_replay_buffer_wraps_around_and_takes_vector_batches(tmp_path):
    buffer = ReplayBuffer(5, (2,), np.float32, num_envs=3)
    for k in range(3):  # 9 rows into 5 slots: the oldest four are overwritten
        obs = np.arange(3 * k, 3 * k + 3, dtype=np.float32)[:, None].repeat(2, axis=1)
        buffer.add(obs, np.array([k, k, k]), np.ones(3), obs + 100, np.zeros(3, bool), np.zeros(3, bool))
    assert buffer.size == 5 and buffer.pos == 4
    assert sorted(buffer.obs[:, 0].tolist()) == [4.0, 5.0, 6.0, 7.0, 8.0]
    assert buffer.obs[:4, 0].tolist() == [5.0, 6.0, 7.0, 8.0]
    sample = buffer.sample(64, np.random.default_rng(1))
    assert set(sample.obs[:, 0].tolist()) <= {4.0, 5.0, 6.0, 7.0, 8.0}
    assert np.all(sample.next_obs == sample.obs + 100)
    # contents survive a trip through a checkpoint (safetensors + JSON), and so does the sampling
    save_state(tmp_path / "buf", buffer.state_dict(), {})
    copy = ReplayBuffer(5, (2,), np.float32, num_envs=3)
    copy.load_state_dict(load_state(tmp_path / "buf")[0])
    a, b = buffer.sample(8, np.random.default_rng(2)), copy.sample(8, np.random.default_rng(2))
    assert all(np.array_equal(getattr(a, f), getattr(b, f)) for f in ReplayBatch.FIELDS)


def test_dqn_learns_cartpole(tmp_path):
    # a seeded, small budget: the greedy policy must balance for 195+ steps on average
    summary = train(env="CartPole-v1", algo="dqn", steps=8_000, seed=0, eval_every=4_000, eval_episodes=5,
                    tensorboard=False, out=str(tmp_path / "run"))
    assert summary["eval"]["mean_return"] >= 195, summary["curve"]


def test_vector_env_batches_go_in_as_rows(tmp_path):
    summary = train(env="CartPole-v1", algo="dqn", steps=1_200, seed=1, config={"num_envs": 4, "learning_starts": 400, "n_step": 1},
                    eval_every=600, eval_episodes=1, tensorboard=False, out=str(tmp_path / "run"))
    assert summary["steps"] == 1_200 and summary["episodes"] > 0
    from llmagentos.kernel.run import load_agent

    agent = load_agent(tmp_path / "run")
    assert len(agent.buffer) == 1_200 and agent.t == 1_200 and agent.updates == (1_200 - 400) // 4 + 1


def test_tensorboard_event_files_hold_loss_q_and_epsilon(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train(env="CartPole-v1", algo="dqn", steps=600, seed=0, config={"learning_starts": 200}, eval_every=300,
          eval_episodes=1, out=str(tmp_path / "run"))
    events = list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    assert events
    acc = EventAccumulator(str(tmp_path / "run" / "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"train/loss", "train/q_mean", "train/epsilon", "eval/mean_return", "episode/return"} <= tags


def test_default_budget_comes_from_the_config():
    spec = TrainSpec(env="CartPole-v1", algo="dqn")
    spec.validate()
    assert spec.steps == DQNConfig.DEFAULT_STEPS["CartPole-v1"] and spec.episodes is None


@pytest.mark.parametrize("argv, message", [
    (["--env", "Pendulum-v1"], "Discrete action space"),
    (["--env", "CartPole-v1", "--set", "n_step=0"], "n_step must be positive"),
    (["--env", "CartPole-v1", "--set", "tau=1.5"], "tau must be in (0, 1]"),
])
def test_bad_input_is_refused_with_exit_2(argv, message, tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["train", "--algo", "dqn", "--steps", "100", "--out", str(tmp_path / "run"), *argv])
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "run").exists()


def test_extra_loss_hook_reaches_the_gradient():
    import gymnasium as gym

    class Anchored(DQN):
        def extra_loss(self):
            return 1e6 * sum((p ** 2).sum() for p in self.q_net.head.parameters())

    env = gym.make("CartPole-v1")
    config = DQNConfig(learning_starts=32, batch_size=32, train_freq=1, learning_rate=1e-2)
    plain, anchored = DQN(env.observation_space, env.action_space, config, 0), Anchored(env.observation_space, env.action_space, config, 0)
    obs, _ = env.reset(seed=0)
    from llmagentos.core.agent import Transition

    for _ in range(40):
        nxt, r, term, trunc, _ = env.step(0)
        for agent in (plain, anchored):
            agent.observe(Transition(obs, 0, r, nxt, term, trunc))
        obs = nxt if not (term or trunc) else env.reset()[0]
    head_norm = lambda a: sum(float((p.detach() ** 2).sum()) for p in a.q_net.head.parameters())  # noqa: E731
    assert head_norm(anchored) < 0.5 * head_norm(plain)
