"""Bring your own world: a module the test writes, named as module:Id, module:Class, a spec's imports, a Python object
or an entry point, trained and evaluated from the CLI, a spec and Python, with eval and resume in new processes; and
names that must be refused (an arbitrary callable such as os:system is never called)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap

import gymnasium as gym
import pytest
from helpers import cli, comparable, importable_module, interrupt, one_json, run

import llmagentos
from llmagentos.core.errors import UsageError
from llmagentos.envs.resolve import resolve_world
from llmagentos.kernel.run import job_checksum

WORLD = '''
"""Walk right along a chain of cells to the reward at its end."""
import gymnasium as gym
import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from llmagentos.envs.families import TaskFamily


class Chain(gym.Env):
    def __init__(self, length=5):
        self.length = length
        self.observation_space = spaces.Discrete(8)  # one space for every length, so a lifelong stream can vary it
        self.action_space = spaces.Discrete(2)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.position, self.t = 0, 0
        return self.position, {}

    def step(self, action):
        self.position = max(0, min(self.length - 1, self.position + (1 if action == 1 else -1)))
        self.t += 1
        at_end = self.position == self.length - 1
        return self.position, float(at_end), at_end, self.t >= 20, {}


class Race(ParallelEnv):
    """Two runners on a track of 3 cells: a runner that reaches the end leaves the race (dies) while the other runs on."""
    metadata = {"name": "race_v0"}

    def __init__(self):
        self.possible_agents = ["fast", "slow"]

    def observation_space(self, agent):
        return spaces.Box(0.0, 3.0, (1,), np.float32)

    def action_space(self, agent):
        return spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        self.agents = list(self.possible_agents)
        self.cell, self.t = {"fast": 1, "slow": 0}, 0
        return {a: np.array([self.cell[a]], np.float32) for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions):
        self.t += 1
        rewards, done = {}, {}
        for agent in self.agents:
            self.cell[agent] += int(actions[agent])
            done[agent] = self.cell[agent] >= 3
            rewards[agent] = 1.0 if done[agent] else -0.1
        truncated = {a: self.t >= 12 and not done[a] for a in self.agents}
        obs = {a: np.array([min(self.cell[a], 3)], np.float32) for a in self.agents}
        acted = list(self.agents)
        self.agents = [a for a in acted if not (done[a] or truncated[a])]
        return obs, rewards, done, truncated, {a: {} for a in acted}


class ChainFamily(TaskFamily):
    """Chains of 3 to 7 cells: a task is a chain's length."""
    name = "chain"
    env_id = "Chain-v0"

    def __init__(self):
        self.fixed_kwargs = {}

    def default(self):
        return {"length": 5}

    def sample(self, rng):
        return {"length": int(rng.integers(3, 8))}

    def vector(self, task):
        return np.array([task["length"]], np.float32)

    def validate(self, task):
        return {"length": int(task.get("length", 5))}

    def make(self, task=None, append_task=False, **kwargs):
        return gym.make(self.env_id, **self.to_env_kwargs(task or self.default()), **kwargs)


def make_chain(**kwargs):
    """A factory that only an entry point may name."""
    return Chain(**kwargs)


def register_plugin():
    gym.register("ChainPlugin-v0", entry_point="chainworld:Chain")


