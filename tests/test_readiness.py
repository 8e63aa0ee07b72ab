"""Readiness: the decision table of docs/rules.md, row by row, and the gentests table reader."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge_server.rules.readiness import (
    REASONS,
    GenTest,
    ReadinessInputs,
    ReadinessState,
    assess,
    last_gentest,
)
from edge_server.rules.settings import FuelSettings, RulesSettings
from edge_server.storage.db import open_db

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)
RULES = RulesSettings()
FUEL = FuelSettings()
S = ReadinessState


def good(**changes: object) -> ReadinessInputs:
    inputs = ReadinessInputs(
        now=NOW, power_data_known=True, open_alert_codes=set(),
        last_gentest=GenTest(NOW - timedelta(days=10), True), autonomy_h=100.0, uplink_up=True,
    )
    for key, value in changes.items():
        setattr(inputs, key, value)
    return inputs


ROWS: list[tuple[str, ReadinessInputs, ReadinessState, set[str]]] = [
    ("all good", good(), S.READY, {"ALL_OK"}),
    ("no power data", good(power_data_known=False, autonomy_h=None), S.UNKNOWN,
     {"POWER_UNKNOWN"}),
    ("no gentest on record", good(last_gentest=None), S.DEGRADED, {"GENTEST_NONE"}),
    ("gentest 41 days ago", good(last_gentest=GenTest(NOW - timedelta(days=41), True)),
     S.DEGRADED, {"GENTEST_OVERDUE"}),
    ("gentest 39 days ago", good(last_gentest=GenTest(NOW - timedelta(days=39), True)),
     S.READY, {"ALL_OK"}),
    ("gentest failed", good(last_gentest=GenTest(NOW - timedelta(days=2), False)), S.NOT_READY,
     {"GENTEST_FAILED"}),
    ("fuel unknown", good(autonomy_h=None), S.DEGRADED, {"FUEL_UNKNOWN"}),
    ("autonomy 50 h", good(autonomy_h=50.0), S.DEGRADED, {"FUEL_AUTONOMY_LOW"}),
    ("autonomy 72 h exactly", good(autonomy_h=72.0), S.READY, {"ALL_OK"}),
    ("autonomy 10 h", good(autonomy_h=10.0), S.NOT_READY, {"FUEL_CRITICAL"}),
    ("generator failed", good(open_alert_codes={"GEN_FAILED_TO_START", "MAINS_LOST"}),
     S.NOT_READY, {"GEN_FAILED"}),
    ("starter battery", good(open_alert_codes={"STARTER_BATTERY_LOW"}), S.NOT_READY,
     {"STARTER_BATTERY_LOW"}),
    ("fridge warm", good(open_alert_codes={"FRIDGE_HIGH", "FRIDGE_MKT"}), S.DEGRADED,
     {"FRIDGE_OUT_OF_RANGE"}),
    ("probe fault", good(open_alert_codes={"FRIDGE_PROBE_FAULT"}), S.DEGRADED,
     {"FRIDGE_PROBE_FAULT"}),
    ("site battery", good(open_alert_codes={"BATTERY_LOW"}), S.DEGRADED, {"BATTERY_LOW"}),
    ("node offline", good(open_alert_codes={"NODE_OFFLINE"}), S.DEGRADED, {"NODE_OFFLINE"}),
    ("fuel leak", good(open_alert_codes={"FUEL_LEAK"}), S.DEGRADED, {"FUEL_LEAK"}),
    ("uplink down", good(uplink_up=False), S.DEGRADED, {"UPLINK_DOWN"}),
    ("uplink not configured", good(uplink_up=None), S.DEGRADED, {"UPLINK_UNKNOWN"}),
    ("outage on generator is still ready",
     good(open_alert_codes={"MAINS_LOST", "GEN_RUNNING_ON_OUTAGE", "OCCUPANCY_HIGH"}),
     S.READY, {"ALL_OK"}),
    ("worst wins: not ready over unknown over degraded",
     good(power_data_known=False, autonomy_h=5.0, uplink_up=False), S.NOT_READY,
     {"POWER_UNKNOWN", "FUEL_CRITICAL", "UPLINK_DOWN"}),
    ("unknown over degraded", good(power_data_known=False, uplink_up=False), S.UNKNOWN,
     {"POWER_UNKNOWN", "UPLINK_DOWN"}),
]


@pytest.mark.parametrize(("name", "inputs", "state", "codes"), ROWS, ids=[r[0] for r in ROWS])
def test_decision_table(name: str, inputs: ReadinessInputs, state: ReadinessState,
                        codes: set[str]) -> None:
    result = assess(inputs, RULES, FUEL)
    assert result.state is state
    assert {r.code for r in result.reasons} == codes
    assert result.reasons[0].state is state  # worst reason first
    for r in result.reasons:
        assert r.text_en and r.text_nl and r.text_en != r.text_nl


def test_every_reason_has_both_languages() -> None:
    for code, (_, en, nl) in REASONS.items():
        assert en and nl and en != nl, code


def test_gentest_interval_is_a_setting() -> None:
    strict = RulesSettings(gentest_min_days=5, gentest_max_days=7)
    result = assess(good(), strict, FUEL)
    assert {r.code for r in result.reasons} == {"GENTEST_OVERDUE"}


def test_last_gentest_from_sqlite(tmp_path: Path) -> None:
    conn = open_db(tmp_path / "site.db")
    try:
        assert last_gentest(conn) is None  # no table: "no test on record"
        conn.execute("CREATE TABLE gentests (id INTEGER PRIMARY KEY, started_at TEXT, "
                     "passed INTEGER)")
        assert last_gentest(conn) is None
        conn.execute("INSERT INTO gentests(started_at, passed) VALUES (?, 1), (?, 0)",
                     ("2026-02-01T10:00:00+00:00", "2026-02-20T10:00:00+00:00"))
        newest = last_gentest(conn)
        assert newest == GenTest(datetime(2026, 2, 20, 10, tzinfo=UTC), False)
        conn.execute("INSERT INTO gentests(started_at, passed) VALUES (?, 1)",
                     ("2026-02-25T10:00:00",))
        newest = last_gentest(conn)
        assert newest == GenTest(datetime(2026, 2, 25, 10, tzinfo=UTC), True)
    finally:
        conn.close()
