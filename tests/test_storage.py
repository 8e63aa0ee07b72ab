"""SQLite storage on a real file: inserts, gaps, aggregates, retention, history, full disk."""

from __future__ import annotations

import logging
import random
import sqlite3
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge_server.clock import ManualClock
from edge_server.state import NodeStatus, Quality, Reading, SiteState
from edge_server.storage.db import migrate, open_db
from edge_server.storage.sqlite import (
    DAY_MS,
    HOUR_MS,
    MIGRATIONS,
    MINUTE_MS,
    Row,
    SqliteStorage,
    migrate_storage,
    to_ms,
)

T0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
CH = "fridge1.fridge_temp_c"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def storage(tmp_path: Path, clock: ManualClock):
    s = SqliteStorage(tmp_path / "site.db", clock)
    yield s
    s.close()


def make_state() -> SiteState:
    state = SiteState("test-site")
    state.add_node(NodeStatus("fridge1", 2, "bus0", ("fridge",), online=True))
    return state


def put(state: SiteState, name: str, value: float | None, at: datetime) -> None:
    q = Quality.GOOD if value is not None else Quality.UNAVAILABLE
    state.put(Reading("fridge1", name, value, "C", at, q))


def test_schema_is_versioned_and_a_newer_db_is_refused(storage: SqliteStorage, tmp_path: Path):
    conn = open_db(tmp_path / "site.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert migrate_storage(conn) == len(MIGRATIONS)  # idempotent
    conn.execute(f"PRAGMA user_version = {len(MIGRATIONS) + 1}")
    with pytest.raises(RuntimeError, match="newer than this software"):
        migrate_storage(conn)
    conn.close()


def test_component_migrations_apply_once(tmp_path: Path):
    conn = open_db(tmp_path / "x.db")
    steps = ["CREATE TABLE a (x INTEGER);", "ALTER TABLE a ADD COLUMN y TEXT;"]
    assert migrate(conn, "alerts", steps) == 2
    assert migrate(conn, "alerts", steps) == 2  # a second run does nothing (would fail otherwise)
    cols = [r[1] for r in conn.execute("PRAGMA table_info(a)")]
    assert cols == ["x", "y"]
    conn.close()


def test_every_good_reading_is_stored_once_per_timestamp(storage: SqliteStorage,
                                                         clock: ManualClock):
    state = make_state()
    state.subscribe(storage.on_cycle)
    expected = []
    for i in range(5):
        at = clock.now()
        put(state, "fridge_temp_c", 4.0 + i / 10, at)
        put(state, "door_open", bool(i % 2), at)
        state.notify(at)
        state.notify(at)  # a cycle where nothing new was read stores nothing twice
        expected.append((to_ms(at), 4.0 + i / 10))
        clock.advance(2)
    h = storage.history(CH, T0, clock.now(), "raw")
    assert h.step == "raw"
    assert [(p[0], p[2]) for p in h.points] == expected
    door = storage.history("fridge1.door_open", T0, clock.now(), "raw")
    assert [p[2] for p in door.points] == [0.0, 1.0, 0.0, 1.0, 0.0]
    assert storage.health.rows_written == 10


def test_unavailable_is_stored_as_a_gap_not_a_value(storage: SqliteStorage, clock: ManualClock,
                                                    tmp_path: Path):
    state = make_state()
    state.subscribe(storage.on_cycle)
    put(state, "fridge_temp_c", 5.0, clock.now())
    state.notify(clock.now())
    clock.advance(2)
    state.mark_unavailable("fridge1", clock.now())
    gap_at = clock.now()
    state.notify(clock.now())
    for _ in range(3):  # the node stays away: one gap row, not one per cycle
        clock.advance(2)
        state.notify(clock.now())
    clock.advance(2)
    put(state, "fridge_temp_c", 6.0, clock.now())
    state.notify(clock.now())

    points = storage.history(CH, T0, clock.now() + timedelta(seconds=1), "raw").points
    assert [(p[0], p[2]) for p in points] == [
        (to_ms(T0), 5.0), (to_ms(gap_at), None), (to_ms(clock.now()), 6.0)
    ]
    conn = sqlite3.connect(tmp_path / "site.db")
    values = [r[0] for r in conn.execute("SELECT value FROM readings ORDER BY t")]
    conn.close()
    assert values == [5.0, None, 6.0]


def _feed(storage: SqliteStorage, start: datetime, seconds: int, every_s: int,
          rng: random.Random, skip: range | None = None) -> list[tuple[int, float]]:
    """Write one reading every `every_s` s (one transaction each, like the poller)."""
    written = []
    for k in range(0, seconds, every_s):
        t_ms = to_ms(start) + k * 1000
        if skip is not None and k in skip:
            continue
        v = round(rng.uniform(2.0, 8.0), 3)
        assert storage.write_rows([Row(CH, "C", t_ms, v)])
        written.append((t_ms, v))
    return written


def _hand(rows: list[tuple[int, float]], width_ms: int) -> dict[int, tuple[float, float, float]]:
    buckets: dict[int, list[float]] = defaultdict(list)
    for t, v in rows:
        buckets[t // width_ms * width_ms].append(v)
    return {t: (min(vs), sum(vs) / len(vs), max(vs)) for t, vs in buckets.items()}


def test_aggregates_equal_a_hand_computation(storage: SqliteStorage, clock: ManualClock):
    rng = random.Random(7)
    # 2.5 h of readings every 7 s (buckets hold different counts, so a plain mean of minute
    # means would be wrong for the hour), with a 10-minute hole at 01:20.
    rows = _feed(storage, T0, 9000, 7, rng, skip=range(4800, 5400))
    clock.advance(9000 + 120)
    storage.maintain(clock.now())

    minutes = storage.history(CH, T0, clock.now(), "1m").points
    want_m = _hand(rows, MINUTE_MS)
    got_m = {p[0]: (p[1], p[2], p[3]) for p in minutes if p[2] is not None}
    assert got_m.keys() == want_m.keys()
    for t, (lo, mean, hi) in want_m.items():
        assert got_m[t] == (lo, pytest.approx(mean, abs=1e-9), hi)
    # The hole is one gap point, where the first missing minute starts.
    gaps = [p[0] for p in minutes if p[2] is None]
    assert gaps == [to_ms(T0) + 80 * MINUTE_MS]

    hours = storage.history(CH, T0, clock.now(), "1h").points
    want_h = _hand(rows, HOUR_MS)
    assert [p[0] for p in hours] == sorted(want_h)
    for p in hours:
        lo, mean, hi = want_h[p[0]]
        assert (p[1], p[3]) == (lo, hi)
        assert p[2] == pytest.approx(mean, abs=1e-9)


def test_aggregate_history_includes_the_not_yet_aggregated_tail(storage: SqliteStorage,
                                                                 clock: ManualClock):
    rng = random.Random(3)
    rows = _feed(storage, T0, 600, 2, rng)  # 10 minutes
    clock.advance(600)
    storage.maintain(clock.now())  # closes minutes up to now - 60 s: 9 minutes aggregated
    rows += _feed(storage, clock.now(), 120, 2, rng)  # 2 more minutes, only raw
    clock.advance(120)
    got = storage.history(CH, T0, clock.now(), "1m").points
    want = _hand(rows, MINUTE_MS)
    assert [p[0] for p in got] == sorted(want)
    assert [p[3] for p in got] == [want[t][2] for t in sorted(want)]


def test_auto_step_picks_by_span(storage: SqliteStorage, clock: ManualClock):
    storage.write_rows([Row(CH, "C", to_ms(T0), 5.0)])
    clock.advance(40 * 86400)
    now = clock.now()
    assert storage.resolve_step(now - timedelta(hours=1), now, "auto") == "raw"
    assert storage.resolve_step(now - timedelta(days=2), now, "auto") == "1m"
    assert storage.resolve_step(now - timedelta(days=30), now, "auto") == "1h"
    # An hour long ago, past raw retention: not raw.
    assert storage.resolve_step(T0, T0 + timedelta(hours=1), "auto") == "1m"
    with pytest.raises(ValueError, match="step"):
        storage.resolve_step(T0, now, "5m")
    with pytest.raises(KeyError):
        storage.history("nope.nothing", T0, now, "raw")
    with pytest.raises(ValueError, match="to: must be later"):
        storage.history(CH, now, T0, "raw")


def test_retention_deletes_old_rows_but_keeps_aggregates(tmp_path: Path, clock: ManualClock):
    s = SqliteStorage(tmp_path / "site.db", clock, raw_days=2, minute_days=5, hour_days=9)
    try:
        rng = random.Random(1)
        day0 = _feed(s, T0, 3600, 10, rng)  # one hour on day 0
        clock.advance(3 * 86400)  # day 3: raw of day 0 is past 2 days
        day3 = _feed(s, clock.now(), 600, 10, rng)
        clock.advance(600 + 120)
        s.maintain(clock.now())
        raw = s.history(CH, T0, clock.now(), "raw").points
        assert [p[0] for p in raw] == [t for t, _ in day3]
        minutes = [p for p in s.history(CH, T0, clock.now(), "1m").points if p[2] is not None]
        assert {p[0] for p in minutes} == set(_hand(day0 + day3, MINUTE_MS))

        clock.advance(3 * 86400)  # day 6: day-0 minutes are past 5 days, hours stay
        s.maintain(clock.now())
        assert s.resolve_step(T0, T0 + timedelta(hours=1), "auto") == "1h"
        assert s.resolve_step(clock.now() - timedelta(hours=4), clock.now(), "auto") == "1m"
        hours = s.history(CH, T0, clock.now(), "1h").points
        assert [p[0] for p in hours if p[2] is not None][0] == to_ms(T0)
        minutes = [p for p in s.history(CH, T0, clock.now(), "1m").points if p[2] is not None]
        assert min(p[0] for p in minutes) >= to_ms(T0) + 3 * DAY_MS

        clock.advance(4 * 86400)  # day 10: even the hours of day 0 are gone
        s.maintain(clock.now())
        hours = s.history(CH, T0, clock.now(), "1h").points
        assert hours and min(p[0] for p in hours) >= to_ms(T0) + 3 * DAY_MS
    finally:
        s.close()


def test_data_survives_reopening(tmp_path: Path, clock: ManualClock):
    s = SqliteStorage(tmp_path / "site.db", clock)
    s.write_rows([Row(CH, "C", to_ms(T0), 4.5), Row("fridge1.ambient_c", "C", to_ms(T0), 21.0)])
    s.close()
    s = SqliteStorage(tmp_path / "site.db", clock)
    s.write_rows([Row(CH, "C", to_ms(T0) + 2000, 4.6)])
    assert [p[2] for p in s.history(CH, T0, T0 + timedelta(minutes=1), "raw").points] == [
        4.5, 4.6]
    assert [c["channel"] for c in s.channels()] == ["fridge1.ambient_c", CH]
    s.close()


def test_events_are_stored(storage: SqliteStorage, clock: ManualClock):
    eid = storage.add_event(clock.now(), "fridge_heat", severity="warning",
                            text_en="Fridge too warm", text_nl="Koelkast te warm",
                            data={"temp_c": 9.1})
    got = storage.events(T0, T0 + timedelta(seconds=1))
    assert got == [{"id": eid, "at": T0.isoformat(), "code": "fridge_heat",
                    "severity": "warning", "text_en": "Fridge too warm",
                    "text_nl": "Koelkast te warm", "data": {"temp_c": 9.1}}]


def test_full_disk_is_reported_polling_continues_and_nothing_pending_is_lost(
        storage: SqliteStorage, clock: ManualClock, caplog: pytest.LogCaptureFixture):
    state = make_state()
    state.subscribe(storage.on_cycle)
    written = []

    def cycle() -> None:
        at = clock.now()
        v = len(written) / 100
        put(state, "fridge_temp_c", v, at)
        state.notify(at)  # must never raise
        written.append((to_ms(at), v))
        clock.advance(2)

    cycle()
    pages = storage.connection.execute("PRAGMA page_count").fetchone()[0]
    storage.set_size_limit_pages(pages)
    caplog.set_level(logging.DEBUG, logger="edge_server.storage.sqlite")
    for _ in range(3000):  # until the cap is hit, then a few more cycles
        cycle()
        if storage.health.disk_full and storage.health.rows_pending >= 5:
            break
    h = storage.health
    assert h.disk_full and not h.ok
    assert "full" in (h.last_error or "")
    full_logs = [r for r in caplog.records if r.levelno == logging.ERROR and "FULL" in r.message]
    assert len(full_logs) == 1  # logged once clearly, repeats at DEBUG
    assert h.rows_dropped == 0

    storage.set_size_limit_pages(1_000_000)  # space is free again
    cycle()
    assert storage.health.ok and not storage.health.disk_full
    assert storage.health.rows_pending == 0
    got = storage.history(CH, T0, clock.now(), "raw").points
    assert [(p[0], p[2]) for p in got] == written


def test_pending_rows_are_bounded_while_the_disk_stays_full(tmp_path: Path, clock: ManualClock):
    s = SqliteStorage(tmp_path / "site.db", clock, max_pending_rows=10)
    try:
        s.write_rows([Row(CH, "C", 0, 1.0)])
        s.set_size_limit_pages(s.connection.execute("PRAGMA page_count").fetchone()[0])
        rows = [Row(CH, "C", i * 1000, 2.0) for i in range(1, 4000)]
        for i in range(0, len(rows), 100):
            s.write_rows(rows[i:i + 100])
        assert s.health.disk_full
        assert s.health.rows_pending == 10
        assert s.health.rows_dropped + s.health.rows_pending + (
            s.health.rows_written - 1) == len(rows)
    finally:
        s.close()


def test_a_non_finite_good_value_is_stored_as_a_gap(storage: SqliteStorage, clock: ManualClock):
    state = make_state()
    put(state, "fridge_temp_c", 5.0, clock.now())
    storage.on_cycle(state, clock.now())
    clock.advance(2)
    put(state, "fridge_temp_c", float("nan"), clock.now())
    storage.on_cycle(state, clock.now())
    points = storage.history(CH, T0, clock.now() + timedelta(seconds=1), "raw").points
    assert [p[2] for p in points] == [5.0, None]


@pytest.mark.parametrize(("step", "points"), [("raw", 50), ("1m", 40), ("1h", 3), ("auto", 7),
                                              ("1m", 600)])
def test_history_buckets_for_a_screen_equal_a_brute_force_over_the_raw_rows(
    storage: SqliteStorage, clock: ManualClock, step: str, points: int
) -> None:
    """points=N: at most N buckets on one grid, each the min, count-weighted mean and max of
    the raw readings in it (through the minute and hour tables and their unaggregated tail);
    an empty bucket is a gap."""
    rng = random.Random(11)
    rows = _feed(storage, T0, 9000, 7, rng, skip=range(4800, 5400))
    clock.advance(9000 + 120)
    storage.maintain(clock.now())  # most minutes (and hours) aggregated, the tail still raw
    rows += _feed(storage, clock.now(), 300, 5, rng)
    clock.advance(300)
    start, end = T0 + timedelta(seconds=13), clock.now()

    h = storage.history(CH, start, end, step, points)
    got = h.points
    assert 2 <= len(got) <= points
    width = got[1][0] - got[0][0]
    assert all(b[0] - a[0] == width for a, b in zip(got, got[1:], strict=False))
    assert h.step == f"{width // 1000}s" if width >= 1000 else f"{width}ms"
    a, b = to_ms(start), to_ms(end)
    used = storage.resolve_step(start, end, step)
    if used != "raw":  # buckets of whole source steps; the source's own step sets the edges
        source = MINUTE_MS if used == "1m" else HOUR_MS
        assert width % source == 0
        a = a // source * source  # the aggregate holding `start` is counted whole
    want = _hand([(t, v) for t, v in rows if a <= t < b], width)
    for t, lo, mean, hi in got:
        if t in want:
            assert (lo, hi) == (want[t][0], want[t][2]), t
            assert mean == pytest.approx(want[t][1], abs=1e-9)
        else:
            assert (lo, mean, hi) == (None, None, None), t
    assert set(want) <= {p[0] for p in got}
    with pytest.raises(ValueError, match="points"):
        storage.history(CH, start, end, step, 1)