gym.register("Chain-v0", entry_point="chainworld:Chain")
'''

ENTRY_POINTS = """[llmagentos.envs]
DeclaredChain = chainworld:make_chain

[gymnasium.envs]
chainworld = chainworld:register_plugin
"""

@pytest.fixture(scope="module")
def world_dir(tmp_path_factory):
    """A folder holding the module chainworld (and, for the entry-point test, its distribution's metadata)."""
    with importable_module(tmp_path_factory.mktemp("world"), "chainworld", WORLD) as folder:
        yield folder


# -- the CLI ------------------------------------------------------------------------------------------

def test_module_id_trains_from_the_cli_and_evaluates_and_resumes_in_new_processes(world_dir):
    summary = one_json(run(world_dir, "train", "--env", "chainworld:Chain-v0", "--algo", "q-learning", "--steps", "3000",
                           "--checkpoint-every", "1000", "--eval-episodes", "2", "--out", "by-id", "--json"))
    assert summary["env"] == "chainworld:Chain-v0" and summary["eval"]["mean_return"] == 1.0
    result = one_json(run(world_dir, "eval", "by-id", "--episodes", "3", "--json"))
    assert result["mean_return"] == 1.0 and result["env"] == "chainworld:Chain-v0"
    interrupt(world_dir / "by-id", "step-000000002000")
    resumed = one_json(run(world_dir, "resume", "by-id", "--json"))
    assert comparable(resumed) == comparable(summary)  # the last 1000 steps again, exactly


def test_module_class_with_env_args_and_a_wrapper_from_the_cli(world_dir):
    summary = one_json(run(world_dir, "train", "--env", "chainworld:Chain", "--env-arg", "length=4", "--algo", "sarsa",
                           "--wrapper", "TimeLimit:max_episode_steps=8", "--steps", "3000", "--eval-episodes", "2",
                           "--out", "by-class", "--json"))
    assert summary["eval"]["mean_return"] == 1.0 and summary["env_args"] == {"length": 4}
    job = json.loads((world_dir / "by-class" / "job.json").read_text())
    assert job["wrappers"] == [{"name": "TimeLimit", "args": {"max_episode_steps": 8}}]
    result = one_json(run(world_dir, "eval", "by-class", "--json"))
    assert result["mean_return"] == 1.0


def test_a_spec_imports_the_module_and_its_runs_evaluate_and_resume_in_new_processes(world_dir):
    (world_dir / "chain.yaml").write_text(textwrap.dedent("""\
        imports: [chainworld]
        out: spec-runs
        train:
          env: Chain-v0
          algo: expected-sarsa
          steps: 3000
          checkpoint_every: 1000
          eval_episodes: 2
          wrappers: [{name: TimeLimit, args: {max_episode_steps: 10}}]
        """))
    sweep = one_json(run(world_dir, "run", "chain.yaml", "--json"))
    (summary,) = sweep["runs"]
    assert summary["eval"]["mean_return"] == 1.0
    run_dir = world_dir / "spec-runs" / "seed-0"
    assert json.loads((run_dir / "job.json").read_text())["imports"] == ["chainworld"]
    assert one_json(run(world_dir, "eval", str(run_dir), "--json"))["mean_return"] == 1.0
    interrupt(run_dir, "step-000000002000")
    assert comparable(one_json(run(world_dir, "resume", str(run_dir), "--json"))) == comparable(summary)


def test_a_lifelong_stream_of_your_own_task_family_runs_and_reports_in_new_processes(world_dir):
    (world_dir / "stream.yaml").write_text(textwrap.dedent("""\
        imports: [chainworld]
        out: stream
        lifelong:
          family: chainworld:ChainFamily
          tasks: [{length: 4}, {length: 6}]
          steps_per_task: 1500
          learner: q-learning
          config: {alpha: 0.5, epsilon: 0.1}
          strategies: [finetune]
          eval_episodes: 1
          references: false
        """))
    first = one_json(run(world_dir, "run", "stream.yaml", "--json"))
    assert not first["failed"] and first["runs"][0]["seed"] == 0
    again = one_json(run(world_dir, "resume", "stream", "--json"))  # the sweep again, in a new process: all done
    assert again["skipped"] == [0]
    assert run(world_dir, "report", "stream", "--json").returncode == 0
    proc = run(world_dir, "run", "stream.yaml", "--set", "lifelong.family=chainworld:Chain", "--set", "out=other")
    assert proc.returncode == 2 and "not a subclass of llmagentos.envs.families.TaskFamily" in proc.stderr


def test_entry_points_declare_factories_and_gymnasium_plugins(world_dir, tmp_path):
    # a distribution's metadata beside the module: what `pip install` of a package with entry points leaves
    folder = tmp_path / "installed"
    folder.mkdir()
    shutil.copy(world_dir / "chainworld.py", folder / "chainworld.py")
    dist = folder / "chainworld-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: chainworld\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(ENTRY_POINTS)
    listing = one_json(run(folder, "envs", "--json"))
    # the plugin's module registers Chain-v0 on import, its hook ChainPlugin-v0
    assert listing["plugins"]["chainworld"] == ["Chain-v0", "ChainPlugin-v0"] and "ChainPlugin-v0" in listing["gymnasium"]
    for name in ("ChainPlugin-v0", "DeclaredChain"):
        summary = one_json(run(folder, "train", "--env", name, "--algo", "q-learning", "--steps", "2000",
                               "--eval-episodes", "1", "--out", name, "--json"))
        assert summary["eval"]["mean_return"] == 1.0
    assert one_json(run(folder, "eval", "DeclaredChain", "--json"))["mean_return"] == 1.0


# -- Python -------------------------------------------------------------------------------------------

def test_python_api_takes_names_classes_instances_and_callables(world_dir, tmp_path):
    from chainworld import Chain

    first = llmagentos.train(env="chainworld:Chain-v0", algo="q-learning", steps=2000, eval_episodes=1,
                             out=tmp_path / "run")
    assert first["run_dir"] == str(tmp_path / "run") and first["eval"]["mean_return"] == 1.0
    again = llmagentos.train(env="chainworld:Chain-v0", algo="q-learning", steps=2000, eval_episodes=1,
                             out=tmp_path / "run")
    assert again["run_dir"] == str(tmp_path / "run-2")  # a second run of the script loses nothing
    assert json.loads((tmp_path / "run" / "summary.json").read_text()) == first
    replaced = llmagentos.train(env="chainworld:Chain-v0", algo="q-learning", steps=1000, eval_episodes=1,
                                out=tmp_path / "run", overwrite=True)
    assert replaced["run_dir"] == str(tmp_path / "run") and replaced["steps"] == 1000

    agent = llmagentos.load(tmp_path / "run-2")
    env = agent.make_env()
    obs, _ = env.reset(seed=0)
    assert agent.act(obs) == 1  # greedy: right, toward the reward
    assert llmagentos.evaluate(agent, episodes=3)["mean_return"] == 1.0
    assert llmagentos.evaluate(str(tmp_path / "run-2"), episodes=3)["returns"] == [1.0, 1.0, 1.0]

    by_class = llmagentos.train(env=Chain, env_args={"length": 3}, algo="q-learning", steps=1500, eval_episodes=1,
                                out=tmp_path / "class")
    instance = gym.make("chainworld:Chain-v0", length=4)
    by_instance = llmagentos.train(env=instance, algo="q-learning", steps=1500, eval_episodes=1,
                                   out=tmp_path / "instance")
    assert (by_class["env"], by_class["env_args"]) == ("chainworld:Chain", {"length": 3})
    assert (by_instance["env"], by_instance["env_args"]) == ("chainworld:Chain-v0", {"length": 4})
    for name in ("class", "instance"):  # recorded so that a new process makes the same world
        assert one_json(run(world_dir, "eval", str(tmp_path / name), "--json"))["mean_return"] == 1.0

    by_callable = llmagentos.train(env=lambda: Chain(length=3), algo="q-learning", steps=1500, eval_episodes=1,
                                   checkpoint_every=500, out=tmp_path / "callable")
    assert by_callable["env"] == "python:Chain"
    with pytest.raises(UsageError, match="Python object"):
        llmagentos.load(tmp_path / "callable")
    assert llmagentos.evaluate(tmp_path / "callable", episodes=2, env=lambda: Chain(length=3))["mean_return"] == 1.0
    proc = run(world_dir, "eval", str(tmp_path / "callable"))
    assert proc.returncode == 2 and "Python object" in proc.stderr
    interrupt(tmp_path / "callable", "step-000000001000")
    resumed = llmagentos.resume(tmp_path / "callable", env=lambda: Chain(length=3))
    assert comparable(resumed) == comparable(by_callable)

    with pytest.raises(UsageError, match="not a run directory|no job.json"):
        (tmp_path / "notes").mkdir()
        (tmp_path / "notes" / "keep.txt").write_text("mine")
        llmagentos.train(env="chainworld:Chain-v0", algo="q-learning", steps=100, out=tmp_path / "notes", overwrite=True)
    assert (tmp_path / "notes" / "keep.txt").exists()


def test_import_llmagentos_registers_its_worlds_without_torch():
    code = ("import sys, llmagentos, gymnasium as g; g.make('llmagentos/PointNav-v0'); "
            "assert 'torch' not in sys.modules, 'import llmagentos imported torch'")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr


def test_installed_packages_worlds_resolve_by_plugin_and_by_module_id():
    world = resolve_world("MinAtar/Breakout-v1")  # declared through the gymnasium.envs entry point
    obs, _ = world.make({}).reset(seed=0)
    assert world.gym_id == "MinAtar/Breakout-v1" and obs.shape == (10, 10, 4)
    world = resolve_world("minigrid:MiniGrid-Empty-5x5-v0")  # registered when minigrid is imported
    obs, _ = world.make({}).reset(seed=0)
    assert world.gym_id == "MiniGrid-Empty-5x5-v0" and obs["image"].shape == (7, 7, 3)


# -- multi-agent: PettingZoo AEC and agents that leave mid-episode ---------------------------------------

def test_rps_aec_trains_with_independent_learners_from_the_cli_a_spec_and_python(tmp_path, capsys):
    code, out, err = cli(["train", "--env", "pettingzoo.classic.rps_v2", "--algo", "il", "--steps", "600",
                          "--checkpoint-every", "300", "--eval-episodes", "2", "--out", str(tmp_path / "cli"), "--json"],
                         capsys)
    assert code == 0, err
    summary = json.loads(out)
    assert set(summary["agents"]) == {"player_0", "player_1"} and summary["steps"] == 600
    evaluated = one_json(run(tmp_path, "eval", "cli", "--episodes", "2", "--json"))
    assert set(evaluated["agents"]) == {"player_0", "player_1"}
    for name in ("summary.json", "agent.safetensors", "agent.json"):
        (tmp_path / "cli" / name).unlink()
    checkpoints = sorted(p.stem for p in (tmp_path / "cli" / "checkpoints").glob("step-*.json"))
    (tmp_path / "cli" / "checkpoints" / "latest.json").write_text(
        json.dumps({"checkpoint": checkpoints[0], "step": int(checkpoints[0].split("-")[1])}))
    assert comparable(one_json(run(tmp_path, "resume", "cli", "--json"))) == comparable(summary)

    spec = tmp_path / "rps.yaml"
    spec.write_text(f"out: {tmp_path / 'spec'}\nmultiagent:\n  env: pettingzoo.classic.rps_v2:env\n  algo: il\n"
                    "  steps: 300\n  eval_episodes: 2\n")
    code, out, err = cli(["run", str(spec), "--json"], capsys)
    assert code == 0, err
    assert json.loads(out)["runs"][0]["steps"] == 300
    python = llmagentos.train(env="pettingzoo.classic.rps_v2:raw_env", algo="il", steps=300, eval_episodes=2,
                              out=tmp_path / "python")
    team = llmagentos.load(python["run_dir"])
    obs, _ = team.make_env().reset(seed=0)
    assert set(team.act(obs)) == {"player_0", "player_1"}


@pytest.mark.parametrize("learner", ["ppo", "a2c", "q-learning"])
def test_independent_learners_default_sizes_fit_and_agents_leave_mid_episode(world_dir, tmp_path, learner):
    config = {"learner": learner} if learner != "q-learning" else {}
    env = "chainworld:Race" if learner != "q-learning" else "pettingzoo.classic.rps_v2"
    summary = llmagentos.train(env=env, algo="il", steps=600, config=config, eval_episodes=2, out=tmp_path / learner)
    assert summary["steps"] == 600 and summary["episodes"] > 0
    if learner != "q-learning":  # "fast" finishes a step before "slow": each ran its own episodes
        assert set(summary["agents"]) == {"fast", "slow"}


def test_ppo_independent_learners_with_default_sizes_from_the_cli(capsys, tmp_path):
    for extra in ([], ["--set", "share_parameters=true"]):
        code, out, err = cli(["train", "--env", "llmagentos/CoopGrid-v0", "--env-arg", "observation=vector", "--algo",
                              "il", "--set", "learner=ppo", *extra, "--steps", "600", "--eval-episodes", "1", "--out",
                              str(tmp_path / f"ppo{len(extra)}"), "--json"], capsys)
        assert code == 0, err


# -- bad input: one sentence, exit 2, nothing run, no run directory ------------------------------------

@pytest.mark.parametrize("argv, words", [
    (["--env", "no_such_module_xyz:Thing-v0", "--algo", "q-learning"], "cannot import no_such_module_xyz"),
    (["--env", "json:loads", "--algo", "q-learning"], "is not an environment"),
    (["--env", "os:system", "--algo", "hysteretic", "--env-arg", "command=touch MARKER"], "is not an environment"),
    (["--env", "subprocess:run", "--algo", "q-learning", "--env-arg", "args=touch MARKER"], "is not an environment"),
    (["--env", "chainworld:Chain-v9", "--algo", "q-learning"], "has no 'Chain-v9'"),
    (["--env", "chainworld:make_chain", "--algo", "q-learning"], "is not an environment"),
    (["--env", "CartPole-v1", "--algo", "dqn", "--wrapper", "NoSuchWrapper"], "unknown wrapper"),
    (["--env", "CartPole-v1", "--algo", "dqn", "--wrapper", "os:system"], "unknown wrapper"),
    (["--env", "chainworld:Chain", "--algo", "q-learning", "--wrapper", "TimeLimit:nope=1"], "does not accept"),
    (["--env", "pettingzoo.classic.rps_v2", "--algo", "il", "--wrapper", "TimeLimit:max_episode_steps=3"], "single-agent"),
])
def test_bad_worlds_and_wrappers_exit_2_in_one_sentence(world_dir, tmp_path, capsys, monkeypatch, argv, words):
    monkeypatch.chdir(tmp_path)
    code, out, err = cli(["train", *argv, "--steps", "50", "--out", str(tmp_path / "out")], capsys)
    assert code == 2 and words in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "MARKER").exists()


@pytest.mark.parametrize("kind, algo", [("train", "q-learning"), ("multiagent", "hysteretic")])
def test_a_spec_naming_a_callable_is_refused_while_validating(tmp_path, capsys, monkeypatch, kind, algo):
    monkeypatch.chdir(tmp_path)
    spec = tmp_path / "bad.yaml"
    spec.write_text(f"out: out\n{kind}:\n  env: os:system\n  algo: {algo}\n  steps: 10\n"
                    "  env_args: {command: touch MARKER}\n")
    code, _, err = cli(["run", str(spec)], capsys)
    assert code == 2 and "is not an environment" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists() and not (tmp_path / "MARKER").exists()
    spec.write_text("imports: [no_such_module_xyz]\ntrain:\n  env: CartPole-v1\n  algo: dqn\n  steps: 10\n")
    code, _, err = cli(["run", str(spec)], capsys)
    assert code == 2 and "imports: cannot import no_such_module_xyz" in err


@pytest.mark.parametrize("command", ["eval", "resume"])
def test_a_run_directory_naming_a_callable_is_refused_by_eval_and_resume(tmp_path, command):
    run_dir = tmp_path / "forged"
    run_dir.mkdir()
    # the checksum guards against torn or accidental edits, not an attacker (who can compute it): sign the forgery
    job = {"env": "os:system", "algo": "hysteretic", "steps": 10, "env_args": {"command": "touch MARKER"}}
    (run_dir / "job.json").write_text(json.dumps({**job, "sha256": job_checksum(job)}))
    proc = run(tmp_path, command, "forged")
    assert proc.returncode == 2 and "is not an environment" in proc.stderr
    assert not (tmp_path / "MARKER").exists() and os.listdir(run_dir) == ["job.json"]


def test_transfer_to_another_world_of_your_own_module_through_the_same_wrappers(world_dir, tmp_path, capsys):
    source = llmagentos.train(env="chainworld:Chain", env_args={"length": 4}, algo="q-learning", steps=1500,
                              eval_episodes=1, wrappers=[{"name": "TimeLimit", "args": {"max_episode_steps": 12}}],
                              out=tmp_path / "source")
    code, out, err = cli(["transfer", "--source", source["run_dir"], "--env", "chainworld:Chain", "--env-arg",
                          "length=6", "--steps", "300", "--seeds", "0:1", "--eval-every", "100", "--eval-episodes", "5",
                          "--out", str(tmp_path / "transfer"), "--json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert (result["source_env"], result["env"], result["env_args"]) == ("chainworld:Chain", "chainworld:Chain", {"length": 6})
    # "always right", learnt on 4 cells, carries the agent most of the way along 6; the 2 unseen cells are ties
    # that greedy evaluation breaks at random, so from scratch the end is rarely reached within the time limit
    assert result["jumpstart"] > 0.5
