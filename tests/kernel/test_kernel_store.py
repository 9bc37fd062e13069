"""The store: concurrent writers lose nothing, an interrupted write keeps the previous state, corruption is reported."""

import json
import subprocess
import sys

import numpy as np
import pytest

from llmagentos.kernel import store as store_module
from llmagentos.kernel.checkpoint import CheckpointError
from llmagentos.kernel.store import Store
from helpers import cli

WRITER = """
import sys, numpy as np
from llmagentos.kernel.store import Store
root, who, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
s = Store(root)
task = s.record_task("CliffWalking-v1", descriptor=[0.5, 0.5])
for i in range(n):
    s.put_agent("shared", {"w": np.full(64, i, dtype=np.float32)}, algo="q-learning", observation_space="Discrete(48)",
                action_space="Discrete(4)", meta={"writer": who, "i": i})
    s.put_agent(f"own-{who}", {"w": np.full(64, i, dtype=np.float32)}, algo="sarsa")
    rid = s.record_run(f"{root}/runs/{who}-{i}", status="finished", env="CliffWalking-v1", algo="sarsa", seed=i)
    s.add_knowledge(task, f"own-{who}", score=float(i), meta={"writer": who, "run": rid})
    print(i, flush=True)
"""


def test_concurrent_writers_lose_nothing_and_a_killed_writer_corrupts_nothing(tmp_path):
    root = str(tmp_path / "store")
    n = 30
    Store(root).close()
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, root, who, str(n)], stdout=subprocess.PIPE, text=True)
             for who in ("a", "b", "victim")]
    # SIGKILL the third writer somewhere in the middle of its writes
    victim = procs[2]
    target = np.random.default_rng().integers(1, 8)
    for line in victim.stdout:
        if int(line) >= target:
            break
    victim.kill()
    victim.wait()
    for p in procs[:2]:
        assert p.wait(timeout=120) == 0
    assert victim.returncode == -9  # really killed in the middle, not finished
    s = Store(root)
    own_victim = s.agent("own-victim")
    victim_done = own_victim.version if own_victim else 0
    shared = s.agent("shared").version
    # every finished write is there; the victim may have died between its 'shared' and its 'own' write
    assert 2 * n + victim_done <= shared <= 2 * n + victim_done + 1
    assert [h["version"] for h in s.agent_history("shared")] == list(range(1, shared + 1))
    assert s.agent("own-a").version == n and s.agent("own-b").version == n
    assert len([r for r in s.runs() if "/runs/a-" in r["run_dir"]]) == n
    assert len([r for r in s.runs() if "/runs/b-" in r["run_dir"]]) == n
    assert len(s.query_knowledge(agent="own-a")) == n and len(s.query_knowledge(agent="own-b")) == n
    assert s.verify() == []
    state, record = s.get_agent("shared")
    assert state["w"].shape == (64,) and state["w"][0] == record.meta["i"]
    assert len(s.tasks()) == 1  # the same task, recorded by three processes, is one task


def test_interrupted_write_leaves_previous_version(tmp_path, monkeypatch):
    s = Store(tmp_path / "store")
    s.put_agent("alice", {"q": np.zeros((4, 2))}, algo="q-learning")

    def torn_save(base, state, meta):
        base.with_suffix(".safetensors").parent.mkdir(parents=True, exist_ok=True)
        base.with_suffix(".safetensors").write_bytes(b"half a blob")
        raise KeyboardInterrupt  # the process is stopped in the middle of writing

    monkeypatch.setattr(store_module, "save_state", torn_save)
    with pytest.raises(KeyboardInterrupt):
        s.put_agent("alice", {"q": np.ones((4, 2))}, algo="q-learning")
    state, record = Store(tmp_path / "store").get_agent("alice")
    assert record.version == 1 and state["q"].sum() == 0.0
    assert s.verify() == []


