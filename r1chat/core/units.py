"""Numbers for people: byte sizes, transfer speeds, durations, and a speed meter.

Both front ends print sizes and download progress with these, so `r1chat models` and
the chat's model screen say the same thing the same way.
"""

from __future__ import annotations

import re
import time
from collections import deque
from collections.abc import Callable


def human(n: float) -> str:
    """Bytes for people: 4.7 GB, 512 MB, 980 kB (powers of 1000, like the Hub)."""
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if abs(n) < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit in ("B", "kB") else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} TB"  # pragma: no cover


def speed(bytes_per_s: float) -> str:
    """`45.1 MB/s`."""
    return f"{human(bytes_per_s)}/s"


def clock(seconds: float | None) -> str:
    """A duration as `1:12` or `1:02:05` (`–:––` when unknown)."""
    if seconds is None:
        return "–:––"
    s = int(seconds + 0.5)
    if s >= 3600:
        return f"{s // 3600}:{s // 60 % 60:02d}:{s % 60:02d}"
    return f"{s // 60}:{s % 60:02d}"


class Meter:
    """Transfer speed over the last few seconds, and the time left at that speed."""

    def __init__(self, window: float = 3.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.window, self.clock = window, clock
        self.samples: deque[tuple[float, int]] = deque()

    def add(self, done: int) -> None:
        now = self.clock()
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[1][0] >= self.window:
            self.samples.popleft()

    @property
    def speed(self) -> float:
        if len(self.samples) < 2:
            return 0.0
        (t0, d0), (t1, d1) = self.samples[0], self.samples[-1]
        return (d1 - d0) / (t1 - t0) if t1 > t0 else 0.0

    def eta(self, total: int) -> float | None:
        speed = self.speed
        if speed <= 0 or not self.samples:
            return None
        return max(0, total - self.samples[-1][1]) / speed


_DURATION = re.compile(r"^(-?\d+(?:\.\d+)?)(ms|s|m|h)?$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def duration(value: object) -> float | None:
    """Seconds from a number or a duration ("5m", "30s", "1h", "-1"); None if it is
    neither (booleans included)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, str) and (m := _DURATION.match(value.strip())):
        return float(m.group(1)) * _UNITS[m.group(2)]
    return None
