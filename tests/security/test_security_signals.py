"""Issue 17: SIGINT/SIGTERM stop a sweep at once on every local backend, lose nothing, and no worker outlives its parent."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import cli, comparable

SRC = Path(__file__).resolve().parents[2] / "src"
#: the issue asks for 2 s; the margin is for a shared, overloaded test machine
STOP_WITHIN = 3.0
SPEC = """train:
  env: CliffWalking-v1
  algo: q-learning
  steps: {steps}
  eval_episodes: 1
  checkpoint_every: 500
"""


def launch(argv: list[str], store: Path, prelude: str = "") -> subprocess.Popen:
    """``llmagentos ARGV`` in its own session (so its whole process tree can be found and signalled)."""
    code = f"import sys; sys.path.insert(0, {str(SRC)!r}); {prelude}from llmagentos.cli import main; main({argv!r})"
    env = {**os.environ, "LLMAGENTOS_STORE": str(store)}
    return subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env=env, start_new_session=True)


def session_pids(session: int) -> set[int]:
    """Every live process of a session (its leader's pid), from /proc."""
    pids = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[3]) == session and fields[0] != "Z":
            pids.add(int(stat.parent.name))
    return pids


def wait_for(condition, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.02)


def stop_and_time(proc: subprocess.Popen, how) -> tuple[float, int, str]:
    started = time.monotonic()
    how()
    proc.wait(timeout=60)
    return time.monotonic() - started, proc.returncode, proc.stderr.read().decode()


def store_runs(store: Path, capsys) -> list[dict]:
    code, out, err = cli(["--store", str(store), "runs", "ls", "--json"], capsys)
    assert code == 0, err
    return json.loads(out)["runs"]


@pytest.mark.parametrize("backend, signum", [("inline", signal.SIGTERM), ("processes", signal.SIGINT)])
def test_a_signal_stops_a_sweep_at_once_and_resume_records_every_job_once(tmp_path, capsys, backend, signum):
    spec = tmp_path / "spec.yaml"
    # 20 000 steps keep seed 1 running ~1.5 s (quiet core) after its first checkpoint: time enough to be stopped
    # part-way, while seeds 0, 2, 3 and the reference run stay cheap
    spec.write_text(SPEC.format(steps=20_000) + f"seeds: 4\nbackend: {backend}\nworkers: 1\n")
    out, store = tmp_path / "sweep", tmp_path / "store"
    proc = launch(["run", str(spec), "--set", f"out={out}", "--quiet"], store)
    # seed 0 finished and recorded; seed 1 in flight with a checkpoint: now stop
    wait_for(lambda: (out / "seed-0" / "summary.json").exists() and (out / "seed-1" / "checkpoints" / "latest.json").exists())
    started_before = {p.name for p in out.glob("seed-*")}
    # a terminal's Ctrl-C reaches the whole process group; a SIGTERM from a supervisor only the parent
    send = (lambda: os.killpg(proc.pid, signum)) if signum == signal.SIGINT else (lambda: proc.send_signal(signum))
    took, code, err = stop_and_time(proc, send)
    lines = [line for line in err.splitlines() if line.strip()]
    assert took < STOP_WITHIN, (took, err)
    assert code == 128 + signum and len(lines) == 1 and "stopped by" in lines[0] and "Traceback" not in err, err
    wait_for(lambda: not session_pids(proc.pid), timeout=10)  # no worker, fork server or tracker left behind
    assert {p.name for p in out.glob("seed-*")} == started_before == {"seed-0", "seed-1"}  # no job after the signal
    manifest = {e["seed"]: e["status"] for e in json.loads((out / "sweep.json").read_text())["jobs"]}
    assert manifest == {0: "finished", 1: "stopped", 2: "pending", 3: "pending"}
    rows = {Path(r["run_dir"]).name: r["status"] for r in store_runs(store, capsys)}
    assert rows == {"seed-0": "finished", "seed-1": "stopped"}

    code, stdout, err = cli(["--store", str(store), "resume", str(out), "--json"], capsys)
    assert code == 0, err
    assert json.loads(stdout)["skipped"] == [0]
    rows = store_runs(store, capsys)
    assert sorted(Path(r["run_dir"]).name for r in rows) == ["seed-0", "seed-1", "seed-2", "seed-3"]
    assert {r["status"] for r in rows} == {"finished"}
    assert {e["status"] for e in json.loads((out / "sweep.json").read_text())["jobs"]} == {"finished"}
    # the job stopped part-way (checkpointed on the signal) ends exactly as if it had never stopped
    reference = tmp_path / "reference.yaml"
    reference.write_text(SPEC.format(steps=20_000) + f"seeds: [1]\nout: {tmp_path / 'reference'}\n")
    assert cli(["--store", str(store), "run", str(reference), "--quiet"], capsys)[0] == 0
    resumed = json.loads((out / "seed-1" / "summary.json").read_text())
    fresh = json.loads((tmp_path / "reference" / "seed-1" / "summary.json").read_text())
    assert comparable(resumed) == comparable(fresh)


