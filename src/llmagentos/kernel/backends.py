"""The scheduler: run a list of independent jobs inline, in local processes, or on a Ray cluster.

A *job* is one picklable argument (usually a small dict such as ``{"spec": ..., "seed": 3}``) and
the *function* is an importable, top-level callable ``function(job) -> result``. The result must be
picklable (JSON-able dicts are best). :func:`run_jobs` returns the results in job order, whatever
order they finished in, so the same jobs give the same list on every backend::

    from llmagentos.kernel.backends import run_jobs, is_failure

    results = run_jobs(evaluate_member, [{"theta": t, "seed": i} for i, t in enumerate(population)],
                       backend="processes", workers=2)
    for r in results:
        if is_failure(r):
            print("job", r["job_index"], "failed:", r["error"])

Determinism: a job must take every random number from its own seed (not from the process's global
generators), so which worker runs it does not matter. Workers run torch with one thread
(``torch.set_num_threads(1)``); inline jobs run in the caller's process with the caller's settings.

A caller that submits many rounds of jobs (an evolution strategy: one round per generation) keeps one
:class:`JobPool` open for the whole run, so that the worker processes (or the Ray session) start once::

    with JobPool("processes", workers=2) as pool:
        for generation in range(50):
            results = pool.run(evaluate_chunk, chunks)

A job that raises becomes an error record (see :func:`failure`) and the others carry on. On the
``processes`` backend a job that kills its worker outright (segfault, SIGKILL, ``os._exit``) breaks
the pool; the jobs caught in it are then re-run one by one in fresh single-worker pools, so only the
culprit ends up as an error record.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from typing import Any, Callable, Literal, Sequence

from llmagentos.core.errors import UsageError

Backend = Literal["inline", "processes", "ray"]
BACKENDS: tuple[str, ...] = ("inline", "processes", "ray")

#: called after each job finishes: on_result(job_index, result); runs in the caller's process
ResultCallback = Callable[[int, Any], None]


def failure(index: int, error: BaseException | str, tb: str = "") -> dict[str, Any]:
    """The record that stands in a failed job's place: ``{"failed": True, "job_index", "error", "error_type", "traceback"}``."""
    if isinstance(error, BaseException):
        return {"failed": True, "job_index": index, "error": str(error) or type(error).__name__,
                "error_type": type(error).__name__, "traceback": tb}
    return {"failed": True, "job_index": index, "error": str(error), "error_type": "Error", "traceback": tb}


def is_failure(result: Any) -> bool:
    """Whether ``result`` is an error record made by :func:`failure` rather than a job's own result."""
    return isinstance(result, dict) and result.get("failed") is True and "error" in result and "job_index" in result


def check_backend(backend: str, workers: int | None = None) -> None:
    """Raise UsageError for an unknown backend or a non-positive worker count (call before any work starts)."""
    if backend not in BACKENDS:
        raise UsageError(f"unknown backend {backend!r}; choose one of: {', '.join(BACKENDS)}")
    if workers is not None and workers <= 0:
        raise UsageError(f"--workers must be a positive number of worker processes, got {workers}")
    if backend == "ray":
        try:
            import_ray()
        except ImportError:
            raise UsageError("the ray backend needs Ray: pip install 'llmagentos[ray]'") from None


def _check_function(function: Callable[[Any], Any]) -> None:
    name = getattr(function, "__qualname__", "")
    module = getattr(function, "__module__", None)
    if not callable(function) or "<lambda>" in name or "<locals>" in name or module is None:
        raise UsageError(f"run_jobs needs an importable top-level function, got {function!r}")


def _call(function: Callable[[Any], Any], index: int, job: Any) -> Any:
    """Run one job; an exception becomes an error record (KeyboardInterrupt still stops everything)."""
    try:
        return function(job)
    except Exception as err:  # noqa: BLE001  (one job's failure must not take the others down)
        return failure(index, err, traceback.format_exc())


def _worker_init() -> None:
    # one thread per worker: N workers on N cores, and floating-point results that do not depend on the pool
    os.environ["OMP_NUM_THREADS"] = "1"
    os.environ["MKL_NUM_THREADS"] = "1"
    # torch reads OMP_NUM_THREADS when a job first imports it; one already imported is told directly
    torch = sys.modules.get("torch")
    if torch is not None and torch.get_num_threads() != 1:
        torch.set_num_threads(1)


