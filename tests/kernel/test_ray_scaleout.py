"""Scale-out without loss: a sweep on a multi-node Ray cluster (Ray's test cluster on this machine, one
raylet per node, each node with its own temp folder) ends with every run directory and checkpoint at the
driver's ``out``, and a node killed mid-sweep has its job run again elsewhere with the same result."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path

import pytest

from llmagentos.kernel.remote import RunTransferError, pack_dir, receive
from helpers import comparable

# every test that starts a Ray cluster runs on one xdist worker: two clusters at once on this machine collide on
# the ports Ray picks for itself (the client server's specific-server port 23000)
pytestmark = pytest.mark.xdist_group("ray-cluster")

SEEDS = "0:3"
#: tiny jobs that still take about a second each, so a node can be removed while one runs there
TRAIN = {"env": "CliffWalking-v1", "algo": "q-learning", "steps": 1200, "eval_every": 400, "eval_episodes": 1,
         "checkpoint_every": 400, "tensorboard": False}


def _ray_processes(marker: str) -> list[int]:
    """PIDs whose command line names ``marker`` (a raylet, GCS server or worker started for our cluster)."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and marker in (proc / "cmdline").read_bytes().decode(errors="replace"):
                pids.append(int(proc.name))
        except OSError:
            continue
    return pids


@pytest.fixture(scope="module")
def cluster():
    """Two nodes, each a raylet with its own temp folder and TMPDIR (so a job's staging folder shows which node
    ran it): the head, which stays, and a worker node to kill. Never /tmp/ray, whose `ray_current_cluster`
    another session's Ray would read: RAY_TMPDIR points Ray at this cluster's own folder."""
    import ray
    from ray.cluster_utils import Cluster

    base = Path(tempfile.mkdtemp(prefix="rc", dir="/tmp"))  # short: Ray's socket paths must fit 107 bytes
    saved = {k: os.environ.pop(k, None) for k in ("RAY_ADDRESS", "RAY_TMPDIR")}
    os.environ["RAY_TMPDIR"] = str(base)
    (base / "ray").mkdir()
    made = None
    try:
        nodes = []
        for k in range(2):
            (base / f"node{k}" / "tmp").mkdir(parents=True)
            args = {"num_cpus": 1, "temp_dir": str(base / f"node{k}"), "env_vars": {"TMPDIR": str(base / f"node{k}" / "tmp")}}
            if made is None:
                made = Cluster(initialize_head=True, head_node_args={**args, "include_dashboard": False})
                nodes.append(made.head_node)
            else:
                nodes.append(made.add_node(**args))
        yield made, nodes, base
    finally:
        ray.shutdown()
        if made is not None:
            made.shutdown()
        for key, value in saved.items():
            os.environ.pop(key, None) if value is None else os.environ.__setitem__(key, value)
        deadline = time.monotonic() + 15
        while _ray_processes(str(base)) and time.monotonic() < deadline:
            time.sleep(0.2)
        left = _ray_processes(str(base))
        shutil.rmtree(base, ignore_errors=True)
        assert not left, f"Ray processes left behind: {left}"


def _sweep(out: Path, backend: str, address: str | None = None):
    """Run the sweep on ``backend``; returns (its JSON, how many times the store was told each run finished)."""
    from llmagentos.config import run_spec, validate_spec
    from llmagentos.kernel.store import Store

    spec = validate_spec({"out": str(out / "sweep"), "seeds": SEEDS, "backend": backend, "workers": 2,
                          "ray_address": address, "train": TRAIN})
    store = Store(out / "store")
    finished: dict[str, int] = {}
    record = store.record_run

    def counting(run_dir, **kwargs):
        if kwargs.get("status") == "finished":
            finished[str(run_dir)] = finished.get(str(run_dir), 0) + 1
        return record(run_dir, **kwargs)

    store.record_run = counting  # type: ignore[method-assign]
    return run_spec(spec, store=store), finished


@pytest.fixture(scope="module")
def sequential(tmp_path_factory):
    return _sweep(tmp_path_factory.mktemp("inline"), "inline")[0]


