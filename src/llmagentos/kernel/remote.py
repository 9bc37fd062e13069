"""Run directories that travel: a sweep job run on another machine comes home to the driver's ``out``.

On a Ray cluster a job may run on a node whose disk the driver never sees. So a sweep that joins a Ray
cluster does not hand the job its run directory's path; :func:`run_staged` runs it in a fresh folder of
that node's temporary directory, packs every file the job wrote (the run directory, checkpoints, final
agent) into its result, and deletes the folder. The driver then :func:`receive`\\ s the files and writes
them where the run directory belongs, all at once (into a hidden sibling folder, then one rename).

What comes back is **untrusted data**, like any run directory handed to you: paths must be relative,
without ``..``, within the limits below, each file must match the SHA-256 the node computed, a
``job.json`` must match its own checksum, and every checkpoint (``X.json`` beside ``X.safetensors``)
must verify as :func:`llmagentos.kernel.checkpoint.load_state` checks it on resume. Anything else refuses
that job's result in one sentence (an error record; the other jobs carry on).

The job wrote its own folder's path into ``job.json`` (``out``) and ``summary.json`` (``run_dir``); the
driver puts its own path there instead, and stamps ``job.json`` with a fresh checksum, so the run
directory reads exactly as if the job had run at the driver. A run the driver already holds part of (a
sweep stopped earlier) travels the other way first, so the job resumes from its last checkpoint.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path, PurePosixPath
from typing import Any, Callable

#: the key that marks a result as a packed run directory (rather than a job's own summary)
STAGED = "llmagentos_staged_run"
#: the most files, bytes in all, characters in one path and folders deep that one returned run may hold
MAX_FILES = 10_000
MAX_BYTES = 1024**3
MAX_PATH_CHARS = 1024
MAX_DEPTH = 32
#: files whose JSON names the run's own folder, which the driver rewrites to its own path
PATH_FILES = ("job.json", "summary.json")

Files = list[tuple[str, bytes, str]]  # (relative POSIX path, content, SHA-256 of the content)


class RunTransferError(ValueError):
    """A returned (or carried) run directory that breaks the rules above; the message is one sentence."""


def run_staged(job: dict[str, Any]) -> dict[str, Any]:
    """Run ``job["function"]`` on ``job["payload"]`` in a folder of this node's temp dir; return its files.

    ``job["files"]`` (optional) is the part of the run the driver already holds, unpacked first so the
    job resumes from it. Top level, so every backend can call it by reference.
    """
    function: Callable[[dict[str, Any]], Any] = job["function"]
    staging = Path(tempfile.mkdtemp(prefix="llmagentos-run-"))
    run_dir = staging / "run"
    try:
        if job.get("files"):
            write_files(job["files"], run_dir)
        result = function({**job["payload"], "out_dir": str(run_dir)})
        return {STAGED: 1, "result": result, "staged_dir": str(run_dir), "files": pack_dir(run_dir),
                "node": _node_id()}
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _node_id() -> str | None:
    ray = sys.modules.get("ray")
    if ray is None or not ray.is_initialized():
        return None
    return ray.get_runtime_context().get_node_id()


def pack_dir(root: Path) -> Files:
    """Every regular file under ``root`` (not symlinks, not a killed writer's ``.*.tmp``), sorted, with its hash."""
    root = Path(root)
    files: Files = []
    total = 0
    if not root.is_dir():
        return files
    for folder, dirs, names in os.walk(root):  # os.walk never follows a link to a folder
        dirs.sort()
        for name in sorted(names):
            path = Path(folder) / name
            if path.is_symlink() or not path.is_file() or (name.startswith(".") and name.endswith(".tmp")):
                continue
            data = path.read_bytes()
            total += len(data)
            files.append((path.relative_to(root).as_posix(), data, hashlib.sha256(data).hexdigest()))
            if len(files) > MAX_FILES or total > MAX_BYTES:
                raise RunTransferError(f"the run directory {root} holds more than {MAX_FILES} files or "
                                       f"{MAX_BYTES} bytes, too much to return through Ray; give the sweep "
                                       "shared_out: true and an out every node mounts")
    return files


def _check_files(files: Any) -> Files:
    if not isinstance(files, (list, tuple)) or len(files) > MAX_FILES:
        raise RunTransferError(f"it is not a list of at most {MAX_FILES} files")
    seen: set[str] = set()
    total = 0
    for entry in files:
        if not (isinstance(entry, (list, tuple)) and len(entry) == 3 and isinstance(entry[0], str)
                and isinstance(entry[1], bytes) and isinstance(entry[2], str)):
            raise RunTransferError("an entry is not (path, bytes, sha256)")
        rel, data, digest = entry
        _check_path(rel)
        if rel in seen:
            raise RunTransferError(f"the path {rel!r} appears twice")
        seen.add(rel)
        total += len(data)
        if total > MAX_BYTES:
            raise RunTransferError(f"its files exceed {MAX_BYTES} bytes")
        if hashlib.sha256(data).hexdigest() != digest:
            raise RunTransferError(f"{rel} does not match its SHA-256 (corrupted on the way)")
    return list(files)


def _check_path(rel: str) -> None:
    parts = PurePosixPath(rel).parts
    if (not rel or len(rel) > MAX_PATH_CHARS or rel.startswith("/") or "\\" in rel or "\x00" in rel
            or len(parts) > MAX_DEPTH or any(p in ("", ".", "..") for p in rel.split("/"))):
        raise RunTransferError(f"the path {rel[:80]!r} is not a plain relative path inside the run directory")


def write_files(files: Any, run_dir: Path) -> None:
    """Write checked ``files`` under ``run_dir`` (a node unpacking what the driver carried to it)."""
    for rel, data, _ in _check_files(files):
        path = Path(run_dir) / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)