def _call_in_worker(function: Callable[[Any], Any], index: int, job: Any) -> Any:
    from llmagentos.kernel import signals

    if signals.stopping():  # a job queued before the stop signal must not start after it
        return stopped(index)
    _worker_init()
    try:
        with signals.job_running():
            return _call(function, index, job)
    except KeyboardInterrupt:  # the job saw the signal and stopped (checkpointed where it could)
        return stopped(index)


def stopped(index: int) -> dict[str, Any]:
    """The record of a job a stop signal interrupted or kept from starting (an error record with ``stopped``)."""
    return {**failure(index, "stopped by a signal before it finished"), "stopped": True}


def run_jobs(function: Callable[[Any], Any], jobs: Sequence[Any], backend: str = "inline",
             workers: int | None = None, ray_address: str | None = None,
             on_result: ResultCallback | None = None) -> list[Any]:
    """``[function(job) for job in jobs]`` on ``backend``, in job order; a failed job yields an error record.

    - ``inline``: one after another in this process (the default; easiest to debug).
    - ``processes``: a pool of ``workers`` local processes (default: the number of CPUs), started with
      ``forkserver`` so that no thread state is inherited.
    - ``ray``: Ray tasks (one CPU each), at most ``workers`` in flight when given. Joins the cluster at
      ``ray_address`` (``"auto"`` or ``"ray://host:10001"``); without one it uses the Ray instance already
      initialised in this process or starts a local one, which it shuts down again afterwards.

    ``on_result(index, result)`` is called in this process as each job finishes (for progress bars and
    bookkeeping). Raises UsageError for an unknown backend or a function that is not importable.
    One call starts its workers and stops them again; a :class:`JobPool` keeps them for many calls.
    """
    check_backend(backend, workers)
    _check_function(function)
    jobs = list(jobs)
    if not jobs:
        return []
    if backend == "processes":  # a one-off round needs no more processes than jobs
        workers = min(workers or os.cpu_count() or 1, len(jobs))
    with JobPool(backend, workers, ray_address) as pool:
        return pool.run(function, jobs, on_result)


