"""Noticing that the world changed when nobody says so: one-sided CUSUM tests on the agent's own signals.

Two signals betray a change of task: episode returns drop and stay down, and the agent's TD errors
grow because its values no longer fit the world. Each is watched by a one-sided CUSUM (Page, 1954)
on values standardised against a reference window of recent in-control values:

    z_t = (x_t − μ_ref) / max(σ_ref, σ_min, ρ·|μ_ref|),   g_t = max(0, g_{t−1} + s·z_t − k),   alarm when g_t > h

(s = −1 watches for a drop, s = +1 for a rise; k is the slack, h the threshold, both in standard
deviations; σ_min and ρ floor the spread, so an agent whose returns are all 500 is not alarmed by a 499).
Values seen while the statistic is above zero are held back and enter the reference only
once it returns to zero (all of them, so the reference stays unbiased), so a real shift cannot teach the
detector that the shift is normal. After an alarm the detector forgets its reference and
warms up again on the new task.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from llmagentos.core.config import param


class Cusum:
    """A one-sided CUSUM with a self-estimated reference (mean and spread of recent in-control values)."""

    def __init__(self, direction: Literal["down", "up"], slack: float = 0.5, threshold: float = 5.0,
                 window: int = 20, warmup: int = 10, min_scale: float = 1e-3, min_relative: float = 0.0) -> None:
        if direction not in ("down", "up"):
            raise ValueError(f"direction must be 'down' or 'up', got {direction!r}")
        self.sign = -1.0 if direction == "down" else 1.0
        self.slack, self.threshold = slack, threshold
        self.window, self.warmup, self.min_scale, self.min_relative = window, warmup, min_scale, min_relative
        self.reference: deque[float] = deque(maxlen=window)
        self.pending: list[float] = []
        self.g = 0.0

    def update(self, x: float) -> bool:
        """Feed one value; True when it raises an alarm (the detector then resets)."""
        x = float(x)
        if len(self.reference) < self.warmup:
            self.reference.append(x)
            return False
        ref = np.asarray(self.reference)
        mean = float(ref.mean())
        z = (x - mean) / max(float(ref.std()), self.min_scale, self.min_relative * abs(mean))
        self.g = max(0.0, self.g + self.sign * z - self.slack)  # g_t = max(0, g_{t−1} + s·z_t − k)
        if self.g > self.threshold:
            self.reset()
            return True
        self.pending.append(x)
        if self.g == 0.0:
            self.reference.extend(self.pending)
            self.pending = []
        return False

    def reset(self) -> None:
        self.reference.clear()
        self.pending = []
        self.g = 0.0

    def state_dict(self) -> dict[str, Any]:
        return {"reference": list(self.reference), "pending": list(self.pending), "g": self.g}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.reference = deque((float(v) for v in state["reference"]), maxlen=self.window)
        self.pending = [float(v) for v in state["pending"]]
        self.g = float(state["g"])


@dataclass
class DetectionConfig:
    detect_signal: Literal["return", "td_error", "both"] = param("return", "what betrays a change when boundaries are not given: a drop in episode return, a rise in mean |TD error| (or loss) per episode, or either")
    detect_slack: float = param(1.0, "CUSUM slack k, in reference standard deviations")
    detect_threshold: float = param(10.0, "CUSUM alarm threshold h, in reference standard deviations")
    detect_window: int = param(50, "episodes in the detector's reference window", gt=0)
    detect_warmup: int = param(20, "episodes watched after a change before the detector may raise another alarm", gt=0)
    detect_min_scale: float = param(0.05, "smallest reference standard deviation of returns, in return units (TD errors use 1 % of it)")
    detect_min_relative: float = param(0.05, "smallest reference standard deviation as a share of the reference mean's magnitude (returns of 500 get 25)")


class ChangeDetector:
    """Watches episode returns and/or per-episode mean |TD error|; records the step of every alarm."""

    def __init__(self, config: Any = None) -> None:
        self.config = config or DetectionConfig()
        c = self.config
        rel = getattr(c, "detect_min_relative", 0.0)
        self.returns = Cusum("down", c.detect_slack, c.detect_threshold, c.detect_window, c.detect_warmup, c.detect_min_scale, rel)
        self.td = Cusum("up", c.detect_slack, c.detect_threshold, c.detect_window, c.detect_warmup, c.detect_min_scale * 0.01, rel)
        self.detections: list[dict[str, Any]] = []
        self._td_sum, self._td_count = 0.0, 0

    def observe_step(self, td_error: float | None) -> None:
        if td_error is not None and np.isfinite(td_error):
            self._td_sum += abs(float(td_error))
            self._td_count += 1

    def end_episode(self, episode_return: float, step: int) -> bool:
        """Feed a finished episode; True when a change is detected (recorded with ``step``)."""
        signal = self.config.detect_signal
        fired = []
        if signal in ("return", "both") and self.returns.update(episode_return):
            fired.append("return")
        if signal in ("td_error", "both") and self._td_count:
            if self.td.update(self._td_sum / self._td_count):
                fired.append("td_error")
        self._td_sum, self._td_count = 0.0, 0
        if fired:
            self.returns.reset()
            self.td.reset()
            self.detections.append({"step": int(step), "signals": fired})
            return True
        return False

    def state_dict(self) -> dict[str, Any]:
        return {"returns": self.returns.state_dict(), "td": self.td.state_dict(), "detections": list(self.detections),
                "td_sum": self._td_sum, "td_count": self._td_count}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.returns.load_state_dict(state["returns"])
        self.td.load_state_dict(state["td"])
        self.detections = [dict(d) for d in state["detections"]]
        self._td_sum, self._td_count = float(state["td_sum"]), int(state["td_count"])


def detection_delays(true_switches: list[int], detections: list[int], horizon: int) -> dict[str, Any]:
    """Match each true switch step to the first detection after it and before the next switch.

    Returns the per-switch delay (None if missed within the following segment or ``horizon``) and the
    detections that match no switch (false alarms).
    """
    switches = sorted(true_switches)
    detections = sorted(detections)
    delays: list[int | None] = []
    used: set[int] = set()
    for n, s in enumerate(switches):
        end = switches[n + 1] if n + 1 < len(switches) else s + horizon
        end = min(end, s + horizon)
        hit = next((d for d in detections if s <= d < end and d not in used), None)
        if hit is not None:
            used.add(hit)
        delays.append(None if hit is None else hit - s)
    false_alarms = [d for d in detections if d not in used]
    return {"delays": delays, "false_alarms": false_alarms}
