"""Readiness of the site for a long power outage: READY / DEGRADED / NOT_READY / UNKNOWN.

Always with the reasons (code + Dutch and English text). `assess()` is a pure function of its
inputs; the decision table is in docs/rules.md and in ROWS below (one place). The overall state
is the worst of the reasons, in the order NOT_READY > UNKNOWN > DEGRADED > READY.
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from edge_server.gentest.schedule import next_due
from edge_server.rules.settings import FuelSettings, RulesSettings


class ReadinessState(StrEnum):
    READY = "READY"
    DEGRADED = "DEGRADED"
    NOT_READY = "NOT_READY"
    UNKNOWN = "UNKNOWN"


RANK = {ReadinessState.READY: 0, ReadinessState.DEGRADED: 1, ReadinessState.UNKNOWN: 2,
        ReadinessState.NOT_READY: 3}

R = ReadinessState
# code -> (state it forces, English, Dutch)
REASONS: dict[str, tuple[ReadinessState, str, str]] = {
    "ALL_OK": (R.READY, "All checks passed", "Alle controles in orde"),
    "POWER_UNKNOWN": (R.UNKNOWN, "No data from the power node (mains, generator)",
                      "Geen gegevens van het stroomknooppunt (net, aggregaat)"),
    "GEN_FAILED": (R.NOT_READY, "Generator failed to start",
                   "Aggregaat is niet gestart"),
    "GENTEST_FAILED": (R.NOT_READY, "Last generator test failed",
                       "Laatste test van het aggregaat is mislukt"),
    "GENTEST_NONE": (R.DEGRADED, "No generator test on record",
                     "Geen test van het aggregaat geregistreerd"),
    "GENTEST_OVERDUE": (R.DEGRADED, "Generator test overdue (monthly test)",
                        "Test van het aggregaat te laat (maandelijkse test)"),
    "FUEL_UNKNOWN": (R.DEGRADED, "Fuel level unknown: autonomy cannot be computed",
                     "Brandstofniveau onbekend: autonomie niet te berekenen"),
    "FUEL_CRITICAL": (R.NOT_READY, "Fuel autonomy below the critical minimum",
                      "Brandstofautonomie onder het kritieke minimum"),
    "FUEL_AUTONOMY_LOW": (R.DEGRADED, "Fuel autonomy below the target",
                          "Brandstofautonomie onder het doel"),
    "FUEL_LEAK": (R.DEGRADED, "Possible fuel leak or theft", "Mogelijk brandstoflek of diefstal"),
    "FUEL_OLD": (R.DEGRADED, "Fuel is old", "Brandstof is oud"),
    "STARTER_BATTERY_LOW": (R.NOT_READY, "Generator starter battery low or weak",
                            "Startaccu aggregaat te laag of zwak"),
    "BATTERY_LOW": (R.DEGRADED, "Site battery low", "Accu van de locatie bijna leeg"),
    "BATTERY_SENSOR_FAULT": (R.DEGRADED, "Site battery monitor fault",
                             "Storing accumeter van de locatie"),
    "FRIDGE_OUT_OF_RANGE": (R.DEGRADED, "Medicine fridge out of range",
                            "Medicijnkoelkast buiten bereik"),
    "FRIDGE_PROBE_FAULT": (R.DEGRADED, "Fridge probe fault", "Storing koelkastvoeler"),
    "GEN_RUNNING_UNEXPECTED": (R.DEGRADED, "Generator runs unexpectedly",
                               "Aggregaat draait onverwacht"),
    "GENSET_WITNESS_DISAGREES": (R.DEGRADED, "Generator controller and power node disagree",
                                 "Regelaar en vermogensknooppunt zijn het oneens"),
    "GENSET_SHUTDOWN": (R.NOT_READY, "Generator controller has a shutdown alarm: the set will "
                        "not start until it is reset on site",
                        "Regelaar van het aggregaat heeft een uitschakelalarm: het aggregaat "
                        "start niet tot het ter plaatse is gereset"),
    "GENSET_ELECTRICAL_TRIP": (R.NOT_READY, "Generator controller has an electrical trip: the "
                               "set does not carry the site",
                               "Regelaar van het aggregaat heeft een elektrische "
                               "uitschakeling: het aggregaat voedt de locatie niet"),
    "GENSET_WARNING": (R.DEGRADED, "Generator controller has a warning alarm",
                       "Regelaar van het aggregaat heeft een waarschuwingsalarm"),
    "NODE_OFFLINE": (R.DEGRADED, "A node does not answer", "Een knooppunt reageert niet"),
    "DATA_STALE": (R.DEGRADED, "Data is stale", "Gegevens zijn verouderd"),
    "UPLINK_DOWN": (R.DEGRADED, "No link to the C-NSP", "Geen verbinding met het C-NSP"),
    "UPLINK_UNKNOWN": (R.DEGRADED, "Link to the C-NSP not configured or unknown",
                       "Verbinding met het C-NSP niet ingesteld of onbekend"),
}

# Open alert code -> readiness reason code
ALERT_REASONS: dict[str, str] = {
    "GEN_FAILED_TO_START": "GEN_FAILED",
    "FUEL_LEAK": "FUEL_LEAK",
    "FUEL_OLD": "FUEL_OLD",
    "STARTER_BATTERY_LOW": "STARTER_BATTERY_LOW",
    "BATTERY_LOW": "BATTERY_LOW",
    "BATTERY_SENSOR_FAULT": "BATTERY_SENSOR_FAULT",
    "FRIDGE_HIGH": "FRIDGE_OUT_OF_RANGE",
    "FRIDGE_HIGH_INSTANT": "FRIDGE_OUT_OF_RANGE",
    "FRIDGE_LOW": "FRIDGE_OUT_OF_RANGE",
    "FRIDGE_FREEZE": "FRIDGE_OUT_OF_RANGE",
    "FRIDGE_MKT": "FRIDGE_OUT_OF_RANGE",
    "FRIDGE_PROBE_FAULT": "FRIDGE_PROBE_FAULT",
    "GEN_RUNNING_UNEXPECTED": "GEN_RUNNING_UNEXPECTED",
    "GENSET_WITNESS_DISAGREES": "GENSET_WITNESS_DISAGREES",
    "GENSET_SHUTDOWN": "GENSET_SHUTDOWN",
    "GENSET_ELECTRICAL_TRIP": "GENSET_ELECTRICAL_TRIP",
    "GENSET_WARNING": "GENSET_WARNING",
    "NODE_OFFLINE": "NODE_OFFLINE",
    "DATA_STALE": "DATA_STALE",
}


@dataclass(frozen=True, slots=True)
class Reason:
    code: str
    state: ReadinessState
    text_en: str
    text_nl: str

    def to_json(self) -> dict[str, str]:
        return {"code": self.code, "state": self.state.value, "text_en": self.text_en,
                "text_nl": self.text_nl}


def reason(code: str, detail: str = "") -> Reason:
    state, en, nl = REASONS[code]
    suffix = f" ({detail})" if detail else ""
    return Reason(code, state, en + suffix, nl + suffix)


@dataclass(frozen=True)
class Readiness:
    state: ReadinessState
    reasons: tuple[Reason, ...]
    at: datetime

    def to_json(self) -> dict[str, Any]:
        return {"state": self.state.value, "at": self.at.isoformat(),
                "reasons": [r.to_json() for r in self.reasons]}


@dataclass(frozen=True)
class GenTest:
    at: datetime
    passed: bool


@dataclass
class ReadinessInputs:
    now: datetime
    power_data_known: bool  # a power node exists and mains/generator state is known
    open_alert_codes: set[str] = field(default_factory=set)
    last_gentest: GenTest | None = None
    autonomy_h: float | None = None
    uplink_up: bool | None = None  # None: no uplink configured / unknown


def assess(inp: ReadinessInputs, rules: RulesSettings, fuel: FuelSettings) -> Readiness:
    reasons: list[Reason] = []
    if not inp.power_data_known:
        reasons.append(reason("POWER_UNKNOWN"))
    test = inp.last_gentest
    if test is None:
        reasons.append(reason("GENTEST_NONE"))
    elif not test.passed:
        reasons.append(reason("GENTEST_FAILED", test.at.date().isoformat()))
    elif next_due(inp.now, rules, test.at).overdue:  # NFPA 110 window (edge_server.gentest)
        reasons.append(reason("GENTEST_OVERDUE", test.at.date().isoformat()))
    if inp.autonomy_h is None:
        if inp.power_data_known:
            reasons.append(reason("FUEL_UNKNOWN"))
    elif inp.autonomy_h < fuel.autonomy_critical_h:
        reasons.append(reason("FUEL_CRITICAL", f"{inp.autonomy_h:.0f} h"))
    elif inp.autonomy_h < fuel.autonomy_target_h:
        reasons.append(reason("FUEL_AUTONOMY_LOW", f"{inp.autonomy_h:.0f} h"))
    added: set[str] = set()
    for code in sorted(inp.open_alert_codes):
        rcode = ALERT_REASONS.get(code)
        if rcode is not None and rcode not in added:
            added.add(rcode)
            reasons.append(reason(rcode))
    if inp.uplink_up is False:
        reasons.append(reason("UPLINK_DOWN"))
    elif inp.uplink_up is None:
        reasons.append(reason("UPLINK_UNKNOWN"))
    if not reasons:
        reasons.append(reason("ALL_OK"))
    worst = max((r.state for r in reasons), key=RANK.__getitem__)
    ordered = sorted(reasons, key=lambda r: -RANK[r.state])
    return Readiness(worst, tuple(ordered), inp.now)


_TIME_COLUMNS = ("ended_at", "finished_at", "started_at", "at", "date")
_RESULT_COLUMNS = ("passed", "result", "ok", "outcome")
_PASSED = {"1", "true", "pass", "passed", "ok", "success", "succeeded"}


def last_gentest(conn: sqlite3.Connection) -> GenTest | None:
    """The newest record of the `gentests` table if it exists (written by the generator-test
    part); None when there is no table or no record. Columns looked for, in order: a time
    (ended_at, finished_at, started_at, at, date; ISO 8601) and a result (passed, result, ok,
    outcome; 1/true/"passed"/"ok" is a pass). A NULL result (a test running, or aborted
    by a mains loss, an operator or a silent node) is skipped."""
    cols = [row[1] for row in conn.execute("PRAGMA table_info(gentests)")]
    time_col = next((c for c in _TIME_COLUMNS if c in cols), None)
    result_col = next((c for c in _RESULT_COLUMNS if c in cols), None)
    if time_col is None or result_col is None:
        return None
    row = conn.execute(
        f"SELECT {time_col}, {result_col} FROM gentests WHERE {time_col} IS NOT NULL "
        f"AND {result_col} IS NOT NULL "  # NULL: running, or aborted (says nothing of the set)
        f"ORDER BY {time_col} DESC LIMIT 1"
    ).fetchone()
    if row is None:
        return None
    at = datetime.fromisoformat(str(row[0]))
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    return GenTest(at, str(row[1]).strip().lower() in _PASSED)
