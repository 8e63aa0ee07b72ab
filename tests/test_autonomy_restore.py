"""Restart of the edge: the fuel tracker (learned rate, refuels, leak watch) is rebuilt from
the stored readings through FuelTracker.update, as live (edge_server/rules/restore.py).

Each `Edge` is one run of the edge service on a site.db: the real SqliteStorage stores every
poll cycle, the real RulesEngine judges it, one ManualClock moves on (no sleeps). A restart is
closing one Edge and opening the next on the same file with restore() as the RulesComponent
calls it. One power node, a cycle every 60 s; the chart prior is 5 l/h, the true burn 3.4 l/h
(docs/sources.md: a 20 kW set at 50 % load); learn_window_h 6, leak 5 l within 60 min.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from edge_server.clock import ManualClock
from edge_server.rules import restore
from edge_server.rules.autonomy import AutonomyEstimate
from edge_server.rules.component import RulesEngine
from edge_server.rules.settings import FuelSettings, RulesSettings
from edge_server.state import NodeStatus, Quality, Reading, SiteState
from edge_server.storage.db import open_db
from edge_server.storage.sqlite import SqliteStorage

H = 3600
STEP_S = 60
TRUE_LPH = 3.4
PRIOR_LPH = 5.0
FUEL = FuelSettings(tank_capacity_l=1000, consumption_chart_lph={50: PRIOR_LPH},
                    expected_load_pct=50, learn_window_h=6, leak_l=5, leak_window_min=60)


class Edge:
    """One run of the edge (storage + rules) on `db`, with a tank whose level it simulates."""

    def __init__(self, db: Path, clock: ManualClock, level_l: float, rng: random.Random) -> None:
        self.clock = clock
        self.level_l = level_l
        self.rng = rng
        self.state = SiteState("test-site")
        self.state.add_node(NodeStatus("power1", 1, "bus0", ("power",), online=True))
        self.storage = SqliteStorage(db, clock)
        self.conn = open_db(db)
        self.engine = RulesEngine(RulesSettings(), FUEL, conn=self.conn, uplink_up=lambda: True)
        self.messages: list[dict[str, object]] = []
        self.engine.add_sink(self.messages.append)
        self.report = self.engine.restore(self.state.nodes.values(), clock.now())
        self.state.subscribe(self.storage.on_cycle)
        self.state.subscribe(self.engine.on_cycle)

    def run(self, seconds: float, *, running: bool, burn_lph: float = TRUE_LPH,
            leak_lph: float = 0.0, slosh_l: float = 1.0) -> None:
        """A poll cycle per minute for `seconds`; the level falls by burn_lph while running
        and by leak_lph in any case; slosh is noise on the reading, not on the tank."""
        for _ in range(round(seconds / STEP_S)):
            now = self.clock.now()
            self.state.nodes["power1"].last_ok = now
            reading = self.level_l + self.rng.uniform(-slosh_l, slosh_l)
            for name, value in (("fuel_l", reading), ("power_faults", 0.0),
                                ("gen_running", 1.0 if running else 0.0),
                                ("mains_present", 0.0 if running else 1.0)):
                self.state.put(Reading("power1", name, value, "", now, Quality.GOOD))
            self.state.notify(now)
            self.clock.advance(STEP_S)
            self.level_l -= ((burn_lph if running else 0.0) + leak_lph) * STEP_S / H

    def estimate(self) -> AutonomyEstimate:
        est = self.engine.autonomy(self.clock.now())
        assert est is not None
        return est

    def sent(self, kind: str, code: str) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for m in self.messages:
            body = m["body"]
            assert isinstance(body, dict)
            if m["kind"] == kind and body["code"] == code:
                out.append(body)
        return out

    def close(self) -> None:
        self.storage.close()
        self.conn.close()


def restart(edge: Edge, db: Path, *, down_s: float = 0.0, running: bool = True) -> Edge:
    """Close `edge`, stay down for down_s (the generator burning meanwhile when running),
    open the next Edge on the same database, same tank."""
    edge.close()
    edge.clock.advance(down_s)
    edge.level_l -= (TRUE_LPH if running else 0.0) * down_s / H
    return Edge(db, edge.clock, edge.level_l, edge.rng)


def at(start: datetime, seconds: float) -> str:
    return (start + timedelta(seconds=seconds)).isoformat()


def test_learned_rate_survives_a_restart(tmp_path: Path) -> None:
    """20 h of running at 3.4 l/h against a 5 l/h prior: the estimate right after the
    restart is the one just before it (not the prior's), and stays with the straight run."""
    clock = ManualClock()
    first = Edge(tmp_path / "site.db", clock, 900.0, random.Random(1))
    first.run(20 * H, running=True)
    before = first.estimate()
    assert before.learned_lph == pytest.approx(TRUE_LPH, rel=0.03)
    assert before.learned_weight == 1.0
    second = restart(first, tmp_path / "site.db")
    after = second.estimate()  # right after the restore, before the first live cycle
    assert second.report is not None and second.report.fuel_from is not None
    assert after.rate_lph == pytest.approx(before.rate_lph, rel=1e-9)
    assert after.learned_weight == before.learned_weight
    assert after.hours is not None and before.hours is not None
    assert after.hours == pytest.approx(before.hours, rel=1e-9)
    prior_hours = (before.fuel_l - FUEL.unusable_l) / PRIOR_LPH  # type: ignore[operator]
    assert after.hours > 1.4 * prior_hours  # the prior would say ~32 % fewer hours
    second.run(10 * 60, running=True)
    assert second.estimate().rate_lph == pytest.approx(TRUE_LPH, rel=0.03)
    second.close()


def test_without_the_fuel_replay_the_estimate_falls_back_to_the_prior(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What the test above guards against (the behaviour before the fuel restore)."""
    clock = ManualClock()
    first = Edge(tmp_path / "site.db", clock, 900.0, random.Random(1))
    first.run(20 * H, running=True)
    first_rate = first.estimate().rate_lph
    monkeypatch.setattr(restore, "fuel_history_since_ms", lambda *args: None)
    second = restart(first, tmp_path / "site.db")
    assert second.engine.autonomy(clock.now()) is None
    second.run(10 * 60, running=True)
    est = second.estimate()
    assert est.learned_lph is None and est.rate_lph == PRIOR_LPH != pytest.approx(first_rate)
    second.close()


def straight_and_restarted(
    tmp_path: Path, before: list[dict[str, object]], after: list[dict[str, object]],
    level_l: float, *, down_s: float = 0.0,
) -> tuple[Edge, Edge, datetime]:
    """The same tank on two databases: straight through, and restarted between `before` and
    `after` (Edge.run keyword sets; a refuel is {"refuel_l": litres}). Both still open."""
    edges: list[Edge] = []
    start = ManualClock().now()
    for restarted in (False, True):
        clock = ManualClock()
        db = tmp_path / f"site-{restarted}.db"
        edge = Edge(db, clock, level_l, random.Random(7))
        for phase in before:
            play(edge, phase)
        if restarted:
            edge = restart(edge, db, down_s=down_s)
        elif down_s:  # the same time passes without samples: the poller stalled
            clock.advance(down_s)
            edge.level_l -= TRUE_LPH * down_s / H
        for phase in after:
            play(edge, phase)
        edges.append(edge)
    return edges[0], edges[1], start


def play(edge: Edge, phase: dict[str, object]) -> None:
    if "refuel_l" in phase:
        edge.level_l += float(phase["refuel_l"])  # type: ignore[arg-type]
        return
    edge.run(float(phase["s"]), running=bool(phase["running"]),  # type: ignore[arg-type]
             leak_lph=float(phase.get("leak_lph", 0.0)))  # type: ignore[arg-type]


def test_a_stored_refuel_is_recognised_as_live(tmp_path: Path) -> None:
    """+400 l while running at 7 h, restart at 10 h: the replay sees the refuel (no bogus
    negative rate), the same refuel time and rate as an edge that never restarted, and no
    second FUEL_REFUELLED event."""
    plain, restarted, t0 = straight_and_restarted(
        tmp_path, [{"s": 7 * H, "running": True}, {"refuel_l": 400.0},
                   {"s": 3 * H, "running": True}],
        [{"s": 30 * 60, "running": True}], 300.0)
    for edge in (plain, restarted):
        tracker = edge.engine.ruleset.obs.trackers["power1"]
        # the third sample above the old level confirms it (REFUEL_CONFIRM_SAMPLES)
        assert tracker.last_refuel_at is not None
        assert tracker.last_refuel_at.isoformat() == at(t0, 7 * H + 2 * STEP_S)
        assert edge.estimate().learned_lph == pytest.approx(TRUE_LPH, rel=0.05)
    assert restarted.estimate().rate_lph == pytest.approx(plain.estimate().rate_lph, rel=1e-9)
    assert restarted.sent("event", "FUEL_REFUELLED") == []  # sent once, before the restart
    assert len(plain.sent("event", "FUEL_REFUELLED")) == 1
    plain.close()
    restarted.close()


def test_a_leak_that_began_before_the_restart_raises_at_the_same_time(tmp_path: Path) -> None:
    """Generator stopped; a 6 l/h leak from 3 h; restart at 3 h 30 min (FUEL_LEAK not yet
    raised: 5 l lost in the 60-min window takes ~54 min): raised at the same minute as on an
    edge that never restarted."""
    plain, restarted, t0 = straight_and_restarted(
        tmp_path, [{"s": 3 * H, "running": False}, {"s": 30 * 60, "running": False,
                                                    "leak_lph": 6.0}],
        [{"s": 2 * H, "running": False, "leak_lph": 6.0}], 500.0)
    raised = [[(a["state"], a["raised_at"]) for a in edge.sent("alert", "FUEL_LEAK")]
              for edge in (plain, restarted)]
    assert raised[0] == raised[1] and len(raised[0]) == 1
    raised_at = datetime.fromisoformat(str(raised[0][0][1]))
    assert 3.5 * H < (raised_at - t0).total_seconds() < 4 * H
    plain.close()
    restarted.close()


def test_downtime_while_running_counts_for_nothing(tmp_path: Path) -> None:
    """The edge is down 3 h while the generator burns 10.2 l: neither 3 running hours with a
    flat level (rate too low) nor a 10.2 l drop in no running time (rate too high): the
    learned rate stays 3.4 l/h, before and after the window has moved past the gap, and is
    the same as when the poller stalled for 3 h without a restart."""
    plain, restarted, _ = straight_and_restarted(
        tmp_path, [{"s": 10 * H, "running": True}], [{"s": 3 * H, "running": True}], 900.0,
        down_s=3 * H)
    for edge in (plain, restarted):
        assert edge.estimate().learned_lph == pytest.approx(TRUE_LPH, rel=0.03)
    assert restarted.estimate().rate_lph == pytest.approx(plain.estimate().rate_lph, rel=1e-9)
    restarted.run(4 * H, running=True)  # the window (6 h of running) is past the gap
    assert restarted.estimate().learned_lph == pytest.approx(TRUE_LPH, rel=0.03)
    plain.close()
    restarted.close()


def test_empty_database_starts_with_the_prior(tmp_path: Path) -> None:
    clock = ManualClock()
    edge = Edge(tmp_path / "site.db", clock, 600.0, random.Random(3))
    assert edge.report is not None and edge.report.rows == 0
    assert edge.engine.autonomy(clock.now()) is None  # nothing known yet, as before
    edge.run(5 * 60, running=True)
    est = edge.estimate()
    assert est.learned_lph is None and est.learned_weight == 0 and est.rate_lph == PRIOR_LPH
    edge.close()


def test_fuel_history_reaches_back_to_learn_window_h_of_running_time(tmp_path: Path) -> None:
    """Running time is not wall time: 4 h running, 10 h stopped, 4 h running; the replay
    starts a max gap before the first running sample of the 6 h needed (2 h into the first
    run), not 6 h of wall time back."""
    clock = ManualClock()
    t0 = clock.now()
    edge = Edge(tmp_path / "site.db", clock, 800.0, random.Random(5))
    edge.run(4 * H, running=True)
    edge.run(10 * H, running=False)
    edge.run(4 * H, running=True)
    edge = restart(edge, tmp_path / "site.db")
    assert edge.report is not None and edge.report.fuel_from is not None
    # The 4 h of the last run (the last sample holds one step), then 2 h of the first
    expected = t0 + timedelta(seconds=2 * H - STEP_S - RulesSettings().max_sample_gap_s)
    assert edge.report.fuel_from == expected
    edge.close()


@pytest.mark.parametrize("stopped_h", [20, 30], ids=["run-within-24h", "run-before-24h"])
def test_fuel_history_is_capped_at_24_hours_of_wall_time(tmp_path: Path, stopped_h: int) -> None:
    """A 2 h run, then the generator stopped: within the 24 h cap the learned rate comes back;
    beyond it only the leak window is replayed and the prior is back (docs/rules.md)."""
    clock = ManualClock()
    t0 = clock.now()
    edge = Edge(tmp_path / "site.db", clock, 800.0, random.Random(9))
    edge.run(2 * H, running=True)
    edge.run(stopped_h * H, running=False)
    edge = restart(edge, tmp_path / "site.db", running=False)
    assert edge.report is not None and edge.report.fuel_from is not None
    est = edge.estimate()
    if stopped_h < 24:
        assert edge.report.fuel_from == t0 - timedelta(seconds=RulesSettings().max_sample_gap_s)
        assert est.learned_lph == pytest.approx(TRUE_LPH, rel=0.05)
    else:
        leak_s = FUEL.leak_window_min * 60 + RulesSettings().max_sample_gap_s
        assert edge.report.fuel_from == clock.now() - timedelta(seconds=leak_s)
        assert est.learned_lph is None and est.rate_lph == PRIOR_LPH
    edge.close()
