"""The durable outbox (SQLite): messages wait here until the C-NSP hub acknowledged their id.

- `enqueue(kind, body, at)` stores a message with a fresh UUID (the idempotency key) in one
  committed transaction: once it returns, a crash or kill -9 cannot lose the message.
- `next_batch(n)` drains in this order: emergency reports, then every other non-status message
  (alerts, events, generator tests, commissioning records, receipts) oldest first, then only the
  LATEST status. Older statuses are superseded
  (after an outage only the latest status matters) and are dropped when a batch is built; every
  other message is removed only by `ack(ids)`, i.e. when the hub has reported it holds the id.
  Alerts go before statuses so a backlog after days of outage gets the alerts through first.
- `dead_letter(id, ...)` moves a message the hub refused for good (docs/uplink-protocol.md,
  "Refused messages") into the `dead_letters` table of the same file, in ONE transaction: at every
  instant the message is in exactly one of the two tables, whatever crashes. `requeue(ids)` moves
  dead letters back to the END of the outbox with their own id (the hub deduplicates by id).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from edge_server.sqlite_durable import DurableFile
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
CREATE TABLE IF NOT EXISTS dead_letters (
    seq         INTEGER PRIMARY KEY AUTOINCREMENT,
    id          TEXT NOT NULL UNIQUE,
    kind        TEXT NOT NULL,
    at          TEXT NOT NULL,
    body        TEXT NOT NULL,
    refused_at  TEXT NOT NULL,
    http_status INTEGER NOT NULL,
    code        TEXT NOT NULL,
    reason      TEXT NOT NULL,
    attempts    INTEGER NOT NULL
);
"""
# Added after version 1 of the outbox file: how many requests carrying the message the hub
# refused for good (copied to dead_letters.attempts, and back again by requeue).
_REFUSALS_COLUMN = "ALTER TABLE outbox ADD COLUMN refusals INTEGER NOT NULL DEFAULT 0"


@dataclass(frozen=True)
class OutMessage:
    seq: int
    id: str
    kind: str
    at: str
    body: dict[str, Any]

    def wire(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "at": self.at, "body": self.body}


@dataclass(frozen=True)
class DeadLetter:
    """A message the hub refused for good, with the hub's answer. `at`: when it was made."""

    id: str
    kind: str
    at: str
    body: dict[str, Any]
    refused_at: str
    http_status: int
    code: str
    reason: str
    attempts: int

    def summary(self) -> dict[str, Any]:
        """Everything but the body (the site API, the event log)."""
        return {
            "id": self.id,
            "kind": self.kind,
            "at": self.at,
            "refused_at": self.refused_at,
            "http_status": self.http_status,
            "code": self.code,
            "reason": self.reason,
            "attempts": self.attempts,
        }


_DEAD_COLUMNS = "id, kind, at, body, refused_at, http_status, code, reason, attempts"


