"""Checkpoints as safetensors (arrays and tensors) plus JSON (everything else) — never pickle.

A state is any nested dict/list of numpy arrays, torch tensors and JSON values. :func:`save_state`
moves every array into one safetensors file under its key path and leaves a reference in the JSON;
:func:`load_state` puts them back (torch tensors come back as torch tensors). Both files are
written to temporary names and renamed. The JSON is the checkpoint's manifest: it records the SHA-256
of the tensors *and* of its own JSON state and meta, so a torn, corrupted or edited checkpoint (tensors
or JSON) is refused instead of loaded. Temporary files a killed writer left behind are removed by
:func:`remove_stale_temporaries` when the run starts again.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np

from llmagentos.core.errors import UsageError

#: 2: the manifest's ``state_sha256`` covers the JSON state and meta too (1 checked the tensors only)
FORMAT_VERSION = 2


class CheckpointError(UsageError):
    """A checkpoint that cannot be used: missing, corrupted, or made for another agent."""


def _is_torch_tensor(value: Any) -> bool:
    torch = sys.modules.get("torch")
    return torch is not None and isinstance(value, torch.Tensor)


def _flatten(value: Any, path: str, arrays: dict[str, np.ndarray]) -> Any:
    if _is_torch_tensor(value):
        arrays[path] = value.detach().cpu().contiguous().numpy().copy()
        return {"__tensor__": path, "torch": True, "dtype": str(value.dtype).replace("torch.", "")}
    if isinstance(value, np.ndarray):
        arrays[path] = np.ascontiguousarray(value)
        return {"__tensor__": path, "torch": False}
    if isinstance(value, dict):
        return {"__map__": {str(k): _flatten(v, f"{path}.{k}", arrays) for k, v in value.items()},
                "int_keys": all(isinstance(k, (int, np.integer)) for k in value) and len(value) > 0}
    if isinstance(value, (list, tuple)):
        return [_flatten(v, f"{path}.{i}", arrays) for i, v in enumerate(value)]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _unflatten(value: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(value, dict) and "__tensor__" in value:
        array = arrays[value["__tensor__"]]
        if value.get("torch"):
            import torch

            return torch.from_numpy(array.copy())
        return array.copy()
    if isinstance(value, dict) and "__map__" in value:
        out = {k: _unflatten(v, arrays) for k, v in value["__map__"].items()}
        if value.get("int_keys"):
            out = {int(k): v for k, v in out.items()}
        return out
    if isinstance(value, list):
        return [_unflatten(v, arrays) for v in value]
    return value


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that a reader sees the old file or the new one, never half of one."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_bytes(path, (json.dumps(data, indent=1, sort_keys=False) + "\n").encode())


def remove_stale_temporaries(directory: Path) -> list[Path]:
    """Delete the temporary files (``.NAME.PID.tmp``) that writers killed mid-write left in ``directory``.

    A file whose writer (the PID in its name) is still alive is left alone: it is being written now.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    stale = [p for p in directory.glob(".*.tmp") if p.is_file() and not _writer_alive(p)]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def _writer_alive(tmp: Path) -> bool:
    pid = tmp.name.rsplit(".", 2)[-2] if tmp.name.count(".") >= 3 else ""
    if not pid.isdigit() or int(pid) == os.getpid():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def read_json(path: Path, what: str) -> Any:
    """The JSON document at ``path``; one that is missing, unreadable, not UTF-8 or not JSON raises UsageError."""
    path = Path(path)
    try:
        return json.loads(path.read_bytes().decode("utf-8"))
    except FileNotFoundError:
        raise UsageError(f"{what} {path} does not exist") from None
    except OSError as err:
        raise UsageError(f"{what} {path} cannot be read: {err.strerror}") from None
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise UsageError(f"{what} {path} is not valid JSON ({type(err).__name__}); it was corrupted or edited") from None


def state_digest(blob_sha256: str, meta: Any, tree: Any) -> str:
    """The manifest's checksum: the tensors' SHA-256 together with the JSON meta and state, canonically encoded."""
    canonical = json.dumps([blob_sha256, meta, tree], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def save_state(base: Path, state: Any, meta: dict[str, Any]) -> None:
    """Write ``base.safetensors`` and ``base.json``; ``meta`` (algo, shapes, ...) is stored for checks on load."""
    from safetensors.numpy import save

    arrays: dict[str, np.ndarray] = {}
    tree = _flatten(state, "s", arrays)
    blob = save(arrays) if arrays else save({"__empty__": np.zeros(0, dtype=np.uint8)})
    base = Path(base)
    atomic_write_bytes(base.with_suffix(".safetensors"), blob)
    # the JSON is written last and names the tensors' checksum: it is the commit point
    blob_sha = hashlib.sha256(blob).hexdigest()
    atomic_write_json(base.with_suffix(".json"), {"format_version": FORMAT_VERSION, "meta": meta, "sha256": blob_sha,
                                                  "state_sha256": state_digest(blob_sha, meta, tree), "state": tree})


def load_state(base: Path, expect: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
    """(state, meta) from :func:`save_state`'s files; refuses a corrupt file or one whose meta differs from ``expect``."""
    from safetensors.numpy import load

    base = Path(base)
    json_path, blob_path = base.with_suffix(".json"), base.with_suffix(".safetensors")
    if not json_path.exists() or not blob_path.exists():
        raise CheckpointError(f"no checkpoint at {base} (expected {json_path.name} and {blob_path.name})")
    try:
        doc = read_json(json_path, "checkpoint")
    except UsageError as err:
        raise CheckpointError(str(err)) from None
    if not isinstance(doc, dict):
        raise CheckpointError(f"checkpoint {json_path} is not a checkpoint manifest (a JSON object)")
    if doc.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {json_path} has format version {doc.get('format_version')}, "
                              f"this LLMAgentOS reads version {FORMAT_VERSION}")
    blob = blob_path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != doc.get("sha256"):
        raise CheckpointError(f"checkpoint {blob_path} fails its checksum (corrupted or partly written); refusing to load it")
    meta = doc.get("meta", {})
    if doc.get("state_sha256") != state_digest(doc.get("sha256"), meta, doc.get("state")):
        raise CheckpointError(f"checkpoint {json_path} fails its checksum: its JSON state was edited or corrupted; "
                              "refusing to load it")
    if not isinstance(meta, dict):
        raise CheckpointError(f"checkpoint {json_path} has no meta mapping; refusing to load it")
    for key, wanted in (expect or {}).items():
        if meta.get(key) != wanted:
            raise CheckpointError(f"checkpoint {base.name} was made for {key}={meta.get(key)!r}, "
                                  f"not {key}={wanted!r}")
    try:
        arrays = load(blob)
    except Exception as err:  # noqa: BLE001  (safetensors raises its own error type for anything not safetensors)
        raise CheckpointError(f"checkpoint {blob_path} is not a safetensors file ({type(err).__name__}); "
                              "refusing to load it") from None
    try:
        return _unflatten(doc["state"], arrays), meta
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        raise CheckpointError(f"checkpoint {json_path} does not match its tensors ({type(err).__name__}: {err})") from None
