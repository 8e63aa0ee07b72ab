"""Rules restore: how long the start of the edge takes to rebuild the windows, runs and MKT.

A realistic site on a real SQLite file (site.db, the project's settings: WAL, synchronous=FULL):
3 nodes (power, fridge, entrance), 40 channels, every channel read every 2 s, 26 h stored (more
than the longest default window, 24 h: the query must skip the older rows). The restore is what
RulesComponent.start() runs before the poller starts (edge_server/rules/restore.py). Measured
with the default settings (FRIDGE_HIGH 10 h within 24 h, MKT over 24 h) and with the longest
MKT window the settings allow (30 days, fridge channels stored every 2 s for 30 days).

The fuel tracker's rebuild (the learned rate, refuels, the leak watch) is measured on a 72 h
outage: the power node's fuel_l, gen_running, power_faults and mains_present stored every 2 s
for 72 h, the generator running 60 of them (0-40 h and 52-72 h; mains back in between), a
refuel of 400 l at 30 h; the other channels 26 h as above. The added cost is the restore with
the fuel replay minus the same restore without it (restore.fuel_history_since_ms -> None).
And outside an outage, the generator exercised 30 min a day for a week: the walk back never
collects learn_window_h of running, so everything up to the cap is replayed: 24 h with the
defaults; 144 h with learn_window_h 72 h (the most the settings allow: the worst case).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

from edge_server.clock import ManualClock
from edge_server.rules import restore
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


Values = Callable[[str, int, int], float]  # (register, t_ms, end_ms) -> value


def steady(name: str, t_ms: int, end_ms: int) -> float:
    return value(name, t_ms // PERIOD_MS)


FUEL_CHANNELS = ("fuel_l", "gen_running", "power_faults", "mains_present")


def outage_72h(name: str, t_ms: int, end_ms: int) -> float:
    """72 h outage ending at end_ms: running 0-40 h and 52-72 h at 3.4 l/h, +400 l at 30 h."""
    h = 72.0 - (end_ms - t_ms) / 3_600_000
    running = h < 40.0 or h >= 52.0
    if name == "gen_running":
        return 1.0 if running else 0.0
    if name == "mains_present":
        return 0.0 if running else 1.0
    if name == "fuel_l":
        run_h = min(h, 40.0) + max(0.0, h - 52.0)
        slosh = ((t_ms // PERIOD_MS) % 7 - 3) * 0.3
        return 900.0 - 3.4 * run_h + (400.0 if h >= 30.0 else 0.0) + slosh
    return 0.0


def daily_exercise(name: str, t_ms: int, end_ms: int) -> float:
    """The generator runs 30 min a day (mains present), the level falls only then."""
    day_s = (t_ms // 1000) % 86400
    running = day_s < 1800
    if name == "gen_running":
        return 1.0 if running else 0.0
    if name == "mains_present":
        return 1.0
    if name == "fuel_l":
        return 700.0 + 3.4 * 0.5 * (end_ms - t_ms) / 86_400_000 + (day_s % 7) * 0.1
    return 0.0


def fill(storage: SqliteStorage, channels: list[str], start_ms: int, end_ms: int,
         values: Values = steady) -> int:
    """Every channel every 2 s in [start_ms, end_ms), one transaction per hour."""
    n = 0
    t = start_ms
    while t < end_ms:
        stop = min(end_ms, t + 3_600_000)
        rows = [Row(ch, "", ts, values(ch.split(".")[1], ts, end_ms))
                for ts in range(t, stop, PERIOD_MS) for ch in channels]
        storage.write_rows(rows)
        n += len(rows)
        t = stop
    return n


def measure(
    rules: RulesSettings, fill_plan: list[tuple[list[str], float, Values]],
    fuel: FuelSettings | None = None,
) -> tuple[int, float, int]:
    """(stored rows, median restore seconds, rows replayed); fill_plan: (channels, hours,
    values)."""
    clock = ManualClock()
    nodes = [NodeStatus(name, i + 1, "bus0", roles, online=True)
             for i, (name, roles, _) in enumerate(NODES)]
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "site.db"
        storage = SqliteStorage(db, clock)
        now = clock.now() + timedelta(days=31)
        now_ms = to_ms(now)
        stored = sum(fill(storage, channels, now_ms - int(hours * 3_600_000), now_ms, values)
                     for channels, hours, values in fill_plan)
        storage.close()
        times: list[float] = []
        replayed = 0
        for _ in range(REPEATS):
            conn = open_db(db)
            engine = RulesEngine(rules, fuel or FuelSettings(tank_capacity_l=1500), conn=conn)
            t0 = time.perf_counter()
            report = engine.restore(nodes, now)
            times.append(time.perf_counter() - t0)
            assert report is not None
            replayed = report.rows
            conn.close()
    return stored, statistics.median(times), replayed


def without_fuel_replay(
    plan: list[tuple[list[str], float, Values]], fuel: FuelSettings | None = None
) -> tuple[int, float, int]:
    """measure() with the fuel trackers' replay switched off (the restore before it)."""
    original = restore.fuel_history_since_ms
    restore.fuel_history_since_ms = lambda *args: None
    try:
        return measure(RulesSettings(), plan, fuel)
    finally:
        restore.fuel_history_since_ms = original


