"""Issue 17: the store never starts silently empty, names its repair commands, and has one writer per agent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from helpers import cli

SRC = Path(__file__).resolve().parents[2] / "src"
TRAIN = ["train", "--env", "CliffWalking-v1", "--algo", "q-learning", "--eval-episodes", "1", "--quiet"]


@pytest.fixture()
def store_with_agent(tmp_path, capsys, monkeypatch) -> Path:
    """A store holding agent 'al' (two versions) and the two runs that made them, under tmp_path/runs."""
    monkeypatch.chdir(tmp_path)
    root = tmp_path / "store"
    for i in (1, 2):
        code, _, err = cli(["--store", str(root), *TRAIN, "--steps", "100", "--agent", "al", "--out", f"runs/r{i}"],
                           capsys)
        assert code == 0, err
    return root


def one_error_line(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_a_corrupted_index_is_one_sentence_naming_check_and_rebuild(store_with_agent, capsys):
    root = store_with_agent
    from llmagentos.kernel.store import Store

    before, _ = Store(root).get_agent("al")
    for suffix in ("-wal", "-shm"):
        (root / f"index.sqlite{suffix}").unlink(missing_ok=True)
    (root / "index.sqlite").write_bytes(b"this is not a database" * 100)
    code, _, err = cli(["--store", str(root), "agents", "ls"], capsys)
    line = one_error_line(err)
    assert code == 2 and "llmagentos store check" in line and "llmagentos store rebuild" in line
    code, _, err = cli(["--store", str(root), "store", "check", "--json"], capsys)
    assert code == 1 and "unreadable" in err
    code, out, err = cli(["--store", str(root), "store", "rebuild", "--runs", "runs", "--json"], capsys)
    assert code == 0, err
    result = json.loads(out)
    assert result["agent_versions"] == 2 and result["runs"] == 2 and Path(result["old_index"]).exists()
    code, out, _ = cli(["--store", str(root), "agents", "show", "al", "--json"], capsys)
    assert code == 0 and [h["version"] for h in json.loads(out)["history"]] == [1, 2]
    after, record = Store(root).get_agent("al")
    assert record.version == 2 and record.algo == "q-learning" and record.config["alpha"] == 0.5
    assert np.array_equal(before["q"], after["q"])
    assert cli(["--store", str(root), "store", "check"], capsys)[0] == 0


def test_blobs_torn_by_a_dead_writer_are_removed_when_the_store_opens(store_with_agent, capsys):
    from test_security_inputs import dead_pid

    agent_dir = store_with_agent / "blobs" / "agents" / "al"
    torn, live = agent_dir / f".x.safetensors.{dead_pid()}.tmp", agent_dir / f".y.safetensors.{os.getppid()}.tmp"
    torn.write_bytes(b"half a blob")
    live.write_bytes(b"being written")
    assert cli(["--store", str(store_with_agent), "agents", "ls"], capsys)[0] == 0
    assert not torn.exists() and live.exists()  # a writer that is still alive keeps its file


def test_a_deleted_index_is_not_recreated_empty_beside_agent_blobs(store_with_agent, capsys):
    root = store_with_agent
    for suffix in ("", "-wal", "-shm"):
        (root / f"index.sqlite{suffix}").unlink(missing_ok=True)
    code, _, err = cli(["--store", str(root), "agents", "ls"], capsys)
    assert code == 2 and "llmagentos store rebuild" in one_error_line(err)
    assert not (root / "index.sqlite").exists()
    code, _, err = cli(["--store", str(root), *TRAIN, "--steps", "50", "--agent", "al", "--out", "runs/r3"], capsys)
    assert code == 2 and "no index.sqlite" in one_error_line(err)
    assert cli(["--store", str(root), "store", "rebuild"], capsys)[0] == 0
    code, out, _ = cli(["--store", str(root), "runs", "ls", "--json"], capsys)
    assert code == 0 and sorted(Path(r["run_dir"]).name for r in json.loads(out)["runs"]) == ["r1", "r2"]


def test_a_second_writer_of_one_agent_is_refused_naming_the_running_one_or_waits(tmp_path, capsys):
    from llmagentos.kernel.store import Store

    root = tmp_path / "store"
    assert cli(["--store", str(root), *TRAIN, "--steps", "50", "--agent", "bob", "--out", str(tmp_path / "v1")],
               capsys)[0] == 0
    held = threading.Event()
    release = threading.Event()

    def another_run() -> None:  # holds the agent as a running training run would, until told to finish
        with Store(root).agent_lock("bob", "pid 4242, q-learning on CliffWalking-v1"):
            held.set()
            release.wait(60)

    holder = threading.Thread(target=another_run)
    holder.start()
    try:
        assert held.wait(30)
        code, _, err = cli(["--store", str(root), *TRAIN, "--steps", "50", "--agent", "bob",
                            "--out", str(tmp_path / "second")], capsys)
        line = one_error_line(err)
        assert code == 2 and "agent 'bob' is being trained by another run (pid 4242" in line and "--wait" in line
        assert not (tmp_path / "second").exists()
        # --wait queues behind the running one: it starts from the version that run leaves, so nothing is lost
        threading.Timer(1.0, release.set).start()
        started = time.monotonic()
        code, out, err = cli(["--store", str(root), *TRAIN, "--steps", "50", "--agent", "bob", "--wait", "--json",
                              "--out", str(tmp_path / "third")], capsys)
        assert code == 0, err
        assert time.monotonic() - started >= 0.9
        assert json.loads(out)["agent"] == {"name": "bob", "version": 2, "continued_from": 1}
    finally:
        release.set()
        holder.join()


def test_a_killed_writer_releases_its_agent(tmp_path, capsys):
    root = tmp_path / "store"
    argv = ["--store", str(root), *TRAIN, "--steps", "1000000", "--agent", "eve", "--out", str(tmp_path / "killed")]
    code = f"import sys; sys.path.insert(0, {str(SRC)!r}); from llmagentos.cli import main; main({argv!r})"
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    lock = root / "locks" / "eve.lock"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (lock.exists() and lock.read_text()):
        time.sleep(0.05)
    proc.kill()
    proc.wait()
    code, out, err = cli(["--store", str(root), *TRAIN, "--steps", "50", "--agent", "eve", "--json",
                          "--out", str(tmp_path / "next")], capsys)
    assert code == 0, err
    assert json.loads(out)["agent"]["version"] == 1
