"""The durable outbox (SQLite): messages wait here until the C-NSP hub acknowledged their id.

- `enqueue(kind, body, at)` stores a message with a fresh UUID (the idempotency key) in one
  committed transaction: once it returns, a crash or kill -9 cannot lose the message.
- `next_batch(n)` drains in this order: every non-status message (alerts, events, generator tests,
  commissioning records) oldest first, then only the LATEST status. Older statuses are superseded
  (after an outage only the latest status matters) and are dropped when a batch is built; every
  other message is removed only by `ack(ids)`, i.e. when the hub has reported it holds the id.
  Alerts go before statuses so a backlog after days of outage gets the alerts through first.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from edge_server.uplink.protocol import KINDS, iso

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (
    seq  INTEGER PRIMARY KEY AUTOINCREMENT,
    id   TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    at   TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_kind_seq ON outbox(kind, seq);
"""


@dataclass(frozen=True)
class OutMessage:
    seq: int
    id: str
    kind: str
    at: str
    body: dict[str, Any]

    def wire(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "at": self.at, "body": self.body}


class Outbox:
    """One SQLite file; safe to share between the asyncio loop and a worker thread."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        # FULL: a site loses mains power by design; a committed message must survive that too.
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute("PRAGMA busy_timeout=5000")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def enqueue(self, kind: str, body: dict[str, Any], at: datetime) -> str:
        """Store a message durably; returns its id (a UUID string)."""
        if kind not in KINDS:
            raise ValueError(f"outbox: unknown kind {kind!r} (one of {', '.join(KINDS)})")
        msg_id = str(uuid.uuid4())
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        with self._lock:
            self._db.execute(
                "INSERT INTO outbox(id, kind, at, body) VALUES (?, ?, ?, ?)",
                (msg_id, kind, iso(at), text),
            )
        return msg_id

    def next_batch(self, max_messages: int) -> list[OutMessage]:
        """Up to max_messages: non-status messages in order, then the latest status if room."""
        with self._lock:
            latest = self._db.execute(
                "SELECT MAX(seq) FROM outbox WHERE kind = 'status'"
            ).fetchone()[0]
            if latest is not None:
                # Superseded statuses: only the newest one matters to the C-NSP.
                self._db.execute("DELETE FROM outbox WHERE kind = 'status' AND seq < ?", (latest,))
            rows = self._db.execute(
                "SELECT seq, id, kind, at, body FROM outbox WHERE kind != 'status' "
                "ORDER BY seq LIMIT ?",
                (max_messages,),
            ).fetchall()
            if len(rows) < max_messages and latest is not None:
                rows += self._db.execute(
                    "SELECT seq, id, kind, at, body FROM outbox WHERE seq = ?", (latest,)
                ).fetchall()
        return [OutMessage(r[0], r[1], r[2], r[3], json.loads(r[4])) for r in rows]

    def ack(self, ids: list[str]) -> int:
        """Remove the messages the hub holds; returns how many were removed."""
        if not ids:
            return 0
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            removed = 0
            for msg_id in ids:
                removed += self._db.execute("DELETE FROM outbox WHERE id = ?", (msg_id,)).rowcount
            self._db.execute("COMMIT")
        return removed

    def pending(self) -> int:
        with self._lock:
            n: int = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        return n

    def pending_by_kind(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT kind, COUNT(*) FROM outbox GROUP BY kind").fetchall()
        return {str(k): int(n) for k, n in rows}
