"""Restart of the edge: the rules rebuild their windows, runs and MKT from the stored readings.

Each `Edge` is one run of the edge service on the same site.db: the real SqliteStorage stores
every poll cycle, the real RulesEngine judges it, one ManualClock moves on (no sleeps). A restart
is closing one Edge and opening the next on the same file; restore() is what the RulesComponent
calls at start. Samples every 60 s; the fridge limit is the default WHO heat alarm: > 8 °C for
10 h within 24 h (cumulative), max_sample_gap_s 900 s.
"""

from __future__ import annotations

import logging
import sqlite3
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from edge_server.clock import ManualClock
from edge_server.rules.component import RulesEngine
from edge_server.rules.mkt import mkt_c
from edge_server.rules.settings import FuelSettings, RulesSettings
from edge_server.state import NodeStatus, Quality, Reading, SiteState
from edge_server.storage.db import open_db
from edge_server.storage.sqlite import SqliteStorage

H = 3600
STEP_S = 60
FUEL = FuelSettings(tank_capacity_l=1000)


class Edge:
    """One run of the edge (storage + rules) on `db`; restore=False is the old behaviour."""

    def __init__(self, db: Path, clock: ManualClock, *, restore: bool = True) -> None:
        self.clock = clock
        self.state = SiteState("test-site")
        self.state.add_node(NodeStatus("fridge1", 2, "bus0", ("fridge",), online=True))
        self.storage = SqliteStorage(db, clock)
        self.conn = open_db(db)
        self.engine = RulesEngine(RulesSettings(), FUEL, conn=self.conn, uplink_up=lambda: True)
        self.messages: list[dict[str, object]] = []
        self.engine.add_sink(self.messages.append)
        self.report = (self.engine.restore(self.state.nodes.values(), clock.now())
                       if restore else None)
        self.state.subscribe(self.storage.on_cycle)
        self.state.subscribe(self.engine.on_cycle)

    def run(self, temp_c: float | None, seconds: float) -> None:
        """Hold temp_c (None: probe value unavailable) for `seconds`, a poll cycle per minute."""
        for _ in range(round(seconds / STEP_S)):
            now = self.clock.now()
            self.state.nodes["fridge1"].last_ok = now
            quality = Quality.GOOD if temp_c is not None else Quality.UNAVAILABLE
            self.state.put(Reading("fridge1", "fridge_temp_c", temp_c, "°C", now, quality))
            self.state.put(Reading("fridge1", "fridge_faults", 0, "", now, Quality.GOOD))
            self.state.notify(now)
            self.clock.advance(STEP_S)

    def alerts(self, code: str) -> list[dict[str, object]]:
        """The uplink `alert` bodies of `code`, in order."""
        out: list[dict[str, object]] = []
        for m in self.messages:
            body = m["body"]
            assert isinstance(body, dict)
            if m["kind"] == "alert" and body["code"] == code:
                out.append(body)
        return out

    def close(self) -> None:
        self.storage.close()
        self.conn.close()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def at(clock_start: datetime, seconds: float) -> str:
    return (clock_start + timedelta(seconds=seconds)).isoformat()


def test_cumulative_window_survives_a_restart(tmp_path: Path, clock: ManualClock) -> None:
    t0 = clock.now()
    first = Edge(tmp_path / "site.db", clock)
    first.run(9.0, 6 * H)
    first.close()
    second = Edge(tmp_path / "site.db", clock)  # restart at 6 h, the fridge still warm
    assert second.report is not None and second.report.rows >= 2 * 6 * 60
    second.run(9.0, 5 * H)
    assert first.alerts("FRIDGE_HIGH") == []
    raised = second.alerts("FRIDGE_HIGH")
    # 6 h before + 4 h after the restart = 10 h: raised at 10 h, exactly once
    assert [(a["state"], a["raised_at"]) for a in raised] == [("raised", at(t0, 10 * H))]
    second.close()


def test_without_restore_the_window_starts_empty(tmp_path: Path, clock: ManualClock) -> None:
    """The behaviour before the restore: 10 h more after the restart, 6 h late."""
    t0 = clock.now()
    first = Edge(tmp_path / "site.db", clock)
    first.run(9.0, 6 * H)
    first.close()
    second = Edge(tmp_path / "site.db", clock, restore=False)
    second.run(9.0, 11 * H)
    assert [a["raised_at"] for a in second.alerts("FRIDGE_HIGH")] == [at(t0, 16 * H)]
    second.close()


