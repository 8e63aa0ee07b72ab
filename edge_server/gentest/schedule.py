"""When the next generator test is due: a pure function of (now, settings, last passed test).

NFPA 110 §8.4.2: exercise monthly, tests 20-40 days apart. `earliest` = last + gentest_min_days,
`latest` = last + gentest_max_days (after that the test is overdue, which readiness reports as
GENTEST_OVERDUE), `target` = midway (30 days with the defaults). No test on record: due now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol


class WindowSettings(Protocol):
    """[rules] holds the window (edge_server.rules.settings.RulesSettings)."""

    @property
    def gentest_min_days(self) -> float: ...

    @property
    def gentest_max_days(self) -> float: ...


class DueStatus(StrEnum):
    NEVER_TESTED = "never_tested"  # no passed test on record: due now
    TOO_EARLY = "too_early"  # before the 20-day minimum: would not count as the monthly test
    DUE = "due"  # inside the 20-40 day window
    OVERDUE = "overdue"  # past the 40-day maximum


TEXTS = {
    DueStatus.NEVER_TESTED: ("No passed generator test on record: test now",
                             "Geen geslaagde test van het aggregaat geregistreerd: nu testen"),
    DueStatus.TOO_EARLY: ("Next generator test not yet due",
                          "Volgende aggregaattest nog niet aan de beurt"),
    DueStatus.DUE: ("Generator test due", "Aggregaattest aan de beurt"),
    DueStatus.OVERDUE: ("Generator test overdue", "Aggregaattest te laat"),
}


@dataclass(frozen=True)
class Due:
    status: DueStatus
    last_test: datetime | None
    earliest: datetime
    target: datetime
    latest: datetime

    @property
    def overdue(self) -> bool:
        return self.status is DueStatus.OVERDUE

    def to_json(self) -> dict[str, Any]:
        en, nl = TEXTS[self.status]
        return {"status": self.status.value, "overdue": self.overdue,
                "last_test": None if self.last_test is None else self.last_test.isoformat(),
                "earliest": self.earliest.isoformat(), "target": self.target.isoformat(),
                "latest": self.latest.isoformat(), "text_en": en, "text_nl": nl}


def next_due(now: datetime, settings: WindowSettings, last_test: datetime | None) -> Due:
    """The window for the next test after `last_test` (the last PASSED test), judged at `now`."""
    if last_test is None:
        return Due(DueStatus.NEVER_TESTED, None, now, now, now)
    lo, hi = float(settings.gentest_min_days), float(settings.gentest_max_days)
    earliest = last_test + timedelta(days=lo)
    latest = last_test + timedelta(days=hi)
    target = last_test + timedelta(days=(lo + hi) / 2)
    if now > latest:
        status = DueStatus.OVERDUE
    elif now < earliest:
        status = DueStatus.TOO_EARLY
    else:
        status = DueStatus.DUE
    return Due(status, last_test, earliest, target, latest)