class JobPool:
    """A backend held open across many :meth:`run` calls: one process pool, or one Ray session, for a whole run.

    ``JobPool(backend, workers, ray_address)`` takes :func:`run_jobs`'s arguments, and ``pool.run(function,
    jobs, on_result)`` gives what ``run_jobs`` gives with them (the same results in the same order, the same
    error records). Worker processes start on the first ``run`` and stay until :meth:`close` (or the end of
    a ``with`` block); a job that kills its worker costs the pool, which starts afresh on the next ``run``.
    A Ray session the pool started is shut down on close; one the caller initialised is left running.
    """

    def __init__(self, backend: str = "inline", workers: int | None = None, ray_address: str | None = None) -> None:
        check_backend(backend, workers)
        self.backend, self.workers, self.ray_address = backend, workers, ray_address
        self._executor: Any = None  # the ProcessPoolExecutor, once started
        self._ray_remote: Any = None
        self._ray_started_here = False

    def __enter__(self) -> JobPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def run(self, function: Callable[[Any], Any], jobs: Sequence[Any],
            on_result: ResultCallback | None = None) -> list[Any]:
        """``[function(job) for job in jobs]`` on this pool's backend, in job order (see :func:`run_jobs`)."""
        _check_function(function)
        jobs = list(jobs)
        if not jobs:
            return []
        if self.backend == "inline":
            from llmagentos.kernel.signals import raise_if_stopped

            results = []
            for i, job in enumerate(jobs):
                raise_if_stopped()  # a stop that arrived after the last job's final safe point
                results.append(_call(function, i, job))
                if on_result is not None:
                    on_result(i, results[-1])
            return results
        if self.backend == "processes":
            return self._run_processes(function, jobs, on_result)
        return self._run_ray(function, jobs, on_result)

    def close(self) -> None:
        """Stop the worker processes, or the Ray session this pool started."""
        if self._executor is not None:
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        if self._ray_started_here:
            import ray

            ray.shutdown()
            self._ray_started_here = False
        self._ray_remote = None

    def _run_processes(self, function, jobs: list[Any], on_result: ResultCallback | None) -> list[Any]:
        from concurrent.futures.process import BrokenProcessPool

        if self._executor is None:
            self._executor = _process_pool(self.workers or os.cpu_count() or 1)
        results: list[Any] = [None] * len(jobs)
        broken: list[int] = []
        futures = {self._executor.submit(_call_in_worker, function, i, job): i for i, job in enumerate(jobs)}
        try:
            self._collect(futures, results, broken, on_result)
        except KeyboardInterrupt:
            self._stop_workers()
            raise
        if broken:  # a dead worker breaks the whole pool: the next run starts a fresh one
            self._executor.shutdown(wait=True, cancel_futures=True)
            self._executor = None
        # we cannot tell which job killed the worker, so re-run each caught job alone
        for i in sorted(broken):
            with _process_pool(1) as lone:
                try:
                    results[i] = lone.submit(_call_in_worker, function, i, jobs[i]).result()
                except BrokenProcessPool:
                    results[i] = failure(i, "the worker process died while running this job (killed or crashed)")
                except Exception as err:
                    results[i] = failure(i, err, traceback.format_exc())
            if on_result is not None:
                on_result(i, results[i])
        return results

    def _collect(self, futures: dict[Any, int], results: list[Any], broken: list[int],
                 on_result: ResultCallback | None) -> None:
        from concurrent.futures import as_completed
        from concurrent.futures.process import BrokenProcessPool

        for future in as_completed(futures):
            i = futures[future]
            try:
                results[i] = future.result()
            except BrokenProcessPool:
                broken.append(i)
                continue
            except Exception as err:  # the result could not be pickled back, for instance
                results[i] = failure(i, err, traceback.format_exc())
            if on_result is not None:
                on_result(i, results[i])

    def _stop_workers(self, grace: float = 1.5) -> None:
        """After a stop signal: no queued job starts, jobs in flight stop (and checkpoint), workers exit."""
        import signal
        import time

        executor, self._executor = self._executor, None
        processes = list((getattr(executor, "_processes", None) or {}).values())
        executor.shutdown(wait=False, cancel_futures=True)
        for process in processes:  # a SIGTERM reached only this process; a terminal's Ctrl-C reached them too
            with contextlib.suppress(ProcessLookupError, TypeError):
                os.kill(process.pid, signal.SIGINT)
        deadline = time.monotonic() + grace
        for process in processes:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join(1.0)

    def _run_ray(self, function, jobs: list[Any], on_result: ResultCallback | None) -> list[Any]:
        ray = import_ray()

        if not ray.is_initialized():
            try:
                if self.ray_address:
                    ray.init(address=self.ray_address, log_to_driver=False)
                else:
                    init_local_ray(num_cpus=self.workers)
            except (ConnectionError, ValueError, RuntimeError) as err:
                hint = ("" if os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH") else
                        "; if the cluster uses token authentication, set RAY_AUTH_TOKEN (or RAY_AUTH_TOKEN_PATH)")
                raise UsageError(f"cannot reach a Ray cluster at {self.ray_address or 'a new local instance'}: {err}{hint}") from None
            self._ray_started_here = True
            from llmagentos.kernel.signals import reclaim_signals

            reclaim_signals()  # ray.init replaced the SIGTERM handler with one that exits without stopping the sweep
        if self._ray_remote is None:
            self._ray_remote = ray.remote(num_cpus=1, max_retries=0)(_ray_call)
        limit = self.workers or len(jobs)
        results: list[Any] = [None] * len(jobs)
        pending: dict[Any, int] = {}
        try:
            self._ray_loop(function, jobs, results, pending, limit, on_result)
        except KeyboardInterrupt:  # no new task after the stop; the ones in flight are cancelled
            for ref in pending:
                with contextlib.suppress(Exception):
                    ray.cancel(ref, force=True)
            raise
        return results

    def _ray_loop(self, function, jobs: list[Any], results: list[Any], pending: dict[Any, int], limit: int,
                  on_result: ResultCallback | None) -> None:
        import ray

        lost = _ray_lost_errors()
        attempts = [0] * len(jobs)
        retry: list[int] = []  # jobs whose node or worker died under them, to run again first
        next_job = 0
        while next_job < len(jobs) or pending or retry:
            while (retry or next_job < len(jobs)) and len(pending) < limit:
                i = retry.pop(0) if retry else next_job
                next_job += i == next_job
                attempts[i] += 1
                pending[self._ray_remote.remote(function, i, jobs[i])] = i
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                i = pending.pop(ref)
                try:
                    results[i] = ray.get(ref)
                except lost as err:  # a node left the cluster (or a worker died): the job runs again elsewhere
                    if attempts[i] < RAY_ATTEMPTS:
                        sys.stderr.write(f"llmagentos: job {i} was lost with its {_what_died(err)}; running it "
                                         f"again elsewhere (attempt {attempts[i] + 1} of {RAY_ATTEMPTS})\n")
                        retry.append(i)
                        continue
                    results[i] = failure(i, err, traceback.format_exc())
                except Exception as err:  # the task itself failed in Ray (RayTaskError: its result would not unpickle, say)
                    results[i] = failure(i, err, traceback.format_exc())
                if on_result is not None:
                    on_result(i, results[i])


