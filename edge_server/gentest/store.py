"""The `gentests` table in site.db (component "gentests" in schema_versions), kept 10 years.

Readiness reads the newest row with an `ended_at` and a non-NULL `passed`
(edge_server.rules.readiness.last_gentest); the columns keep that contract.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import UTC, datetime, timedelta
from typing import Any

from edge_server.gentest.record import Criterion, GenTestRecord, Sample, read_outcome
from edge_server.storage.db import migrate

RETENTION_DAYS = 3660  # records kept 10 years (docs/sources.md)

SCHEMA = [
    """
    CREATE TABLE gentests (
        id INTEGER PRIMARY KEY,
        site_id TEXT NOT NULL,
        node TEXT NOT NULL,
        started_by TEXT NOT NULL,
        started_at TEXT NOT NULL,          -- ISO 8601 UTC
        ended_at TEXT,                     -- NULL while running
        ended_by TEXT,
        outcome TEXT NOT NULL,
        passed INTEGER,                    -- 1 / 0 / NULL (running, aborted)
        planned_s REAL NOT NULL,
        running_at TEXT,
        start_time_s REAL,
        ran_s REAL,
        crank_min_v REAL,
        starter_v_before REAL,
        fuel_start_l REAL,
        fuel_end_l REAL,
        run_hours_start_h REAL,
        run_hours_end_h REAL,
        criteria TEXT NOT NULL DEFAULT '[]',
        reasons TEXT NOT NULL DEFAULT '[]',
        samples TEXT NOT NULL DEFAULT '[]',
        notes TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX gentests_ended ON gentests(ended_at);
    """,
    # 2: the four outcome words (PASSED / FAILED / NOT_VERIFIED / ABORTED) with how the test
    # ended, and short exercises (never count as the monthly test). Older rows keep their
    # words; edge_server.gentest.record.read_outcome reads them.
    """
    ALTER TABLE gentests ADD COLUMN end_reason TEXT;
    ALTER TABLE gentests ADD COLUMN kind TEXT NOT NULL DEFAULT 'monthly';
    """,
    # 3: the command path, "controller" or "relay" (gentest/runner.py). Every commanded test
    # before this went through the power node's relay; an outage credit has no command.
    """
    ALTER TABLE gentests ADD COLUMN commanded_via TEXT;
    UPDATE gentests SET commanded_via = 'relay' WHERE kind != 'outage_credit';
    """,
]

_COLS = ("site_id, node, started_by, started_at, ended_at, ended_by, outcome, passed, planned_s, "
         "running_at, start_time_s, ran_s, crank_min_v, starter_v_before, fuel_start_l, "
         "fuel_end_l, run_hours_start_h, run_hours_end_h, criteria, reasons, samples, notes, "
         "end_reason, kind, commanded_via")


class GenTestNotFound(LookupError):
    pass


def _iso(at: datetime | None) -> str | None:
    return None if at is None else at.astimezone(UTC).isoformat()


def _dt(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _values(r: GenTestRecord) -> tuple[Any, ...]:
    passed = r.passed
    return (r.site_id, r.node, r.started_by, _iso(r.started_at), _iso(r.ended_at), r.ended_by,
            r.outcome.value, None if passed is None else int(passed), r.planned_s,
            _iso(r.running_at), r.start_time_s, r.ran_s, r.crank_min_v, r.starter_v_before,
            r.fuel_start_l, r.fuel_end_l, r.run_hours_start_h, r.run_hours_end_h,
            json.dumps([c.to_json() for c in r.criteria]), json.dumps(r.reasons),
            json.dumps([s.to_json() for s in r.samples]), r.notes,
            None if r.end is None else r.end.value, r.kind, r.commanded_via)


def _record(row: tuple[Any, ...]) -> GenTestRecord:
    (id_, site_id, node, started_by, started_at, ended_at, ended_by, outcome, _passed, planned_s,
     running_at, start_time_s, ran_s, crank_min_v, starter_v_before, fuel_start_l, fuel_end_l,
     rh_start, rh_end, criteria, reasons, samples, notes, end_reason, kind, via) = row
    started = _dt(started_at)
    assert started is not None
    outcome_, end = read_outcome(outcome, end_reason)
    return GenTestRecord(
        site_id=site_id, node=node, started_by=started_by, started_at=started,
        planned_s=planned_s, id=id_, outcome=outcome_, end=end, kind=kind, ended_at=_dt(ended_at),
        ended_by=ended_by, running_at=_dt(running_at), start_time_s=start_time_s, ran_s=ran_s,
        crank_min_v=crank_min_v, starter_v_before=starter_v_before, fuel_start_l=fuel_start_l,
        fuel_end_l=fuel_end_l, run_hours_start_h=rh_start, run_hours_end_h=rh_end,
        criteria=[Criterion.from_json(c) for c in json.loads(criteria)],
        reasons=list(json.loads(reasons)),
        samples=[Sample.from_json(s) for s in json.loads(samples)], notes=notes,
        commanded_via=via)


class GenTestStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        migrate(conn, "gentests", SCHEMA)

    def insert(self, record: GenTestRecord) -> int:
        with self.conn:
            cur = self.conn.execute(
                f"INSERT INTO gentests({_COLS}) VALUES ({', '.join('?' * 25)})", _values(record))
        record.id = int(cur.lastrowid or 0)
        return record.id

    def update(self, record: GenTestRecord) -> None:
        sets = ", ".join(f"{c.strip()} = ?" for c in _COLS.split(","))
        with self.conn:
            self.conn.execute(f"UPDATE gentests SET {sets} WHERE id = ?",
                              (*_values(record), record.id))

    def get(self, test_id: int) -> GenTestRecord:
        row = self.conn.execute(f"SELECT id, {_COLS} FROM gentests WHERE id = ?",
                                (test_id,)).fetchone()
        if row is None:
            raise GenTestNotFound(f"no generator test with id {test_id}")
        return _record(row)

    def list(self, limit: int = 100) -> list[GenTestRecord]:
        rows = self.conn.execute(f"SELECT id, {_COLS} FROM gentests ORDER BY id DESC LIMIT ?",
                                 (limit,)).fetchall()
        return [_record(r) for r in rows]

    def last_passed_at(self) -> datetime | None:
        """End of the newest PASSED monthly test (what the monthly schedule counts from; a short
        exercise is never PASSED, and is excluded here as well in case an older row says so)."""
        row = self.conn.execute(
            "SELECT ended_at FROM gentests WHERE passed = 1 AND ended_at IS NOT NULL "
            "AND kind IN ('monthly', 'outage_credit') "
            "ORDER BY ended_at DESC LIMIT 1").fetchone()
        return None if row is None else _dt(row[0])

    def purge(self, now: datetime) -> int:
        """Delete finished records older than 10 years; returns how many."""
        cutoff = _iso(now - timedelta(days=RETENTION_DAYS))
        with self.conn:
            cur = self.conn.execute(
                "DELETE FROM gentests WHERE ended_at IS NOT NULL AND ended_at < ?", (cutoff,))
        return cur.rowcount
