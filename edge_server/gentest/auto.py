"""The monthly test without a person: started by the edge in a window, or credited by an outage.

Two small parts, both pure state machines fed after every poll cycle (injected clock):

- `OutageRun` watches mains and the run-sense. A real outage in which the set ran (under load:
  it carried the site) for at least [gentest] min_duration_min is recorded, when mains is back,
  as a monthly test of kind "outage_credit" with the outcome PASSED and the note "credited by
  the outage of DATE" (NFPA 110 §8.4.2 counts an exercise under load; a real outage is one, at
  the site's real load). It moves the schedule as a passed monthly test does, so the scheduled
  start below skips the month.
- `should_start` says whether the scheduled test starts now: [gentest] auto_start on, the test
  DUE or overdue (or never done), inside the window (auto_days and auto_from-auto_until in the
  site's zone), no controller alarm open, and not tried in this window yet (a refused or failed
  start is not hammered: the next try is the next window). The runner's own interlocks stay the
  authority: it refuses a start while mains is absent or unknown, the set already runs, the node
  is silent or a test runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, time

from edge_server.gentest.schedule import Due, DueStatus
from edge_server.localtime import local

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
AUTO_WHO = "schedule"  # the audit's "who" for a start by the edge itself


@dataclass(frozen=True, slots=True)
class OutageCredit:
    started_at: datetime  # mains lost
    ended_at: datetime  # mains back
    ran_s: float  # the set running while mains was absent


class OutageRun:
    """Per cycle: `feed(now, mains, running)`; returns an OutageCredit when an outage that ran
    the set for at least `min_run_s` has just ended. Unknown readings count for nothing (the
    time is neither outage nor run), so a silent node cannot make a credit."""

    def __init__(self, min_run_s: float) -> None:
        self.min_run_s = min_run_s
        self.started_at: datetime | None = None
        self.ran_s = 0.0
        self._last: datetime | None = None

    def feed(self, now: datetime, mains: bool | None, running: bool | None) -> OutageCredit | None:
        last, self._last = self._last, now
        if mains is False:
            if self.started_at is None:
                self.started_at, self.ran_s = now, 0.0
            elif running is True and last is not None:
                self.ran_s += max(0.0, (now - last).total_seconds())
            return None
        if mains is True and self.started_at is not None:
            credit = OutageCredit(self.started_at, now, self.ran_s)
            self.started_at, self.ran_s = None, 0.0
            return credit if credit.ran_s >= self.min_run_s else None
        return None


def parse_hhmm(text: str) -> time:
    """'10:00' -> time(10, 0); ValueError naming the form."""
    hh, sep, mm = text.partition(":")
    if not sep or not (hh.isdigit() and mm.isdigit()) or not (0 <= int(hh) < 24
                                                               and 0 <= int(mm) < 60):
        raise ValueError(f"{text!r}: give a time of day as HH:MM, e.g. 10:00")
    return time(int(hh), int(mm))


def in_window(now: datetime, zone: str, days: list[str], start: str, end: str) -> datetime | None:
    """The start of the window `now` is in (site's zone), or None outside every window."""
    t = local(now, zone)
    if DAYS[t.weekday()] not in days:
        return None
    lo, hi = parse_hhmm(start), parse_hhmm(end)
    if not lo <= t.time() < hi:
        return None
    return t.replace(hour=lo.hour, minute=lo.minute, second=0, microsecond=0)


def should_start(now: datetime, zone: str, days: list[str], start: str, end: str, due: Due,
                 alarm_open: bool, tried_window: datetime | None) -> tuple[bool, datetime | None]:
    """(start now?, the window's start) for the scheduled monthly test."""
    window = in_window(now, zone, days, start, end)
    if window is None or due.status is DueStatus.TOO_EARLY or alarm_open:
        return False, window
    if tried_window is not None and tried_window == window:
        return False, window
    return True, window

