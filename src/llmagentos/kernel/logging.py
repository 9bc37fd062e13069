"""Run metrics: one JSON object a line in ``metrics.jsonl``, mirrored to TensorBoard event files."""

from __future__ import annotations

import json
import os
import socket
import struct
import time
from pathlib import Path
from typing import Any

import numpy as np


class MetricsLog:
    """Appends records to ``run_dir/metrics.jsonl`` and scalars to TensorBoard (when it is installed).

    ``lines`` counts records written, so a resumed run can cut the file back to its checkpoint.
    """

    def __init__(self, run_dir: Path, tensorboard: bool = True, keep_lines: int | None = None) -> None:
        self.path = Path(run_dir) / "metrics.jsonl"
        if keep_lines is not None and self.path.exists():
            kept = self.path.read_text().splitlines()[:keep_lines]
            self.path.write_text("".join(line + "\n" for line in kept))
        self.lines = sum(1 for _ in open(self.path)) if self.path.exists() else 0
        # block-buffered: a flush per line costs a system call per episode; flush() runs at every checkpoint
        self._file = open(self.path, "a")
        self._writer = EventWriter(Path(run_dir) / "tensorboard") if tensorboard else None

    def write(self, kind: str, step: int, values: dict[str, Any]) -> None:
        record = {"kind": kind, "step": int(step), **values}
        self._file.write(json.dumps(record) + "\n")
        self.lines += 1
        if self._writer is not None:
            scalars = [(f"{kind}/{key}", value) for key, value in values.items()
                       if isinstance(value, (int, float)) and not isinstance(value, bool)]
            if scalars:
                self._writer.add_scalars(scalars, int(step))
        if kind != "episode":
            # evaluations and the like are rare: make them visible at once (episodes wait for the next one)
            self.flush()

    def flush(self) -> None:
        self._file.flush()
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        self._file.close()
        if self._writer is not None:
            self._writer.close()


# -- TensorBoard event files ----------------------------------------------------------------------
# A run logs a record per episode, so the writer must be cheap: events are encoded by hand (the Event
# and Summary protobuf wire format) and their CRC32C checksums computed for a whole batch at once with
# numpy, instead of torch's SummaryWriter (a torch import, protobuf objects and a pure-Python CRC per scalar).

def _crc32c_table() -> np.ndarray:
    table = np.zeros(256, dtype=np.uint32)
    for i in range(256):
        crc = i
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table[i] = crc
    return table


_CRC_TABLE = _crc32c_table()


def masked_crc32c_batch(chunks: list[bytes]) -> np.ndarray:
    """TFRecord's masked CRC32C (Castagnoli) of every chunk: chunks of equal length share one numpy pass per byte."""
    lengths = np.fromiter((len(c) for c in chunks), dtype=np.int64, count=len(chunks))
    out = np.empty(len(chunks), dtype=np.uint32)
    for length in np.unique(lengths):
        rows = np.flatnonzero(lengths == length)
        # bytes as a (length × rows) matrix, so each step reads one contiguous row
        columns = np.frombuffer(b"".join(chunks[i] for i in rows), dtype=np.uint8).reshape(len(rows), length).T.copy()
        crc = np.full(len(rows), 0xFFFFFFFF, dtype=np.uint32)
        for byte in columns:
            crc = _CRC_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> np.uint32(8))
        out[rows] = crc ^ np.uint32(0xFFFFFFFF)
    return (((out >> np.uint32(15)) | (out << np.uint32(17))) + np.uint32(0xA282EAD8)).astype(np.uint32)


def _varint(value: int) -> bytes:
    if 0 <= value < 0x4000:  # lengths and most steps: one or two bytes, without the loop
        return bytes((value,)) if value < 0x80 else bytes((value & 0x7F | 0x80, value >> 7))
    out = bytearray()
    value &= (1 << 64) - 1  # int64 fields encode negatives as ten-byte two's complement
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


_VALUE_PREFIX: dict[str, bytes] = {}


def _value_prefix(tag: str) -> bytes:
    """The bytes of ``Summary.value`` up to its float: constant per tag, so built once."""
    prefix = _VALUE_PREFIX.get(tag)
    if prefix is None:
        tag_field = _field(1, tag.encode())
        prefix = _varint(1 << 3 | 2) + _varint(len(tag_field) + 5) + tag_field + b"\x15"
        _VALUE_PREFIX[tag] = prefix
    return prefix


def encode_scalar_event(scalars: list[tuple[str, float]], step: int, wall_time: float) -> bytes:
    """``Event(wall_time, step, summary=Summary(value=[Value(tag, simple_value), ...]))`` in protobuf wire format."""
    summary = b"".join(_value_prefix(tag) + struct.pack("<f", float(value)) for tag, value in scalars)
    return b"\x09" + struct.pack("<d", wall_time) + b"\x10" + _varint(step) + _field(5, summary)


class EventWriter:
    """Appends scalar events to a TensorBoard ``events.out.tfevents.*`` file (TFRecord framing), in batches."""

    def __init__(self, log_dir: Path, max_pending: int = 4096) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        name = f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}.{os.getpid()}.{time.perf_counter_ns() % 10**6}"
        self.path = log_dir / name
        self._file = open(self.path, "ab")
        self.max_pending = max_pending
        # every event file starts with its version record
        self._pending: list[bytes] = [b"\x09" + struct.pack("<d", time.time()) + _field(3, b"brain.Event:2")]

    def add_scalars(self, scalars: list[tuple[str, float]], step: int) -> None:
        self._pending.append(encode_scalar_event(scalars, step, time.time()))
        if len(self._pending) >= self.max_pending:
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        headers = [struct.pack("<Q", len(event)) for event in self._pending]
        crcs = masked_crc32c_batch(headers + self._pending)
        n = len(headers)
        parts = []
        for i, (header, event) in enumerate(zip(headers, self._pending)):
            parts += [header, struct.pack("<I", crcs[i]), event, struct.pack("<I", crcs[n + i])]
        self._file.write(b"".join(parts))
        self._file.flush()
        self._pending = []

    def close(self) -> None:
        self.flush()
        self._file.close()