def warm_for_12_hours_then_fine(db: Path, clock: ManualClock) -> dict[str, object]:
    """FRIDGE_HIGH raised at 10 h, warm until 12 h, fine for 1 h; the edge stops at 13 h."""
    t0 = clock.now()
    first = Edge(db, clock)
    first.run(9.0, 12 * H)
    first.run(5.0, H)
    (raised,) = first.alerts("FRIDGE_HIGH")
    assert raised["raised_at"] == at(t0, 10 * H)
    first.close()
    return raised


def test_open_alert_is_the_same_alert_and_clears_once_when_the_window_slides(
    tmp_path: Path, clock: ManualClock
) -> None:
    t0 = clock.now()
    raised = warm_for_12_hours_then_fine(tmp_path / "site.db", clock)
    second = Edge(tmp_path / "site.db", clock)  # restart at 13 h
    second.run(5.0, 14 * H)
    # 12 h above 8 °C from 0 h: within the last 24 h that falls below 10 h just after 26 h
    # (the old seed -- 10 h ending at the raise -- cleared it at 24 h, 2 h too early).
    assert [(a["id"], a["state"], a["cleared_at"]) for a in second.alerts("FRIDGE_HIGH")] == [
        (raised["id"], "cleared", at(t0, 26 * H + STEP_S))]
    assert second.engine.store.count_open() == 0
    rows = second.conn.execute("SELECT count(*) FROM alerts WHERE code = 'FRIDGE_HIGH'")
    assert rows.fetchone()[0] == 1
    second.close()


def test_open_alert_whose_window_slid_out_during_the_downtime_clears_at_the_first_cycle(
    tmp_path: Path, clock: ManualClock
) -> None:
    t0 = clock.now()
    warm_for_12_hours_then_fine(tmp_path / "site.db", clock)
    clock.advance(20 * H)  # edge down until 33 h: the window [9 h, 33 h] holds 3 h above
    second = Edge(tmp_path / "site.db", clock)
    second.run(5.0, H)
    assert [(a["state"], a["cleared_at"]) for a in second.alerts("FRIDGE_HIGH")] == [
        ("cleared", at(t0, 33 * H))]
    second.close()


@pytest.mark.parametrize("gap_s", [900, 901, 3 * H], ids=["gap=max_gap", "max_gap+1", "3h"])
def test_downtime_gap_counts_only_up_to_max_sample_gap(
    tmp_path: Path, clock: ManualClock, gap_s: int
) -> None:
    """Docs/rules.md: the older sample holds for at most max_sample_gap_s (900 s); a longer
    gap is unknown time, neither beyond nor in range. The same at the restart (the gap between
    the last stored and the first live sample) and inside the stored history (replayed)."""
    t0 = clock.now()
    first = Edge(tmp_path / "site.db", clock)
    first.run(9.0, 3 * H)  # last sample at 3 h - 60 s
    first.close()
    clock.advance(gap_s - STEP_S)  # edge down: gap_s between two samples
    second = Edge(tmp_path / "site.db", clock)  # the gap is at its restart
    second.run(9.0, 3 * H)
    second.close()
    third = Edge(tmp_path / "site.db", clock)  # the gap is inside the replayed history
    third.run(9.0, 9 * H)
    expected = 10 * H + (gap_s if gap_s > 900 else 0)
    raised = second.alerts("FRIDGE_HIGH") + third.alerts("FRIDGE_HIGH")
    assert [a["raised_at"] for a in raised] == [at(t0, expected)]
    third.close()


Spell = tuple[float | None, float]  # (temperature or None, seconds)


def straight_and_restarted(tmp_path: Path, before: list[Spell], after: list[Spell]) -> list[Edge]:
    """The same readings on two databases: straight through, and with a restart between
    `before` and `after`. Returns the two last Edges, still open."""
    edges: list[Edge] = []
    for restart in (False, True):
        clock = ManualClock()
        db = tmp_path / f"site-{restart}.db"
        edge = Edge(db, clock)
        for temp_c, seconds in before:
            edge.run(temp_c, seconds)
        if restart:
            edge.close()
            edge = Edge(db, clock)
        for temp_c, seconds in after:
            edge.run(temp_c, seconds)
        edges.append(edge)
    return edges


def test_unknown_stored_values_count_for_nothing_as_live(tmp_path: Path) -> None:
    """A probe value unavailable for 2 h (stored as one gap row): replayed as unknown time,
    the same raise time as an edge that never restarted."""
    edges = straight_and_restarted(tmp_path, [(9.0, 5 * H), (None, 2 * H), (9.0, H)],
                                   [(9.0, 6 * H)])
    raised_at = [a["raised_at"] for edge in edges for a in edge.alerts("FRIDGE_HIGH")]
    for edge in edges:
        edge.close()
    # 5 h before the gap (the last warm sample holds until the unknown one) + 5 h after it
    assert raised_at == [at(ManualClock().now(), 12 * H)] * 2


