"""The one shared evaluator of alert conditions: thresholds, hysteresis, delays, timing kinds.

In the style of Victron's dbus_generator: each rule is a small Condition class that only says
*what* it looks at (a value per subject, e.g. per node or per channel) and its Limit; this module
decides *when* that becomes an alert, the same way for every rule:

- instant: raise at the first sample beyond the threshold;
- consecutive: raise when the value stayed beyond the threshold for delay_s without a break;
- cumulative: raise when the time beyond the threshold within the last window_s adds up to
  delay_s (LogTag's "accumulative" alarm, e.g. WHO: > 8 °C for 10 h);
- hysteresis: an alert clears only when the value is back past threshold -/+ hysteresis, and
  (clear_delay_s) stayed there; a cumulative alert clears when, in addition, the time in the
  window has fallen below delay_s.

Lost data (the value is None: sensor fault, node offline, sentinel) -- see docs/rules.md:
an unknown sample never raises a value alarm and never clears one. Time while the value is
unknown counts for nothing: a consecutive run is paused, not reset (a flaky probe must not hide
an excursion); a pending clear is reset (clearing needs known good data for clear_delay_s).
Between two samples the older one holds, but never for longer than max_gap_s: a longer gap
(evaluator not called, service restarted) is unknown time.

After a restart the time-dependent memory (cumulative windows, consecutive runs, pending
clears) is rebuilt by feeding the stored readings through `Evaluator.replay` -- the same
`step` as live samples, so the same lost-data and gap policy -- see edge_server/rules/restore.py.

Time comes from the `now` the caller passes (the poll cycle's time from the injected clock).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import IntEnum, StrEnum
from typing import ClassVar

from edge_server.state import SiteState


class Timing(StrEnum):
    INSTANT = "instant"
    CONSECUTIVE = "consecutive"
    CUMULATIVE = "cumulative"


class Severity(StrEnum):
    INFO = "info"
    WARNING = "warning"
    CRITICAL = "critical"


class Zone(IntEnum):
    UNKNOWN = 0
    CLEAR = 1  # past the threshold and the hysteresis band: counts towards clearing
    BAND = 2  # not beyond the threshold but inside the hysteresis band
    BEYOND = 3  # beyond the threshold: counts towards raising


@dataclass(frozen=True, slots=True)
class Limit:
    """When a value is alarming: above/below threshold, plus timing."""

    threshold: float
    above: bool = True
    hysteresis: float = 0.0
    timing: Timing = Timing.CONSECUTIVE
    delay_s: float = 0.0  # consecutive: run length; cumulative: time within window_s
    window_s: float = 0.0  # cumulative only
    clear_delay_s: float = 0.0
    inclusive: bool = False  # >= / <= instead of > / <

    def __post_init__(self) -> None:
        if self.hysteresis < 0 or self.delay_s < 0 or self.clear_delay_s < 0:
            raise ValueError("Limit: hysteresis, delay_s and clear_delay_s must be >= 0")
        if self.timing is Timing.CUMULATIVE and self.window_s < self.delay_s:
            raise ValueError("Limit: a cumulative window_s must be at least delay_s")

    def history_s(self, max_gap_s: float) -> float:
        """How far back stored samples rebuild this limit's memory after a restart (0: none).

        Cumulative: the whole window. Otherwise twice the longest delay plus one held gap: a
        run or pending clear is longer than its delay only when it already fired (and then the
        open alert is in the store), so this covers it unless unknown data paused the run for
        longer than that (the run then restarts from the replay's start: under-counted, never
        over-counted).
        """
        if self.timing is Timing.CUMULATIVE:
            return self.window_s
        longest = max(self.delay_s, self.clear_delay_s)
        return 0.0 if longest == 0 else 2 * longest + max_gap_s

    def _beyond(self, value: float) -> bool:
        if self.above:
            return value >= self.threshold if self.inclusive else value > self.threshold
        return value <= self.threshold if self.inclusive else value < self.threshold

    def zone(self, value: float | None) -> Zone:
        if value is None:
            return Zone.UNKNOWN
        if self._beyond(value):
            return Zone.BEYOND
        # Clear from threshold -/+ hysteresis on, the boundary included (8.0, h 0.5: 7.5 clears).
        if self.above:
            in_band = value + self.hysteresis > self.threshold
        else:
            in_band = value - self.hysteresis < self.threshold
        return Zone.BAND if in_band else Zone.CLEAR


@dataclass(frozen=True, slots=True)
class Sample:
    """One value of a condition for one subject (a channel "node.register", or a node name)."""

    subject: str
    value: float | None
    channel: str = ""  # the state channel the value came from, for the alert record


@dataclass
class Track:
    """The evaluator's memory for one (code, subject)."""

    active: bool = False
    last_t: float | None = None
    last_zone: Zone = Zone.UNKNOWN
    run_s: float = 0.0
    clear_run_s: float = 0.0
    # Cumulative: intervals [start, end] (epoch seconds) spent beyond; contiguous ones merged.
    intervals: deque[list[float]] = field(default_factory=deque)

    def cumulative_s(self, now_t: float, window_s: float) -> float:
        start = now_t - window_s
        while self.intervals and self.intervals[0][1] <= start:
            self.intervals.popleft()
        return sum(end - max(begin, start) for begin, end in self.intervals)


