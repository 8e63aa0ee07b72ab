"""One generator test: what was measured, each criterion's verdict and the outcome.

The outcome is one of four words wherever a result is shown (page, PDF, uplink, hub register):
PASSED (every criterion measured and met, for at least the site's minimum under load), FAILED
(a criterion not met: the set failed to start, stopped by itself, started too slowly...),
NOT_VERIFIED (the set ran, but something the monthly test needs was not measured, e.g. the load,
or the run was a short exercise) and ABORTED (mains lost, an operator, the node went silent: says
nothing about the set). `end` says how the test ended (FAILED_TO_START, MAINS_LOST, ...).

A short exercise (`kind = "short_exercise"`: shorter than [gentest] min_duration_min, started
only when marked so) is recorded as such and is never PASSED: it never counts as the monthly test.

`passed` is 1 (PASSED), 0 (FAILED) or NULL (running, NOT_VERIFIED, ABORTED): readiness
(edge_server.rules.readiness.last_gentest) and the monthly schedule read only 1 and 0, so a test
that was not verified neither moves the next test a month nor marks the set as failed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any


class Outcome(StrEnum):
    RUNNING = "RUNNING"
    PASSED = "PASSED"
    FAILED = "FAILED"
    NOT_VERIFIED = "NOT_VERIFIED"
    ABORTED = "ABORTED"

    @property
    def passed(self) -> bool | None:
        if self is Outcome.PASSED:
            return True
        if self is Outcome.FAILED:
            return False
        return None


class End(StrEnum):
    """How a test ended (the detail behind the outcome word)."""

    COMPLETED = "COMPLETED"  # ran its planned duration and was stopped by the runner
    FAILED_TO_START = "FAILED_TO_START"
    GEN_STOPPED = "GEN_STOPPED"  # the set stopped by itself during the run
    MAINS_LOST = "MAINS_LOST"
    BY_OPERATOR = "BY_OPERATOR"
    NODE_OFFLINE = "NODE_OFFLINE"
    OUTAGE_RUN = "OUTAGE_RUN"  # a real outage ran the set under load (gentest/auto.py)


KIND_MONTHLY = "monthly"
KIND_SHORT = "short_exercise"
KIND_OUTAGE = "outage_credit"  # credited by a real outage: counts as the monthly test

OUTCOME_TEXTS: dict[Outcome, tuple[str, str]] = {
    Outcome.RUNNING: ("Test running", "Test loopt"),
    Outcome.PASSED: ("Passed", "Geslaagd"),
    Outcome.FAILED: ("Failed", "Afgekeurd"),
    Outcome.NOT_VERIFIED: ("Not verified: does not count as the monthly test",
                           "Niet geverifieerd: telt niet als maandelijkse test"),
    Outcome.ABORTED: ("Aborted", "Afgebroken"),
}

END_TEXTS: dict[End, tuple[str, str]] = {
    End.COMPLETED: ("Ran its planned duration", "Geplande looptijd gedraaid"),
    End.FAILED_TO_START: ("Generator failed to start", "Aggregaat startte niet"),
    End.GEN_STOPPED: ("The generator stopped by itself during the test",
                      "Het aggregaat stopte vanzelf tijdens de test"),
    End.MAINS_LOST: (
        "Mains lost during the test; the generator was left running (it carries the site)",
        "Netstroom viel uit tijdens de test; het aggregaat bleef draaien "
        "(het levert nu de stroom)"),
    End.BY_OPERATOR: ("Aborted by an operator", "Afgebroken door een bediener"),
    End.NODE_OFFLINE: ("The power node stopped answering",
                       "Het stroomknooppunt reageerde niet meer"),
    End.OUTAGE_RUN: ("Credited by a real outage: the generator carried the site",
                     "Gecrediteerd door een echte stroomuitval: het aggregaat leverde de stroom"),
}

# Outcome words written by earlier versions (stored rows, older edges' messages): read as
# (outcome, end). A stored PASSED stays PASSED: it was judged by the rules of its day.
LEGACY_OUTCOMES: dict[str, tuple[Outcome, End | None]] = {
    "FAILED_TO_START": (Outcome.FAILED, End.FAILED_TO_START),
    "ABORTED_MAINS_LOST": (Outcome.ABORTED, End.MAINS_LOST),
    "ABORTED_BY_OPERATOR": (Outcome.ABORTED, End.BY_OPERATOR),
    "ABORTED_NODE_OFFLINE": (Outcome.ABORTED, End.NODE_OFFLINE),
}


def read_outcome(word: str, end: str | None) -> tuple[Outcome, End | None]:
    """(outcome, end) from stored words, also those of earlier versions."""
    if word in LEGACY_OUTCOMES:
        return LEGACY_OUTCOMES[word]
    return Outcome(word), None if end is None else End(end)


@dataclass
class Criterion:
    code: str
    ok: bool | None  # None: not judged (not measured by the system)
    value: float | str | None
    limit: str
    text_en: str
    text_nl: str

    def to_json(self) -> dict[str, Any]:
        return {"code": self.code, "ok": self.ok, "value": self.value, "limit": self.limit,
                "text_en": self.text_en, "text_nl": self.text_nl}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Criterion:
        return cls(d["code"], d["ok"], d["value"], d["limit"], d["text_en"], d["text_nl"])


@dataclass
class Sample:
    t_s: float  # seconds since the start command
    starter_battery_v: float | None
    gen_running: bool | None
    gen_state: str | None
    # from a generator controller, when the site has one (older records: absent)
    load_pct: float | None = None
    voltage_v: float | None = None
    frequency_hz: float | None = None
    coolant_c: float | None = None
    oil_kpa: float | None = None

    def to_json(self) -> list[Any]:
        out = [round(self.t_s, 1), self.starter_battery_v, self.gen_running, self.gen_state]
        engine = (self.coolant_c, self.oil_kpa) != (None, None)
        if engine or (self.load_pct, self.voltage_v, self.frequency_hz) != (None, None, None):
            out += [self.load_pct, self.voltage_v, self.frequency_hz]
        if engine:
            out += [self.coolant_c, self.oil_kpa]
        return out

    @classmethod
    def from_json(cls, v: list[Any]) -> Sample:
        extra = list(v[4:9]) + [None] * (9 - max(len(v), 4))
        return cls(float(v[0]), v[1], v[2], v[3], *extra)


@dataclass
class GenTestRecord:
    site_id: str
    node: str
    started_by: str
    started_at: datetime
    planned_s: float
    id: int = 0
    outcome: Outcome = Outcome.RUNNING
    end: End | None = None
    kind: str = KIND_MONTHLY  # KIND_MONTHLY | KIND_SHORT | KIND_OUTAGE
    ended_at: datetime | None = None
    ended_by: str | None = None
    running_at: datetime | None = None  # first poll that saw gen_running
    start_time_s: float | None = None  # command -> gen_running seen
    ran_s: float | None = None  # gen_running seen -> stop command (cool-down not counted)
    crank_min_v: float | None = None
    starter_v_before: float | None = None
    fuel_start_l: float | None = None
    fuel_end_l: float | None = None
    run_hours_start_h: float | None = None
    run_hours_end_h: float | None = None
    criteria: list[Criterion] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)
    samples: list[Sample] = field(default_factory=list)
    notes: str = ""
    # how the test's commands went: "controller" (the generator controller: test on load, then
    # AUTO) or "relay" (the power node's remote-start relay); None for an outage credit
    commanded_via: str | None = None

    @property
    def passed(self) -> bool | None:
        return self.outcome.passed

    @property
    def counts_as_monthly(self) -> bool:
        """Only a PASSED monthly test (or an outage credit) moves the schedule (a short
        exercise is never PASSED)."""
        return self.kind in (KIND_MONTHLY, KIND_OUTAGE) and self.outcome is Outcome.PASSED

    @property
    def fuel_used_l(self) -> float | None:
        if self.fuel_start_l is None or self.fuel_end_l is None:
            return None
        return round(self.fuel_start_l - self.fuel_end_l, 1)

    def to_json(self, *, samples: bool = False) -> dict[str, Any]:
        en, nl = OUTCOME_TEXTS[self.outcome]
        end_en, end_nl = (None, None) if self.end is None else END_TEXTS[self.end]
        out: dict[str, Any] = {
            "id": self.id, "site_id": self.site_id, "node": self.node,
            "started_by": self.started_by, "started_at": self.started_at.isoformat(),
            "ended_at": None if self.ended_at is None else self.ended_at.isoformat(),
            "ended_by": self.ended_by, "outcome": self.outcome.value, "passed": self.passed,
            "outcome_en": en, "outcome_nl": nl,
            "end": None if self.end is None else self.end.value, "end_en": end_en,
            "end_nl": end_nl, "kind": self.kind, "counts_as_monthly": self.counts_as_monthly,
            "planned_s": self.planned_s,
            "start_time_s": self.start_time_s, "ran_s": self.ran_s,
            "crank_min_v": self.crank_min_v, "starter_v_before": self.starter_v_before,
            "fuel_start_l": self.fuel_start_l, "fuel_end_l": self.fuel_end_l,
            "fuel_used_l": self.fuel_used_l,
            "run_hours_start_h": self.run_hours_start_h, "run_hours_end_h": self.run_hours_end_h,
            "criteria": [c.to_json() for c in self.criteria],
            "reasons": list(self.reasons), "notes": self.notes,
            "commanded_via": self.commanded_via,
        }
        if samples:
            out["samples"] = [s.to_json() for s in self.samples]
        return out