def receive(packed: dict[str, Any], out_dir: str | Path) -> tuple[Any, str | None]:
    """Check a :func:`run_staged` result and write its run directory at ``out_dir``; returns (result, node).

    The result (the job's summary) comes back with the node's folder replaced by ``out_dir``. Raises
    :class:`RunTransferError` (one sentence) when anything returned breaks the rules in this module's doc.
    """
    out_dir = Path(out_dir)
    staged = packed.get("staged_dir")
    node = packed.get("node")
    if not isinstance(staged, str) or not staged or not (node is None or isinstance(node, str)):
        raise RunTransferError(f"the run returned for {out_dir} does not say where it ran")
    try:
        files = _check_files(packed.get("files"))
    except RunTransferError as err:
        raise RunTransferError(f"the run returned for {out_dir} from node {node} was refused: {err}") from None
    incoming = out_dir.parent / f".{out_dir.name}.incoming-{os.getpid()}"
    shutil.rmtree(incoming, ignore_errors=True)
    try:
        for rel, data, _ in files:
            if PurePosixPath(rel).name in PATH_FILES:
                data = _relocated_json(rel, data, staged, str(out_dir))
            path = incoming / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
        _verify_checkpoints(incoming)
        _replace_dir(incoming, out_dir)
    except RunTransferError as err:
        shutil.rmtree(incoming, ignore_errors=True)
        raise RunTransferError(f"the run returned for {out_dir} from node {node} was refused: {err}") from None
    except OSError as err:
        shutil.rmtree(incoming, ignore_errors=True)
        raise RunTransferError(f"the run returned for {out_dir} from node {node} cannot be written there: "
                               f"{err.strerror or err}") from None
    return relocate(packed.get("result"), staged, str(out_dir)), node


def relocate(value: Any, old: str, new: str) -> Any:
    """``value`` with every string that is ``old`` or a path under it moved to ``new`` (JSON-like values)."""
    if isinstance(value, str):
        if value == old:
            return new
        return new + value[len(old):] if value.startswith(old + "/") else value
    if isinstance(value, dict):
        return {k: relocate(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [relocate(v, old, new) for v in value]
    return value


def _relocated_json(rel: str, data: bytes, old: str, new: str) -> bytes:
    from llmagentos.kernel.run import job_checksum

    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise RunTransferError(f"{rel} is not JSON") from None
    if PurePosixPath(rel).name == "job.json":
        if not isinstance(doc, dict) or doc.pop("sha256", None) != job_checksum(doc):
            raise RunTransferError(f"{rel} fails its checksum")
        doc = relocate(doc, old, new)
        doc["sha256"] = job_checksum(doc)
    else:
        doc = relocate(doc, old, new)
    return (json.dumps(doc, indent=1) + "\n").encode()


def _verify_checkpoints(root: Path) -> None:
    from llmagentos.kernel.checkpoint import CheckpointError, load_state

    for blob in sorted(root.rglob("*.safetensors")):
        if blob.with_suffix(".json").is_file():
            try:
                load_state(blob.with_suffix(""))
            except CheckpointError as err:
                raise RunTransferError(str(err).replace(str(root), "the run")) from None


def _replace_dir(incoming: Path, out_dir: Path) -> None:
    """Put ``incoming`` at ``out_dir``; what was there (an unfinished earlier attempt) goes only once it is in place."""
    old = out_dir.parent / f".{out_dir.name}.replaced-{os.getpid()}"
    shutil.rmtree(old, ignore_errors=True)
    if out_dir.exists():
        os.replace(out_dir, old)
    os.replace(incoming, out_dir)
    shutil.rmtree(old, ignore_errors=True)


def remove_stale_transfers(folder: Path) -> None:
    """Delete the ``.NAME.incoming-PID`` / ``.NAME.replaced-PID`` folders a killed driver left in ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        return
    for path in folder.glob(".*.*-*"):
        kind, _, pid = path.name.rpartition("-")
        if path.is_dir() and kind.endswith((".incoming", ".replaced")) and pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def staged_jobs(function: Callable[[Any], Any], payloads: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The jobs :func:`run_staged` runs for ``payloads``: each carries the part of its run the driver already holds."""
    jobs = []
    for payload in payloads:
        out_dir = Path(payload["out_dir"])
        remove_stale_transfers(out_dir.parent)
        try:
            files = pack_dir(out_dir) if (out_dir / "checkpoints").is_dir() else []
        except (RunTransferError, OSError):
            files = []  # too much to carry: the job starts over, which gives the same result
        jobs.append({"function": function, "payload": payload, "files": files})
    return jobs



def may_leave_this_machine(ray_address: str | None) -> bool:
    """Whether a Ray job may run on another machine: when the sweep joins a cluster (an address, ``RAY_ADDRESS``,
    or a Ray session this process already opened), not when it starts a local instance of its own."""
    ray = sys.modules.get("ray")
    return bool(ray_address or os.environ.get("RAY_ADDRESS") or (ray is not None and ray.is_initialized()))
