"""The legal duty cycle of a sub-band in the EU 863-870 MHz SRD band, as an airtime budget.

ERC Recommendation 70-03, Annex 1, band h1.4 (868.0-868.6 MHz, the band of the EU868 default
channels) allows 25 mW e.r.p. at <= 1 % duty cycle; ETSI EN 300 220-2 defines the duty cycle
over an observation period of one hour. 1 % of 3,600 s = 36 s of transmission per hour.

This budget is stricter than the rule needs: it counts every transmission in the last hour as a
*sliding* window (any 3,600 s), so no hour, however it is aligned, sees more than 36 s. Times are
passed in (monotonic seconds), nothing reads a clock here.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

ETSI_WINDOW_S = 3600.0
EU868_DUTY_CYCLE = 0.01
_EPS = 1e-6


@dataclass
class DutyCycleBudget:
    duty_cycle: float = EU868_DUTY_CYCLE
    window_s: float = ETSI_WINDOW_S
    # (start, airtime) of each transmission still inside the window, oldest first.
    _sent: deque[tuple[float, float]] = field(default_factory=deque)

    def __post_init__(self) -> None:
        if not 0 < self.duty_cycle <= 1:
            raise ValueError(f"duty cycle {self.duty_cycle}: a fraction in (0, 1], e.g. 0.01")
        if self.window_s <= 0:
            raise ValueError(f"window {self.window_s} s must be > 0")

    @property
    def limit_s(self) -> float:
        """Seconds of airtime allowed in any window (36.0 for 1 % of an hour)."""
        return self.duty_cycle * self.window_s

    def _forget(self, now: float) -> None:
        # _EPS: next_allowed() returns start + airtime + window, which float rounding may put a
        # hair before the moment the packet leaves.
        while self._sent and self._sent[0][0] + self._sent[0][1] <= now - self.window_s + _EPS:
            self._sent.popleft()

    def used_s(self, now: float) -> float:
        """Airtime inside (now - window, now]; a packet that straddles the edge counts whole."""
        self._forget(now)
        return sum(a for _t, a in self._sent)

    def remaining_s(self, now: float) -> float:
        return max(0.0, self.limit_s - self.used_s(now))

    def allows(self, now: float, airtime: float) -> bool:
        return airtime <= self.limit_s and self.used_s(now) + airtime <= self.limit_s + _EPS

    def next_allowed(self, now: float, airtime: float) -> float:
        """The earliest time >= now at which a packet of `airtime` fits the budget."""
        if airtime > self.limit_s:
            raise ValueError(f"a packet of {airtime:.3f} s never fits {self.limit_s:.1f} s")
        self._forget(now)
        used = sum(a for _t, a in self._sent)
        t = now
        for start, a in self._sent:
            if used + airtime <= self.limit_s + _EPS:
                break
            # This packet leaves the window once its end is a full window ago.
            t = max(t, start + a + self.window_s)
            used -= a
        return t

    def record(self, now: float, airtime: float) -> None:
        if not self.allows(now, airtime):
            raise ValueError(
                f"{airtime:.3f} s would exceed the duty cycle: {self.used_s(now):.3f} s of "
                f"{self.limit_s:.1f} s used in the last {self.window_s:.0f} s"
            )
        self._sent.append((now, airtime))



def max_in_any_window(sent: list[tuple[float, float]], window_s: float = ETSI_WINDOW_S) -> float:
    """The most airtime that any window of `window_s` holds, for a log of (start, airtime).

    The worst window starts at a packet's start; a packet that starts inside it counts whole.
    """
    sent = sorted(sent)
    best = 0.0
    j = 0
    total = 0.0
    for i, (start, _a) in enumerate(sent):
        while j < len(sent) and sent[j][0] < start + window_s:
            total += sent[j][1]
            j += 1
        best = max(best, total)
        total -= sent[i][1]
    return best
