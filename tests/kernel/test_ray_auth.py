"""A Ray cluster with token authentication on (Ray >= 2.5x's default for new clusters): the Ray client
form ``--ray-address ray://HOST:PORT`` passes the token the user put in the environment, as Ray documents."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

import ray  # noqa: F401  (the `ray` extra, which the README's test command installs)

# every test that starts a Ray cluster runs on one xdist worker: two clusters at once on this machine collide on
# the ports Ray picks for itself (the client server's specific-server port 23000)
pytestmark = pytest.mark.xdist_group("ray-cluster")

TOKEN = "0123456789abcdef0123456789abcdef"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ray_head_with_token():
    """`ray start --head --block` with token authentication, in its own temp dir (so no other test's
    ray.init() finds it) and process group (so it is stopped without touching other Ray instances)."""
    temp_dir = tempfile.mkdtemp(prefix="ray", dir="/tmp")  # short: Ray's socket paths must fit 107 bytes
    client_port = _free_port()
    # on a busy machine the head's per-client server can take longer than Ray's 30 s to answer
    env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": TOKEN, "RAY_CLIENT_SERVER_CHECK_CHANNEL_TIMEOUT_S": "120"}
    log = Path(temp_dir) / "head.log"
    with open(log, "w") as out:
        head = subprocess.Popen([str(Path(sys.executable).parent / "ray"), "start", "--head", "--block", "--port=0",
                                 f"--ray-client-server-port={client_port}", "--num-cpus=1", "--include-dashboard=false",
                                 "--disable-usage-stats", f"--temp-dir={temp_dir}"],
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while "Ray runtime started" not in log.read_text(errors="replace"):  # the whole head is up, not only its port
            assert head.poll() is None and time.monotonic() < deadline, log.read_text(errors="replace")[-2000:]
            time.sleep(0.5)
        yield f"ray://127.0.0.1:{client_port}"
    finally:
        os.killpg(head.pid, signal.SIGTERM)
        try:
            head.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(head.pid, signal.SIGKILL)
        shutil.rmtree(temp_dir, ignore_errors=True)


def test_ray_client_sweep_passes_the_token_from_the_environment(ray_head_with_token, tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    env["RAY_AUTH_TOKEN"] = TOKEN  # what the user sets; RAY_AUTH_MODE is left to llmagentos
    done = subprocess.run([sys.executable, "-m", "llmagentos.cli", "train", "--env", "CliffWalking-v1", "--algo",
                           "sarsa", "--episodes", "5", "--seeds", "0:2", "--backend", "ray", "--ray-address",
                           ray_head_with_token, "--out", str(tmp_path / "sweep"), "--json"],
                          env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-2000:]
    sweep = json.loads(done.stdout)
    assert [r["seed"] for r in sweep["runs"]] == [0, 1] and not sweep["failed"]