def fuel_rows() -> list[tuple[str, str]]:
    every = [f"{name}.{reg}" for name, _, regs in NODES for reg in regs]
    power_fuel = [f"power1.{reg}" for reg in FUEL_CHANNELS]
    others = [ch for ch in every if ch not in power_fuel]
    plan: list[tuple[list[str], float, Values]] = [(others, 26.0, steady),
                                                  (power_fuel, 72.0, outage_72h)]
    stored, with_fuel, replayed = measure(RulesSettings(), plan)
    _, without, replayed_without = without_fuel_replay(plan)
    rows = [(f"72 h outage (generator 60 of 72 h, {stored:,} rows stored): restore with the "
             f"fuel tracker", f"{with_fuel * 1000:.0f} ms for {replayed:,} rows replayed"),
            ("  the same without the fuel tracker's replay",
             f"{without * 1000:.0f} ms for {replayed_without:,} rows replayed"),
            ("  added by the fuel tracker (default learn_window_h 6 h)",
             f"{(with_fuel - without) * 1000:.0f} ms")]
    for label, fuel in (("defaults, cap 24 h", FuelSettings(tank_capacity_l=1500)),
                        ("learn_window_h 72 h, cap 144 h",
                         FuelSettings(tank_capacity_l=1500, learn_window_h=72))):
        plan = [(others, 26.0, steady), (power_fuel, 7 * 24.0, daily_exercise)]
        stored, with_fuel, replayed = measure(RulesSettings(), plan, fuel)
        _, without, _ = without_fuel_replay(plan, fuel)
        rows.append((f"no outage, 30 min exercise run a day ({label}, replayed up to the cap, "
                     f"{stored:,} rows stored): added by the fuel tracker",
                     f"{(with_fuel - without) * 1000:.0f} ms ({with_fuel * 1000:.0f} ms in all, "
                     f"{replayed:,} rows replayed)"))
    return rows


def main() -> list[tuple[str, str]]:
    every = [f"{name}.{reg}" for name, _, regs in NODES for reg in regs]
    fridge = ["fridge1.fridge_temp_c", "fridge1.fridge_faults"]
    stored, seconds, replayed = measure(RulesSettings(), [(every, 26.0, steady)])
    rows = [
        ("site", f"3 nodes, {len(every)} channels, every 2 s"),
        (f"defaults (24 h windows), {stored:,} rows stored (26 h): restore (median of "
         f"{REPEATS})", f"{seconds * 1000:.0f} ms for {replayed:,} rows replayed"),
    ]
    long_mkt = RulesSettings(fridge_mkt_window_h=720, fridge_mkt_min_span_h=24)
    stored, seconds, replayed = measure(long_mkt, [(every, 1.0, steady),
                                                   (fridge, 720.0, steady)])
    rows.append((f"MKT window 30 days (fridge 2 channels x 30 d raw, {stored:,} rows): restore",
                 f"{seconds * 1000:.0f} ms for {replayed:,} rows replayed"))
    return rows + fuel_rows()


if __name__ == "__main__":
    for figure, value_text in main():
        print(f"{figure}: {value_text}")
