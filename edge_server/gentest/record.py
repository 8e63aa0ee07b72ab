"""One generator test: what was measured, each criterion's verdict and the outcome.

`passed` is 1 (PASSED), 0 (FAILED, FAILED_TO_START) or NULL while running and for tests that
were aborted (mains lost, operator, node offline): an aborted test says nothing about the set,
so readiness (edge_server.rules.readiness.last_gentest) skips it.
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
    FAILED_TO_START = "FAILED_TO_START"
    ABORTED_MAINS_LOST = "ABORTED_MAINS_LOST"
    ABORTED_BY_OPERATOR = "ABORTED_BY_OPERATOR"
    ABORTED_NODE_OFFLINE = "ABORTED_NODE_OFFLINE"

    @property
    def passed(self) -> bool | None:
        if self is Outcome.PASSED:
            return True
        if self in (Outcome.FAILED, Outcome.FAILED_TO_START):
            return False
        return None


OUTCOME_TEXTS: dict[Outcome, tuple[str, str]] = {
    Outcome.RUNNING: ("Test running", "Test loopt"),
    Outcome.PASSED: ("Passed", "Geslaagd"),
    Outcome.FAILED: ("Failed", "Afgekeurd"),
    Outcome.FAILED_TO_START: ("Generator failed to start", "Aggregaat startte niet"),
    Outcome.ABORTED_MAINS_LOST: (
        "Aborted: mains lost during the test; the generator was left running (it carries the site)",
        "Afgebroken: netstroom viel uit tijdens de test; het aggregaat bleef draaien "
        "(het levert nu de stroom)"),
    Outcome.ABORTED_BY_OPERATOR: ("Aborted by an operator", "Afgebroken door een bediener"),
    Outcome.ABORTED_NODE_OFFLINE: ("Aborted: the power node stopped answering",
                                   "Afgebroken: het stroomknooppunt reageerde niet meer"),
}


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

    def to_json(self) -> list[Any]:
        return [round(self.t_s, 1), self.starter_battery_v, self.gen_running, self.gen_state]

    @classmethod
    def from_json(cls, v: list[Any]) -> Sample:
        return cls(float(v[0]), v[1], v[2], v[3])


@dataclass
class GenTestRecord:
    site_id: str
    node: str
    started_by: str
    started_at: datetime
    planned_s: float
    id: int = 0
    outcome: Outcome = Outcome.RUNNING
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

    @property
    def passed(self) -> bool | None:
        return self.outcome.passed

    @property
    def fuel_used_l(self) -> float | None:
        if self.fuel_start_l is None or self.fuel_end_l is None:
            return None
        return round(self.fuel_start_l - self.fuel_end_l, 1)

    def to_json(self, *, samples: bool = False) -> dict[str, Any]:
        en, nl = OUTCOME_TEXTS[self.outcome]
        out: dict[str, Any] = {
            "id": self.id, "site_id": self.site_id, "node": self.node,
            "started_by": self.started_by, "started_at": self.started_at.isoformat(),
            "ended_at": None if self.ended_at is None else self.ended_at.isoformat(),
            "ended_by": self.ended_by, "outcome": self.outcome.value, "passed": self.passed,
            "outcome_en": en, "outcome_nl": nl, "planned_s": self.planned_s,
            "start_time_s": self.start_time_s, "ran_s": self.ran_s,
            "crank_min_v": self.crank_min_v, "starter_v_before": self.starter_v_before,
            "fuel_start_l": self.fuel_start_l, "fuel_end_l": self.fuel_end_l,
            "fuel_used_l": self.fuel_used_l,
            "run_hours_start_h": self.run_hours_start_h, "run_hours_end_h": self.run_hours_end_h,
            "criteria": [c.to_json() for c in self.criteria],
            "reasons": list(self.reasons), "notes": self.notes,
        }
        if samples:
            out["samples"] = [s.to_json() for s in self.samples]
        return out