def test_corrupted_blob_is_reported_not_loaded(tmp_path, capsys):
    root = tmp_path / "store"
    s = Store(root)
    record = s.put_agent("alice", {"q": np.arange(8.0)}, algo="q-learning", observation_space="Discrete(48)",
                         action_space="Discrete(4)")
    blob = root / (record.blob + ".safetensors")
    data = bytearray(blob.read_bytes())
    data[-3] ^= 0xFF
    blob.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="fails its checksum"):
        s.get_agent("alice")
    assert len(s.verify()) == 1 and "fails its checksum" in s.verify()[0]
    code, _, err = cli(["--store", str(root), "agents", "show", "alice"], capsys)
    assert code == 1 and "fails its checksum" in err
    code, _, err = cli(["--store", str(root), "train", "--env", "CliffWalking-v1", "--algo", "q-learning",
                        "--episodes", "2", "--agent", "alice", "--out", str(tmp_path / "run")], capsys)
    assert code == 2 and "fails its checksum" in err and not (tmp_path / "run").exists()


def test_knowledge_query_nearest_task_then_best_score(tmp_path):
    s = Store(tmp_path / "store")
    near = s.record_task("llmagentos/GoalGrid-v0", descriptor=[0.2, 0.8])
    far = s.record_task("llmagentos/GoalGrid-v0", descriptor=[0.9, 0.1])
    s.add_knowledge(near, "a", score=1.0)
    s.add_knowledge(near, "b", score=3.0)
    s.add_knowledge(far, "c", score=9.0)
    hits = s.query_knowledge([0.25, 0.8], k=2)
    assert [h["agent"] for h in hits] == ["b", "a"] and hits[0]["distance"] == pytest.approx(0.05)
    assert [h["agent"] for h in s.query_knowledge()] == ["c", "b", "a"]
    assert s.record_task("llmagentos/GoalGrid-v0", descriptor=[0.2, 0.8]) == near


def test_agent_continues_on_a_new_task_and_refuses_other_spaces(tmp_path, capsys):
    root = str(tmp_path / "store")
    base = ["--store", root, "train", "--algo", "q-learning", "--episodes", "20", "--eval-episodes", "1",
            "--agent", "walker", "--json", "--quiet"]
    code, out, _ = cli(base + ["--env", "CliffWalking-v1", "--out", str(tmp_path / "r1")], capsys)
    first = json.loads(out)
    assert code == 0 and first["agent"] == {"name": "walker", "version": 1, "continued_from": None}
    code, out, _ = cli(base + ["--env", "CliffWalking-v1", "--out", str(tmp_path / "r2"), "--set", "epsilon=0.05"], capsys)
    second = json.loads(out)
    assert second["agent"] == {"name": "walker", "version": 2, "continued_from": 1}
    assert second["config"]["epsilon"] == 0.05
    # the second run started from the first run's table: its stored table differs from a fresh agent's run
    s = Store(root)
    q1, q2 = s.get_agent("walker", 1)[0], s.get_agent("walker", 2)[0]
    fresh = json.loads((tmp_path / "r1" / "job.json").read_text())
    assert fresh["agent_version"] is None and json.loads((tmp_path / "r2" / "job.json").read_text())["agent_version"] == 1
    assert not np.array_equal(q1["q"], q2["q"])
    knowledge = s.query_knowledge(agent="walker", env="CliffWalking-v1")
    assert sorted((k["version"], k["score"]) for k in knowledge) == [(1, first["eval"]["mean_return"]),
                                                                      (2, second["eval"]["mean_return"])]
    history = s.agent_history("walker")
    assert [h["run_dir"] for h in history] == [str((tmp_path / p).resolve()) for p in ("r1", "r2")]
    code, _, err = cli(base + ["--env", "FrozenLake-v1", "--out", str(tmp_path / "r3")], capsys)
    assert code == 2 and "observation space Discrete(48)" in err and not (tmp_path / "r3").exists()
    code, out, _ = cli(["--store", root, "agents", "ls", "--json"], capsys)
    assert [a["name"] for a in json.loads(out)["agents"]] == ["walker"]
    code, out, _ = cli(["--store", root, "runs", "ls", "--json"], capsys)
    assert [r["status"] for r in json.loads(out)["runs"]] == ["finished", "finished"]
    code, out, _ = cli(["--store", root, "agents", "rm", "walker", "--json"], capsys)
    assert code == 0 and Store(root).agents() == []
    code, _, err = cli(["--store", root, "agents", "show", "walker"], capsys)
    assert code == 2 and "no agent named 'walker'" in err