class Outbox(DurableFile):
    """One SQLite file; safe to share between the asyncio loop and a worker thread."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # FULL: a site loses mains power by design; a committed message must survive that too.
        super().__init__(path, _SCHEMA)
        columns = {r[1] for r in self._db.execute("PRAGMA table_info(outbox)")}
        if "refusals" not in columns:
            self._db.execute(_REFUSALS_COLUMN)

    def enqueue(
        self, kind: str, body: dict[str, Any], at: datetime, msg_id: str | None = None
    ) -> str:
        """Store a message durably; returns its id (a fresh UUID, or `msg_id` when the message
        already has one: an alert handed over from site.db, see rules/alerts.py). A message
        whose id the outbox already holds is not stored twice."""
        if kind not in KINDS:
            raise ValueError(f"outbox: unknown kind {kind!r} (one of {', '.join(KINDS)})")
        msg_id = msg_id or str(uuid.uuid4())
        text = json.dumps(body, separators=(",", ":"), ensure_ascii=False)
        with self._lock:
            self._db.execute(
                "INSERT INTO outbox(id, kind, at, body) VALUES (?, ?, ?, ?) "
                "ON CONFLICT(id) DO NOTHING",
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
            # Emergency reports first: a person typed them and waits for the C-NSP (a
            # backlog of days of alerts must not hold one up), then the rest in order.
            rows = self._db.execute(
                "SELECT seq, id, kind, at, body FROM outbox WHERE kind != 'status' "
                "ORDER BY kind != 'report', seq LIMIT ?",
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
        removed = 0
        with self._transaction() as db:
            for msg_id in ids:
                removed += db.execute("DELETE FROM outbox WHERE id = ?", (msg_id,)).rowcount
        return removed

    def pending(self) -> int:
        with self._lock:
            n: int = self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]
        return n

    def pending_by_kind(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT kind, COUNT(*) FROM outbox GROUP BY kind").fetchall()
        return {str(k): int(n) for k, n in rows}

    # -- messages the hub refused for good ----------------------------------------------------
    def count_refusal(self, ids: list[str]) -> None:
        """The hub refused a request carrying these messages (counted in `attempts`)."""
        with self._transaction() as db:
            for msg_id in ids:
                db.execute("UPDATE outbox SET refusals = refusals + 1 WHERE id = ?", (msg_id,))

    def dead_letter(
        self, msg_id: str, refused_at: datetime, http_status: int, code: str, reason: str
    ) -> DeadLetter | None:
        """Move a message to dead_letters in one transaction; None if it is not in the outbox."""
        with self._transaction() as db:
            moved = db.execute(
                f"INSERT OR REPLACE INTO dead_letters({_DEAD_COLUMNS}) "
                "SELECT id, kind, at, body, ?, ?, ?, ?, refusals FROM outbox WHERE id = ?",
                (iso(refused_at), http_status, code, reason, msg_id),
            ).rowcount
            db.execute("DELETE FROM outbox WHERE id = ?", (msg_id,))
        return self.dead_letter_by_id(msg_id) if moved else None

    def dead_letters(self) -> list[DeadLetter]:
        """Every dead letter, oldest refusal first."""
        with self._lock:
            rows = self._db.execute(
                f"SELECT {_DEAD_COLUMNS} FROM dead_letters ORDER BY seq"
            ).fetchall()
        return [_dead(r) for r in rows]

    def dead_letter_by_id(self, msg_id: str) -> DeadLetter | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_DEAD_COLUMNS} FROM dead_letters WHERE id = ?", (msg_id,)
            ).fetchone()
        return None if row is None else _dead(row)

    def dead_letter_count(self) -> int:
        with self._lock:
            n: int = self._db.execute("SELECT COUNT(*) FROM dead_letters").fetchone()[0]
        return n

    def newest_dead_letter(self) -> DeadLetter | None:
        with self._lock:
            row = self._db.execute(
                f"SELECT {_DEAD_COLUMNS} FROM dead_letters ORDER BY seq DESC LIMIT 1"
            ).fetchone()
        return None if row is None else _dead(row)

    def requeue(self, ids: list[str] | None = None) -> list[str]:
        """Move dead letters (all with None) back to the END of the outbox, keeping their ids,
        in one transaction; returns the ids moved (an unknown id is skipped)."""
        with self._transaction() as db:
            if ids is None:
                ids = [r[0] for r in db.execute("SELECT id FROM dead_letters ORDER BY seq")]
            moved: list[str] = []
            for msg_id in ids:
                # OR IGNORE: should the id be queued already, that copy is the one to send.
                db.execute(
                    "INSERT OR IGNORE INTO outbox(id, kind, at, body, refusals) "
                    "SELECT id, kind, at, body, attempts FROM dead_letters WHERE id = ?",
                    (msg_id,),
                )
                if db.execute("DELETE FROM dead_letters WHERE id = ?", (msg_id,)).rowcount:
                    moved.append(msg_id)
        return moved


def _dead(row: tuple[Any, ...]) -> DeadLetter:
    return DeadLetter(
        str(row[0]), str(row[1]), str(row[2]), json.loads(row[3]), str(row[4]), int(row[5]),
        str(row[6]), str(row[7]), int(row[8]),
    )
