"""Thinning in the SQLite store (real SQLite files): deadband + heartbeat per channel; states,
faults and gaps always; 1-minute / 1-hour aggregates equal to a brute force over every poll."""

from __future__ import annotations

import functools
import json
import math
import os
import random
import signal
import sqlite3
import textwrap
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge_server.clock import ManualClock
from edge_server.config import ConfigError, StorageSection, parse_config
from edge_server.state import Quality, Reading, SiteState
from edge_server.storage.sqlite import MINUTE_MS, SqliteStorage, to_ms
from edge_server.storage.thinning import Thinning
from tests.test_storage import make_state
from tests.test_storage_crash import spawn_writer

T0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
POLL = timedelta(seconds=2)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def storage(tmp_path: Path, clock: ManualClock) -> Iterator[SqliteStorage]:
    s = SqliteStorage(tmp_path / "site.db", clock, thinning=Thinning(heartbeat_s=300.0))
    yield s
    s.close()


def poll(storage: SqliteStorage, clock: ManualClock, state: SiteState,
         values: dict[str, float | bool | None]) -> None:
    now = clock.now()
    for name, value in values.items():
        q = Quality.GOOD if value is not None else Quality.UNAVAILABLE
        state.put(Reading("fridge1", name, value, "", now, q))
    storage.on_cycle(state, now)
    clock.advance(POLL.total_seconds())


def stored(storage: SqliteStorage, name: str) -> list[tuple[int, float | None]]:
    return storage.connection.execute(
        "SELECT r.t, r.value FROM readings r JOIN channels c ON c.id = r.channel_id "
        "WHERE c.name = ? ORDER BY r.t", (f"fridge1.{name}",)).fetchall()


def test_a_flat_signal_stores_one_row_per_heartbeat(
    storage: SqliteStorage, clock: ManualClock
) -> None:
    state = make_state()
    for k in range(1800):  # one hour every 2 s, noise well inside the 0.1 °C deadband
        poll(storage, clock, state, {"fridge_temp_c": 5.0 + (0.03 if k % 2 else -0.03)})
    rows = stored(storage, "fridge_temp_c")
    assert len(rows) == 3600 // 300  # t = 0, 300, ..., 3300 s
    assert [t - to_ms(T0) for t, _v in rows] == [k * 300_000 for k in range(12)]


def test_a_step_is_stored_at_once_with_the_poll_before_it(
    storage: SqliteStorage, clock: ManualClock
) -> None:
    state = make_state()
    for _ in range(10):
        poll(storage, clock, state, {"fridge_temp_c": 5.0})
    before = clock.now() - POLL
    step_at = clock.now()
    poll(storage, clock, state, {"fridge_temp_c": 9.0})
    assert stored(storage, "fridge_temp_c") == [
        (to_ms(T0), 5.0), (to_ms(before), 5.0), (to_ms(step_at), 9.0)]
    # A move of exactly one deadband counts (with the poll before it); less does not.
    poll(storage, clock, state, {"fridge_temp_c": 9.05})
    assert [v for _t, v in stored(storage, "fridge_temp_c")][-1] == 9.0
    poll(storage, clock, state, {"fridge_temp_c": 9.1})
    assert [v for _t, v in stored(storage, "fridge_temp_c")][-3:] == [9.0, 9.05, 9.1]


def test_states_faults_and_gaps_are_always_stored(
    storage: SqliteStorage, clock: ManualClock
) -> None:
    state = make_state()
    door = [False, False, True, True, False]
    faults = [0, 0, 4, 4, 0]  # fridge_faults: fault bits, every change stored
    for k in range(5):
        poll(storage, clock, state, {"door_open": door[k], "fridge_faults": faults[k],
                                     "fridge_temp_c": 5.0})
    assert [v for _t, v in stored(storage, "door_open")] == [0.0, 1.0, 0.0]
    assert [v for _t, v in stored(storage, "fridge_faults")] == [0.0, 4.0, 0.0]
    poll(storage, clock, state, {"fridge_temp_c": None})  # probe unavailable: a gap row
    poll(storage, clock, state, {"fridge_temp_c": None})  # once per outage
    poll(storage, clock, state, {"fridge_temp_c": 5.0})  # back: stored at once
    assert [v for _t, v in stored(storage, "fridge_temp_c")] == [5.0, None, 5.0]


