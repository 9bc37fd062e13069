"""Observations of every common kind reach every deep learner: HWC and CHW frames of any size, Dict and Tuple
observations, Discrete observations for policy gradients, MultiDiscrete and MultiBinary actions; through the CLI, a
spec and Python, with eval and resume in new processes; and the spaces no adapter serves refused in one sentence."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from helpers import cli, comparable, importable_module, interrupt, one_json, run

import llmagentos
from llmagentos.core.errors import UsageError
from llmagentos.kernel.run import make_agent, make_config
from llmagentos.learners.dqn import DQN
from llmagentos.learners.common.encoders import ObservationAdapter, ObservationEncoder
from llmagentos.learners.common.networks import NatureCNN, SmallCNN

WORLD = '''
"""Worlds whose observations are frames, tuples, Dicts and multi-part actions (written by the tests)."""
import gymnasium as gym
import numpy as np
from gymnasium import spaces


class Lamp(gym.Env):
    """A frame with one lit half; the action toward the light (0: left, 1: right) pays 1. Four steps an episode."""

    def __init__(self, layout="hwc", size=8):
        self.layout, self.size = layout, size
        shape = (size, size, 3) if layout == "hwc" else (3, size, size)
        self.observation_space = spaces.Box(0, 255, shape, np.uint8)
        self.action_space = spaces.Discrete(2)

    def _frame(self):
        frame = np.zeros((3, self.size, self.size), np.uint8)
        half = self.size // 2
        frame[:, :, self.side * half:(self.side + 1) * half] = 255
        frame[0, 0, 0] = 40 * self.t  # a dim clock in one corner
        return frame.transpose(1, 2, 0).copy() if self.layout == "hwc" else frame

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.side = 0, int(self.np_random.integers(2))
        return self._frame(), {}

    def step(self, action):
        reward = float(int(action) == self.side)
        self.t += 1
        self.side = int(self.np_random.integers(2))
        return self._frame(), reward, False, self.t >= 4, {}


class Signal(gym.Env):
    """A (cue, noise) Tuple observation; the action equal to the cue pays 1. Four steps an episode."""

    def __init__(self):
        self.observation_space = spaces.Tuple((spaces.Discrete(3), spaces.Box(-1.0, 1.0, (2,), np.float32)))
        self.action_space = spaces.Discrete(3)

    def _obs(self):
        return (self.cue, self.np_random.uniform(-1, 1, 2).astype(np.float32))

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.cue = 0, int(self.np_random.integers(3))
        return self._obs(), {}

    def step(self, action):
        reward = float(int(action) == self.cue)
        self.t += 1
        self.cue = int(self.np_random.integers(3))
        return self._obs(), reward, False, self.t >= 4, {}


class Mirror(gym.Env):
    """Copy the observed MultiDiscrete cue (or MultiBinary switches) into the action; each matching part pays."""

    def __init__(self, binary=False):
        self.binary = binary
        space = spaces.MultiBinary(3) if binary else spaces.MultiDiscrete([3, 2, 4], start=[1, 0, -2])
        self.observation_space, self.action_space = space, space

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        self.cue = self._draw()
        return self.cue, {}

    def _draw(self):
        if self.binary:
            return self.np_random.integers(2, size=3).astype(np.int8)
        return self.observation_space.start + self.np_random.integers(self.observation_space.nvec)

    def step(self, action):
        reward = float(np.mean(np.asarray(action) == self.cue))
        self.t += 1
        self.cue = self._draw()
        return self.cue, reward, False, self.t >= 4, {}


class Bag(gym.Env):
    """Observations that are variable-length sequences: no adapter serves them."""

    def __init__(self):
        self.observation_space = spaces.Sequence(spaces.Discrete(3))
        self.action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        return (1, 2), {}

    def step(self, action):
        return (1,), 0.0, True, False, {}


gym.register("Lamp-v0", entry_point="obsworld:Lamp")
gym.register("Signal-v0", entry_point="obsworld:Signal")
gym.register("Mirror-v0", entry_point="obsworld:Mirror")
gym.register("Bag-v0", entry_point="obsworld:Bag")
'''

@pytest.fixture(scope="module")
def world_dir(tmp_path_factory):
    """A folder holding the module obsworld, importable by this process and by the CLI run from the folder."""
    with importable_module(tmp_path_factory.mktemp("obsworld"), "obsworld", WORLD) as folder:
        yield folder


def run_json(cwd: Path, *args: str) -> dict:
    """The JSON of ``llmagentos ARGS`` run in a new process in ``cwd``."""
    return one_json(run(cwd, *args))


def first_checkpoint(run_dir: Path) -> str:
    return sorted(p.stem for p in (run_dir / "checkpoints").glob("step-*.json"))[0]


# -- the adapters ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("shape, channels_last", [((7, 7, 3), True), ((3, 7, 7), False), ((84, 84, 4), True),
                                                  ((4, 84, 84), False), ((10, 10, 10), True), ((64, 64, 3), True)])
def test_the_channel_axis_is_the_small_one(shape, channels_last):
    adapter = ObservationAdapter(gym.spaces.Box(0, 255, shape, np.uint8))
    (part,) = adapter.parts
    assert part.kind == "image" and part.channels_last is channels_last and part.scale
    assert adapter.shape == shape and adapter.dtype == np.uint8  # frames stay bytes until the network


def test_dict_tuple_discrete_and_multi_spaces_become_compact_rows():
    minigrid_like = gym.spaces.Dict({"direction": gym.spaces.Discrete(4),
                                     "image": gym.spaces.Box(0, 255, (7, 7, 3), np.uint8),
                                     "mission": gym.spaces.Text(20)})
    adapter = ObservationAdapter(minigrid_like)
    assert adapter.shape == (1 + 147,) and adapter.dtype == np.uint8 and adapter.ignored == ["'mission'"]
    image = np.arange(147, dtype=np.uint8).reshape(7, 7, 3)
    row = adapter({"direction": 2, "image": image, "mission": "get to the goal"})
    assert row[0] == 2 and np.array_equal(row[1:], image.ravel())
    batch = adapter({"direction": np.array([1, 3]), "image": np.stack([image, image]), "mission": ("a", "b")})
    assert batch.shape == (2, 148) and list(batch[:, 0]) == [1, 3]

    blackjack = gym.spaces.Tuple((gym.spaces.Discrete(32), gym.spaces.Discrete(11), gym.spaces.Discrete(2)))
    adapter = ObservationAdapter(blackjack)
    assert adapter.shape == (3,) and adapter.dtype == np.uint8
    assert list(adapter((14, 10, 0))) == [14, 10, 0]
    rows = adapter((np.array([14, 3]), np.array([10, 1]), np.array([0, 1])))  # a vector env's batch of two
    features = ObservationEncoder(adapter, [], "tanh", "mlp")(torch.as_tensor(rows))
    assert features.shape == (2, 32 + 11 + 2) and features.sum().item() == 6.0  # one-hot parts, concatenated

    mixed = gym.spaces.Tuple((gym.spaces.MultiDiscrete([3, 4], start=[1, -2]), gym.spaces.Box(-1.0, 1.0, (2,)),
                              gym.spaces.MultiBinary(2)))
    adapter = ObservationAdapter(mixed)
    assert adapter.dtype == np.float32  # a float part: one float row
    assert list(adapter((np.array([3, -2]), np.array([0.5, -0.25]), np.array([1, 0])))) == [2, 0, 0.5, -0.25, 1, 0]
    assert ObservationAdapter(gym.spaces.Discrete(5, start=10))(12) == 2


def test_the_cnn_fits_the_frame_and_the_encoder_field_overrides_it():
    def trunk(shape, **config):
        return DQN(gym.spaces.Box(0, 255, shape, np.uint8), gym.spaces.Discrete(2), make_config("dqn", config)).q_net.trunk

    assert isinstance(trunk((84, 84, 4)), NatureCNN) and isinstance(trunk((4, 84, 84)), NatureCNN)
    assert isinstance(trunk((7, 7, 3)), SmallCNN) and isinstance(trunk((3, 5, 5)), SmallCNN)
    assert isinstance(trunk((84, 84, 4), encoder="small-cnn"), SmallCNN)
    assert isinstance(trunk((7, 7, 3), encoder="mlp"), ObservationEncoder)
    with pytest.raises(UsageError, match="nature-cnn encoder needs images of at least 36 pixels"):
        trunk((7, 7, 3), encoder="nature-cnn")
    # a 10×10×10 MinAtar-like frame read as channels-first on request
    assert trunk((10, 10, 10)).channels_last is True and trunk((10, 10, 10), image_channels="first").channels_last is False


@pytest.mark.parametrize("algo", ["dqn", "ppo"])
def test_hwc_and_chw_frames_give_the_same_network_output(world_dir, algo):
    import obsworld

    hwc, chw = obsworld.Lamp("hwc", 40), obsworld.Lamp("chw", 40)  # 40 px: the Nature CNN
    agents = [make_agent(algo, env, seed=3) for env in (hwc, chw)]
    frames, _ = hwc.reset(seed=0)
    batch = np.stack([frames, hwc.step(1)[0]])
    outputs = []
    for agent, obs in zip(agents, (batch, batch.transpose(0, 3, 1, 2))):
        with torch.no_grad():
            net = agent.q_net if algo == "dqn" else agent.net
            outputs.append(net(torch.as_tensor(obs)) if algo == "dqn" else net(torch.as_tensor(obs))[0].log_probs)
    assert isinstance((agents[0].q_net.trunk if algo == "dqn" else agents[0].net.trunk), NatureCNN)
    assert torch.equal(outputs[0], outputs[1])


# -- learning, from Python, the CLI and a spec ----------------------------------------------------------------

def test_hwc_and_chw_worlds_train_to_the_same_result_from_python(world_dir, tmp_path):
    summaries = [llmagentos.train(env="obsworld:Lamp", algo="dqn", steps=1500, env_args={"layout": layout},
                                  eval_episodes=5, out=tmp_path / layout) for layout in ("hwc", "chw")]
    assert summaries[0]["eval"]["mean_return"] == 4.0  # always toward the light; a random policy gets 2
    same = [{k: v for k, v in comparable(s).items() if k != "env_args"} for s in summaries]
    assert same[0] == same[1]
    agent = llmagentos.load(summaries[0]["run_dir"])
    frame, _ = agent.make_env().reset(seed=1)
    assert agent.act(frame) == int(frame[0, -1, 0] == 255)  # the lit half
    assert llmagentos.evaluate(agent, episodes=3)["mean_return"] == 4.0


def test_a_frame_world_by_python_evaluates_and_resumes_in_new_processes(world_dir):
    summary = llmagentos.train(env="obsworld:Lamp-v0", algo="ppo", steps=2048, checkpoint_every=1024, eval_episodes=5,
                               out=world_dir / "lamp-ppo", overwrite=True)
    assert summary["eval"]["mean_return"] == 4.0
    run_dir = Path(summary["run_dir"])
    assert run_json(world_dir, "eval", str(run_dir), "--episodes", "5", "--json")["mean_return"] == 4.0
    interrupt(run_dir, first_checkpoint(run_dir))
    assert comparable(run_json(world_dir, "resume", str(run_dir), "--json")) == comparable(summary)


def test_a_tuple_world_from_a_spec_learns_and_resumes_in_new_processes(world_dir, capsys, monkeypatch):
    (world_dir / "signal.yaml").write_text(textwrap.dedent("""\
        imports: [obsworld]
        out: signal
        train:
          env: Signal-v0
          algo: dqn
          steps: 2000
          checkpoint_every: 1000
          eval_episodes: 5
        """))
    monkeypatch.chdir(world_dir)  # the spec's out: is relative; it runs in this process, eval and resume in new ones
    code, out, err = cli(["run", "signal.yaml", "--json"], capsys)
    assert code == 0, err
    (summary,) = json.loads(out)["runs"]
    assert summary["eval"]["mean_return"] == 4.0  # the cue names the paying action; a random policy gets 4/3
    run_dir = world_dir / "signal" / "seed-0"
    assert run_json(world_dir, "eval", str(run_dir), "--json")["mean_return"] == 4.0
    interrupt(run_dir, first_checkpoint(run_dir))
    assert comparable(run_json(world_dir, "resume", str(run_dir), "--json")) == comparable(summary)


@pytest.mark.parametrize("algo, env, steps, least", [("a2c", "obsworld:Lamp-v0", 2000, 3.5),
                                                     ("reinforce", "obsworld:Lamp-v0", 2000, 3.0),
                                                     ("ppo", "obsworld:Signal-v0", 2048, 4.0)])
def test_every_policy_gradient_learns_from_frames_and_tuples(world_dir, tmp_path, algo, env, steps, least):
    summary = llmagentos.train(env=env, algo=algo, steps=steps, eval_episodes=5, out=tmp_path / "run")
    assert summary["eval"]["mean_return"] >= least  # a random policy gets 2 on Lamp, 4/3 on Signal


@pytest.mark.parametrize("algo, binary, random_return", [("ppo", False, 4 * (1 / 3 + 1 / 2 + 1 / 4) / 3),
                                                         ("a2c", True, 2.0), ("reinforce", True, 2.0)])
def test_policy_gradients_act_in_multidiscrete_and_multibinary_spaces(world_dir, tmp_path, algo, binary, random_return):
    summary = llmagentos.train(env="obsworld:Mirror", algo=algo, steps=3000, env_args={"binary": binary},
                               eval_episodes=10, out=tmp_path / "run")
    assert summary["eval"]["mean_return"] > random_return + 1.0  # copying the cue pays 4
    agent = llmagentos.load(summary["run_dir"])
    env = agent.make_env()
    action = agent.act(env.reset(seed=5)[0])
    assert env.action_space.contains(np.asarray(action, dtype=env.action_space.dtype))


# -- MiniGrid and Taxi ----------------------------------------------------------------------------------------

def test_minigrid_image_observations_from_the_cli_evaluate_and_resume(tmp_path, capsys):
    # trained by the CLI in this process (a new one would only repeat the torch imports); eval and resume in new ones
    code, out, err = cli(["train", "--env", "minigrid:MiniGrid-Empty-5x5-v0", "--wrapper", "minigrid.wrappers:ImgObsWrapper",
                          "--algo", "ppo", "--steps", "1024", "--set", "n_steps=16", "--set", "n_epochs=4",
                          "--checkpoint-every", "512", "--eval-every", "256", "--eval-episodes", "2", "--out", str(tmp_path / "img"),
                          "--json"],
                         capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert summary["steps"] == 1024 and json.loads((tmp_path / "img" / "job.json").read_text())["wrappers"] == [
        {"name": "minigrid.wrappers:ImgObsWrapper", "args": {}}]
    result = run_json(tmp_path, "eval", "img", "--episodes", "2", "--json")
    assert result["mean_return"] == summary["eval"]["mean_return"]
    interrupt(tmp_path / "img", first_checkpoint(tmp_path / "img"))
    assert comparable(run_json(tmp_path, "resume", "img", "--json")) == comparable(summary)


def test_minigrid_dict_observations_from_python_evaluate_and_resume(tmp_path):
    import minigrid  # noqa: F401  (registers the MiniGrid ids in this process)

    summary = llmagentos.train(env="minigrid:MiniGrid-Empty-5x5-v0", algo="dqn", steps=600, checkpoint_every=300,
                               eval_every=150, eval_episodes=2, config={"learning_starts": 200, "batch_size": 32},
                               out=tmp_path / "dict")
    agent = llmagentos.load(summary["run_dir"])
    assert agent.agent.adapter.shape == (148,) and agent.agent.adapter.ignored == ["'mission'"]
    assert agent.agent.buffer.obs.dtype == np.uint8  # the replay memory holds bytes, not floats
    observation, _ = agent.make_env().reset(seed=0)
    assert agent.act(observation) in range(7)
    assert run_json(tmp_path, "eval", "dict", "--episodes", "2", "--json")["mean_return"] == summary["eval"]["mean_return"]
    interrupt(tmp_path / "dict", first_checkpoint(tmp_path / "dict"))
    assert comparable(run_json(tmp_path, "resume", "dict", "--json")) == comparable(summary)


def test_taxi_with_ppo_learns_to_stop_its_illegal_moves(tmp_path, capsys):
    code, out, _ = cli(["train", "--env", "Taxi-v4", "--algo", "ppo", "--steps", "6144", "--set", "n_epochs=10",
                        "--eval-episodes", "2", "--out", str(tmp_path / "taxi"), "--json"], capsys)
    assert code == 0
    returns = json.loads(out)["online"]["episode_returns"]
    env = gym.make("Taxi-v4")
    rng = np.random.default_rng(0)
    random_returns = []
    for episode in range(10):
        env.reset(seed=episode)
        total, done = 0.0, False
        while not done:
            _, reward, terminated, truncated, _ = env.step(int(rng.integers(6)))
            total, done = total + reward, terminated or truncated
        random_returns.append(total)
    # a random taxi pays −10 for every third action (illegal pick-ups and drop-offs); the trained one stops that
    assert np.mean(returns[-5:]) > np.mean(random_returns) + 200


# -- what is refused ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("algo, env, words", [
    ("dqn", "obsworld:Bag-v0", "dqn cannot serve the observation space Sequence(Discrete(3)"),
    ("ppo", "obsworld:Bag-v0", "ppo cannot serve the observation space Sequence(Discrete(3)"),
    ("dqn", "obsworld:Mirror-v0", "dqn needs a Discrete action space, got MultiDiscrete"),
])
def test_spaces_no_adapter_serves_are_refused_in_one_sentence(world_dir, tmp_path, capsys, monkeypatch, algo, env, words):
    monkeypatch.chdir(world_dir)
    code, _, err = cli(["train", "--env", env, "--algo", algo, "--steps", "100", "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and words in err and "Traceback" not in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()


# -- the learners built on the deep learners ------------------------------------------------------------------

@pytest.mark.parametrize("learner", ["dqn", "ppo"])
def test_hard_multitask_sharing_shares_the_cnn_of_frame_observations(world_dir, learner):
    import obsworld

    from llmagentos.learners.multitask import MultiTaskAgents, learner_config

    env = obsworld.Lamp("hwc", 7)
    config = learner_config(learner, {"num_envs": 1, **({"n_steps": 8, "batch_size": 8} if learner == "ppo" else {})})
    team = MultiTaskAgents(learner, "hard", env.observation_space, env.action_space, config, 2, seed=0)
    nets = [agent.q_net if learner == "dqn" else agent.net for agent in team.agents]
    assert isinstance(nets[0].trunk, SmallCNN) and nets[0].trunk is nets[1].trunk
    frame, _ = env.reset(seed=0)
    assert all(agent.act(frame, explore=False) in (0, 1) for agent in team.agents)


def test_independent_deep_learners_read_frame_observations():
    from llmagentos.learners.independent import IndependentLearners, ILConfig

    frames = gym.spaces.Box(0, 255, (6, 6, 2), np.uint8)
    team = IndependentLearners({"a": frames, "b": frames}, {"a": gym.spaces.Discrete(3), "b": gym.spaces.Discrete(3)},
                               ILConfig(learner="dqn"), seed=0)
    assert isinstance(team.learners["a"].q_net.trunk, SmallCNN)
    actions = team.act({"a": np.zeros((6, 6, 2), np.uint8), "b": np.full((6, 6, 2), 255, np.uint8)}, explore=False)
    assert set(actions) == {"a", "b"} and all(a in range(3) for a in actions.values())


def test_minatar_breakout_trains_from_the_cli_through_its_entry_point(tmp_path, capsys):
    """MinAtar declares its ids through Gymnasium's plugin group; its 10×10×4 bool frames go through the small CNN,
    stored as uint8, and the run evaluates in a new process."""
    # trained by the CLI in this process (a new one would only repeat the torch and MinAtar imports)
    code, out, err = cli(["train", "--env", "MinAtar/Breakout-v1", "--algo", "dqn", "--steps", "400",
                          "--set", "learning_starts=100", "--eval-episodes", "1", "--out", str(tmp_path / "breakout"),
                          "--json"], capsys)
    assert code == 0, err
    trained = json.loads(out)
    assert trained["steps"] == 400 and trained["config"]["encoder"] == "auto"
    evaluated = one_json(run(tmp_path, "eval", "breakout", "--episodes", "1", "--json"))
    assert evaluated["env"] == "MinAtar/Breakout-v1" and len(evaluated["returns"]) == 1