#: how many times the ray backend runs a job whose node or worker died under it before it becomes an error record
RAY_ATTEMPTS = 3


def _ray_lost_errors() -> tuple[type[BaseException], ...]:
    """Ray's errors for a task lost with its node, its worker process or its result (not the job's own failure)."""
    from ray import exceptions as e

    return (e.NodeDiedError, e.WorkerCrashedError, e.ObjectLostError, e.LocalRayletDiedError)


def _what_died(err: BaseException) -> str:
    from ray import exceptions as e

    if isinstance(err, e.NodeDiedError):
        return "node"
    return "result" if isinstance(err, e.ObjectLostError) else "worker process"


#: imported once by the fork server, so that each worker forked from it starts with them (no torch here)
FORKSERVER_PRELOAD = ["numpy", "llmagentos.config", "llmagentos.kernel.run", "llmagentos.kernel.sweep"]


def _process_pool(workers: int):
    """A process pool whose workers stop on SIGINT/SIGTERM and exit when this process dies (even by SIGKILL)."""
    from concurrent.futures import ProcessPoolExecutor

    from llmagentos.kernel.signals import worker_start

    return ProcessPoolExecutor(max_workers=workers, mp_context=_mp_context(), initializer=worker_start,
                               initargs=(os.getpid(),))


def _mp_context():
    # fork is instant (workers inherit every import) but only safe while this process runs no other
    # threads: once torch (its thread pool) or Ray is loaded, workers fork from a clean single-threaded
    # fork server instead; spawn where neither exists
    import multiprocessing
    import threading

    methods = multiprocessing.get_all_start_methods()
    if "fork" in methods and threading.active_count() == 1 and not {"torch", "ray"} & set(sys.modules):
        return multiprocessing.get_context("fork")
    if "forkserver" not in methods:
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(FORKSERVER_PRELOAD)
    return context


def init_local_ray(num_cpus: int | None = None, **kwargs: Any) -> None:
    """Start a local Ray instance whose workers can import whatever this process can (its ``sys.path``)."""
    ray = import_ray()

    path = os.pathsep.join(p for p in [*sys.path, os.environ.get("PYTHONPATH", "")] if p)
    ray.init(num_cpus=num_cpus, log_to_driver=False, include_dashboard=False,
             runtime_env={"env_vars": {"PYTHONPATH": path, "OMP_NUM_THREADS": "1"}}, **kwargs)


def import_ray() -> Any:
    """``import ray``, sending Ray's authentication token when the user gave one (``RAY_AUTH_TOKEN`` or
    ``RAY_AUTH_TOKEN_PATH``, as Ray documents): Ray sends it only in token mode (``RAY_AUTH_MODE=token``), which
    it reads when first imported; a mode the user set is left as it is."""
    if (os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")) and "RAY_AUTH_MODE" not in os.environ:
        os.environ["RAY_AUTH_MODE"] = "token"
    import ray

    return ray


def _ray_call(function, index: int, job: Any) -> Any:
    return _call_in_worker(function, index, job)
