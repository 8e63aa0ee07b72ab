"""Readings, aggregates and events in SQLite (`<data_dir>/site.db`): the embedded default store.

    storage = SqliteStorage(data_dir / "site.db", clock)
    state.subscribe(storage.on_cycle)          # thinned, one commit per commit_every_s
    storage.history("fridge1.fridge_temp_c", t0, t1, "auto")

Why the stdlib sqlite3 and no ORM: five fixed tables, a handful of hand-written indexed queries and
batched inserts; an ORM would add a dependency and hide the exact SQL whose speed we measure.
Writes are small (with thinning a few rows per cycle, committed together every commit_every_s;
without, ~40 rows every 2 s, a few ms), so they run directly on the poll cycle; the API reads
through a second connection (WAL: readers never block the writer).

Tables (docs/storage.md has the full schema and the retention defaults and why):
- readings(channel_id, t, value): the GOOD readings thinning keeps (edge_server/storage/
  thinning.py; every one with thinning off); value NULL marks a gap (the channel became
  UNAVAILABLE at t): a gap is never stored as a number. Kept `raw_days` (default 30).
- agg_1m / agg_1h(channel_id, t, min, mean, max, count): built incrementally by `maintain()` from
  closed buckets of every poll (with thinning counted in memory, not from the thinned rows);
  kept `minute_days` (default 3 years) and `hour_days` (default 10 years):
  cold-chain records must be kept >= 3 years.
- events(id, t, code, severity, text_en, text_nl, data): never deleted by retention.
- users: see edge_server/auth.py.
Times are integer milliseconds since the Unix epoch, UTC.
"""

from __future__ import annotations

import json
import logging
import math
import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal, NamedTuple

from edge_server.auth import USERS_SCHEMA
from edge_server.clock import Clock
from edge_server.state import SiteState
from edge_server.storage.db import _split_sql, open_db
from edge_server.storage.thinning import Thinning

log = logging.getLogger(__name__)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MINUTE_MS = 60_000
HOUR_MS = 3_600_000
DAY_MS = 86_400_000

Step = Literal["raw", "1m", "1h", "auto"]
STEPS: tuple[str, ...] = ("raw", "1m", "1h", "auto")


def to_ms(at: datetime) -> int:
    if at.tzinfo is None:
        raise ValueError(f"time {at.isoformat()} has no timezone; use UTC-aware datetimes")
    return (at - EPOCH) // timedelta(milliseconds=1)


def from_ms(t_ms: int) -> datetime:
    return EPOCH + timedelta(milliseconds=t_ms)


class Row(NamedTuple):
    """One row to store: value None is a gap (the channel was unavailable at t_ms)."""

    channel: str
    unit: str
    t_ms: int
    value: float | None


# One history point: (t_ms, min, mean, max); all three None = a gap (no GOOD data there).
# A plain tuple, not a NamedTuple: building 43,200 NamedTuples for a 30-day 1-minute query cost
# ~40 ms of the 100 ms budget; plain rows come straight from sqlite3 (benchmarks/bench_storage.py).
Point = tuple[int, float | None, float | None, float | None]


@dataclass
class History:
    channel: str
    step: str  # the step actually used (auto resolves to raw, 1m or 1h)
    points: list[Point]


@dataclass
class StorageHealth:
    ok: bool = True
    disk_full: bool = False
    last_error: str | None = None
    last_commit_at: str | None = None
    rows_written: int = 0
    rows_pending: int = 0  # held in memory after a failed commit, retried next cycle
    rows_dropped: int = 0  # pending overflowed while the disk stayed full
    maintenance_runs: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


