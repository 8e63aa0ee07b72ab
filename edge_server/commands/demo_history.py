"""A week of simulated history for `nsp-edge demo`, so a first-time user sees every plot and the
fuel trend filled at once instead of empty frames.

Written into the demo site's own storage (the same rows and aggregates as polled readings)
before the virtual nodes' live readings take over, one reading a minute per channel:

- fridge temperature: 4-6 °C with a daily rhythm and two door openings a day (up to ~7 °C);
- fridge room temperature: 19-22 °C;
- fuel: two generator tests (~4 L each) and an outage two days ago in which the generator ran
  9 hours (~60 L), ending at the tank's live level;
- starter battery: 12.7-12.8 V at rest.

It is marked as simulated: the demo site's name says so (on the site page and the hub's board),
an event DEMO_HISTORY states the span, and `make demo` prints it. Deterministic (no random), so
the pictures in docs/img are the same every time.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta

from edge_server.storage.sqlite import Row, SqliteStorage, to_ms

DAYS = 7
MINUTE_MS = 60_000


def _fridge(t_h: float) -> float:
    daily = 5.0 + 0.6 * math.sin(2 * math.pi * (t_h - 9) / 24)
    hour = t_h % 24
    door = 1.4 * math.exp(-((hour - 12.5) ** 2) / 0.02) + 1.1 * math.exp(-((hour - 18.2) ** 2)
                                                                      / 0.02)
    return round(daily + door, 2)


def _used(t_h: float, span_h: float) -> float:
    """Litres burnt by t_h hours into the week: tests a little, the outage a lot."""
    used = 0.0
    for test_h in (24 * 1 + 10.5, 24 * 4 + 10.5):  # weekly-ish generator tests, 30 min each
        used += 4.0 * min(max((t_h - test_h) / 0.5, 0.0), 1.0)
    outage_from, outage_h = span_h - 48, 9.0
    return used + 60.0 * min(max((t_h - outage_from) / outage_h, 0.0), 1.0)


def week_rows(now: datetime, nodes: dict[str, str], fuel_now_l: float = 412.0) -> list[Row]:
    """Rows for the week before `now` for the demo's nodes ({role: node name}); the fuel
    curve ends at `fuel_now_l` (the tank's live level), so history and live values meet."""
    end_ms = to_ms(now) // MINUTE_MS * MINUTE_MS
    start_ms = end_ms - DAYS * 24 * 3600 * 1000
    span_h = DAYS * 24.0
    rows: list[Row] = []
    fridge, power = nodes.get("fridge"), nodes.get("power")
    for t_ms in range(start_ms, end_ms, MINUTE_MS):
        t_h = (t_ms - start_ms) / 3.6e6
        if fridge is not None:
            rows.append(Row(f"{fridge}.fridge_temp_c", "°C", t_ms, _fridge(t_h)))
            rows.append(Row(f"{fridge}.ambient_temp_c", "°C", t_ms,
                            round(20.5 + 1.5 * math.sin(2 * math.pi * (t_h - 14) / 24), 2)))
        if power is not None:
            fuel = fuel_now_l + _used(span_h, span_h) - _used(t_h, span_h)
            rows.append(Row(f"{power}.fuel_l", "L", t_ms, round(fuel, 1)))
            rows.append(Row(f"{power}.starter_battery_v", "V", t_ms,
                            round(12.75 + 0.05 * math.sin(2 * math.pi * t_h / 24), 3)))
    return rows


def backfill(storage: SqliteStorage, now: datetime, nodes: dict[str, str],
             fuel_now_l: float = 412.0) -> int:
    """Write the simulated week and the DEMO_HISTORY event; returns the number of rows."""
    rows = week_rows(now, nodes, fuel_now_l)
    if not storage.write_rows(rows):
        return 0
    start = now - timedelta(days=DAYS)
    storage.add_event(
        now, "DEMO_HISTORY", text_en=f"Simulated history (demo): {DAYS} days before the start",
        text_nl=f"Gesimuleerde geschiedenis (demo): {DAYS} dagen voor de start",
        data={"from": start.isoformat(), "to": now.isoformat(), "rows": len(rows)})
    storage.maintain(now)  # the minute and hour aggregates the plots read
    return len(rows)
