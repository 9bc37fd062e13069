"""Run metrics: one JSON object a line in ``metrics.jsonl``, mirrored to TensorBoard event files."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


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
        self._file = open(self.path, "a", buffering=1)
        self._writer = None
        if tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self._writer = SummaryWriter(log_dir=str(Path(run_dir) / "tensorboard"))
            except Exception:  # TensorBoard is optional at run time: metrics.jsonl is the record
                self._writer = None

    def write(self, kind: str, step: int, values: dict[str, Any]) -> None:
        record = {"kind": kind, "step": int(step), **values}
        self._file.write(json.dumps(record) + "\n")
        self.lines += 1
        if self._writer is not None:
            for key, value in values.items():
                if isinstance(value, (int, float)) and not isinstance(value, bool):
                    self._writer.add_scalar(f"{kind}/{key}", value, int(step))

    def flush(self) -> None:
        self._file.flush()
        if self._writer is not None:
            self._writer.flush()

    def close(self) -> None:
        self._file.close()
        if self._writer is not None:
            self._writer.close()