def test_mkt_after_a_restart_equals_mkt_without_one(tmp_path: Path) -> None:
    """docs/sources.md vector: 18 h at 5 °C + 6 h at 14 °C -> 8.29 °C, FRIDGE_MKT raised."""
    edges = straight_and_restarted(tmp_path, [(5.0, 18 * H), (14.0, 2 * H)],
                                   [(14.0, 4 * H + 2 * STEP_S)])
    results = []
    for edge in edges:
        value = edge.engine.ruleset.obs.mkt["fridge1"].value()
        assert value is not None
        results.append((value, [(a["state"], a["raised_at"]) for a in edge.alerts("FRIDGE_MKT")]))
        edge.close()
    (plain, plain_alerts), (restored, restored_alerts) = results
    assert restored == pytest.approx(plain, abs=1e-9)
    assert round(restored, 2) == round(mkt_c([(18, 5.0), (6, 14.0)]), 2) == 8.29
    assert restored_alerts == plain_alerts and len(plain_alerts) == 1


def test_brand_new_database_starts_fine(tmp_path: Path, clock: ManualClock) -> None:
    conn = open_db(tmp_path / "site.db")  # not even the storage tables
    engine = RulesEngine(RulesSettings(), FUEL, conn=conn)
    nodes = [NodeStatus("fridge1", 2, "bus0", ("fridge",), online=True)]
    report = engine.restore(nodes, clock.now())
    assert report is not None and report.rows == 0 and report.oldest is None
    conn.close()
    edge = Edge(tmp_path / "empty.db", clock)  # storage tables, no rows
    assert edge.report is not None and edge.report.rows == 0
    edge.run(9.0, 10 * H + STEP_S)
    assert len(edge.alerts("FRIDGE_HIGH")) == 1
    edge.close()


@pytest.mark.parametrize("damage", [
    "UPDATE readings SET value = 'garbage' WHERE t = (SELECT max(t) FROM readings)",
    "DROP TABLE readings",
], ids=["a value that is not a number", "readings table of another shape"])
def test_unreadable_history_is_logged_and_the_rules_run_empty(
    tmp_path: Path, clock: ManualClock, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    first = Edge(tmp_path / "site.db", clock)
    first.run(9.0, 6 * H)
    first.close()
    conn = sqlite3.connect(tmp_path / "site.db")
    if damage.startswith("DROP"):
        conn.executescript("DROP TABLE readings; CREATE TABLE readings (x TEXT);")
    else:
        conn.execute(damage)
    conn.commit()
    conn.close()
    with caplog.at_level(logging.ERROR, logger="edge_server.rules.component"):
        second = Edge(tmp_path / "site.db", clock)
    assert second.report is None
    assert any("could not rebuild" in r.getMessage() for r in caplog.records)
    assert second.engine.ruleset.evaluator.tracks == {}
    second.engine.evaluate(second.state, clock.now())  # and the rules still run
    second.close()


async def test_the_service_component_restores_before_it_joins_the_poll_cycles(
    tmp_path: Path,
) -> None:
    """The real RulesComponent on the example site: the stored 6 h above 8 °C of the fridge
    node are in the FRIDGE_HIGH window once start() returns (an empty-ish history: well
    within RESTORE_WAIT_S), and the engine listens to the poll cycles."""
    import tomllib

    from edge_server.config import SiteConfig
    from edge_server.service import Part, Service
    from edge_server.storage.sqlite import Row, to_ms
    from tests.conftest import ROOT

    clock = ManualClock()
    now_ms = to_ms(clock.now())
    storage = SqliteStorage(tmp_path / "edge" / "site.db", clock)
    assert storage.write_rows([Row(ch, "", now_ms - k * 60_000, v) for k in range(1, 6 * 60 + 1)
                               for ch, v in (("fridge.fridge_temp_c", 9.0),
                                             ("fridge.fridge_faults", 0.0))])
    storage.close()
    raw = tomllib.loads((ROOT / "examples" / "site.toml").read_text())
    raw["storage"] = {"data_dir": str(tmp_path / "edge")}
    service = Service(SiteConfig.model_validate(raw), clock,
                      parts=Part.STORAGE | Part.RULES)
    await service.start(run_poller=False)
    try:
        engine = service.rules.engine
        assert engine is not None
        track = engine.ruleset.evaluator.tracks[("FRIDGE_HIGH", "fridge.fridge_temp_c")]
        assert track.cumulative_s(clock.now().timestamp(), 24 * H) == 6 * H - STEP_S
        assert engine.on_cycle in service.state._listeners
    finally:
        await service.stop()
