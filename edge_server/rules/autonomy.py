"""Fuel autonomy: hours the generator can run on the fuel in the tank, and "refuel before" time.

    autonomy_h = usable litres / consumption rate (l/h)

The rate is learned from the level trend while the generator runs, with the configured
consumption chart (l/h at the expected load, docs/sources.md) as the prior:
- x axis = generator *running* time, so stops in between do not dilute the slope;
- unknown time (more than max_gap_s between two samples: the edge was down or the poller
  stalled; or the running state unknown) counts for nothing, neither hours nor litres: the
  level history is split there into segments and only pairs within one segment are compared
  (a 3 h outage of the edge while the generator burns 10 l is not a 10 l drop in no time);
- robust to sloshing: a Theil-Sen slope (median of pairwise slopes) over the last
  learn_window_h of running time, on at most 40 evenly spread samples;
- robust to refuelling: 3 samples in a row above the recent median by refuel_jump_l are a
  refuel; the level history restarts (a single spike is dropped);
- blend: weight w = min(1, learned span / learn_full_weight_h) on the learned rate, 1 - w on the
  prior; a learned rate outside [0.2, 5] x prior is taken as a sensor artefact and ignored.
The same tracker watches the level while the generator is stopped: a drop larger than leak_l
within leak_window_min (median of the first and last samples) is FUEL_LEAK (leak or theft).
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from edge_server.rules.settings import FuelSettings

MAX_FIT_POINTS = 40
REFUEL_CONFIRM_SAMPLES = 3


@dataclass(frozen=True, slots=True)
class AutonomyEstimate:
    fuel_l: float | None
    usable_l: float | None
    rate_lph: float
    prior_lph: float
    learned_lph: float | None
    learned_weight: float
    hours: float | None
    refuel_before: datetime | None

    def to_json(self) -> dict[str, object]:
        return {
            "fuel_l": self.fuel_l,
            "usable_l": self.usable_l,
            "rate_lph": round(self.rate_lph, 3),
            "prior_lph": round(self.prior_lph, 3),
            "learned_lph": None if self.learned_lph is None else round(self.learned_lph, 3),
            "learned_weight": round(self.learned_weight, 3),
            "hours": None if self.hours is None else round(self.hours, 2),
            "refuel_before": self.refuel_before.isoformat() if self.refuel_before else None,
        }


def _pair_slopes(points: list[tuple[float, float]]) -> list[float]:
    return [
        (y1 - y0) / (x1 - x0)
        for i, (x0, y0) in enumerate(points)
        for x1, y1 in points[i + 1:]
        if x1 != x0
    ]


def theil_sen_slope(points: list[tuple[float, float]]) -> float | None:
    """Median of the pairwise slopes dy/dx; None with fewer than 2 distinct x."""
    slopes = _pair_slopes(points)
    return statistics.median(slopes) if slopes else None


def segments(points: list[tuple[float, float, int]]) -> list[list[tuple[float, float]]]:
    """Split (x, y, segment) points, in x order, into runs of one segment each."""
    out: list[list[tuple[float, float]]] = []
    last: int | None = None
    for x, y, seg in points:
        if seg != last:
            out.append([])
            last = seg
        out[-1].append((x, y))
    return out


def segmented_theil_sen(points: list[tuple[float, float, int]]) -> float | None:
    """Median of the pairwise slopes within each segment (never across one); None without
    a pair of distinct x in one segment."""
    slopes = [s for seg in segments(points) for s in _pair_slopes(seg)]
    return statistics.median(slopes) if slopes else None


class FuelTracker:
    """Fed every poll cycle with the tank level and the generator state of one power node."""

    def __init__(self, settings: FuelSettings, *, max_gap_s: float = 900.0) -> None:
        self.settings = settings
        self.max_gap_s = max_gap_s
        self._run_s = 0.0  # cumulative generator running time (the fit's x axis)
        self._run_pts: deque[tuple[float, float, int]] = deque()  # (run_s, fuel_l, segment)
        self._segment = 0  # +1 at every stretch of unknown time
        self._stop_pts: deque[tuple[float, float]] = deque()  # (epoch s, fuel_l) while stopped
        self._last_t: float | None = None
        self._last_running: bool | None = None
        self._recent: deque[float] = deque(maxlen=9)
        self._jump_samples = 0
        self._learned: float | None = None
        self._learned_span_h = 0.0
        self._dirty = False
        self.fuel_l: float | None = None
        self.running: bool | None = None
        self.last_refuel_at: datetime | None = None  # seeded from the stored event on start
        self.last_refuel_l = 0.0

    def update(self, now: datetime, fuel_l: float | None, running: bool | None) -> None:
        t = now.timestamp()
        if self._last_t is not None:
            dt = t - self._last_t
            if self._last_running is None or dt > self.max_gap_s:
                self._segment += 1  # unknown time: neither running hours nor litres
            elif self._last_running and dt > 0:
                self._run_s += dt
        self._last_t = t
        self._last_running = running
        self.fuel_l = fuel_l
        self.running = running
        if fuel_l is None:
            return
        # Refuel: three samples in a row above the median of the recent ones by refuel_jump_l
        # (one slosh spike or a bad reading is not a refuel, and is left out of the fit).
        before = statistics.median(self._recent) if self._recent else None
        if before is not None and fuel_l - before > self.settings.refuel_jump_l:
            self._jump_samples += 1
            if self._jump_samples < REFUEL_CONFIRM_SAMPLES:
                return
            self.last_refuel_l = fuel_l - before
            self._refuelled(now)
        self._jump_samples = 0
        self._recent.append(fuel_l)
        if running:
            self._stop_pts.clear()
            self._run_pts.append((self._run_s, fuel_l, self._segment))
            horizon = self._run_s - self.settings.learn_window_h * 3600
            while self._run_pts and self._run_pts[0][0] < horizon:
                self._run_pts.popleft()
            self._dirty = True
        elif running is False:
            self._stop_pts.append((t, fuel_l))
            horizon = t - self.settings.leak_window_min * 60
            while self._stop_pts and self._stop_pts[0][0] < horizon:
                self._stop_pts.popleft()

    def _refuelled(self, now: datetime) -> None:
        self.last_refuel_at = now
        self._recent.clear()
        self._run_pts.clear()
        self._stop_pts.clear()
        # The learned rate stays: the generator burns the same, only the level history restarts.

    def learned_lph(self) -> tuple[float | None, float]:
        """(learned l/h or None, span of running hours behind it)."""
        if self._dirty:
            self._dirty = False
            pts = list(self._run_pts)
            span_h = sum(seg[-1][0] - seg[0][0] for seg in segments(pts)) / 3600
            if span_h >= self.settings.learn_min_span_h:
                step = max(1, len(pts) // MAX_FIT_POINTS)
                fit = pts[::step]
                if fit[-1] != pts[-1]:
                    fit.append(pts[-1])
                slope = segmented_theil_sen(fit)  # litres per running second
                self._learned = None if slope is None else -slope * 3600
                self._learned_span_h = span_h
        return self._learned, self._learned_span_h

    def leak_drop_l(self) -> float | None:
        """Litres lost while stopped within the leak window; None when not stopped or too short."""
        pts = self._stop_pts
        if self.running is not False or len(pts) < 4:
            return None
        if pts[-1][0] - pts[0][0] < self.settings.leak_window_min * 60 / 4:
            return None
        k = max(2, len(pts) // 8)
        first = statistics.median(v for _, v in list(pts)[:k])
        last = statistics.median(v for _, v in list(pts)[-k:])
        return max(0.0, first - last)

    def estimate(self, now: datetime) -> AutonomyEstimate:
        s = self.settings
        prior = s.chart_lph(s.expected_load_pct)
        learned, span_h = self.learned_lph()
        weight = 0.0
        if learned is not None and 0.2 * prior <= learned <= 5 * prior:
            weight = min(1.0, span_h / s.learn_full_weight_h)
        else:
            learned = None if learned is None or learned <= 0 else learned
        rate = weight * learned + (1 - weight) * prior if learned is not None and weight else prior
        if self.fuel_l is None:
            return AutonomyEstimate(None, None, rate, prior, learned, weight, None, None)
        usable = max(0.0, self.fuel_l - s.unusable_l)
        hours = usable / rate
        refuel_before = None
        if self.running:
            refuel_before = now + timedelta(hours=max(0.0, hours - s.refuel_lead_time_h))
        return AutonomyEstimate(self.fuel_l, usable, rate, prior, learned, weight, hours,
                                refuel_before)

    def fuel_age_months(self, now: datetime) -> float | None:
        """Months since the last refuel (detected, else the configured last_refuel_date)."""
        last = self.last_refuel_at
        if last is None and self.settings.last_refuel_date is not None:
            d = self.settings.last_refuel_date
            last = datetime(d.year, d.month, d.day, tzinfo=UTC)
        if last is None:
            return None
        return max(0.0, (now - last).total_seconds() / (86400 * 30.44))
