"""Schedules for ε, temperatures and step sizes: a value as a function of the step count."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Literal

from llmagentos.core.errors import UsageError

ScheduleKind = Literal["constant", "linear", "exponential"]


@dataclass(frozen=True)
class Schedule:
    """``start`` at step 0, moving to ``end`` over ``steps`` steps, then held at ``end``.

    ``linear`` interpolates; ``exponential`` multiplies by a constant factor per step so that it
    reaches ``end`` after ``steps`` steps (start and end must share a sign and be non-zero).
    """

    kind: ScheduleKind = "constant"
    start: float = 1.0
    end: float = 1.0
    steps: int = 1

    def __post_init__(self) -> None:
        if self.kind not in ("constant", "linear", "exponential"):
            raise UsageError(f"unknown schedule {self.kind!r}; choose constant, linear or exponential")
        if self.kind != "constant" and self.steps <= 0:
            raise UsageError(f"a {self.kind} schedule needs steps > 0, got {self.steps}")
        if self.kind == "exponential" and (self.start == 0 or self.end == 0 or (self.start > 0) != (self.end > 0)):
            raise UsageError("an exponential schedule needs non-zero start and end of the same sign")

    def __call__(self, step: int) -> float:
        if self.kind == "constant":
            return self.start
        fraction = min(max(step, 0) / self.steps, 1.0)
        if self.kind == "linear":
            return self.start + fraction * (self.end - self.start)
        return self.start * math.exp(fraction * math.log(self.end / self.start))


def constant(value: float) -> Schedule:
    return Schedule("constant", value, value, 1)


def linear(start: float, end: float, steps: int) -> Schedule:
    return Schedule("linear", start, end, steps)


def exponential(start: float, end: float, steps: int) -> Schedule:
    return Schedule("exponential", start, end, steps)


def make_schedule(kind: str, start: float, end: float | None, steps: int) -> Schedule:
    """The schedule a config describes by (kind, start, end, steps); ``end=None`` means constant."""
    if kind == "constant" or end is None:
        return constant(start)
    return Schedule(kind, start, end, steps)  # type: ignore[arg-type]


class Every:
    """What a loop does every ``period`` steps — evaluate, checkpoint, log — in one place for every loop.

    ``due(step)`` says it is time (``step`` reached the next multiple); ``done(step)`` moves the next time past
    ``step``, so a loop whose step count jumps (vector envs, several steps a turn) does it once, never once per
    multiple skipped. ``period=None`` is never. ``next`` is plain data, kept in checkpoints as it is.
    A fractional period (``Fraction(total, points)``: ``points`` times spread over ``total`` steps) is due at
    the nearest whole step, ``round(k · total / points)``.
    """

    def __init__(self, period: int | Fraction | None, next_at: int | None = None) -> None:
        self.period = period
        self.next = period if next_at is None else next_at

    @classmethod
    def after(cls, period: int | None, step: int) -> "Every":
        """The schedule of a loop continued at ``step`` (a resumed run): next due at the first multiple after it."""
        return cls(period, None if period is None else (step // period + 1) * period)

    def due(self, step: int) -> bool:
        return self.next is not None and step >= round(self.next)

    def done(self, step: int) -> None:
        while self.next is not None and self.period is not None and round(self.next) <= step:
            self.next += self.period
