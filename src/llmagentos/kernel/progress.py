"""A one-line progress bar on stderr, shown only on a terminal and never with --quiet."""

from __future__ import annotations

import sys
import time


class Progress:
    def __init__(self, total: int, unit: str, enabled: bool = True, label: str = "") -> None:
        self.total = max(int(total), 1)
        self.unit = unit
        self.label = label
        self.enabled = enabled and sys.stderr.isatty()
        self.start = time.perf_counter()
        self._last = 0.0

    def update(self, done: int, note: str = "") -> None:
        if not self.enabled:
            return
        now = time.perf_counter()
        if now - self._last < 0.1 and done < self.total:
            return
        self._last = now
        fraction = min(done / self.total, 1.0)
        bar = "#" * int(30 * fraction) + "-" * (30 - int(30 * fraction))
        rate = done / max(now - self.start, 1e-9)
        sys.stderr.write(f"\r{self.label}[{bar}] {done}/{self.total} {self.unit} {rate:,.0f}/s {note}\x1b[K")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")
            sys.stderr.flush()
