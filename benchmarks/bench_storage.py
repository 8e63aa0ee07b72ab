"""Storage figures: insert rate, the 30-day 1-minute history query, disk use per site-year.

Realistic load: 3 nodes, 40 channels, one poll cycle every 2 s (43,200 cycles a day), about a
quarter of the channels analogue with noise, the rest slowly changing counters and booleans.
Disk use is measured on one day of that load (real SQLite file, dbstat page accounting), then
extrapolated with the retention defaults (raw 30 d, 1-min 3 y, 1-h 10 y).
"""

from __future__ import annotations

import json
import random
import sqlite3
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from edge_server.clock import ManualClock
from edge_server.storage.sqlite import DAY_MS, HOUR_MS, MINUTE_MS, Row, SqliteStorage, to_ms

CHANNELS = 40
POLL_S = 2
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def _channels() -> list[tuple[str, str]]:
    out = []
    for i in range(CHANNELS):
        node = ("power1", "fridge1", "entrance1")[i % 3]
        out.append((f"{node}.ch{i:02d}", "C" if i % 4 == 0 else ""))
    return out


def _value(i: int, k: int, rng: random.Random) -> float:
    if i % 4 == 0:  # analogue: temperature, voltage, level with sensor noise (3 decimals)
        return round(5.0 + 2.0 * ((k // 900) % 3) + rng.gauss(0, 0.05), 3)
    if i % 4 == 1:  # counters: run hours, visitors
        return float(k // 1800)
    return float((k // 3600) % 2)  # booleans and enums


def _table_bytes(path: Path) -> dict[str, int]:
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name").fetchall()
    except sqlite3.OperationalError:  # SQLite built without dbstat: whole-file figure only
        page = conn.execute("PRAGMA page_size").fetchone()[0]
        rows = [("(all)", conn.execute("PRAGMA page_count").fetchone()[0] * page)]
    finally:
        conn.close()
    return {str(n): int(b) for n, b in rows}


def bench_insert(tmp: Path) -> list[tuple[str, str]]:
    rows_out = []
    chans = _channels()
    for sync in ("FULL", "NORMAL"):
        storage = SqliteStorage(tmp / f"insert-{sync}.db", ManualClock(T0))
        storage.connection.execute(f"PRAGMA synchronous={sync}")
        rng = random.Random(1)
        cycles = 1500
        start = time.perf_counter()
        for k in range(cycles):
            t_ms = to_ms(T0) + k * POLL_S * 1000
            storage.write_rows([Row(c, u, t_ms, _value(i, k, rng))
                                for i, (c, u) in enumerate(chans)])
        elapsed = time.perf_counter() - start
        storage.close()
        label = "synchronous=FULL (the setting)" if sync == "FULL" else "synchronous=NORMAL"
        rows_out.append((f"insert, one transaction of {CHANNELS} readings per poll cycle, {label}",
                         f"{cycles * CHANNELS / elapsed:,.0f} readings/s "
                         f"({elapsed / cycles * 1000:.2f} ms per cycle)"))
    return rows_out


def bench_disk(tmp: Path) -> list[tuple[str, str]]:
    path = tmp / "day.db"
    clock = ManualClock(T0)
    storage = SqliteStorage(path, clock)
    chans = _channels()
    rng = random.Random(2)
    cycles_per_day = 86400 // POLL_S
    per_tx = 1800  # the on-disk size does not depend on the batching; this keeps it quick
    for first in range(0, cycles_per_day, per_tx):
        rows = [
            Row(c, u, to_ms(T0) + k * POLL_S * 1000, _value(i, k, rng))
            for k in range(first, min(cycles_per_day, first + per_tx))
            for i, (c, u) in enumerate(chans)
        ]
        storage.write_rows(rows)
    clock.advance(86400 + 3600)
    start = time.perf_counter()
    storage.maintain(clock.now())
    catch_up_s = time.perf_counter() - start
    conn = storage.connection
    n_raw = conn.execute("SELECT count(*) FROM readings").fetchone()[0]
    n_1m = conn.execute("SELECT count(*) FROM agg_1m").fetchone()[0]
    n_1h = conn.execute("SELECT count(*) FROM agg_1h").fetchone()[0]
    # Steady state: one more minute of readings, then the every-60-s maintenance run.
    for k in range(cycles_per_day + 1800, cycles_per_day + 1830):
        storage.write_rows([Row(c, u, to_ms(T0) + k * POLL_S * 1000, _value(i, k, rng))
                            for i, (c, u) in enumerate(chans)])
    clock.advance(60)
    start = time.perf_counter()
    storage.maintain(clock.now())
    minute_ms = (time.perf_counter() - start) * 1000
    counts = {t: conn.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
              for t in ("readings", "agg_1m", "agg_1h")}
    storage.close()
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    conn.execute("VACUUM")  # measure the tables, not free pages or the WAL
    conn.close()
    size = _table_bytes(path)
    b_raw = size.get("readings", 0) / counts["readings"]
    b_1m = size.get("agg_1m", 0) / counts["agg_1m"]
    b_1h = size.get("agg_1h", 0) / counts["agg_1h"]
    raw_30d = b_raw * n_raw * 30
    m_year = b_1m * n_1m * 365
    h_year = b_1h * n_1h * 365
    mb = 1e6
    first_year = raw_30d + m_year + h_year
    steady = raw_30d + 3 * m_year + 10 * h_year
    return [
        ("maintenance run every 60 s (aggregate 1 minute, retention)", f"{minute_ms:.1f} ms"),
        ("maintenance catching up a whole day at once (after a long stop)",
         f"{catch_up_s:.1f} s"),
        ("raw readings per day (40 channels every 2 s)", f"{n_raw:,} rows"),
        ("bytes per raw reading row (measured)", f"{b_raw:.1f} B"),
        ("bytes per 1-min aggregate row (measured)", f"{b_1m:.1f} B"),
        ("bytes per 1-h aggregate row (measured)", f"{b_1h:.1f} B"),
        ("raw readings kept 30 days", f"{raw_30d / mb:,.0f} MB"),
        ("1-min aggregates per year", f"{m_year / mb:,.0f} MB"),
        ("1-h aggregates per year", f"{h_year / mb:,.1f} MB"),
        ("site.db after 1 year (30 d raw + 1 y aggregates)", f"{first_year / mb:,.0f} MB"),
        ("site.db steady state (30 d raw, 3 y 1-min, 10 y 1-h)", f"{steady / mb:,.0f} MB"),
    ]


def bench_query(tmp: Path) -> list[tuple[str, str]]:
    path = tmp / "month.db"
    end = T0 + timedelta(days=30)
    clock = ManualClock(end)
    storage = SqliteStorage(path, clock)
    chans = _channels()
    storage.write_rows([Row(c, u, to_ms(T0), 0.0) for c, u in chans])  # creates the channels
    conn = storage.connection
    ids = [r[0] for r in conn.execute("SELECT id FROM channels ORDER BY id")]
    rng = random.Random(3)
    minutes = 30 * DAY_MS // MINUTE_MS
    with conn:
        for cid in ids:  # 30 days of 1-minute aggregates for all 40 channels
            conn.executemany(
                "INSERT INTO agg_1m(channel_id, t, min, mean, max, count) VALUES (?,?,?,?,?,?)",
                ((cid, to_ms(T0) + m * MINUTE_MS, 4.0 + rng.random(), 5.0, 6.0, 30)
                 for m in range(minutes)),
            )
            conn.executemany(  # and the hour table maintain() builds from them
                "INSERT INTO agg_1h(channel_id, t, min, mean, max, count) VALUES (?,?,?,?,?,?)",
                ((cid, to_ms(T0) + hr * HOUR_MS, 4.0, 5.0, 6.0, 1800) for hr in range(30 * 24)),
            )
        conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('agg_1m_until', ?)",
                     (str(to_ms(end)),))
        conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('agg_1h_until', ?)",
                     (str(to_ms(end)),))
    channel = chans[1][0]
    times = []
    points = 0
    with_json = []
    for _ in range(7):
        start = time.perf_counter()
        h = storage.history(channel, T0, end, "1m")
        times.append((time.perf_counter() - start) * 1000)
        json.dumps({"points": h.points}, allow_nan=False)  # what GET /api/v1/history adds
        with_json.append((time.perf_counter() - start) * 1000)
        points = len(h.points)
    screen = []  # what the site page asks: at most 600 buckets (a plot's width)
    buckets = 0
    for _ in range(7):
        start = time.perf_counter()
        h = storage.history(channel, T0, end, "auto", points=600)
        json.dumps({"points": h.points}, allow_nan=False)
        screen.append((time.perf_counter() - start) * 1000)
        buckets = len(h.points)
    storage.close()
    return [("30-day 1-minute history of one channel (40 channels stored), median of 7",
             f"{statistics.median(times):.1f} ms ({points:,} points)"),
            ("the same, with the JSON encoding of the API response",
             f"{statistics.median(with_json):.1f} ms"),
            ("30-day plot for a screen (points=600, from the 1-hour table), incl. JSON",
             f"{statistics.median(screen):.2f} ms ({buckets} buckets of min/mean/max)")]


def main() -> list[tuple[str, str]]:
    with tempfile.TemporaryDirectory(prefix="bench-storage-") as d:
        tmp = Path(d)
        return bench_insert(tmp) + bench_query(tmp) + bench_disk(tmp)


if __name__ == "__main__":
    for figure, value in main():
        print(f"{figure}: {value}")
