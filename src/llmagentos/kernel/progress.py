"""What a person sees while work runs and when it ends: a progress bar on stderr, result tables on stdout.

The progress bar is shown only on a terminal and never with --quiet."""

from __future__ import annotations

import sys
import time
from typing import Any


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


def print_table(headers: list[str], rows: list[list[Any]], out=None) -> None:
    """A plain aligned table with a rule under the header (floats to three decimals, None as -)."""
    out = out or sys.stdout
    cells = [[h for h in headers]] + [[_fmt(c) for c in row] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for n, row in enumerate(cells):
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() + "\n")
        if n == 0:
            out.write("  ".join("-" * w for w in widths) + "\n")


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 1e4 else f"{value:,.0f}"
    return "-" if value is None else str(value)
