"""The demo's simulated week (commands/demo_history.py) in a real SQLite store: the plots the
site page asks for (24 h fridge at 1 m, 7 days fuel at 1 h) are full at once, the outage shows
in the fuel, and the event marks it as simulated."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge_server.clock import ManualClock
from edge_server.commands.demo_history import DAYS, backfill, week_rows
from edge_server.storage.sqlite import SqliteStorage

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=UTC)
NODES = {"power": "power", "fridge": "fridge"}


def test_a_week_fills_the_plots_at_once(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "site.db", ManualClock(NOW))
    try:
        rows = backfill(storage, NOW, NODES)
        assert rows == DAYS * 24 * 60 * 4
        fuel = storage.history("power.fuel_l", NOW - timedelta(days=7), NOW, "1h", points=720)
        values = [p for p in fuel.points if p[2] is not None]
        assert len(values) >= 7 * 24 - 2  # every hour of the week
        means = [p[2] for p in values]
        assert max(means) == 480.0 and 411 < min(means) < 413  # 2 tests and the outage
        fridge = storage.history("fridge.fridge_temp_c", NOW - timedelta(days=1), NOW, "1m",
                                 points=720)
        temps = [p for p in fridge.points if p[2] is not None]
        assert len(temps) >= 450  # the whole day in buckets of a few minutes
        first, last = temps[0][0] / 1000, temps[-1][0] / 1000
        assert first - (NOW - timedelta(days=1)).timestamp() < 600
        assert NOW.timestamp() - last < 600
        highest = max(p[3] for p in temps)
        assert 3.5 < min(p[1] for p in temps) and 6.0 < highest < 8.0  # door openings, in 2-8
        [event] = storage.events(NOW - timedelta(days=8), NOW + timedelta(seconds=1))
        assert event["code"] == "DEMO_HISTORY" and "Gesimuleerde" in event["text_nl"]
    finally:
        storage.close()


def test_rows_are_the_same_every_time() -> None:
    assert week_rows(NOW, NODES) == week_rows(NOW, NODES)
    assert week_rows(NOW, {"fridge": "f"})[0].channel == "f.fridge_temp_c"
    fuel = [r.value for r in week_rows(NOW, {"power": "p"}, 788.0) if r.channel == "p.fuel_l"]
    assert fuel[-1] == 788.0 and fuel[0] == 856.0  # ends at the live level
