"""Stopping cleanly: SIGINT and SIGTERM end a run or sweep within seconds, and workers never outlive their parent.

The command line's process turns SIGTERM into the same :class:`Stopped` (a ``KeyboardInterrupt``) that
Ctrl-C raises, so one code path checkpoints, records ``stopped`` in the store and exits with one line.
Worker processes (the ``processes`` backend) install :func:`worker_start`: a signal stops the job in
flight (it raises :class:`Stopped` inside it) and no queued job starts afterwards; a watchdog thread
ends the worker when the parent process is gone, even when the parent was killed with SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from typing import Any, Iterator


class Stopped(KeyboardInterrupt):
    """A stop asked for by a signal; ``signal_name`` says which (SIGINT, SIGTERM)."""

    def __init__(self, signal_name: str = "SIGINT") -> None:
        super().__init__(signal_name)
        self.signal_name = signal_name
        #: raised between two steps of a loop (not in the middle of an update)
        self.at_safe_point = False


def signal_name(stop: BaseException) -> str:
    """The signal behind ``stop`` (a library may re-raise it as a plain KeyboardInterrupt: then the last one seen)."""
    return getattr(stop, "signal_name", None) or _last_signal or "SIGINT"


def exit_status(stop: BaseException) -> int:
    """The shell's status for a process ended by the signal behind ``stop``: 128 + its number."""
    return 128 + int(getattr(signal, signal_name(stop), signal.SIGINT))


#: the name of the last stop signal this process received
_last_signal: str | None = None
#: whether :func:`stop_on_signals` is in effect in this process
_installed = False
#: set while a loop that polls :func:`raise_if_stopped` at safe points runs; a signal then only asks it to stop
_deferring = False
#: the name of the signal a deferring loop has not acted on yet
_requested: str | None = None


def _raise_stopped(signum: int, frame: Any) -> None:
    global _requested, _last_signal
    _last_signal = signal.Signals(signum).name
    if _deferring:
        _requested = signal.Signals(signum).name
        return
    raise Stopped(signal.Signals(signum).name)


def defer_stop_signals() -> bool:
    """From now on a stop signal is acted on by the next :func:`raise_if_stopped`, never in the middle of an update.

    A training loop calls this so that the checkpoint it writes on the way out is a consistent one; it
    returns the previous setting for :func:`restore_stop_signals`. A stop that arrives after the loop's
    last safe point stays pending for the next one (the sweep checks before starting each job).
    """
    global _deferring
    before, _deferring = _deferring, True
    return before


def restore_stop_signals(before: bool) -> None:
    global _deferring
    _deferring = before


def raise_if_stopped() -> None:
    """Raise :class:`Stopped` if a signal arrived since the loop's last safe point."""
    global _requested
    if _requested is not None:
        name, _requested = _requested, None
        stop = Stopped(name)
        stop.at_safe_point = True  # the loop's state is consistent: it may checkpoint on the way out
        raise stop


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Inside: SIGINT and SIGTERM raise :class:`Stopped` in the main thread (elsewhere: nothing changes)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    global _installed
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    for s in previous:
        signal.signal(s, _raise_stopped)
    before, _installed = _installed, True
    try:
        yield
    finally:
        _installed = before
        for s, handler in previous.items():
            signal.signal(s, handler)


def reclaim_signals() -> None:
    """Put this module's handlers back after a library replaced them (``ray.init`` installs its own SIGTERM one)."""
    if _installed and threading.current_thread() is threading.main_thread():
        for s in (signal.SIGINT, signal.SIGTERM):
            signal.signal(s, _raise_stopped)


# -- worker processes ---------------------------------------------------------------------------

_stopping = False
_job_running = False

#: how often a worker checks that its parent is still alive (seconds)
WATCHDOG_PERIOD = 0.5


def worker_start(parent_pid: int) -> None:
    """A pool worker's initializer: stop on SIGINT/SIGTERM, and exit when ``parent_pid`` is gone."""
    signal.signal(signal.SIGINT, _worker_signal)
    signal.signal(signal.SIGTERM, _worker_signal)
    threading.Thread(target=_watch_parent, args=(parent_pid,), name="llmagentos-parent-watchdog", daemon=True).start()


def _worker_signal(signum: int, frame: Any) -> None:
    global _stopping
    if _stopping:
        return  # the first signal is already stopping this worker
    _stopping = True
    if _job_running:
        _raise_stopped(signum, frame)
        return
    os._exit(0)  # idle, waiting for a job: nothing to save


def _watch_parent(parent_pid: int) -> None:
    # a dead process's children are re-parented at once (a zombie parent still answers kill(pid, 0)), and the
    # fork server between us and the parent exits when the parent's end of its pipe closes: either way our
    # parent process changes, or the parent is gone
    first_parent = os.getppid()
    while True:
        time.sleep(WATCHDOG_PERIOD)
        if os.getppid() != first_parent or not _alive(parent_pid):
            os._exit(1)  # the parent died (even by SIGKILL): its results have nowhere to go


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # the pid now belongs to another user's process: ours is gone
        return False
    return True


def stopping() -> bool:
    """Whether this worker was told to stop (then it starts no further job)."""
    return _stopping


@contextlib.contextmanager
def job_running() -> Iterator[None]:
    """Marks the job in flight, so that a signal stops it (rather than ending an idle worker)."""
    global _job_running
    _job_running = True
    try:
        yield
    finally:
        _job_running = False
