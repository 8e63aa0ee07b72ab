"""Mean Kinetic Temperature (USP <1160>, <1079.2>) of a temperature history.

    T_mk = (ΔH/R) / -ln( Σ tᵢ·e^(-ΔH/(R·Tᵢ)) / Σ tᵢ ),  temperatures in kelvin, ΔH/R = 10,000 K.

`mkt_c(segments)` computes it from (duration, °C) pairs; `MktWindow` keeps a sliding window
(e.g. 24 h) of samples and updates the sum incrementally, so a poll cycle costs O(1).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterable

KELVIN = 273.15
DELTA_H_OVER_R_K = 10000.0


def _term(temp_c: float, dh_r: float) -> float:
    return math.exp(-dh_r / (temp_c + KELVIN))


def mkt_c(segments: Iterable[tuple[float, float]], dh_r: float = DELTA_H_OVER_R_K) -> float:
    """MKT in °C of (duration, temperature °C) segments; durations in any one unit."""
    total = 0.0
    weighted = 0.0
    for duration, temp_c in segments:
        if duration < 0:
            raise ValueError("mkt_c: a duration cannot be negative")
        total += duration
        weighted += duration * _term(temp_c, dh_r)
    if total <= 0:
        raise ValueError("mkt_c: needs a positive total duration")
    return dh_r / -math.log(weighted / total) - KELVIN


class MktWindow:
    """Sliding-window MKT of a sampled temperature; the older sample holds until the next one.

    A gap longer than max_gap_s is unknown time and counts for nothing. value() returns None
    until the window holds at least min_span_s of data.
    """

    def __init__(
        self, window_s: float, *, dh_r: float = DELTA_H_OVER_R_K, max_gap_s: float = 900.0,
        min_span_s: float = 3600.0,
    ) -> None:
        self.window_s = window_s
        self.dh_r = dh_r
        self.max_gap_s = max_gap_s
        self.min_span_s = min_span_s
        self._parts: deque[tuple[float, float, float]] = deque()  # (end_t, dt, dt*term)
        self._total = 0.0
        self._weighted = 0.0
        self._last: tuple[float, float | None] | None = None

    def add(self, t: float, temp_c: float | None) -> None:
        if self._last is not None:
            last_t, last_temp = self._last
            dt = t - last_t
            if last_temp is not None and 0 < dt <= self.max_gap_s:
                w = dt * _term(last_temp, self.dh_r)
                self._parts.append((t, dt, w))
                self._total += dt
                self._weighted += w
        self._last = (t, temp_c)
        start = t - self.window_s
        while self._parts and self._parts[0][0] - self._parts[0][1] < start - 1e-9:
            _, dt, w = self._parts.popleft()
            self._total -= dt
            self._weighted -= w
        if not self._parts:  # reset the float sums so rounding cannot drift
            self._total = 0.0
            self._weighted = 0.0

    @property
    def span_s(self) -> float:
        return self._total

    def value(self) -> float | None:
        if self._total < self.min_span_s or self._weighted <= 0:
            return None
        return self.dh_r / -math.log(self._weighted / self._total) - KELVIN
