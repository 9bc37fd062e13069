"""Checkpoints as safetensors (arrays and tensors) plus JSON (everything else) — never pickle.

A state is any nested dict/list of numpy arrays, torch tensors and JSON values. :func:`save_state`
moves every array into one safetensors file under its key path and leaves a reference in the JSON;
:func:`load_state` puts them back (torch tensors come back as torch tensors). Both files are
written to temporary names and renamed, and the JSON records the tensors' SHA-256, so a torn or
corrupted checkpoint is refused instead of loaded.
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

FORMAT_VERSION = 1


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


def save_state(base: Path, state: Any, meta: dict[str, Any]) -> None:
    """Write ``base.safetensors`` and ``base.json``; ``meta`` (algo, shapes, ...) is stored for checks on load."""
    from safetensors.numpy import save

    arrays: dict[str, np.ndarray] = {}
    tree = _flatten(state, "s", arrays)
    blob = save(arrays) if arrays else save({"__empty__": np.zeros(0, dtype=np.uint8)})
    base = Path(base)
    atomic_write_bytes(base.with_suffix(".safetensors"), blob)
    # the JSON is written last and names the tensors' checksum: it is the commit point
    atomic_write_json(base.with_suffix(".json"), {"format_version": FORMAT_VERSION, "meta": meta,
                                                  "sha256": hashlib.sha256(blob).hexdigest(), "state": tree})


def load_state(base: Path, expect: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
    """(state, meta) from :func:`save_state`'s files; refuses a corrupt file or one whose meta differs from ``expect``."""
    from safetensors.numpy import load

    base = Path(base)
    json_path, blob_path = base.with_suffix(".json"), base.with_suffix(".safetensors")
    if not json_path.exists() or not blob_path.exists():
        raise CheckpointError(f"no checkpoint at {base} (expected {json_path.name} and {blob_path.name})")
    try:
        doc = json.loads(json_path.read_text())
    except json.JSONDecodeError as err:
        raise CheckpointError(f"checkpoint {json_path} is not valid JSON ({err.msg})") from None
    if doc.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"checkpoint {json_path} has format version {doc.get('format_version')}, "
                              f"this LLMAgentOS reads version {FORMAT_VERSION}")
    blob = blob_path.read_bytes()
    if hashlib.sha256(blob).hexdigest() != doc.get("sha256"):
        raise CheckpointError(f"checkpoint {blob_path} fails its checksum (corrupted or partly written); refusing to load it")
    meta = doc.get("meta", {})
    for key, wanted in (expect or {}).items():
        if meta.get(key) != wanted:
            raise CheckpointError(f"checkpoint {base.name} was made for {key}={meta.get(key)!r}, "
                                  f"not {key}={wanted!r}")
    return _unflatten(doc["state"], load(blob)), meta