def _learning_state(checkpoint: Path) -> str:
    """A checkpoint's state without what differs between any two identical runs: timings, and torch's global
    generator (recorded only where torch happens to be loaded; these tabular jobs never draw from it)."""
    from llmagentos.kernel.checkpoint import load_state

    state, meta = load_state(checkpoint.with_suffix(""))  # also checks the manifest's checksums
    state["rng"].pop("torch", None)
    state["kernel"].pop("elapsed")
    for point in state["kernel"]["curve"]:
        point.pop("wall_seconds")
    return json.dumps([state, meta], sort_keys=True, default=lambda a: a.tolist())


def _run_files(run_dir: str) -> dict[str, str]:
    """A run's final agent (its bytes' SHA-256) and checkpoints (their learning state), by relative path."""
    run = Path(run_dir)
    files = {"agent.safetensors": hashlib.sha256((run / "agent.safetensors").read_bytes()).hexdigest()}
    files.update({p.relative_to(run).as_posix(): _learning_state(p) for p in sorted(run.glob("checkpoints/step-*.json"))})
    return files


def _assert_same_runs(result, finished, sequential, out: Path) -> None:
    from llmagentos.kernel.checkpoint import load_state
    from llmagentos.kernel.run import read_job

    assert not result["failed"] and [r["seed"] for r in result["runs"]] == [0, 1, 2]
    assert [comparable(r) for r in result["runs"]] == [comparable(r) for r in sequential["runs"]]
    for run, alone in zip(result["runs"], sequential["runs"]):
        run_dir = Path(run["run_dir"])
        assert run_dir.parent == out / "sweep" and read_job(run_dir).out == str(run_dir)  # it reads as made here
        files = _run_files(str(run_dir))  # the agent bit for bit, and each checkpoint's learning state
        assert len(files) == 3 and files == _run_files(alone["run_dir"])
        load_state(run_dir / "agent")  # passes its manifest's checksums
        assert json.loads((run_dir / "summary.json").read_text()) == run
    assert sorted(finished.values()) == [1, 1, 1]  # each job recorded exactly once


def test_runs_made_on_other_nodes_arrive_at_the_drivers_out(cluster, sequential, tmp_path):
    made, nodes, base = cluster
    result, finished = _sweep(tmp_path, "ray", made.address)
    _assert_same_runs(result, finished, sequential, tmp_path)
    jobs = json.loads((tmp_path / "sweep" / "sweep.json").read_text())["jobs"]
    assert {j["node"] for j in jobs} == {n.node_id for n in nodes}  # both nodes ran jobs
    for k in range(2):  # each node cleared its staging folders once the files were on their way
        assert not list((base / f"node{k}" / "tmp").glob("llmagentos-run-*"))


def test_a_node_killed_mid_sweep_has_its_job_rerun_elsewhere_with_the_same_results(cluster, sequential, tmp_path,
                                                                                  capfd):
    made, nodes, base = cluster
    survivor, doomed = nodes
    staging = base / "node1" / "tmp"
    killed = threading.Event()

    def kill_node_once_it_runs_a_job(sweep_done: threading.Event) -> None:
        while not sweep_done.is_set():
            if list(staging.glob("llmagentos-run-*")):
                made.remove_node(doomed, allow_graceful=False)
                killed.set()
                return
            time.sleep(0.02)

    # Ray may give the doomed node no job at all when the machine is busy (the survivor takes all three);
    # then nothing was lost and the sweep is run again, until the doomed node is killed holding a job
    for attempt in range(3):
        out = tmp_path / f"attempt{attempt}"
        sweep_done = threading.Event()
        killer = threading.Thread(target=kill_node_once_it_runs_a_job, args=(sweep_done,), daemon=True)
        killer.start()
        result, finished = _sweep(out, "ray", made.address)
        sweep_done.set()
        killer.join(30)
        if killed.is_set():
            break
    assert killed.is_set()
    assert "was lost with its node" in capfd.readouterr().err
    _assert_same_runs(result, finished, sequential, out)
    jobs = json.loads((out / "sweep" / "sweep.json").read_text())["jobs"]
    assert {j["node"] for j in jobs} == {survivor.node_id}  # the lost job, and every other, ran on the survivor


