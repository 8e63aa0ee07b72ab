"""Rules restore: how long the start of the edge takes to rebuild the windows, runs and MKT.

A realistic site on a real SQLite file (site.db, the project's settings: WAL, synchronous=FULL):
3 nodes (power, fridge, entrance), 40 channels, every channel read every 2 s, 26 h stored (more
than the longest default window, 24 h: the query must skip the older rows). The restore is what
RulesComponent.start() runs before the poller starts (edge_server/rules/restore.py). Measured
with the default settings (FRIDGE_HIGH 10 h within 24 h, MKT over 24 h) and with the longest
MKT window the settings allow (30 days, fridge channels stored every 2 s for 30 days).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from edge_server.clock import ManualClock
from edge_server.rules.component import RulesEngine
from edge_server.rules.settings import FuelSettings, RulesSettings
from edge_server.state import NodeStatus
from edge_server.storage.db import open_db
from edge_server.storage.sqlite import Row, SqliteStorage, to_ms

PERIOD_MS = 2000
REPEATS = 3
POWER = ("mains_present", "gen_running", "gen_state", "gen_run_reason", "power_faults", "fuel_l",
         "fuel_level_pct", "starter_battery_v", "starter_battery_min_v", "battery_v",
         "battery_soc_pct", "battery_a", "gen_run_hours", "gen_starts", "uptime_s", "boot_count")
FRIDGE = ("fridge_temp_c", "fridge_faults", "door_open", "door_open_s", "fridge_min_c",
          "fridge_max_c", "ambient_c", "compressor_on", "uptime_s", "boot_count", "supply_v",
          "rssi_dbm")
ENTRANCE = ("occupancy", "entries", "exits", "door_state", "ambient_c", "humidity_pct",
            "co2_ppm", "uptime_s", "boot_count", "supply_v", "rssi_dbm", "lux")
NODES = (("power1", ("power",), POWER), ("fridge1", ("fridge",), FRIDGE),
         ("door1", ("entrance",), ENTRANCE))


def value(name: str, k: int) -> float:
    if name == "fridge_temp_c":
        return 5.0 + (k % 600) * 0.01  # 5-11 °C: part of the time above 8 °C
    if name in ("mains_present",):
        return 1.0
    return 10.0 + (k % 7) * 0.1


def fill(storage: SqliteStorage, channels: list[str], start_ms: int, end_ms: int) -> int:
    """Every channel every 2 s in [start_ms, end_ms), one transaction per hour."""
    n = 0
    t = start_ms
    while t < end_ms:
        stop = min(end_ms, t + 3_600_000)
        rows = [Row(ch, "", ts, value(ch.split(".")[1], ts // PERIOD_MS))
                for ts in range(t, stop, PERIOD_MS) for ch in channels]
        storage.write_rows(rows)
        n += len(rows)
        t = stop
    return n


def measure(
    rules: RulesSettings, fill_plan: list[tuple[list[str], float]]
) -> tuple[int, float, int]:
    """(stored rows, median restore seconds, rows replayed); fill_plan: (channels, hours)."""
    clock = ManualClock()
    nodes = [NodeStatus(name, i + 1, "bus0", roles, online=True)
             for i, (name, roles, _) in enumerate(NODES)]
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "site.db"
        storage = SqliteStorage(db, clock)
        now = clock.now() + timedelta(days=31)
        now_ms = to_ms(now)
        stored = sum(fill(storage, channels, now_ms - int(hours * 3_600_000), now_ms)
                     for channels, hours in fill_plan)
        storage.close()
        times: list[float] = []
        replayed = 0
        for _ in range(REPEATS):
            conn = open_db(db)
            engine = RulesEngine(rules, FuelSettings(tank_capacity_l=1000), conn=conn)
            t0 = time.perf_counter()
            report = engine.restore(nodes, now)
            times.append(time.perf_counter() - t0)
            assert report is not None
            replayed = report.rows
            conn.close()
    return stored, statistics.median(times), replayed


def main() -> list[tuple[str, str]]:
    every = [f"{name}.{reg}" for name, _, regs in NODES for reg in regs]
    fridge = ["fridge1.fridge_temp_c", "fridge1.fridge_faults"]
    stored, seconds, replayed = measure(RulesSettings(), [(every, 26.0)])
    rows = [
        ("site", f"3 nodes, {len(every)} channels, every 2 s"),
        (f"defaults (24 h windows), {stored:,} rows stored (26 h): restore (median of "
         f"{REPEATS})", f"{seconds * 1000:.0f} ms for {replayed:,} rows replayed"),
    ]
    long_mkt = RulesSettings(fridge_mkt_window_h=720, fridge_mkt_min_span_h=24)
    stored, seconds, replayed = measure(long_mkt, [(every, 1.0), (fridge, 720.0)])
    rows.append((f"MKT window 30 days (fridge 2 channels x 30 d raw, {stored:,} rows): restore",
                 f"{seconds * 1000:.0f} ms for {replayed:,} rows replayed"))
    return rows


if __name__ == "__main__":
    for figure, value_text in main():
        print(f"{figure}: {value_text}")