def test_sigterm_stops_a_single_run_with_a_checkpoint_and_a_stopped_row(tmp_path, capsys):
    run_dir, store = tmp_path / "run", tmp_path / "store"
    proc = launch(["train", "--env", "CliffWalking-v1", "--algo", "q-learning", "--steps", "20000",
                   "--eval-episodes", "1", "--checkpoint-every", "500", "--out", str(run_dir), "--quiet"], store)
    wait_for(lambda: (run_dir / "checkpoints" / "latest.json").exists())
    took, code, err = stop_and_time(proc, lambda: proc.send_signal(signal.SIGTERM))
    assert took < STOP_WITHIN and code == 143 and "stopped by SIGTERM" in err, err
    assert [r["status"] for r in store_runs(store, capsys)] == ["stopped"]
    code, _, err = cli(["--store", str(store), "resume", str(run_dir), "--quiet"], capsys)
    assert code == 0, err
    assert [r["status"] for r in store_runs(store, capsys)] == ["finished"]


@pytest.mark.parametrize("prelude, helpers", [
    ("", 0),  # a parent without torch forks its workers directly
    ("import torch; ", 2),  # with torch loaded they come from a fork server, beside a resource tracker
])
def test_workers_fork_server_and_resource_tracker_exit_when_the_parent_is_killed(tmp_path, prelude, helpers):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.format(steps=200_000) + "seeds: 4\nbackend: processes\nworkers: 2\n")
    out = tmp_path / "sweep"
    proc = launch(["run", str(spec), "--set", f"out={out}", "--quiet"], tmp_path / "store", prelude)
    wait_for(lambda: (out / "seed-0" / "job.json").exists() and (out / "seed-1" / "job.json").exists())
    children = session_pids(proc.pid) - {proc.pid}
    assert len(children) >= 2 + helpers, children  # the two workers, and the fork server and resource tracker
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    wait_for(lambda: not session_pids(proc.pid), timeout=10)
    assert not list(out.glob("seed-[23]"))  # nobody went on to start the queued jobs


def test_sigterm_stops_a_ray_sweep_and_leaves_no_ray_process(tmp_path, capsys):
    spec = tmp_path / "spec.yaml"
    spec.write_text(SPEC.format(steps=40_000) + "seeds: 3\nbackend: ray\nworkers: 1\n")
    out, store = tmp_path / "sweep", tmp_path / "store"
    proc = launch(["run", str(spec), "--set", f"out={out}", "--quiet"], store)
    wait_for(lambda: (out / "seed-0" / "checkpoints" / "latest.json").exists(), timeout=180)
    took, code, err = stop_and_time(proc, lambda: proc.send_signal(signal.SIGTERM))
    lines = [line for line in err.splitlines() if line.strip()]
    assert took < 2 * STOP_WITHIN, (took, err)  # the local Ray instance this sweep started is shut down too
    assert code == 143 and lines[-1].startswith("llmagentos: stopped by SIGTERM") and "Traceback" not in err, err
    wait_for(lambda: not session_pids(proc.pid), timeout=20)  # raylet, GCS and workers included
    assert [(Path(r["run_dir"]).name, r["status"]) for r in store_runs(store, capsys)] == [("seed-0", "stopped")]
    assert {e["seed"]: e["status"] for e in json.loads((out / "sweep.json").read_text())["jobs"]} == \
        {0: "stopped", 1: "pending", 2: "pending"}
