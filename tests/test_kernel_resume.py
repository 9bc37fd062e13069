"""A training process SIGKILLed at a random step resumes (by run id) to exactly the uninterrupted run's result."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np


import pytest
from helpers import cli, comparable

TABULAR = (["--env", "CliffWalking-v1", "--algo", "q-learning", "--steps", "6000", "--checkpoint-every", "200",
            "--eval-every", "1000", "--set", "epsilon=0.2"], 6000, 200)
# a tiny DQN: replay memory, target network, Adam state and torch generators must all come back exactly
DQN = (["--env", "CartPole-v1", "--algo", "dqn", "--steps", "1000", "--checkpoint-every", "100", "--eval-every", "500",
        "--set", "learning_starts=100", "--set", "batch_size=16", "--set", "hidden=[16]", "--set", "buffer_size=1000",
        "--set", "target_update_interval=50", "--set", "exploration_steps=500"], 1000, 100)


def metrics(run_dir):
    lines = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return [{k: v for k, v in r.items() if k not in ("wall_seconds", "steps_per_second")} for r in lines]


@pytest.mark.parametrize("args, steps, every", [TABULAR, DQN], ids=["q-learning", "dqn"])
def test_sigkill_at_random_step_then_resume_matches_uninterrupted(tmp_path, capsys, args, steps, every):
    args = ["train", *args, "--eval-episodes", "2", "--quiet", "--json"]
    store = str(tmp_path / "store")
    killed = tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "llmagentos.cli", "--store", store, *args, "--out", str(killed)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    target = int(np.random.default_rng().integers(1, steps // every // 2)) * every  # kill after a random checkpoint
    pointer = killed / "checkpoints" / "latest.json"
    deadline = time.time() + 60
    while time.time() < deadline and proc.poll() is None:
        try:
            if json.loads(pointer.read_text())["step"] >= target:
                break
        except (OSError, ValueError):
            pass
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, proc.stderr.read().decode()
    assert not (killed / "summary.json").exists()
    # the killed run is in the store as still "running": resume it by its id
    code, out, _ = cli(["--store", store, "runs", "ls", "--status", "running", "--json"], capsys)
    (record,) = json.loads(out)["runs"]
    code, out, err = cli(["--store", store, "resume", str(record["id"]), "--json", "--quiet"], capsys)
    assert code == 0, err
    resumed = json.loads(out)
    code, out, _ = cli(["--store", store, *args, "--out", str(tmp_path / "straight")], capsys)
    straight = json.loads(out)
    assert resumed["steps"] == straight["steps"] == steps
    assert comparable(resumed) == comparable(straight)
    assert metrics(killed) == metrics(tmp_path / "straight")
    # a checkpoint records the next one due, so a run resumed from it does not checkpoint again on its first step
    latest = json.loads((killed / "checkpoints" / "latest.json").read_text())
    saved = json.loads((killed / "checkpoints" / f"{latest['checkpoint']}.json").read_text())
    assert saved["state"]["__map__"]["kernel"]["__map__"]["next_checkpoint"] == latest["step"] + every
    code, out, _ = cli(["--store", store, "runs", "show", str(record["id"]), "--json"], capsys)
    assert json.loads(out)["status"] == "finished"