# Schema steps: step i brings PRAGMA user_version from i to i+1. Append, never edit.
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    CREATE TABLE channels (
        id INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        unit TEXT NOT NULL DEFAULT ''
    );
    -- WITHOUT ROWID: the primary key (channel_id, t) IS the table's b-tree, so the index the
    -- history query needs costs no extra space.
    CREATE TABLE readings (
        channel_id INTEGER NOT NULL,
        t INTEGER NOT NULL,
        value REAL,
        PRIMARY KEY (channel_id, t)
    ) WITHOUT ROWID;
    CREATE TABLE agg_1m (
        channel_id INTEGER NOT NULL,
        t INTEGER NOT NULL,
        min REAL NOT NULL, mean REAL NOT NULL, max REAL NOT NULL, count INTEGER NOT NULL,
        PRIMARY KEY (channel_id, t)
    ) WITHOUT ROWID;
    CREATE TABLE agg_1h (
        channel_id INTEGER NOT NULL,
        t INTEGER NOT NULL,
        min REAL NOT NULL, mean REAL NOT NULL, max REAL NOT NULL, count INTEGER NOT NULL,
        PRIMARY KEY (channel_id, t)
    ) WITHOUT ROWID;
    CREATE TABLE events (
        id INTEGER PRIMARY KEY,
        t INTEGER NOT NULL,
        code TEXT NOT NULL,
        severity TEXT NOT NULL DEFAULT 'info',
        text_en TEXT NOT NULL DEFAULT '',
        text_nl TEXT NOT NULL DEFAULT '',
        data TEXT NOT NULL DEFAULT '{}'
    );
    CREATE INDEX events_by_t ON events (t);
    """
    + USERS_SCHEMA,
)


def migrate_storage(conn: sqlite3.Connection) -> int:
    """Bring site.db's storage schema to the newest version (PRAGMA user_version)."""
    version = int(conn.execute("PRAGMA user_version").fetchone()[0])
    if version > len(MIGRATIONS):
        raise RuntimeError(
            f"site.db schema version {version} is newer than this software knows "
            f"({len(MIGRATIONS)}); upgrade nsp-edge or restore a matching backup"
        )
    for i in range(version, len(MIGRATIONS)):
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            for statement in _split_sql(MIGRATIONS[i]):
                conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {i + 1}")  # transactional: in the db header
        log.info("site.db schema migrated to version %d", i + 1)
    return len(MIGRATIONS)


def _is_disk_full(exc: sqlite3.Error) -> bool:
    text = str(exc).lower()
    return "full" in text or "no space" in text


