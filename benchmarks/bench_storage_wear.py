"""Storage wear: rows and bytes written to site.db per simulated day, thinning off vs on.

The 3-node site (power1, fridge1, entrance1): every register of the three role blocks as the
poller puts it into the SiteState (30 channels), one poll cycle every 2 s through the real
`SqliteStorage.on_cycle` (synchronous=FULL, maintenance every 60 s) on a real file: thinning off
with one commit per cycle (before), thinning on with one commit per cycle, and thinning on with
one commit per 30 s and maintenance (the minute counts into agg_1m) every 300 s (the
defaults: SqliteStorage.from_settings). Signals, rounded to the register map's resolution:
- fridge_temp_c: the compressor's sawtooth 3.5-6.5 °C over 20 min plus sensor noise
  (sigma 0.02 °C); ambient_temp_c: 24-32 °C over the day plus noise (sigma 0.05 °C);
- battery_v / starter_battery_v: slow charge curve plus noise (sigma 0.01 V); battery_a noise
  (sigma 0.05 A), battery_w = V x A; fuel sender noise (sigma 0.005 mA) on a slowly falling tank;
- mains out 2 h a day (generator runs: run hours, fuel use), 40 door openings, 300 visitors in
  the opening hours 08-17 h; faults, alarm and settings flat.
Bytes written: the `wchar` counter of /proc/self/io over the run (every byte SQLite hands to the
kernel: WAL frames, checkpoints into site.db, the -shm index), the wear-relevant figure; and
the files at the end (site.db + -wal). A shorter run (NSP_BENCH_WEAR_HOURS, default 24) is
scaled to a day.
"""

from __future__ import annotations

import math
import os
import random
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from edge_server.clock import ManualClock
from edge_server.regmap import load
from edge_server.state import NodeStatus, Quality, Reading, SiteState
from edge_server.storage.sqlite import SqliteStorage
from edge_server.storage.thinning import Thinning

T0 = datetime(2026, 3, 2, 0, 0, tzinfo=UTC)
POLL_S = 2
NODES = (("power1", "power"), ("fridge1", "fridge"), ("entrance1", "entrance"))
# For a life projection: a 32 GB industrial card's published endurance (docs/storage.md, Wear).
# Western Digital rates its WD Purple microSD surveillance card (32 GB SDHC and 64 GB SDXC) for
# up to 1,000 full program/erase cycles (announcement, reported by ZTOP:
# https://www.ztop.com.br/western-digital-traz-cartao-microsd-wd-purple-para-o-brasil/);
# 1,000 x 32 GB (card makers' GB: 10^9 bytes) = 32 x 10^12 bytes. For another card: its rated
# bytes written; the years scale with it.
CARD_GB = 32
CARD_PE_CYCLES = 1_000
CARD_ENDURANCE_B = CARD_PE_CYCLES * CARD_GB * 1e9
CARD_SOURCE = "WD Purple microSD 32 GB, 1,000 P/E cycles (Western Digital)"


def _wchar() -> int | None:
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("wchar:"):
                return int(line.split()[1])
    except OSError:
        pass
    return None


Signal = Callable[[float], float | int | bool]