def test_aggregates_equal_a_brute_force_over_every_poll(
    storage: SqliteStorage, clock: ManualClock
) -> None:
    state = make_state()
    rng = random.Random(7)
    polls: list[tuple[int, float]] = []
    value = 5.0
    for k in range(2 * 1800 + 150):  # two hours and a bit: closed hours and an open tail
        value += rng.gauss(0, 0.02)
        if k % 400 == 0:
            value += 1.5  # a door opening
        t = to_ms(clock.now())
        if k % 97 == 13:
            poll(storage, clock, state, {"fridge_temp_c": None})
            continue
        polls.append((t, round(value, 2)))
        poll(storage, clock, state, {"fridge_temp_c": round(value, 2)})
    assert len(stored(storage, "fridge_temp_c")) < len(polls) / 3  # it did thin
    storage.maintain(clock.now())

    def brute(width: int) -> list[tuple[int, float, float, float, int]]:
        buckets: dict[int, list[float]] = {}
        for t, v in polls:
            buckets.setdefault(t // width * width, []).append(v)
        return [(b, min(vs), sum(vs) / len(vs), max(vs), len(vs))
                for b, vs in sorted(buckets.items())]

    def same(got: Sequence[Sequence[Any]], want: Sequence[Sequence[Any]]) -> None:
        assert len(got) == len(want)
        for g, w in zip(got, want, strict=True):
            assert g[0] == w[0] and g[1] == w[1] and g[3] == w[3]
            assert math.isclose(g[2], w[2], rel_tol=1e-12)
            if len(g) > 4:
                assert g[4] == w[4]

    conn = storage.connection
    same(conn.execute("SELECT t, min, mean, max, count FROM agg_1m ORDER BY t").fetchall(),
         [b for b in brute(MINUTE_MS) if b[0] + MINUTE_MS <= to_ms(clock.now()) - 60_000])
    same(conn.execute("SELECT t, min, mean, max, count FROM agg_1h ORDER BY t").fetchall(),
         brute(3_600_000)[:2])
    # The history API: closed minutes from agg_1m, the open tail from the in-memory counts.
    end = clock.now() + timedelta(minutes=1)
    h = storage.history("fridge1.fridge_temp_c", T0, end, "1m")
    same([p for p in h.points if p[1] is not None], brute(MINUTE_MS))
    h = storage.history("fridge1.fridge_temp_c", T0, end, "1h")
    same(h.points, brute(3_600_000))


def test_thinning_off_stores_every_poll(tmp_path: Path, clock: ManualClock) -> None:
    s = SqliteStorage(tmp_path / "site.db", clock)  # thinning=None
    try:
        state = make_state()
        for _ in range(20):
            poll(s, clock, state, {"fridge_temp_c": 5.0})
        assert len(stored(s, "fridge_temp_c")) == 20
    finally:
        s.close()


def test_deadband_comes_from_config_then_defaults_then_the_register_map() -> None:
    thin = Thinning.from_settings(StorageSection(deadband={"fridge_temp_c": 0.25}))
    assert thin is not None
    assert thin.deadband("fridge1.fridge_temp_c") == 0.25  # config
    assert thin.deadband("power1.battery_v") == 0.05  # built-in default
    assert thin.deadband("power1.run_hours_h") == 0.01  # register map resolution
    assert thin.deadband("fridge1.door_open") == 0.0  # a state: every change
    assert thin.deadband("entrance1.visitors_in") == 0.0  # a counter: every change
    assert Thinning.from_settings(StorageSection(thinning=False)) is None


@pytest.mark.parametrize(("storage_toml", "field"), [
    ("deadband = { door_open = 1 }", "storage.deadband.door_open"),
    ("deadband = { fridge_tmp_c = 0.1 }", "storage.deadband.fridge_tmp_c"),
    ("heartbeat_s = 900", "storage.heartbeat_s"),
])
def test_config_errors_name_the_field(storage_toml: str, field: str) -> None:
    text = (
        '[site]\nid = "nsp-test"\n[storage]\n' + storage_toml + '\n'
        '[[buses]]\nname = "b"\nkind = "tcp"\nhost = "127.0.0.1"\n'
        '[[nodes]]\nname = "fridge1"\nbus = "b"\nunit = 2\nroles = ["fridge"]\n'
    )
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        parse_config(text)


WRITER = textwrap.dedent(
    """
    import sys
    from datetime import UTC, datetime
    from edge_server.clock import ManualClock
    from edge_server.state import NodeStatus, Quality, Reading, SiteState
    from edge_server.storage.sqlite import SqliteStorage
    from edge_server.storage.thinning import Thinning

    clock = ManualClock(datetime(2026, 3, 1, tzinfo=UTC))
    storage = SqliteStorage(sys.argv[1], clock, thinning=Thinning(300.0), commit_every_s=30.0)
    state = SiteState("crash")
    state.add_node(NodeStatus("fridge1", 2, "bus0", ("fridge",), online=True))
    k = 0
    while True:
        k += 1
        now = clock.now()
        # beyond the deadband every poll: every poll is a row to store
        state.put(Reading("fridge1", "fridge_temp_c", 5.0 + k % 2, "", now, Quality.GOOD))
        storage.on_cycle(state, now)
        if k % 7 == 0:  # an event commits at once, whatever waits in memory
            storage.add_event(now, "TEST", data={"k": k})
        print(k, int(now.timestamp() * 1000), flush=True)  # after on_cycle / add_event returned
        clock.advance(2)
    """
)


@pytest.mark.parametrize("kill_after", [40, 133, 301])
def test_kill_9_loses_at_most_the_commit_interval_and_no_event(
    tmp_path: Path, kill_after: int
) -> None:
    proc, db = spawn_writer(tmp_path, WRITER)
    k, t_ms = 0, 0
    with proc:  # closes the pipe and reaps the process
        try:
            assert proc.stdout is not None
            while k < kill_after:
                line = proc.stdout.readline()
                assert line, "the writer stopped"
                k, t_ms = map(int, line.split())
            os.kill(proc.pid, signal.SIGKILL)
            rest = proc.stdout.read()
        finally:
            proc.kill()
    for line in rest.splitlines(keepends=True):  # what it reported before it died
        if line.endswith("\n"):  # not a line cut short by the kill
            k, t_ms = map(int, line.split())
    conn = sqlite3.connect(db)
    try:
        newest = conn.execute("SELECT max(t) FROM readings").fetchone()[0]
        events = [json.loads(d)["k"] for (d,) in conn.execute("SELECT data FROM events")]
        assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    finally:
        conn.close()
    assert newest >= t_ms - 30_000  # at most 30 s of readings lost
    assert set(range(7, k + 1, 7)) <= set(events)  # every event reported is there


def test_readings_wait_up_to_the_commit_interval_events_do_not(
    tmp_path: Path, clock: ManualClock
) -> None:
    s = SqliteStorage(tmp_path / "site.db", clock, thinning=Thinning(300.0), commit_every_s=30.0)
    other = sqlite3.connect(tmp_path / "site.db")  # what a power cut would leave: committed rows
    try:
        state = make_state()

        def committed() -> int:
            return int(other.execute("SELECT count(*) FROM readings").fetchone()[0])

        for k in range(15):  # 0 .. 28 s: the first cycle commits, the rest wait
            poll(s, clock, state, {"fridge_temp_c": 5.0 + k % 2})
        assert committed() == 1
        s.add_event(clock.now(), "TEST")
        assert other.execute("SELECT count(*) FROM events").fetchone()[0] == 1
        assert committed() == 1
        poll(s, clock, state, {"fridge_temp_c": 9.0})  # 30 s: one commit of all 15
        assert committed() == 16
        poll(s, clock, state, {"fridge_temp_c": 5.0})
        s.close()  # a clean stop commits what waits
        assert committed() == 17
    finally:
        other.close()
        s.close()


@pytest.mark.parametrize("thinning", [False, True])
def test_a_restart_raises_the_same_alerts_with_thinning_on_and_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, thinning: bool
) -> None:
    """The rules replay the stored rows after a restart: with thinning they are one row per
    heartbeat (300 s, under max_sample_gap_s), and FRIDGE_HIGH (10 h cumulative) is raised at
    the same moment as on an edge that never restarted and as with thinning off."""
    from tests import test_rules_restore as rr

    if thinning:
        monkeypatch.setattr(rr, "SqliteStorage", functools.partial(
            SqliteStorage, thinning=Thinning(300.0), commit_every_s=30.0))
    H = 3600
    edges = rr.straight_and_restarted(tmp_path, [(9.0, 5 * H), (5.0, 2 * H), (9.0, H)],
                                      [(9.0, 5 * H)])
    raised_at = [a["raised_at"] for edge in edges for a in edge.alerts("FRIDGE_HIGH")]
    rows = [edge.conn.execute("SELECT count(*) FROM readings").fetchone()[0] for edge in edges]
    for edge in edges:
        edge.close()
    assert raised_at == [rr.at(ManualClock().now(), 12 * H)] * 2
    polls = 2 * 13 * H // rr.STEP_S  # two channels, one poll a minute, 13 h
    assert (rows[0] < polls / 4) if thinning else (rows[0] >= polls)  # one per 5 polls
