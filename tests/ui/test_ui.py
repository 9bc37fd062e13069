"""``llmagentos ui``: the dashboard checked in headless Chromium over a store filled by short real trainings.

The server runs as its own process (``llmagentos --store S ui --port P --runs R``), exactly as a person starts
it; Selenium drives the distribution's Chromium (``/usr/bin/chromium`` with ``/usr/bin/chromedriver``) and the
checks read what the page shows: table rows and the data of the charts drawn. Screenshots of every page go to
``$LLMAGENTOS_UI_SCREENSHOTS`` if set, else to a temporary folder (never into the repository).
"""

from __future__ import annotations

import fcntl
import http.client
import json
import math
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from llmagentos.cli import main
from llmagentos.kernel.store import Store

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--window-size=1300,1000")


def llmagentos(*args: str) -> None:
    """``llmagentos ARGS`` in this process; a non-zero exit fails the test."""
    try:
        main(list(args))
    except SystemExit as exit_:
        assert not exit_.code, f"llmagentos {' '.join(args)} exited with {exit_.code}"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_dashboard(store: Path, runs: Path) -> tuple[subprocess.Popen, str]:
    """``llmagentos --store STORE ui --port P --runs RUNS`` in a child process, once it answers."""
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-m", "llmagentos.cli", "--store", str(store), "ui", "--port", str(port),
                             "--runs", str(runs)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(base + "/api/agents", timeout=5).read()
            return proc, base
        except OSError:
            if proc.poll() is not None:
                raise AssertionError(f"llmagentos ui exited: {proc.stdout.read()}")
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("llmagentos ui did not answer within 60 s")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()


def get_json(base: str, path: str) -> dict:
    with urllib.request.urlopen(base + path, timeout=30) as response:
        return json.loads(response.read())


