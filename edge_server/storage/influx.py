"""Optional InfluxDB sink with an on-disk buffer: losing the server loses nothing (within a bound).

    sink = InfluxSink(url, token, org, bucket, data_dir / "influx-buffer.db", clock)
    state.subscribe(sink.on_cycle)     # every GOOD reading -> one buffered point (one transaction)
    sink.start()                        # a worker thread sends batches, oldest first

Every point first goes into a small SQLite file (WAL, synchronous=FULL, like site.db). The worker
sends the oldest `batch_size` points with influxdb-client's synchronous write API; only when the
server acknowledged the batch (HTTP 204) are those rows deleted. A failure keeps them and retries
with exponential back-off (our own: the client's HTTP retries are off by default, and the
buffer, not a retry loop in memory, is what survives a restart).
When the buffer holds more than `buffer_max_points`, the OLDEST points are dropped, counted
(`dropped`, also kept in the file) and logged: a bounded disk beats an unbounded one on a
site that is offline for weeks; site.db keeps the full history anyway.

Exactly once: a batch is deleted right after the server acknowledged it. If the process dies
between the acknowledgement and the delete, that batch is sent again after restart; InfluxDB
overwrites a point with the same series and timestamp, so the resend is harmless there
(VictoriaMetrics: run it with -dedup.minScrapeInterval=1ms for the same effect).
Line protocol: `<measurement>,site=S,node=N,channel=C,unit=U value=V <t_ms>`.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from pathlib import Path
from typing import Any

from edge_server.clock import Clock
from edge_server.state import SiteState
from edge_server.storage.db import open_db
from edge_server.storage.sqlite import to_ms

log = logging.getLogger(__name__)

BUFFER_FILE = "influx-buffer.db"


def _escape_tag(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", "\\,").replace("=", "\\=").replace(" ", "\\ ")


def _escape_measurement(text: str) -> str:
    return text.replace("\\", "\\\\").replace(",", "\\,").replace(" ", "\\ ")


def line(measurement: str, tags: dict[str, str], value: float, t_ms: int) -> str:
    """One point in InfluxDB line protocol, millisecond precision; empty tags are left out."""
    tag_text = "".join(
        f",{_escape_tag(k)}={_escape_tag(v)}" for k, v in sorted(tags.items()) if v
    )
    return f"{_escape_measurement(measurement)}{tag_text} value={float(value)!r} {t_ms}"


class InfluxSink:
    def __init__(
        self,
        url: str,
        token: str,
        org: str,
        bucket: str,
        buffer_path: Path,
        clock: Clock,
        *,
        measurement: str = "nsp",
        batch_size: int = 5000,
        buffer_max_points: int = 2_000_000,
        timeout_s: float = 10.0,
        flush_interval_s: float = 10.0,
        backoff_max_s: float = 300.0,
    ) -> None:
        # The optional part: imported only when a site configures it.
        from influxdb_client.client.influxdb_client import InfluxDBClient

        self.url, self.org, self.bucket = url, org, bucket
        self.clock = clock
        self.measurement = measurement
        self.batch_size = batch_size
        self.buffer_max_points = buffer_max_points
        self.flush_interval_s = flush_interval_s
        self.backoff_max_s = backoff_max_s
        self._client = InfluxDBClient(url=url, token=token or "-", org=org,
                                      timeout=int(timeout_s * 1000))
        self._lock = threading.Lock()
        self._flush_lock = threading.Lock()
        self._db = open_db(buffer_path)
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("CREATE TABLE IF NOT EXISTS points "
                             "(id INTEGER PRIMARY KEY AUTOINCREMENT, line TEXT NOT NULL)")
            self._db.execute("CREATE TABLE IF NOT EXISTS meta "
                             "(key TEXT PRIMARY KEY, value INTEGER NOT NULL)")
        self.buffered = int(self._db.execute("SELECT count(*) FROM points").fetchone()[0])
        row = self._db.execute("SELECT value FROM meta WHERE key = 'dropped'").fetchone()
        self.dropped = int(row[0]) if row else 0
        self.sent = 0
        self.failures = 0
        self.last_error: str | None = None
        self._retry_at: float | None = None
        self._backoff_s = 0.0
        self._last_t: dict[str, int] = {}
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._thread: threading.Thread | None = None

    @classmethod
    def from_settings(cls, s: Any, data_dir: Path, token: str, clock: Clock) -> InfluxSink:
        """From config.InfluxSection."""
        return cls(s.url, token, s.org, s.bucket, Path(data_dir) / BUFFER_FILE, clock,
                   measurement=s.measurement, batch_size=s.batch_size,
                   buffer_max_points=s.buffer_max_points, timeout_s=s.timeout_s,
                   flush_interval_s=s.flush_interval_s)

    # --- the producer side (poll loop) -----------------------------------------------------

    def on_cycle(self, state: SiteState, now: datetime) -> None:
        """SiteState listener: buffer every new GOOD reading (unavailable = no point = a gap)."""
        lines = []
        for channel, r in state.readings.items():
            if not r.ok:
                continue
            t_ms = to_ms(r.at)
            if self._last_t.get(channel) == t_ms:
                continue
            self._last_t[channel] = t_ms
            tags = {"site": state.site_id, "node": r.node, "channel": r.name, "unit": r.unit}
            lines.append(line(self.measurement, tags, float(r.value), t_ms))  # type: ignore[arg-type]
        try:
            self.enqueue(lines)
        except Exception:  # never stop the poll loop
            log.exception("influx sink: could not buffer %d points", len(lines))

    def enqueue(self, lines: list[str]) -> None:
        """Append points to the buffer in one transaction; drop the oldest beyond the bound."""
        if not lines:
            return
        with self._lock, self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("INSERT INTO points(line) VALUES (?)", [(x,) for x in lines])
            excess = self.buffered + len(lines) - self.buffer_max_points
            if excess > 0:
                self._db.execute(
                    "DELETE FROM points WHERE id IN (SELECT id FROM points ORDER BY id LIMIT ?)",
                    (excess,),
                )
                self._db.execute(
                    "INSERT INTO meta(key, value) VALUES ('dropped', ?) "
                    "ON CONFLICT(key) DO UPDATE SET value = value + excluded.value",
                    (excess,),
                )
        self.buffered += len(lines) - max(0, excess)
        if excess > 0:
            self.dropped += excess
            log.warning("influx sink: buffer full (%d points): dropped the %d oldest points "
                        "(%d dropped in total); is %s reachable?",
                        self.buffer_max_points, excess, self.dropped, self.url)
        if self.buffered >= self.batch_size:
            self._wake.set()

    # --- the consumer side (worker thread, or tests calling flush_once) ---------------------

    def flush_once(self) -> int:
        """Send the oldest batch; return the number of points the server acknowledged.

        Returns 0 when the buffer is empty, while backing off after a failure, or on failure.
        One sender at a time (the worker thread, or a caller): two could send the same batch.
        """
        with self._flush_lock:
            return self._flush_once()

    def _flush_once(self) -> int:
        mono = self.clock.monotonic()
        if self._retry_at is not None and mono < self._retry_at:
            return 0
        with self._lock:
            rows = self._db.execute(
                "SELECT id, line FROM points ORDER BY id LIMIT ?", (self.batch_size,)
            ).fetchall()
        if not rows:
            return 0
        from influxdb_client.client.write_api import SYNCHRONOUS
        from influxdb_client.domain.write_precision import WritePrecision

        try:
            self._client.write_api(write_options=SYNCHRONOUS).write(
                bucket=self.bucket, org=self.org, record=[r[1] for r in rows],
                write_precision=WritePrecision.MS,  # type: ignore[arg-type]  # a str constant
            )
        except Exception as exc:  # connection refused, timeout, HTTP 4xx/5xx
            self.failures += 1
            self._backoff_s = min(self.backoff_max_s, max(1.0, self._backoff_s * 2))
            self._retry_at = self.clock.monotonic() + self._backoff_s
            first = self.last_error is None
            self.last_error = f"{type(exc).__name__}: {str(exc)[:200]}"
            (log.warning if first else log.debug)(
                "influx sink: %s did not take %d points (%s); %d buffered, retry in %.0f s",
                self.url, len(rows), self.last_error, self.buffered, self._backoff_s)
            return 0
        last_id = rows[-1][0]
        with self._lock, self._db:
            cur = self._db.execute("DELETE FROM points WHERE id <= ?", (last_id,))
        self.buffered -= cur.rowcount
        self.sent += len(rows)
        if self.last_error is not None:
            log.warning("influx sink: %s is back; sending the %d buffered points",
                        self.url, self.buffered + len(rows))
        self.last_error, self._retry_at, self._backoff_s = None, None, 0.0
        return len(rows)

    def flush_all(self, max_batches: int = 1_000_000) -> int:
        """Send batches until the buffer is empty or a send fails; return points sent."""
        total = 0
        for _ in range(max_batches):
            n = self.flush_once()
            if n == 0:
                break
            total += n
        return total

    def retry_now(self) -> None:
        """Forget the back-off (tests with a ManualClock; an operator's 'send now')."""
        self._retry_at = None

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                n = self.flush_once()
            except Exception:
                log.exception("influx sink: flush failed")
                n = 0
            if n < self.batch_size:  # caught up (or backing off): wait for more
                self._wake.wait(self.flush_interval_s)
                self._wake.clear()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="influx-sink", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout=30)
            self._thread = None
        self._client.close()  # type: ignore[no-untyped-call]
        with self._lock:
            self._db.close()

    def health(self) -> dict[str, Any]:
        return {"url": self.url, "buffered": self.buffered, "sent": self.sent,
                "dropped": self.dropped, "failures": self.failures,
                "last_error": self.last_error}
