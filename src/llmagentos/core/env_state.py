"""Snapshot and restore an environment's simulator state as JSON, so a run resumes mid-episode exactly.

Gymnasium environments are not serialisable in general, but the classic-control envs, the toy-text
envs and every world this project ships keep their state in plain attributes (numbers, arrays,
numpy generators, deques such as a frame stack's). We walk the wrapper chain (and a vector env's sub-envs)
and record those; an emulator that can save itself (the Arcade Learning Environment's ``ALEInterface``, whose
``cloneState(include_rng=True)`` includes the sticky-action generator) is recorded as its serialised state.
Anything else (spaces, renderers, physics engines) is left alone, and :func:`snapshot` reports it as not exact.
"""

from __future__ import annotations

import base64
from collections import deque
from typing import Any

import numpy as np

_SKIP = {"env", "envs", "spec", "metadata", "observation_space", "action_space", "single_observation_space",
         "single_action_space", "render_mode", "screen", "clock", "window", "_action_space", "_observation_space",
         "_metadata", "_cached_spec", "env_fns", "render_fps", "_env_fns"}


def _encode(value: Any) -> tuple[bool, Any]:
    if isinstance(value, (bool, int, float, str)) or value is None:
        return True, value
    if isinstance(value, np.generic):
        return True, {"__np__": value.dtype.str, "value": value.item()}
    if isinstance(value, np.ndarray):
        if value.dtype == object:
            items = [_encode(v) for v in value.ravel()]
            if not all(ok for ok, _ in items):
                return False, None
            return True, {"__objarray__": [v for _, v in items], "shape": list(value.shape)}
        # a frame (its bytes in base64, not a JSON list of numbers: 40× smaller, 100× faster), or an array of
        # strings or bytes (FrozenLake's map), which a JSON list cannot hold
        if value.size > 256 or value.dtype.kind not in "biuf":
            data = base64.b64encode(np.ascontiguousarray(value).tobytes()).decode("ascii")
            return True, {"__ndbytes__": data, "dtype": value.dtype.str, "shape": list(value.shape)}
        return True, {"__ndarray__": value.tolist(), "dtype": value.dtype.str, "shape": list(value.shape)}
    if isinstance(value, np.random.Generator):
        return True, {"__rng__": value.bit_generator.state}
    if _is_emulator(value):
        state = value.cloneState(include_rng=True).serialize()
        return True, {"__emulator__": base64.b64encode(state).decode("ascii")}
    if isinstance(value, deque):
        ok, items = _encode(list(value))
        return ok, ({"__deque__": items, "maxlen": value.maxlen} if ok else None)
    if isinstance(value, (list, tuple)):
        items = [_encode(v) for v in value]
        if all(ok for ok, _ in items):
            return True, {"__seq__": [v for _, v in items], "tuple": isinstance(value, tuple)}
        return False, None
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        items = {k: _encode(v) for k, v in value.items()}
        if all(ok for ok, _ in items.values()):
            return True, {"__dict__": {k: v for k, (_, v) in items.items()}}
        return False, None
    if isinstance(value, dict) and all(isinstance(k, (int, np.integer)) for k in value):  # a toy-text model's P[s][a]
        items = [(int(k), _encode(v)) for k, v in value.items()]
        if all(ok for _, (ok, _) in items):
            return True, {"__intdict__": [[k, v] for k, (_, v) in items]}
        return False, None
    return False, None


def _decode(value: Any) -> Any:
    if not isinstance(value, dict):
        return value
    if "__np__" in value:
        return np.dtype(value["__np__"]).type(value["value"])
    if "__ndarray__" in value:
        return np.array(value["__ndarray__"], dtype=np.dtype(value["dtype"])).reshape(value["shape"])
    if "__ndbytes__" in value:
        flat = np.frombuffer(base64.b64decode(value["__ndbytes__"]), dtype=np.dtype(value["dtype"]))
        return flat.reshape(value["shape"]).copy()
    if "__objarray__" in value:
        out = np.empty(len(value["__objarray__"]), dtype=object)
        out[:] = [_decode(v) for v in value["__objarray__"]]
        return out.reshape(value["shape"])
    if "__rng__" in value:
        state = value["__rng__"]
        rng = np.random.Generator(getattr(np.random, state["bit_generator"])())
        rng.bit_generator.state = state
        return rng
    if "__emulator__" in value:
        return _EmulatorState(base64.b64decode(value["__emulator__"]))
    if "__intdict__" in value:
        return {k: _decode(v) for k, v in value["__intdict__"]}
    if "__deque__" in value:
        return deque(_decode(value["__deque__"]), maxlen=value["maxlen"])
    if "__seq__" in value:
        items = [_decode(v) for v in value["__seq__"]]
        return tuple(items) if value["tuple"] else items
    if "__dict__" in value:
        return {k: _decode(v) for k, v in value["__dict__"].items()}
    return value


def _layers(env: Any) -> list[Any]:
    layers, seen = [], set()
    stack = [env]
    while stack:
        obj = stack.pop(0)
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        layers.append(obj)
        if isinstance(getattr(obj, "envs", None), (list, tuple)):
            stack.extend(obj.envs)
        inner = obj.__dict__.get("env")
        if inner is not None:
            stack.append(inner)
    return layers


def snapshot(env: Any) -> dict[str, Any]:
    """``{"layers": [...], "exact": bool}``: the plain state of every layer of ``env``."""
    layers, exact = [], True
    for obj in _layers(env):
        saved = {}
        for key, value in vars(obj).items():
            if key in _SKIP or key.startswith("__"):
                continue
            ok, encoded = _encode(value)
            if ok:
                saved[key] = encoded
            elif not _is_static(value):
                exact = False
        layers.append({"type": type(obj).__name__, "state": saved})
    return {"layers": layers, "exact": exact}


def _is_static(value: Any) -> bool:
    """Objects that hold no episode state (spaces, functions, renderers) do not make a snapshot inexact."""
    from gymnasium import spaces

    return callable(value) or isinstance(value, spaces.Space) or type(value).__module__.startswith(("pygame", "gymnasium.envs.registration"))


def restore(env: Any, snap: dict[str, Any]) -> None:
    """Set ``env``'s layers back to a :func:`snapshot` of an env built the same way."""
    layers = _layers(env)
    if len(layers) != len(snap["layers"]):
        raise ValueError("environment snapshot does not match this environment's wrappers")
    for obj, saved in zip(layers, snap["layers"]):
        if type(obj).__name__ != saved["type"]:
            raise ValueError(f"environment snapshot layer {saved['type']} does not match {type(obj).__name__}")
        for key, value in saved["state"].items():
            decoded = _decode(value)
            if isinstance(decoded, _EmulatorState):
                decoded.load_into(getattr(obj, key))  # the emulator object stays; its state is replaced
            else:
                setattr(obj, key, decoded)


def _is_emulator(value: Any) -> bool:
    """An Arcade Learning Environment interface (the only emulator whose state a snapshot records)."""
    return type(value).__name__ == "ALEInterface" and hasattr(value, "cloneState") and hasattr(value, "restoreState")


class _EmulatorState:
    """A serialised ALE state read back from a snapshot, loaded into the env's own emulator by :func:`restore`."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    def load_into(self, emulator: Any) -> None:
        if not _is_emulator(emulator):
            raise ValueError("environment snapshot holds an emulator state, but this layer has no ALE emulator")
        from ale_py import ALEState

        emulator.restoreState(ALEState(self.data))