def raw_status(base: str, path: str, host_header: str | None = None) -> int:
    """The status of GET ``path`` sent exactly as written (no client-side clean-up of ``..``)."""
    host, port = base.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    conn.putrequest("GET", path, skip_host=host_header is not None, skip_accept_encoding=True)
    if host_header is not None:
        conn.putheader("Host", host_header)
    conn.endheaders()
    status = conn.getresponse().status
    conn.close()
    return status


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    """A store and run directories from short real trainings: an agent over two runs, a sweep, a lifelong demo,
    a multi-agent run over seeds and a transfer comparison — made once per test session, whichever xdist worker
    asks first (the others wait on a file lock and reuse it)."""
    base = tmp_path_factory.getbasetemp()
    root = (base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base) / "ui-store"
    root.mkdir(exist_ok=True)
    with open(root / "lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (root / "done").exists():
            fill(root / "store", root / "runs")
            (root / "done").touch()
    return root / "store", root / "runs"


def fill(store: Path, runs: Path) -> None:
    from llmagentos.jobs.demo import lifelong_demo

    for name in ("walk1", "walk2"):
        llmagentos("--store", str(store), "train", "--env", "CliffWalking-v1", "--algo", "q-learning", "--episodes", "60",
                   "--agent", "walker", "--eval-every", "500", "--out", str(runs / name), "--quiet")
    spec = runs.parent / "sweep.yaml"
    spec.write_text(f"name: ui-sweep\nseeds: 3\nout: {runs / 'sweep'}\ngrid:\n  config.alpha: [0.1, 0.5]\n"
                    "train:\n  env: FrozenLake-v1\n  algo: q-learning\n  steps: 3000\n  eval_every: 1000\n"
                    "  eval_episodes: 10\n  tensorboard: false\n")
    llmagentos("--store", str(store), "run", str(spec), "--quiet")
    llmagentos("--store", str(store), "train", "--env", "llmagentos/ClimbingGame-v0", "--algo", "hysteretic",
               "--seeds", "0:4", "--steps", "1000", "--out", str(runs / "ma"), "--quiet")
    llmagentos("--store", str(store), "train", "--env", "FrozenLake-v1", "--algo", "q-learning", "--steps", "3000",
               "--out", str(runs / "lake"), "--quiet")
    llmagentos("--store", str(store), "transfer", "--source", str(runs / "lake"), "--env", "FrozenLake-v1", "--steps", "1000",
               "--seeds", "0:2", "--eval-episodes", "5", "--out", str(runs / "transfer"), "--quiet")
    lifelong_demo(seeds=1, steps_per_task=150, out=str(runs / "demo"), backend="inline", quiet=True,
                  strategies=["finetune", "replay"], table=False)


@pytest.fixture(scope="module")
def dashboard(filled):
    """The dashboard serving the filled store: (store, runs, base URL)."""
    proc, base = start_dashboard(*filled)
    yield (*filled, base)
    stop(proc)


@pytest.fixture(scope="module")
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument("--user-data-dir=" + tempfile.mkdtemp(prefix="llmagentos-chromium-"))
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


class Page:
    """Open a dashboard page in the browser, wait until it is drawn, read what it shows, take its screenshot."""

    def __init__(self, driver, base: str) -> None:
        self.driver, self.base = driver, base
        self.shots = Path(os.environ.get("LLMAGENTOS_UI_SCREENSHOTS") or tempfile.mkdtemp(prefix="llmagentos-ui-shots-"))
        self.shots.mkdir(parents=True, exist_ok=True)

    def open(self, path: str, shot: str) -> None:
        self.driver.set_window_size(1300, 1000)
        self.driver.get(self.base + path)
        self.wait("return document.getElementById('app').dataset.ready === '1'", f"{path} to be drawn")
        self.screenshot(shot)

    def wait(self, script: str, what: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            errors = self.driver.execute_script("return [...document.querySelectorAll('.error')].map(e => e.textContent)")
            assert not errors, f"the page shows an error: {errors}"
            if self.driver.execute_script(script):
                return
            time.sleep(0.2)
        raise AssertionError(f"timed out waiting for {what}")

    def js(self, script: str):
        return self.driver.execute_script(script)

    def rows(self, table_id: str) -> list[list[str]]:
        return self.js(f"return [...document.querySelectorAll('#{table_id} tbody tr')]"
                       ".map(r => [...r.cells].map(c => c.textContent))")

    def plot(self, div_id: str) -> list[dict]:
        """The traces drawn in the Plotly chart ``div_id`` (what the person sees, as numbers)."""
        return self.js(f"return document.getElementById('{div_id}').data.map(t => "
                       "({name: t.name, x: t.x, y: t.y, z: t.z, type: t.type}))")

    def screenshot(self, name: str) -> None:
        height = self.js("return document.body.scrollHeight")
        self.driver.set_window_size(1300, min(max(height + 120, 600), 4000))
        self.driver.save_screenshot(str(self.shots / f"{name}.png"))


def half_width(values: list[float]) -> float:
    return float(stats.t.ppf(0.975, len(values) - 1) * np.std(values, ddof=1) / math.sqrt(len(values)))


def test_the_dashboard_shows_the_store_in_a_real_browser(dashboard, browser):
    store_root, runs, base = dashboard
    page = Page(browser, base)
    with Store(store_root) as store:
        agents = [a.name for a in store.agents()]
        walker_runs = store.runs(agent="walker")
        ma_runs = [r for r in store.runs() if r["algo"] == "hysteretic"]
    # the agents list: every agent of the store, and walker's two versions with the runs that made them
    page.open("/agents", "agents")
    assert [row[0] for row in page.rows("agents-table")] == agents
    page.open("/agents/walker", "agent")
    assert [row[0] for row in page.rows("versions-table")] == ["v1", "v2"]
    assert [row[4] for row in page.rows("versions-table")] == ["new", "v1"]
    assert [row[0] for row in page.rows("agent-runs-table")] == [f"#{r['id']}" for r in walker_runs]

    # a run's learning curve: one point per evaluation of its summary, at the same steps and values
    first = walker_runs[0]
    page.open(f"/runs/{first['id']}", "run")
    curve = page.plot("curve")[0]
    expected = first["summary"]["curve"]
    assert len(curve["x"]) == len(expected) == len(page.rows("eval-table"))
    assert curve["x"] == [p["step"] for p in expected] and curve["y"] == [p["mean_return"] for p in expected]

    # the runs table filters by job kind and pages
    page.open("/runs?kind=multiagent&per_page=3", "runs")
    assert {row[2] for row in page.rows("runs-table")} == {"multiagent"} and len(page.rows("runs-table")) == 3
    assert f"page 1 of 2 · {len(ma_runs)} runs" in page.js("return document.querySelector('.pager').textContent")

    # the sweep: mean ± 95 % CI over its seeds per grid point, in the table and as the band of the chart
    page.open("/results?kind=sweep", "sweeps")
    assert [row[0] for row in page.rows("results-table")] == ["ui-sweep"]
    page.open(f"/result?path={runs / 'sweep'}", "sweep")
    manifest = json.loads((runs / "sweep" / "sweep.json").read_text())
    traces = {t["name"]: t for t in page.plot("sweep-curves")}
    for row in page.rows("groups-table"):
        alpha = float(row[0].split("=")[1])
        summaries = [json.loads((Path(j["run_dir"]) / "summary.json").read_text()) for j in manifest["jobs"]
                     if j["params"]["config.alpha"] == alpha]
        finals = [s["eval"]["mean_return"] for s in summaries]
        shown_mean, shown_ci = (float(v) for v in row[2].split("±"))
        assert row[1] == "3" and shown_mean == pytest.approx(np.mean(finals), abs=1e-3)
        assert shown_ci == pytest.approx(half_width(finals), abs=1e-3)
        per_step = np.array([[p["mean_return"] for p in s["curve"]] for s in summaries])
        mean = traces[f"{row[0]} (mean ± 95 % CI)"]["y"]
        high = traces[f"{row[0]} high"]["y"]
        assert mean == pytest.approx(per_step.mean(axis=0).tolist())
        assert high == pytest.approx([m + half_width(list(c)) for m, c in zip(mean, per_step.T)])

    # the lifelong demo: R-matrix cells equal to the summary's, drawn with their values; the life curve
    summary = json.loads((runs / "demo" / "summary.json").read_text())
    page.open(f"/result?path={runs / 'demo'}", "lifelong")
    for strategy, metrics in summary["strategies"].items():
        heatmap = page.plot(f"matrix-{strategy}")[0]
        assert heatmap["type"] == "heatmap"
        np.testing.assert_allclose(heatmap["z"], metrics["matrix"])
        cells = page.js(f"return [...document.querySelectorAll('#matrix-{strategy} .heatmap-label text')]"
                        ".map(t => t.textContent)")  # the values written in the cells, two decimals
        assert sorted(float(c.replace("\u2212", "-")) for c in cells) == pytest.approx(
            sorted(v for row in metrics["matrix"] for v in row), abs=0.0051)
        life = summary["per_seed"][0]["strategies"][strategy]["life"]
        assert page.plot(f"life-{strategy}")[0]["x"] == [p[0] for p in life]
    shown = {row[0]: row for row in page.rows("lifelong-metrics")}
    assert set(shown) == set(summary["strategies"])

    # multi-agent: where the seeds end, as counted from the runs' summaries
    page.open(f"/result?path={runs / 'ma'}", "multiagent")
    outcomes = [r["summary"]["outcome"] for r in ma_runs]
    bars = page.plot("outcomes")[0]
    assert dict(zip(bars["x"], bars["y"])) == {o: outcomes.count(o) for o in set(outcomes)}

    # transfer: both arms' mean curves, the threshold and the jumpstart
    result = json.loads((runs / "transfer" / "summary.json").read_text())
    page.open(f"/result?path={runs / 'transfer'}", "transfer")
    drawn = {t["name"]: t for t in page.plot("transfer")}
    assert drawn["transfer (mean)"]["y"] == pytest.approx(result["curves"]["transfer"]["mean"])
    assert drawn["scratch (mean)"]["y"] == pytest.approx(result["curves"]["scratch"]["mean"])
    assert drawn["jumpstart"]["y"] == pytest.approx([result["curves"]["scratch"]["mean"][0],
                                                     result["curves"]["transfer"]["mean"][0]])

    # several runs overlaid: the sweep's first grid point, mean of its seeds
    ids = [r["id"] for r in Store(store_root).runs() if "alpha=0.1" in r["run_dir"]]
    page.open(f"/compare?ids={','.join(map(str, ids))}", "compare")
    assert len(page.rows("compare-table")) == 3
    assert page.plot("overlay")[-1]["y"] == pytest.approx(traces["alpha=0.1 (mean ± 95 % CI)"]["y"])


def test_a_live_run_curve_grows_while_it_trains(dashboard, browser):
    store_root, runs, base = dashboard
    page = Page(browser, base)
    trainer = subprocess.Popen([sys.executable, "-m", "llmagentos.cli", "--store", str(store_root), "train",
                                "--env", "CartPole-v1", "--algo", "dqn", "--steps", "3000", "--eval-every", "200",
                                "--eval-episodes", "2", "--out", str(runs / "live"), "--quiet"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        run = None
        while time.monotonic() < deadline:  # the run is recorded as running and has its first evaluation
            found = [r for r in get_json(base, "/api/runs?status=running")["runs"] if r["run_dir"].endswith("live")]
            if found and get_json(base, f"/api/runs/{found[0]['id']}/metrics")["eval"]:
                run = found[0]
                break
            time.sleep(0.2)
        assert run is not None, "the live run never showed an evaluation"
        os.kill(trainer.pid, signal.SIGSTOP)  # hold the trainer while the page opens, however fast the machine
        page.open(f"/runs/{run['id']}", "live-run")
        before = len(page.plot("curve")[0]["x"])
        assert page.js("return document.getElementById('run-status').textContent") == "running"
        os.kill(trainer.pid, signal.SIGCONT)
        page.wait(f"return document.getElementById('curve').data[0].x.length > {before}", "the curve to grow", 60)
        page.screenshot("live-run-grown")
        assert trainer.wait(timeout=120) == 0, trainer.stderr.read()
        summary = json.loads((runs / "live" / "summary.json").read_text())
        page.wait(f"return document.getElementById('run-status').textContent === 'finished' && "
                  f"document.getElementById('curve').data[0].x.length === {len(summary['curve'])}", "the finished run", 30)
        assert len(summary["curve"]) > before
    finally:
        if trainer.poll() is None:
            os.kill(trainer.pid, signal.SIGCONT)
            trainer.kill()


def test_files_are_served_only_from_inside_run_directories(dashboard):
    store, runs, base = dashboard
    (runs / "walk1" / "escape").symlink_to("/etc/passwd")
    (runs.parent / "secret.txt").write_text("not for the dashboard")
    run_id = next(r["id"] for r in Store(store).runs() if r["run_dir"].endswith("walk1"))
    with urllib.request.urlopen(f"{base}/files/{run_id}/summary.json") as response:
        assert json.loads(response.read()) == json.loads((runs / "walk1" / "summary.json").read_text())
    for path in ("../../etc/passwd", "../../../../../../etc/passwd", "%2e%2e/%2e%2e/%2e%2e/etc/passwd",
                 "..%2f..%2f..%2fetc%2fpasswd", "/etc/passwd", "escape", "../../secret.txt", "../walk1/../../secret.txt",
                 "", ".", "checkpoints/../../secret.txt", "no-such-file"):
        assert raw_status(base, f"/files/{run_id}/{path}") == 404, path
    assert raw_status(base, "/files/999/summary.json") == 404
    assert raw_status(base, "/../../etc/passwd") == 404
    assert raw_status(base, "/static/../../../../etc/passwd") == 404
    assert raw_status(base, f"/api/result?path={runs.parent}") == 404  # not a result directory it found
    # a page elsewhere that points its own DNS name at 127.0.0.1 is refused (DNS rebinding)
    assert raw_status(base, "/api/agents", host_header="attacker.example") == 400
    assert raw_status(base, "/api/agents", host_header=f"localhost:{base.rsplit(':', 1)[1]}") == 200


def test_the_dashboard_reads_without_writing_or_locking(tmp_path):
    from llmagentos.ui.data import StoreReader

    missing = tmp_path / "nowhere"
    assert StoreReader(missing).agents() == [] and StoreReader(missing).runs()["total"] == 0
    assert not missing.exists()  # nothing created
    store = Store(tmp_path / "store")
    store.record_run(tmp_path / "r", status="running", env="CliffWalking-v1", algo="sarsa", seed=0)
    reader = StoreReader(tmp_path / "store")
    with store.transaction() as db:  # a job holding the write lock does not block the dashboard
        db.execute("UPDATE runs SET status = 'finished'")
        assert reader.runs()["runs"][0]["status"] == "running"
    assert reader.runs()["runs"][0]["status"] == "finished"
    with pytest.raises(sqlite3.OperationalError):
        reader.query("DELETE FROM runs")
    store.record_run(tmp_path / "r2", status="running")  # and the dashboard never locks a writer out
    assert reader.runs()["total"] == 2


def test_ui_refuses_a_bad_port_or_host_with_one_sentence(capsys):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        for args, message in ((["--port", "0"], "--port must be between 1 and 65535"),
                              (["--port", str(taken.getsockname()[1])], "choose another --port"),
                              (["--host", "no.such.host.invalid"], "is not an address of this machine")):
            with pytest.raises(SystemExit) as exit_:
                main(["ui", *args])
            assert exit_.value.code == 2
            err = capsys.readouterr().err
            assert message in err and "Traceback" not in err and err.count("\n") == 1


def test_meta_and_drift_views_summarise_the_seeds_like_the_kernel():
    from llmagentos.kernel.report import mean_ci
    from llmagentos.ui.results import lifelong_view, meta_view

    seeds = [{"seed": s, "algo": "maml", "return": {"maml": [0.1 + s, 0.5 + s], "random": [0.0, 0.1 * s]}} for s in range(3)]
    adaptation = meta_view(seeds)["adaptation"]
    assert adaptation["steps"] == [0, 1] and adaptation["seeds"] == 3
    for method in ("maml", "random"):
        for k in (0, 1):
            expected = mean_ci([s["return"][method][k] for s in seeds])
            assert adaptation["methods"][method]["mean"][k] == pytest.approx(expected["mean"])
            assert adaptation["methods"][method]["ci95"][k] == pytest.approx(expected["ci95"])
    drift = [{"seed": 0, "strategies": {"finetune": {"switches": [100, 200], "detections": [130, 260], "delays": [30, 60],
                                                     "false_alarms": [], "false_alarms_per_100k": 0.0, "steps": 300}}}]
    arm = lifelong_view(drift)["lifelong"]["finetune"]
    assert arm["metrics"]["detected"] == 2 and arm["metrics"]["median_delay_steps"] == 45.0
    assert arm["lives"] == [{"seed": 0, "life": [], "boundaries": [100, 200], "alarms": [130, 260], "steps": 300}]


def test_an_agents_lineage_and_performance_per_task_come_from_the_store(tmp_path):
    from llmagentos.ui.data import StoreReader

    store = Store(tmp_path / "store")
    tasks = [store.record_task("llmagentos/GoalGrid-v0", descriptor=[g, 4], name=f"goal-{g}") for g in (0, 4)]
    for position, task in enumerate(tasks + tasks[:1]):  # a stream that comes back to its first task
        store.put_agent("arm", {"w": [float(position)]}, algo="lifelong-q-learning", task=task,
                        meta={"next_task": position + 1})
        store.add_knowledge(task, "arm", score=float(position), meta={"strategy": "replay", "position": position})
    view = StoreReader(tmp_path / "store").agent("arm")
    assert [(e["version"], e["from_version"], e["task"], e["note"]) for e in view["lineage"]] == [
        (1, None, "goal-0", "lifelong stream (replay), after task 0"),
        (2, 1, "goal-4", "lifelong stream (replay), after task 1"),
        (3, 2, "goal-0", "lifelong stream (replay), after task 2")]
    # current performance: the latest entry per task (the return to goal-0 replaces the first score)
    assert [(p["task"], p["score"], p["version"]) for p in view["performance"]] == [("goal-0", 2.0, 3), ("goal-4", 1.0, 2)]
    assert StoreReader(tmp_path / "store").agent("nobody") is None