class SqliteStorage:
    """The site's readings store. Not thread-safe for writers: call write paths from one thread
    (the poll loop); `history()` and `events()` may be called from any thread."""

    def __init__(
        self,
        path: Path | str,
        clock: Clock,
        *,
        raw_days: int = 30,
        minute_days: int = 3 * 366,
        hour_days: int = 10 * 366,
        maintain_every_s: float = 60.0,
        close_after_s: float = 60.0,
        max_pending_rows: int = 100_000,
        thinning: Thinning | None = None,
        commit_every_s: float = 0.0,
    ) -> None:
        self.path = Path(path)
        self.clock = clock
        self.raw_ms = raw_days * DAY_MS
        self.minute_ms = minute_days * DAY_MS
        self.hour_ms = hour_days * DAY_MS
        self.maintain_every_s = maintain_every_s
        # A minute bucket is aggregated once it ended this long ago, so a reading stamped a
        # little late still lands in its raw bucket before the bucket is closed.
        self.close_after_ms = int(close_after_s * 1000)
        self.max_pending_rows = max_pending_rows
        self.health = StorageHealth()

        self._conn = open_db(self.path)
        migrate_storage(self._conn)
        self._reader = open_db(self.path)
        self._read_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._channel_ids: dict[str, int] = {
            name: cid for cid, name in self._conn.execute("SELECT id, name FROM channels")
        }
        # channel -> (t_ms, is_gap) of the last stored row: a reading that did not change since
        # the last cycle (same timestamp) is not stored twice; a gap is stored once per outage.
        self._last: dict[str, tuple[int, bool]] = {}
        self._pending: list[Row] = []
        # Thinning (None: every poll stored). Per channel: its deadband, the (t_ms, value) of
        # the last GOOD value kept (None after a gap), and the newest poll NOT kept (stored
        # when the value then moves, so a step shows as a step and not as a ramp).
        self.thinning = thinning
        self._deadband: dict[str, float] = {}
        self._kept: dict[str, tuple[int, float] | None] = {}
        self._held: dict[str, Row] = {}
        # With thinning the raw rows no longer hold every poll, so the 1-minute aggregates are
        # counted here from every poll: channel -> minute start -> [min, sum, max, count];
        # written to agg_1m when the minute closes (maintain). _acc_from: the first minute
        # counted in memory; earlier minutes are aggregated from the raw rows as without thinning.
        self._acc: dict[str, dict[int, list[float]]] = {}
        self._acc_seen: dict[str, int] = {}
        self._acc_from: int | None = None
        self._acc_lock = threading.Lock()
        self._next_maintain_s: float | None = None
        # Batched commits: readings wait here (memory) up to commit_every_s, then ONE commit.
        # Events (add_event) and other components' alerts and outbox rows commit at once in
        # their own transactions; maintain() and close() commit what waits first.
        self.commit_every_s = commit_every_s
        self._buffer: list[Row] = []
        self._next_commit_s: float | None = None
        self._full_logged = False

    @classmethod
    def from_settings(cls, data_dir: Path, storage: Any, clock: Clock) -> SqliteStorage:
        """Build from config.StorageSection (data_dir already resolved by the caller).

        With thinning, maintenance (writing the minute counts into agg_1m) runs every 300 s
        instead of 60 s: each run rewrites about one b-tree page per channel, and that was
        most of the bytes written per day (benchmarks/bench_storage_wear.py)."""
        thinning = Thinning.from_settings(storage)
        return cls(
            Path(data_dir) / "site.db",
            clock,
            raw_days=storage.raw_days,
            minute_days=storage.minute_days,
            hour_days=storage.hour_days,
            maintain_every_s=60.0 if thinning is None else 300.0,
            thinning=thinning,
            commit_every_s=getattr(storage, "commit_every_s", 0.0),
        )

    def close(self) -> None:
        self.flush()
        with self._write_lock:
            self._conn.close()
        with self._read_lock:
            self._reader.close()

    @property
    def connection(self) -> sqlite3.Connection:
        """The writer connection (for the users table and other components' own tables)."""
        return self._conn

    def set_size_limit_pages(self, pages: int) -> None:
        """Cap the database file at `pages` pages (PRAGMA max_page_count): past it every write
        fails with 'database or disk is full', exactly like a full disk (used by the tests)."""
        self._conn.execute(f"PRAGMA max_page_count = {int(pages)}")

    # --- writing --------------------------------------------------------------------------

    def rows_from_state(self, state: SiteState) -> list[Row]:
        if self.thinning is not None:
            return self._thinned_rows(state, self.thinning)
        rows: list[Row] = []
        for channel, r in state.readings.items():
            t_ms = to_ms(r.at)
            last = self._last.get(channel)
            value = float(r.value) if r.ok else math.nan  # type: ignore[arg-type]
            if math.isfinite(value):  # a NaN/inf from a broken sensor is a gap, not a value
                if last is None or last[0] != t_ms or last[1]:
                    rows.append(Row(channel, r.unit, t_ms, value))
            elif last is None or not last[1]:
                rows.append(Row(channel, r.unit, t_ms, None))  # start of a gap
        return rows

    def _thinned_rows(self, state: SiteState, thin: Thinning) -> list[Row]:
        """The rows to keep of this cycle (deadband + heartbeat); every new GOOD poll is
        counted into the in-memory minute aggregates first."""
        rows: list[Row] = []
        heartbeat_ms = int(thin.heartbeat_s * 1000)
        for channel, r in state.readings.items():
            t_ms = to_ms(r.at)
            value = float(r.value) if r.ok else math.nan  # type: ignore[arg-type]
            if not math.isfinite(value):
                if channel not in self._kept or self._kept[channel] is not None:
                    self._kept[channel] = None  # start of a gap: always stored
                    self._held.pop(channel, None)
                    rows.append(Row(channel, r.unit, t_ms, None))
                continue
            if self._acc_seen.get(channel) == t_ms:
                continue  # the same poll as last cycle (node not read again yet)
            self._acc_seen[channel] = t_ms
            self._count(channel, t_ms, value)
            kept = self._kept.get(channel)
            row = Row(channel, r.unit, t_ms, value)
            if kept is None:
                due = True
            else:
                band = self._deadband.get(channel)
                if band is None:
                    band = self._deadband[channel] = thin.deadband(channel)
                moved = thin.moved(band, kept[1], value)
                due = moved or t_ms - kept[0] >= heartbeat_ms
                held = self._held.get(channel)
                if moved and band > 0 and held is not None and held.t_ms > kept[0]:
                    rows.append(held)  # the last poll before the move (a state: held = kept)
            if due:
                self._kept[channel] = (t_ms, value)
                self._held.pop(channel, None)
                rows.append(row)
            else:
                self._held[channel] = row
        return rows

    def _count(self, channel: str, t_ms: int, value: float) -> None:
        minute = t_ms // MINUTE_MS * MINUTE_MS
        with self._acc_lock:
            if self._acc_from is None:
                self._acc_from = minute
            if minute < self._acc_from:
                return  # a late poll of a minute aggregated from the raw rows
            acc = self._acc.setdefault(channel, {}).get(minute)
            if acc is None:
                self._acc[channel][minute] = [value, value, value, 1.0]
            else:
                acc[0] = min(acc[0], value)
                acc[1] += value
                acc[2] = max(acc[2], value)
                acc[3] += 1

    def on_cycle(self, state: SiteState, now: datetime) -> None:
        """SiteState listener: store this cycle's readings in one transaction; run retention
        and aggregation when due. Never raises: storage trouble must not stop polling."""
        try:
            rows = self.rows_from_state(state)
            for row in rows:  # taken: the same reading is not taken again next cycle
                self._last[row.channel] = (row.t_ms, row.value is None)
            self._buffer += rows
            mono = self.clock.monotonic()
            if self._next_commit_s is None or mono >= self._next_commit_s:
                self._next_commit_s = mono + self.commit_every_s
                self.flush()
            if self._next_maintain_s is None or mono >= self._next_maintain_s:
                self._next_maintain_s = mono + self.maintain_every_s
                self.maintain(now)
        except Exception as exc:  # keep the poll loop alive whatever happens here
            self.health.ok = False
            self.health.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("storage: poll-cycle write failed")

    def flush(self) -> bool:
        """Commit the readings waiting in memory (batched commits); True when committed."""
        rows, self._buffer = self._buffer, []
        return self.write_rows(rows)

    def write_rows(self, rows: Sequence[Row]) -> bool:
        """Store rows (plus any left over from a failed commit) in ONE transaction.

        Returns True when committed. On 'database or disk is full' the rows stay in memory
        (bounded by max_pending_rows; the oldest are dropped and counted) and are retried with
        the next call; health.disk_full says so.
        """
        batch = self._pending + list(rows)
        if not batch:
            return True
        new_ids: dict[str, int] = {}
        try:
            with self._write_lock, self._conn:
                self._conn.execute("BEGIN IMMEDIATE")
                params = []
                for row in batch:
                    cid = self._channel_ids.get(row.channel) or new_ids.get(row.channel)
                    if cid is None:
                        cid = self._create_channel(row.channel, row.unit)
                        new_ids[row.channel] = cid
                    params.append((cid, row.t_ms, row.value))
                self._conn.executemany(
                    "INSERT OR IGNORE INTO readings(channel_id, t, value) VALUES (?, ?, ?)", params
                )
        except sqlite3.Error as exc:
            self._on_write_error(exc, batch)
            return False
        self._channel_ids.update(new_ids)
        for row in batch:
            self._last[row.channel] = (row.t_ms, row.value is None)
        self._pending = []
        h = self.health
        if h.disk_full or not h.ok:
            log.warning("storage: writing again after an error (%d rows caught up)", len(batch))
        h.ok, h.disk_full, h.last_error, h.rows_pending = True, False, None, 0
        h.rows_written += len(batch)
        h.last_commit_at = self.clock.now().isoformat()
        self._full_logged = False
        return True

    def _create_channel(self, name: str, unit: str) -> int:
        self._conn.execute(
            "INSERT OR IGNORE INTO channels(name, unit) VALUES (?, ?)", (name, unit)
        )
        row = self._conn.execute("SELECT id FROM channels WHERE name = ?", (name,)).fetchone()
        return int(row[0])

    def _on_write_error(self, exc: sqlite3.Error, batch: list[Row]) -> None:
        h = self.health
        h.ok = False
        h.last_error = f"{type(exc).__name__}: {exc}"
        overflow = max(0, len(batch) - self.max_pending_rows)
        self._pending = batch[overflow:]
        h.rows_dropped += overflow
        h.rows_pending = len(self._pending)
        if _is_disk_full(exc):
            h.disk_full = True
            if not self._full_logged:
                log.error(
                    "storage: %s is FULL (%s): readings are held in memory (up to %d rows) "
                    "and written when space is free again; polling continues. "
                    "Free disk space or lower [storage] raw_days.",
                    self.path, exc, self.max_pending_rows,
                )
                self._full_logged = True
            else:
                log.debug("storage: still full: %d rows pending", h.rows_pending)
        else:
            log.error("storage: write to %s failed: %s (%d rows pending)",
                      self.path, exc, h.rows_pending)
        if overflow:
            log.warning("storage: dropped %d oldest pending rows (%d dropped in total)",
                        overflow, h.rows_dropped)

    # --- events -------------------------------------------------------------------------------

    def add_event(
        self,
        at: datetime,
        code: str,
        *,
        severity: str = "info",
        text_en: str = "",
        text_nl: str = "",
        data: dict[str, Any] | None = None,
    ) -> int:
        with self._write_lock, self._conn:
            cur = self._conn.execute(
                "INSERT INTO events(t, code, severity, text_en, text_nl, data) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (to_ms(at), code, severity, text_en, text_nl, json.dumps(data or {})),
            )
        return int(cur.lastrowid or 0)

    def events(self, start: datetime, end: datetime, limit: int = 1000) -> list[dict[str, Any]]:
        with self._read_lock:
            rows = self._reader.execute(
                "SELECT id, t, code, severity, text_en, text_nl, data FROM events "
                "WHERE t >= ? AND t < ? ORDER BY t, id LIMIT ?",
                (to_ms(start), to_ms(end), limit),
            ).fetchall()
        return [
            {"id": i, "at": from_ms(t).isoformat(), "code": c, "severity": s,
             "text_en": en, "text_nl": nl, "data": json.loads(d)}
            for i, t, c, s, en, nl, d in rows
        ]

    # --- aggregation and retention ----------------------------------------------------------

    def _meta(self, key: str) -> int | None:
        row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return int(row[0]) if row else None

    def _set_meta(self, key: str, value: int) -> None:
        self._conn.execute(
            "INSERT INTO meta(key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, str(value)),
        )

    def _watermarks(self, conn: sqlite3.Connection) -> tuple[int | None, int | None]:
        rows = dict(conn.execute(
            "SELECT key, value FROM meta WHERE key IN ('agg_1m_until', 'agg_1h_until')"
        ).fetchall())
        m, h = rows.get("agg_1m_until"), rows.get("agg_1h_until")
        return (int(m) if m is not None else None, int(h) if h is not None else None)

    def maintain(self, now: datetime) -> None:
        """Aggregate closed minutes and hours (incrementally, from the stored watermarks), then
        delete rows older than their retention. Each chunk is its own short transaction."""
        now_ms = to_ms(now)
        self.flush()  # the minutes to aggregate must hold every row taken
        try:
            with self._write_lock:
                self._aggregate_minutes(now_ms)
                self._aggregate_hours()
                self._apply_retention(now_ms)
            self.health.maintenance_runs += 1
        except sqlite3.Error as exc:
            self.health.ok = False
            self.health.last_error = f"{type(exc).__name__}: {exc}"
            if _is_disk_full(exc):
                self.health.disk_full = True
            log.error("storage: maintenance failed: %s", exc)

    def _channel_list(self) -> list[int]:
        return [int(r[0]) for r in self._conn.execute("SELECT id FROM channels ORDER BY id")]

    def _aggregate_minutes(self, now_ms: int) -> None:
        end = (now_ms - self.close_after_ms) // MINUTE_MS * MINUTE_MS
        if self.thinning is not None and self._acc_from is not None:
            # From the raw rows only what came before the in-memory count, then the counts.
            self._aggregate_stored_minutes(min(end, self._acc_from))
            self._write_counted_minutes(end)
        else:
            self._aggregate_stored_minutes(end)

    def _write_counted_minutes(self, end: int) -> None:
        """Move the in-memory counts of the minutes before `end` into agg_1m (one
        transaction, with the watermark)."""
        with self._acc_lock:
            closed = [(ch, m, acc) for ch, minutes in self._acc.items()
                      for m, acc in minutes.items() if m < end]
        if not closed:  # as from the raw rows: the watermark moves when minutes were written
            return
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            params = []
            for ch, m, (lo, total, hi, n) in closed:
                cid = self._channel_ids.get(ch)
                if cid is None:  # counted, but its first row is not committed yet
                    cid = self._channel_ids[ch] = self._create_channel(ch, "")
                params.append((cid, m, lo, total / n, hi, int(n)))
            self._conn.executemany(
                "INSERT OR REPLACE INTO agg_1m(channel_id, t, min, mean, max, count) "
                "VALUES (?, ?, ?, ?, ?, ?)", params)
            done = self._meta("agg_1m_until")
            if done is None or end > done:
                self._set_meta("agg_1m_until", end)
        with self._acc_lock:
            for ch, m, _acc in closed:
                del self._acc[ch][m]

    def _open_minute_rows(
        self, channel: str, a: int, b: int
    ) -> list[tuple[int, float, float, float, int]]:
        with self._acc_lock:
            minutes = sorted(self._acc.get(channel, {}).items())
            return [(m, lo, total / n, hi, int(n)) for m, (lo, total, hi, n) in minutes
                    if a <= m < b]

    def _aggregate_stored_minutes(self, end: int) -> None:
        start = self._meta("agg_1m_until")
        channels = self._channel_list()
        if start is None:
            firsts = [
                r[0] for cid in channels
                for r in self._conn.execute(
                    "SELECT min(t) FROM readings WHERE channel_id = ?", (cid,))
                if r[0] is not None
            ]
            if not firsts:
                return
            start = min(firsts) // MINUTE_MS * MINUTE_MS
        # Chunks of 6 h keep each transaction short when catching up after a long stop.
        while start < end:
            stop = min(end, start + 6 * HOUR_MS)
            with self._conn:
                self._conn.execute("BEGIN IMMEDIATE")
                for cid in channels:  # per channel: a range seek on the primary key
                    self._conn.execute(
                        "INSERT OR REPLACE INTO agg_1m(channel_id, t, min, mean, max, count) "
                        "SELECT channel_id, t / 60000 * 60000, min(value), avg(value), "
                        "max(value), count(value) FROM readings "
                        "WHERE channel_id = ? AND t >= ? AND t < ? AND value IS NOT NULL "
                        "GROUP BY t / 60000",
                        (cid, start, stop),
                    )
                self._set_meta("agg_1m_until", stop)
            start = stop

    def _aggregate_hours(self) -> None:
        minutes_done = self._meta("agg_1m_until")
        if minutes_done is None:
            return
        end = minutes_done // HOUR_MS * HOUR_MS
        start = self._meta("agg_1h_until")
        channels = self._channel_list()
        if start is None:
            firsts = [
                r[0] for cid in channels
                for r in self._conn.execute(
                    "SELECT min(t) FROM agg_1m WHERE channel_id = ?", (cid,))
                if r[0] is not None
            ]
            if not firsts:
                return
            start = min(firsts) // HOUR_MS * HOUR_MS
        while start < end:
            stop = min(end, start + 7 * 24 * HOUR_MS)
            with self._conn:
                self._conn.execute("BEGIN IMMEDIATE")
                for cid in channels:
                    # Weighted mean: sum of (minute mean x minute count) / total count = the
                    # exact mean of the raw readings in the hour.
                    self._conn.execute(
                        "INSERT OR REPLACE INTO agg_1h(channel_id, t, min, mean, max, count) "
                        "SELECT channel_id, t / 3600000 * 3600000, min(min), "
                        "sum(mean * count) / sum(count), max(max), sum(count) FROM agg_1m "
                        "WHERE channel_id = ? AND t >= ? AND t < ? GROUP BY t / 3600000",
                        (cid, start, stop),
                    )
                self._set_meta("agg_1h_until", stop)
            start = stop

    def _apply_retention(self, now_ms: int) -> None:
        m_done, h_done = self._watermarks(self._conn)
        # Never delete what has not been aggregated yet.
        raw_cut = min(now_ms - self.raw_ms, m_done if m_done is not None else -1)
        min_cut = min(now_ms - self.minute_ms, h_done if h_done is not None else -1)
        hour_cut = now_ms - self.hour_ms
        deleted = 0
        with self._conn:
            self._conn.execute("BEGIN IMMEDIATE")
            for cid in self._channel_list():
                for table, cut in (("readings", raw_cut), ("agg_1m", min_cut),
                                   ("agg_1h", hour_cut)):
                    cur = self._conn.execute(
                        f"DELETE FROM {table} WHERE channel_id = ? AND t < ?", (cid, cut)
                    )
                    deleted += cur.rowcount
        if deleted:
            log.info("storage: retention deleted %d old rows", deleted)

    # --- reading ------------------------------------------------------------------------------

    def channels(self) -> list[dict[str, str]]:
        with self._read_lock:
            rows = self._reader.execute("SELECT name, unit FROM channels ORDER BY name")
            return [{"channel": n, "unit": u} for n, u in rows]

    def resolve_step(self, start: datetime, end: datetime, step: str) -> str:
        if step not in STEPS:
            raise ValueError(f"step: {step!r} is not one of {', '.join(STEPS)}")
        if step != "auto":
            return step
        span_ms = to_ms(end) - to_ms(start)
        now_ms = to_ms(self.clock.now())
        # About 2,000-5,000 points at most for a chart, whatever the range; and never a table
        # whose retention already deleted the start of the range.
        if span_ms <= 3 * HOUR_MS and to_ms(start) >= now_ms - self.raw_ms:
            return "raw"
        if span_ms <= 3 * DAY_MS and to_ms(start) >= now_ms - self.minute_ms:
            return "1m"
        return "1h"

    def history(self, channel: str, start: datetime, end: datetime, step: str = "auto",
                points: int | None = None) -> History:
        """Points of `channel` in [start, end). Aggregate steps include the not-yet-aggregated
        tail (computed from the raw rows on the fly), and a missing bucket becomes a gap point.

        With `points` (a screen's width, >= 2): at most that many buckets on one grid of equal
        width (a whole number of the source step, aligned to it), each with the min, the max and
        the count-weighted mean of what fell in it, a bucket with nothing in it as a gap
        (null values). Min/max per bucket rather than a sample or LTTB: a plot of a fridge must
        show every excursion, however short, and the 1-minute and 1-hour tables already hold
        min and max, so a 30-day plot is read from agg_1m/agg_1h, not from the raw rows."""
        if end <= start:
            raise ValueError("to: must be later than from")
        if points is not None:
            return self._bucketed(channel, start, end, step, points)
        used = self.resolve_step(start, end, step)
        a, b = to_ms(start), to_ms(end)
        with self._read_lock:
            cid = self._channel_id(channel)
            if used == "raw":
                raw: list[Point] = self._reader.execute(
                    "SELECT t, value, value, value FROM readings "
                    "WHERE channel_id = ? AND t >= ? AND t < ? ORDER BY t", (cid, a, b)
                ).fetchall()
                return History(channel, used, raw)
            rows = self._aggregate_rows(cid, a, b, used)
        return History(channel, used, _with_gaps(rows, MINUTE_MS if used == "1m" else HOUR_MS))

    def _channel_id(self, channel: str) -> int:
        """The channel's id (under the read lock); KeyError for a channel never stored."""
        row = self._reader.execute("SELECT id FROM channels WHERE name = ?", (channel,)).fetchone()
        if row is None:
            raise KeyError(channel)
        return int(row[0])

    def _aggregate_rows(
        self, cid: int, a: int, b: int, used: str
    ) -> list[tuple[int, float, float, float, int]]:
        """(t, min, mean, max, count) per minute ("1m") or hour ("1h") in [a, b): from the
        aggregate tables, and the tail they do not cover yet from the raw rows."""
        m_done, h_done = self._watermarks(self._reader)
        if used == "1m":
            return self._minute_rows(cid, a, b, m_done)
        hour_done = h_done if h_done is not None else a
        split = max(a, min(b, hour_done))
        rows = list(self._reader.execute(
            "SELECT t, min, mean, max, count FROM agg_1h "
            "WHERE channel_id = ? AND t >= ? AND t < ? ORDER BY t", (cid, a, split)))
        return rows + _regroup(self._minute_rows(cid, split, b, m_done), HOUR_MS)

    def _bucketed(self, channel: str, start: datetime, end: datetime, step: str,
                  points: int) -> History:
        if points < 2:
            raise ValueError("points: give at least 2")
        used = self.resolve_step(start, end, step)
        a, b = to_ms(start), to_ms(end)
        base = {"raw": 1, "1m": MINUTE_MS, "1h": HOUR_MS}[used]
        a = a // base * base  # the minute (hour) that holds `start` is counted whole
        # Aligned buckets of width w cover [a, b) in at most ceil(span / w) + 1 of them.
        w = -(-(b - a) // (points - 1))
        w = -(-w // base) * base
        with self._read_lock:
            cid = self._channel_id(channel)
            rows: list[tuple[int, float, float, float, int]]
            if used == "raw":
                rows = self._reader.execute(
                    "SELECT t / ? * ? AS bt, min(value), avg(value), max(value), count(value) "
                    "FROM readings WHERE channel_id = ? AND t >= ? AND t < ? "
                    "AND value IS NOT NULL GROUP BY t / ? ORDER BY bt",
                    (w, w, cid, a, b, w)).fetchall()
            else:
                rows = _regroup(self._aggregate_rows(cid, a, b, used), w)
        filled = {t: (t, lo, mean, hi) for t, lo, mean, hi, _n in rows}
        grid = range(a // w * w, b, w)
        return History(channel, f"{w // 1000}s" if w >= 1000 else f"{w}ms",
                       [filled.get(t, (t, None, None, None)) for t in grid])

    def _minute_rows(
        self, cid: int, a: int, b: int, m_done: int | None
    ) -> list[tuple[int, float, float, float, int]]:
        split = max(a, min(b, m_done if m_done is not None else a))
        rows: list[tuple[int, float, float, float, int]] = list(self._reader.execute(
            "SELECT t, min, mean, max, count FROM agg_1m "
            "WHERE channel_id = ? AND t >= ? AND t < ? ORDER BY t", (cid, a, split)))
        counted_from = self._acc_from if self.thinning is not None else None
        raw_end = b if counted_from is None else max(split, min(b, counted_from))
        rows += self._reader.execute(
            "SELECT t / 60000 * 60000 AS m, min(value), avg(value), max(value), count(value) "
            "FROM readings WHERE channel_id = ? AND t >= ? AND t < ? AND value IS NOT NULL "
            "GROUP BY t / 60000 ORDER BY m", (cid, split, raw_end)).fetchall()
        if counted_from is not None:  # the open minutes: counted from every poll, in memory
            name = self._reader.execute(
                "SELECT name FROM channels WHERE id = ?", (cid,)).fetchone()[0]
            rows += self._open_minute_rows(name, max(split, raw_end), b)
        return rows


def stored_readings(
    conn: sqlite3.Connection, since_ms: dict[str, int], until_ms: int
) -> list[tuple[int, str, float | None]]:
    """(t_ms, channel, value) of the raw readings of each channel from since_ms[channel] up to
    and including until_ms, oldest first; value None marks a gap. Channels never stored are
    left out; a database without the storage tables gives []. Used to rebuild the rules'
    memory after a restart (edge_server/rules/restore.py); one range seek per channel."""
    if not since_ms:
        return []
    if conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'readings'"
    ).fetchone() is None:
        return []
    out: list[tuple[int, str, float | None]] = []
    for name, start in since_ms.items():
        row = conn.execute("SELECT id FROM channels WHERE name = ?", (name,)).fetchone()
        if row is None:
            continue
        out += [(t, name, v) for t, v in conn.execute(
            "SELECT t, value FROM readings WHERE channel_id = ? AND t >= ? AND t <= ? "
            "ORDER BY t", (int(row[0]), start, until_ms))]
    out.sort(key=_first)  # stable: rows of one instant keep the channel order
    return out


def readings_newest_first(
    conn: sqlite3.Connection, channel: str, until_ms: int, since_ms: int
) -> Iterator[tuple[int, float | None]]:
    """(t_ms, value) of one channel's raw readings in [since_ms, until_ms], newest first, read
    lazily (stop iterating and the rest is never read); nothing for an unknown channel or a
    database without the storage tables. Used to find how far back the fuel rate's history of
    running time reaches (edge_server/rules/restore.py)."""
    if conn.execute(
        "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'readings'"
    ).fetchone() is None:
        return
    row = conn.execute("SELECT id FROM channels WHERE name = ?", (channel,)).fetchone()
    if row is None:
        return
    yield from conn.execute(
        "SELECT t, value FROM readings WHERE channel_id = ? AND t >= ? AND t <= ? "
        "ORDER BY t DESC", (int(row[0]), since_ms, until_ms))


def _first(row: tuple[int, str, float | None]) -> int:
    return row[0]


def _regroup(
    rows: Iterable[tuple[int, float, float, float, int]], width_ms: int
) -> list[tuple[int, float, float, float, int]]:
    out: list[tuple[int, float, float, float, int]] = []
    for t, lo, mean, hi, n in rows:
        bucket = t // width_ms * width_ms
        if out and out[-1][0] == bucket:
            bt, blo, bmean, bhi, bn = out[-1]
            total = bn + n
            out[-1] = (bt, min(blo, lo), (bmean * bn + mean * n) / total, max(bhi, hi), total)
        else:
            out.append((bucket, lo, mean, hi, n))
    return out


def _with_gaps(rows: list[tuple[int, Any, Any, Any, int]], width_ms: int) -> list[Point]:
    points: list[Point] = []
    append = points.append
    prev: int | None = None
    for t, lo, mean, hi, _n in rows:
        if prev is not None and t - prev > width_ms:
            append((prev + width_ms, None, None, None))
        append((t, lo, mean, hi))
        prev = t
    return points
