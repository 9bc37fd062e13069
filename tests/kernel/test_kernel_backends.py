"""The scheduler: inline, processes and Ray give the same results in job order; a failing job is isolated."""

import json
import os

import numpy as np
import pytest

from llmagentos.core.errors import UsageError
from llmagentos.kernel.backends import JobPool, is_failure, run_jobs
from helpers import comparable


def sample(job: dict) -> dict:
    """A seeded job: fails on request, or kills its own process."""
    if job.get("fail"):
        raise RuntimeError(f"job {job['seed']} was asked to fail")
    if job.get("die"):
        os._exit(7)
    rng = np.random.default_rng(job["seed"])
    return {"seed": job["seed"], "draws": rng.normal(size=3).tolist()}


@pytest.fixture(scope="module")
def ray_instance():
    import ray
    from llmagentos.kernel.backends import init_local_ray

    init_local_ray(num_cpus=2)
    yield ray
    ray.shutdown()


JOBS = [{"seed": s} for s in range(5)] + [{"seed": 5, "fail": True}, {"seed": 6}]


def test_inline_results_in_order_and_failure_isolated():
    results = run_jobs(sample, JOBS)
    assert [r["seed"] for r in results if not is_failure(r)] == [0, 1, 2, 3, 4, 6]
    assert is_failure(results[5]) and "asked to fail" in results[5]["error"] and results[5]["job_index"] == 5
    assert results[0]["draws"] == np.random.default_rng(0).normal(size=3).tolist()


def test_processes_match_inline_and_survive_a_dead_worker():
    inline = run_jobs(sample, JOBS)
    finished = []
    jobs = JOBS + [{"seed": 7, "die": True}, {"seed": 8}]
    results = run_jobs(sample, jobs, backend="processes", workers=2, on_result=lambda i, r: finished.append(i))
    assert results[:len(JOBS)][:5] == inline[:5] and results[6] == inline[6]
    assert is_failure(results[5]) and "asked to fail" in results[5]["error"]
    assert is_failure(results[7]) and "died" in results[7]["error"]
    assert results[8] == sample({"seed": 8})
    assert sorted(finished) == list(range(len(jobs)))


def with_pid(job: dict) -> dict:
    return {**sample(job), "pid": os.getpid()}


def test_job_pool_keeps_its_workers_across_runs_and_recovers_from_a_dead_one():
    inline = run_jobs(sample, JOBS)
    with JobPool("processes", workers=2) as pool:
        first, second = pool.run(with_pid, JOBS), pool.run(with_pid, JOBS)
        pids = {r["pid"] for r in first + second if not is_failure(r)}
        assert len(pids) <= 2 and os.getpid() not in pids  # the same two workers served both rounds
        for results in (first, second):
            assert [{k: v for k, v in r.items() if k != "pid"} for r in results if not is_failure(r)] == \
                [r for r in inline if not is_failure(r)]
            assert is_failure(results[5]) and "asked to fail" in results[5]["error"]
        dead = pool.run(with_pid, [{"seed": 7, "die": True}, {"seed": 8}])
        assert is_failure(dead[0]) and "died" in dead[0]["error"] and dead[1]["seed"] == 8
        after = pool.run(with_pid, JOBS[:2])  # a fresh pool stands in for the broken one
        assert [r["draws"] for r in after] == [r["draws"] for r in inline[:2]] and not pids & {r["pid"] for r in after}


def test_nes_generation_identical_inline_in_processes_and_on_ray(ray_instance):
    from llmagentos.jobs.meta import population_evaluator
    from llmagentos.learners.nes import ES, NESConfig

    population = ES(10, NESConfig(population=7), seed=1).ask()
    fitness = {}
    for backend in ("inline", "processes", "ray"):
        with JobPool(backend, workers=2) as pool:
            evaluate = population_evaluator("CartPole-v1", None, [None], [], 2, seed=3, pool=pool)
            fitness[backend] = [evaluate(population, 0), evaluate(population, 1)]
    assert fitness["processes"] == fitness["inline"] == fitness["ray"]
    assert fitness["inline"][0] != fitness["inline"][1]  # generations draw fresh episode seeds
    assert ray_instance.is_initialized()  # a Ray session the caller started outlives the pool


def test_ray_matches_inline(ray_instance):
    inline = run_jobs(sample, JOBS)
    results = run_jobs(sample, JOBS, backend="ray", workers=2)
    assert [r for r in results if not is_failure(r)] == [r for r in inline if not is_failure(r)]
    assert is_failure(results[5]) and "asked to fail" in results[5]["error"]


def test_bad_backend_and_local_function_refused():
    with pytest.raises(UsageError, match="unknown backend"):
        run_jobs(sample, JOBS, backend="slurm")
    with pytest.raises(UsageError, match="workers"):
        run_jobs(sample, JOBS, backend="processes", workers=0)
    with pytest.raises(UsageError, match="importable top-level function"):
        run_jobs(lambda job: job, JOBS)


def test_train_sweep_identical_inline_and_ray(tmp_path, ray_instance):
    from llmagentos.config import run_spec, validate_spec

    def sweep(backend):
        spec = validate_spec({"out": str(tmp_path / backend), "seeds": "0:3", "backend": backend, "workers": 2,
                              "train": {"env": "CliffWalking-v1", "algo": "expected-sarsa", "episodes": 10,
                                        "eval_episodes": 1, "tensorboard": False}})
        return run_spec(spec)["runs"]

    inline, ray_runs = sweep("inline"), sweep("ray")
    assert [r["seed"] for r in ray_runs] == [0, 1, 2]
    assert [comparable(r) for r in ray_runs] == [comparable(r) for r in inline]
    assert len({json.dumps(r["online"]) for r in inline}) == 3  # the seeds really differ


def test_processes_fork_path_without_torch_matches_inline(tmp_path):
    # a caller that has not loaded torch or Ray gets plain fork workers (this test process has torch loaded)
    script = tmp_path / "forked.py"
    script.write_text(
        "import json, sys\n"
        "from llmagentos.kernel.backends import _mp_context, run_jobs\n"
        "from llmagentos.kernel.report import mean_ci as f\n"
        "if __name__ == '__main__':\n"
        "    jobs = [[1.0, 2.0, float(i)] for i in range(5)] + [[]]\n"
        "    assert _mp_context().get_start_method() == 'fork' and 'torch' not in sys.modules\n"
        "    print(json.dumps([run_jobs(f, jobs), run_jobs(f, jobs, backend='processes', workers=2)]))\n")
    import subprocess
    import sys

    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    inline, forked = json.loads(out.stdout)
    assert forked == inline and inline[0]["mean"] == 1.0