def _signals(rng: random.Random) -> dict[str, Signal]:
    day = 86400.0

    def outage(s: float) -> bool:
        return 13 * 3600 <= s % day < 15 * 3600

    def door(s: float) -> bool:  # 40 openings of 30 s between 08 and 18 h
        k = s % day - 8 * 3600
        return 0 <= k < 10 * 3600 and k % 900 < 30

    def visitors(s: float) -> int:
        k = min(max(s % day - 8 * 3600, 0), 9 * 3600)
        return int(k / (9 * 3600) * 300) + int(s // day) * 300

    def g(sigma: float) -> float:
        return rng.gauss(0, sigma)

    return {
        "mains_present": lambda s: not outage(s),
        "gen_running": outage,
        "relay_on": outage,
        "gen_state": lambda s: 2 if outage(s) else 0,
        "gen_run_reason": lambda s: 1 if outage(s) else 0,
        "run_hours_h": lambda s: 1000 + (min(max(s % day - 13 * 3600, 0), 7200)) / 3600,
        "start_count": lambda s: 50 + (1 if s % day >= 13 * 3600 else 0),
        "fuel_sender_ma": lambda s: 12.0 - s / day * 0.3 + g(0.005),
        "fuel_level_pct": lambda s: 60.0 - s / day * 1.5 + g(0.02),
        "fuel_l": lambda s: 900 - s / day * 7 + g(0.1),
        "starter_battery_v": lambda s: 12.7 + 0.2 * math.sin(s / day * 2 * math.pi) + g(0.01),
        "starter_battery_min_v": lambda s: 12.4,
        "battery_v": lambda s: 13.0 + 0.4 * math.sin(s / day * 2 * math.pi) + g(0.01),
        "battery_a": lambda s: 2.0 * math.sin(s / day * 2 * math.pi) + g(0.05),
        "battery_w": lambda s: round(26 * math.sin(s / day * 2 * math.pi) + g(0.6)),
        "battery_soc_pct": lambda s: 80 + 10 * math.sin(s / day * 2 * math.pi),
        "power_faults": lambda s: 0,
        "last_command": lambda s: 0,
        "fridge_temp_c": lambda s: 3.5 + 3.0 * ((s % 1200) / 1200) + g(0.02),
        "ambient_temp_c": lambda s: 28 + 4 * math.sin(s / day * 2 * math.pi) + g(0.05),
        "fridge_min_c": lambda s: 3.5,
        "fridge_max_c": lambda s: 6.5,
        "door_open": door,
        "fridge_alarm": lambda s: False,
        "fridge_faults": lambda s: 0,
        "door_open_s": lambda s: int(s % day - 8 * 3600) % 900 if door(s) else 0,
        "visitors_in": visitors,
        "visitors_out": lambda s: max(0, visitors(s) - 5),
        "occupancy": lambda s: min(5, visitors(s)) if door(s) else 3,
        "entrance_faults": lambda s: 0,
    }


def _run(path: Path, thinning: Thinning | None, cycles: int,
         commit_every_s: float = 0.0, maintain_every_s: float = 60.0) -> dict[str, float]:
    rmap = load()
    clock = ManualClock(T0)
    storage = SqliteStorage(path, clock, thinning=thinning, commit_every_s=commit_every_s,
                            maintain_every_s=maintain_every_s)
    state = SiteState("bench")
    regs = []
    for node, role in NODES:
        state.add_node(NodeStatus(node, 1, "bus0", (role,), online=True))
        regs += [(node, r) for r in rmap.in_block(role)]
    signals = _signals(random.Random(5))
    before = _wchar()
    started = time.perf_counter()
    for k in range(cycles):
        s = k * POLL_S
        now = clock.now()
        for node, reg in regs:
            signal = signals.get(reg.name)
            raw = signal(s) if signal is not None else 0
            value: float | int | bool = raw
            if isinstance(raw, float) and reg.scale != 1.0:
                value = round(round(raw / reg.scale) * reg.scale, 6)
            state.put(Reading(node, reg.name, value, reg.unit, now, Quality.GOOD))
        storage.on_cycle(state, now)
        clock.advance(POLL_S)
    elapsed = time.perf_counter() - started
    after = _wchar()
    rows = storage.health.rows_written
    storage.close()  # the last connection closing checkpoints the WAL into site.db
    files = sum(p.stat().st_size for p in path.parent.glob(path.name + "*"))
    return {"rows": rows, "wchar": (after - before) if before is not None and after is not None
            else math.nan, "files": files, "channels": len(regs), "elapsed": elapsed}


def main() -> list[tuple[str, str]]:
    hours = float(os.environ.get("NSP_BENCH_WEAR_HOURS", "24"))
    cycles = int(hours * 3600 / POLL_S)
    scale = 24 / hours
    with tempfile.TemporaryDirectory(prefix="bench-wear-") as d:
        off = _run(Path(d) / "off" / "site.db", None, cycles)
        on = _run(Path(d) / "on" / "site.db", Thinning(heartbeat_s=300.0), cycles)
        both = _run(Path(d) / "both" / "site.db", Thinning(heartbeat_s=300.0), cycles, 30.0,
                    300.0)
    mb = 1e6
    per = f"per day ({off['channels']:.0f} channels every {POLL_S} s"
    per += f", {hours:g} h run scaled to 24 h)" if hours != 24 else ")"
    out = [
        (f"raw rows written {per}, thinning off",
         f"{off['rows'] * scale:,.0f} rows"),
        ("raw rows written per day, thinning on (deadband + 300 s heartbeat)",
         f"{on['rows'] * scale:,.0f} rows ({off['rows'] / max(on['rows'], 1):.1f}x fewer)"),
    ]
    if not math.isnan(off["wchar"]):
        out += [
            ("bytes written per day (wchar: WAL, checkpoints, shm), thinning off",
             f"{off['wchar'] * scale / mb:,.1f} MB"),
            ("bytes written per day, thinning on",
             f"{on['wchar'] * scale / mb:,.1f} MB ({off['wchar'] / max(on['wchar'], 1):.1f}x "
             "fewer)"),
            ("bytes written per day, thinning on + one commit per 30 s + agg_1m every 300 s "
             "(the defaults)",
             f"{both['wchar'] * scale / mb:,.1f} MB ({off['wchar'] / max(both['wchar'], 1):.0f}x "
             "fewer)"),
            (f"years to write {CARD_ENDURANCE_B / 1e12:,.0f} TB ({CARD_SOURCE}), "
             "thinning off / on / defaults",
             f"{CARD_ENDURANCE_B / (off['wchar'] * scale * 365):,.0f} / "
             f"{CARD_ENDURANCE_B / (on['wchar'] * scale * 365):,.0f} / "
             f"{CARD_ENDURANCE_B / (both['wchar'] * scale * 365):,.0f} years"),
        ]
    out += [
        ("site.db + WAL after the run, thinning off / on / defaults",
         f"{off['files'] / mb:,.1f} MB / {on['files'] / mb:,.1f} MB / "
         f"{both['files'] / mb:,.1f} MB ({off['files'] / max(on['files'], 1):.1f}x)"),
        ("time to store the run, thinning off / on / defaults",
         f"{off['elapsed']:.1f} s / {on['elapsed']:.1f} s / {both['elapsed']:.1f} s"),
    ]
    return out


if __name__ == "__main__":
    for figure, value in main():
        print(f"{figure}: {value}")