def test_a_returned_run_directory_is_untrusted_data(tmp_path):
    """What a node sends back is checked like any run directory you were handed: paths, sizes, checksums."""
    made = tmp_path / "node" / "run"
    (made / "checkpoints").mkdir(parents=True)
    (made / "metrics.jsonl").write_text("{}\n")
    os.symlink("/etc/passwd", made / "leak")  # a link is never followed or sent
    good = {"llmagentos_staged_run": 1, "result": {"run_dir": str(made)}, "staged_dir": str(made), "node": "n1",
            "files": pack_dir(made)}
    assert [f[0] for f in good["files"]] == ["metrics.jsonl"]
    summary, node = receive(good, tmp_path / "out" / "seed-0")
    assert summary == {"run_dir": str(tmp_path / "out" / "seed-0")} and node == "n1"

    def refused(files, match):
        with pytest.raises(RunTransferError, match=match):
            receive({**good, "files": files}, tmp_path / "out" / "seed-1")
        assert not (tmp_path / "out" / "seed-1").exists()

    data = b"x"
    digest = hashlib.sha256(data).hexdigest()
    for path in ("../escape", "/etc/x", "a/../../b", "a//b", "", "a\\b", "/".join(["d"] * 40)):
        refused([(path, data, digest)], "not a plain relative path")
    refused([("a", data, "0" * 64)], "does not match its SHA-256")
    refused([("a", data, digest), ("a", data, digest)], "appears twice")
    refused([("job.json", b'{"out": "x", "sha256": "forged"}', hashlib.sha256(b'{"out": "x", "sha256": "forged"}').hexdigest())],
            "job.json fails its checksum")
    blob, manifest = b"not tensors", b'{"format_version": 2}'
    refused([("agent.json", manifest, hashlib.sha256(manifest).hexdigest()),
             ("agent.safetensors", blob, hashlib.sha256(blob).hexdigest())], "refused")
    refused("not a list", "not a list")
    assert not list((tmp_path / "out").glob(".*"))  # no half-written folder left behind


def test_a_run_the_driver_holds_part_of_travels_to_the_node_and_resumes_there(sequential, tmp_path):
    """What a node is sent back of a stopped run (its checkpoints) is resumed, not redone: the same summary."""
    from llmagentos.config import run_job
    from llmagentos.kernel.remote import run_staged, staged_jobs

    alone = sequential["runs"][0]
    run_dir = tmp_path / "seed-0"
    shutil.copytree(alone["run_dir"], run_dir)
    (run_dir / "summary.json").unlink()  # as if stopped right after its checkpoint at step 800
    for leftover in ("agent.json", "agent.safetensors", "checkpoints/step-000000001200.json",
                     "checkpoints/step-000000001200.safetensors"):
        (run_dir / leftover).unlink()
    (run_dir / "checkpoints" / "latest.json").write_text('{"checkpoint": "step-000000000800", "step": 800}')
    payload = {"kind": "train", "block": TRAIN, "seed": 0, "out_dir": str(run_dir)}
    job, = staged_jobs(run_job, [payload])
    assert "checkpoints/step-000000000800.safetensors" in [f[0] for f in job["files"]]
    packed = run_staged(job)  # here, in this process: the node's side
    assert not Path(packed["staged_dir"]).exists()  # it cleared its staging folder
    summary, _ = receive(packed, run_dir)
    assert comparable(summary) == comparable(alone) and summary["run_dir"] == str(run_dir)
    resumed, whole = _run_files(str(run_dir)), _run_files(alone["run_dir"])
    final = ("agent.safetensors", "checkpoints/step-000000001200.json")  # (a resume adds a checkpoint at step 801)
    assert [resumed[k] for k in final] == [whole[k] for k in final]


def test_shared_out_schedules_a_sweep_so_a_single_run_refuses_it(tmp_path, capsys):
    from helpers import cli

    code, _, err = cli(["train", "--env", "CliffWalking-v1", "--algo", "q-learning", "--steps", "10",
                        "--out", str(tmp_path / "run"), "--shared-out"], capsys)
    assert code == 2 and "--shared-out schedule several jobs" in err and not (tmp_path / "run").exists()