class Condition(ABC):
    """A rule: what to look at. Subclasses set the class attributes and implement samples()."""

    code: ClassVar[str]
    severity: ClassVar[Severity]
    text_en: ClassVar[str]  # str.format fields: {subject}, {value}
    text_nl: ClassVar[str]
    unit: ClassVar[str] = ""
    # An event emitted when this condition clears (MAINS_LOST -> MAINS_RESTORED), or None.
    clear_event: ClassVar[EventSpec | None] = None

    limit: Limit

    @abstractmethod
    def samples(self, state: SiteState, now: datetime) -> Iterable[Sample]: ...

    def history_channels(self, state: SiteState) -> list[str]:
        """The stored channels samples() is computed from, when it is a function of those
        alone (so replaying them rebuilds the track after a restart); [] otherwise."""
        return []

    def texts(self, sample: Sample) -> tuple[str, str]:
        """The alert's sentences for people: the node's name, not the channel (power1, not
        power1.door_open_s), and a value in words (a duration as "5 min", not "301 s")."""
        subject = for_people(sample.subject)
        return (
            self.text_en.format(subject=subject, value=shown(sample.value, self.unit, "en")),
            self.text_nl.format(subject=subject, value=shown(sample.value, self.unit, "nl")),
        )


# Units in the Dutch sentences (the English ones read as written in the condition).
_UNIT_NL = {" months": " maanden", " people": " personen", " h": " uur"}


def for_people(subject: str) -> str:
    """A subject as people read it: the node's name for a channel "node.register"."""
    return subject.split(".", 1)[0]


def shown(value: float | None, unit: str, lang: str) -> str:
    """A value with its unit for a sentence; seconds become minutes or hours."""
    if value is None:
        return "?"
    if unit.strip() == "s":
        return duration(value, lang)
    return f"{value:.4g}{_UNIT_NL.get(unit, unit) if lang == 'nl' else unit}"


def duration(seconds: float, lang: str) -> str:
    """45 s, 5 min, 1 h 20 min (nl: 1 u 20 min), 3 d 4 h."""
    s = int(round(seconds))
    hour = "u" if lang == "nl" else "h"
    if s < 90:
        return f"{s} s"
    minutes = s // 60 if s < 3600 else round(s / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, rest = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} {hour} {rest} min" if rest else f"{hours} {hour}"
    return f"{hours // 24} d {hours % 24} {hour}"


@dataclass(frozen=True)
class EventSpec:
    code: str
    severity: Severity
    text_en: str
    text_nl: str

    def texts(self, subject: str, value: float | None = None) -> tuple[str, str]:
        number = "?" if value is None else f"{value:.4g}"
        return (
            self.text_en.format(subject=for_people(subject), value=number),
            self.text_nl.format(subject=for_people(subject), value=number),
        )


class EventDetector(ABC):
    """A rule that reports moments (NODE_REBOOTED), not states: each sample is one event."""

    spec: ClassVar[EventSpec]

    @abstractmethod
    def detect(self, state: SiteState, now: datetime) -> Iterable[Sample]: ...


@dataclass(frozen=True, slots=True)
class Transition:
    kind: str  # "raise" | "clear" | "event"
    code: str
    severity: Severity
    subject: str
    channel: str
    value: float | None
    text_en: str
    text_nl: str
    at: datetime


