"""`llmagentos train` on multi-agent worlds: the JSON contract, many seeds, refusals, exact resume, outside envs."""

import json
import os
import subprocess
import sys
import textwrap

from helpers import comparable

CONTRACT = {"env", "algo", "seed", "steps", "episodes", "wall_seconds", "steps_per_second", "eval", "curve", "online",
            "solved_at_step", "threshold", "run_dir"}


def cli(tmp_path, *args, extra_path=None):
    env = {**os.environ, "LLMAGENTOS_STORE": str(tmp_path / "store")}
    if extra_path:
        env["PYTHONPATH"] = os.pathsep.join([str(extra_path), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "llmagentos.cli", *args], capture_output=True, text=True,
                          cwd=tmp_path, env=env, timeout=120)


def test_train_json_has_the_contract_and_the_multiagent_keys(tmp_path):
    out = cli(tmp_path, "train", "--env", "llmagentos/ClimbingGame-v0", "--algo", "distributed-q", "--steps", "1500",
              "--out", "run", "--json")
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert CONTRACT <= set(summary)
    assert set(summary["agents"]) == {"player_0", "player_1"}
    assert summary["greedy_joint_action"] == [0, 0] and summary["greedy_payoff"] == [11.0, 11.0]
    assert summary["optimal"] is True and summary["threshold"] == 11.0 and summary["eval"]["mean_return"] == 11.0
    for name in ("summary.json", "job.json", "metrics.jsonl", "agent.safetensors", "agent.json"):
        assert (tmp_path / "run" / name).exists()


def test_many_seeds_give_outcomes_and_the_same_seeds_give_the_same_outcomes(tmp_path):
    results = []
    for out_dir in ("a", "b"):
        out = cli(tmp_path, "train", "--env", "llmagentos/PenaltyGame-v0", "--env-arg", "k=-100", "--algo", "jal",
                  "--steps", "1000", "--seeds", "0:4", "--out", out_dir, "--json")
        assert out.returncode == 0, out.stderr
        results.append(json.loads(out.stdout))
    first, second = results
    assert len(first["runs"]) == 4 and sum(first["outcomes"].values()) == 4
    assert first["outcomes"] == second["outcomes"] and first["optimal_share"] == second["optimal_share"]
    assert first["optimal_share"] == sum(r["optimal"] for r in first["runs"]) / 4
    table = cli(tmp_path, "train", "--env", "llmagentos/ClimbingGame-v0", "--algo", "hysteretic", "--steps", "300",
                "--seeds", "0:2", "--out", "c")
    assert table.returncode == 0 and "greedy joint action" in table.stdout and "optimal share" in table.stdout


def test_bad_input_exits_2_without_a_run_directory(tmp_path):
    out = cli(tmp_path, "train", "--env", "CartPole-v1", "--algo", "hysteretic", "--steps", "10", "--out", "x")
    assert out.returncode == 2 and "multi-agent world" in out.stderr and "Traceback" not in out.stderr
    out = cli(tmp_path, "train", "--env", "llmagentos/CoopGrid-v0", "--algo", "il", "--env-arg", "n_agents=1",
              "--steps", "10", "--out", "y")
    assert out.returncode == 2 and "n_agents" in out.stderr
    out = cli(tmp_path, "train", "--env", "llmagentos/ClimbingGame-v0", "--algo", "jal", "--set", "alpha=2",
              "--steps", "10", "--out", "z")
    assert out.returncode == 2 and "alpha" in out.stderr
    assert not any((tmp_path / d).exists() for d in ("x", "y", "z"))


def test_resume_continues_exactly(tmp_path):
    out = cli(tmp_path, "train", "--env", "llmagentos/CoopGrid-v0", "--env-arg", "size=3", "--algo", "hysteretic",
              "--steps", "2500", "--checkpoint-every", "1000", "--out", "run", "--json")
    assert out.returncode == 0, out.stderr
    full = json.loads(out.stdout)
    (tmp_path / "run" / "summary.json").unlink()  # as if the run had been killed after its last checkpoint
    out = cli(tmp_path, "resume", "run", "--json")
    assert out.returncode == 0, out.stderr
    resumed = json.loads(out.stdout)
    assert comparable(resumed) == comparable(full)


EXTERNAL = '''
import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv


class Meet(ParallelEnv):
    """Two agents on a line of 4 cells, paid 1 when they stand on the same cell; each sees (own cell, other cell)."""
    metadata = {"name": "meet_v0"}

    def __init__(self, length=4):
        self.length = length
        self.possible_agents = ["a", "b"]
        self._obs = {a: spaces.Discrete(length * length) for a in self.possible_agents}
        self._act = {a: spaces.Discrete(3) for a in self.possible_agents}

    def observation_space(self, agent):
        return self._obs[agent]

    def action_space(self, agent):
        return self._act[agent]

    def _observe(self):
        a, b = int(self.pos[0]), int(self.pos[1])
        return {"a": np.array(a * self.length + b), "b": np.array(b * self.length + a)}

    def reset(self, seed=None, options=None):
        self.agents = list(self.possible_agents)
        self.pos, self.t = np.array([0.0, self.length - 1.0]), 0
        return self._observe(), {a: {} for a in self.agents}

    def step(self, actions):
        self.pos = np.clip(self.pos + np.array([actions["a"] - 1, actions["b"] - 1]), 0, self.length - 1)
        self.t += 1
        met = self.pos[0] == self.pos[1]
        done = bool(met) or self.t >= 8
        obs, agents = self._observe(), self.agents
        if done:
            self.agents = []
        return (obs, {a: float(met) for a in agents}, {a: bool(met) for a in agents},
                {a: done and not met for a in agents}, {a: {} for a in agents})
'''


def test_a_pettingzoo_env_from_outside_the_project_trains_with_independent_learners(tmp_path):
    (tmp_path / "outside_meet.py").write_text(textwrap.dedent(EXTERNAL))
    out = cli(tmp_path, "train", "--env", "outside_meet:Meet", "--algo", "il", "--set", 'learner_config={"alpha": 0.5}',
              "--steps", "3000", "--out", "run", "--json", extra_path=tmp_path)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["env"] == "outside_meet:Meet" and set(summary["agents"]) == {"a", "b"}
    assert "greedy_joint_action" not in summary and summary["steps"] == 3000
    assert summary["eval"]["mean_return"] == 1.0  # the greedy pair meets