class Evaluator:
    """Runs every Condition and EventDetector against the state; returns what changed."""

    def __init__(
        self,
        conditions: Sequence[Condition],
        detectors: Sequence[EventDetector] = (),
        *,
        max_gap_s: float = 900.0,
    ) -> None:
        self.conditions = list(conditions)
        self.detectors = list(detectors)
        self.max_gap_s = max_gap_s
        self.tracks: dict[tuple[str, str], Track] = {}

    def resume(self, code: str, subject: str, raised_at: datetime) -> None:
        """An alert is open in the store (after a restart): do not raise it again.

        When no stored history rebuilt the track of a cumulative alert (replay() never saw a
        sample of it), it is seeded with the delay it needed, ending at raised_at, so it does
        not clear at once (docs/rules.md).
        """
        track = self._track(code, subject)
        track.active = True
        cond = next((c for c in self.conditions if c.code == code), None)
        if (cond is not None and cond.limit.timing is Timing.CUMULATIVE
                and track.last_t is None and not track.intervals):
            end = raised_at.timestamp()
            track.intervals.append([end - cond.limit.delay_s, end])

    def replay(self, cond: Condition, state: SiteState, now: datetime) -> None:
        """Feed a stored (past) state through step(): rebuild the memory, report nothing.

        Whether an alert is open is not the replay's to say (the alert store is): the caller
        sets `active` from the store afterwards (RulesEngine.restore).
        """
        t = now.timestamp()
        for sample in cond.samples(state, now):
            self.step(self._track(cond.code, sample.subject), cond.limit, sample.value, t)

    def _track(self, code: str, subject: str) -> Track:
        track = self.tracks.get((code, subject))
        if track is None:
            track = self.tracks[(code, subject)] = Track()
        return track

    def is_active(self, code: str, subject: str) -> bool:
        track = self.tracks.get((code, subject))
        return track is not None and track.active

    def step(self, track: Track, limit: Limit, value: float | None, t: float) -> str | None:
        """Feed one sample at epoch second t; "raise", "clear" or None."""
        zone = limit.zone(value)
        dt = 0.0
        if track.last_t is not None:
            gap = t - track.last_t
            dt = gap if 0 < gap <= self.max_gap_s else 0.0
        prev = track.last_zone
        if dt > 0 and prev is Zone.BEYOND:
            track.run_s += dt
            if limit.timing is Timing.CUMULATIVE:
                start = t - dt
                if track.intervals and abs(track.intervals[-1][1] - start) < 1e-6:
                    track.intervals[-1][1] = t
                else:
                    track.intervals.append([start, t])
        if zone is Zone.CLEAR:
            if dt > 0 and prev is Zone.CLEAR:
                track.clear_run_s += dt
        else:
            track.clear_run_s = 0.0  # unknown or band: clearing needs known data, continuously
        if zone is Zone.CLEAR or zone is Zone.BAND:
            track.run_s = 0.0  # a known value not beyond breaks the run; unknown only pauses it
        track.last_t = t
        track.last_zone = zone

        cumulative_s = 0.0
        if limit.timing is Timing.CUMULATIVE:
            cumulative_s = track.cumulative_s(t, limit.window_s)
        if not track.active:
            if limit.timing is Timing.INSTANT or limit.delay_s == 0:
                fire = zone is Zone.BEYOND
            elif limit.timing is Timing.CONSECUTIVE:
                fire = zone is Zone.BEYOND and track.run_s >= limit.delay_s
            else:
                fire = cumulative_s >= limit.delay_s
            if fire:
                track.active = True
                track.clear_run_s = 0.0
                return "raise"
            return None
        if zone is Zone.CLEAR and track.clear_run_s >= limit.clear_delay_s:
            if limit.timing is Timing.CUMULATIVE and limit.delay_s > 0:
                if cumulative_s >= limit.delay_s:
                    return None
            track.active = False
            track.run_s = 0.0
            return "clear"
        return None

    def evaluate(self, state: SiteState, now: datetime) -> list[Transition]:
        t = now.timestamp()
        out: list[Transition] = []
        for cond in self.conditions:
            for sample in cond.samples(state, now):
                result = self.step(self._track(cond.code, sample.subject), cond.limit,
                                   sample.value, t)
                if result is None:
                    continue
                text_en, text_nl = cond.texts(sample)
                out.append(Transition(result, cond.code, cond.severity, sample.subject,
                                      sample.channel, sample.value, text_en, text_nl, now))
                if result == "clear" and cond.clear_event is not None:
                    spec = cond.clear_event
                    ev_en, ev_nl = spec.texts(sample.subject, sample.value)
                    out.append(Transition("event", spec.code, spec.severity, sample.subject,
                                          sample.channel, sample.value, ev_en, ev_nl, now))
        for det in self.detectors:
            spec = det.spec
            for sample in det.detect(state, now):
                ev_en, ev_nl = spec.texts(sample.subject, sample.value)
                out.append(Transition("event", spec.code, spec.severity, sample.subject,
                                      sample.channel, sample.value, ev_en, ev_nl, now))
        return out
