"""The site's bulletins and emergency reports (SQLite, DATA/crisis.sqlite, synchronous=FULL).

Bulletins are kept as the hub signed them (the verified payload, once per id): the kiosk shows
the valid ones after a restart and while the link is down. A report is committed here before it
goes into the outbox (the hand-off, as rules/alerts.py does for alerts): `handed_off` is set once
the outbox holds it, and at the next start every report without it is put into the outbox again
under the same message id, so a kill -9 between the two commits delays a report, never drops it,
and the hub (which keeps each message id once) stores it once.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from edge_server.sqlite_durable import DurableFile
from edge_server.uplink.notices import BulletinNotice
from edge_server.uplink.protocol import iso, parse_iso

FILE_NAME = "crisis.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS bulletins (
    id TEXT PRIMARY KEY, received_at TEXT NOT NULL, issued_at TEXT NOT NULL,
    valid_from TEXT NOT NULL, valid_until TEXT NOT NULL, body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS reports (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    report_id TEXT NOT NULL UNIQUE, msg_id TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL,
    body TEXT NOT NULL, handed_off INTEGER NOT NULL DEFAULT 0,
    delivered_at TEXT, acked_by TEXT, acked_at TEXT, ack_received_at TEXT
);
"""


class CrisisStore(DurableFile):
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        # FULL: a report a person typed is on disk before the page says "queued".
        super().__init__(path, _SCHEMA)

    # -- bulletins ------------------------------------------------------------------------------
    def keep_bulletin(self, bulletin: BulletinNotice, now: datetime) -> bool:
        """Store a verified bulletin; False when this id is here already (kept as first seen)."""
        with self._lock:
            cur = self._db.execute(
                "INSERT OR IGNORE INTO bulletins(id, received_at, issued_at, valid_from, "
                "valid_until, body) VALUES (?, ?, ?, ?, ?, ?)",
                (bulletin.id, iso(now), bulletin.issued_at, bulletin.valid_from,
                 bulletin.valid_until, bulletin.model_dump_json()),
            )
        return cur.rowcount == 1

    def bulletins(self, now: datetime | None = None, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first (by the hub's issue time); with `now` only those valid at that time."""
        rows = self._rows(
            "SELECT body, received_at, valid_from, valid_until FROM bulletins "
            "ORDER BY issued_at DESC, received_at DESC", ())
        out = []
        for body, received_at, start, end in rows:
            if now is not None and not _between(start, now, end):
                continue
            out.append(json.loads(body) | {"received_at": received_at})
            if len(out) >= limit:
                break
        return out

    def last_bulletin_at(self) -> str | None:
        rows = self._rows("SELECT MAX(received_at) FROM bulletins", ())
        return rows[0][0] if rows else None

    # -- reports --------------------------------------------------------------------------------
    def add_report(self, body: dict[str, Any], msg_id: str, now: datetime) -> None:
        with self._lock:
            self._db.execute(
                "INSERT INTO reports(report_id, msg_id, created_at, body) VALUES (?, ?, ?, ?)",
                (body["report_id"], msg_id, iso(now), json.dumps(body, ensure_ascii=False)),
            )

    def handed_off(self, report_id: str) -> None:
        with self._lock:
            self._db.execute("UPDATE reports SET handed_off = 1 WHERE report_id = ?", (report_id,))

    def not_handed_off(self) -> list[tuple[str, dict[str, Any], str]]:
        """(msg_id, body, created_at) of every report a crash kept from the outbox, in order."""
        rows = self._rows(
            "SELECT msg_id, body, created_at FROM reports WHERE handed_off = 0 ORDER BY seq", ())
        return [(str(m), json.loads(b), str(c)) for m, b, c in rows]

    def delivered(self, msg_ids: list[str], now: datetime) -> list[str]:
        """The hub holds these messages: mark the reports among them; returns their report ids."""
        done = []
        with self._lock:
            for msg_id in msg_ids:
                row = self._db.execute(
                    "UPDATE reports SET delivered_at = ? WHERE msg_id = ? AND delivered_at IS "
                    "NULL RETURNING report_id", (iso(now), msg_id),
                ).fetchone()
                if row is not None:
                    done.append(str(row[0]))
        return done

    def acknowledged(self, report_id: str, by: str, at: str, now: datetime) -> bool:
        """The C-NSP's acknowledgement; False for a report this site does not hold."""
        with self._lock:
            known = self._db.execute(
                "SELECT 1 FROM reports WHERE report_id = ?", (report_id,)
            ).fetchone()
            self._db.execute(
                "UPDATE reports SET acked_by = ?, acked_at = ?, ack_received_at = ?, "
                "delivered_at = COALESCE(delivered_at, ?) WHERE report_id = ? AND acked_at IS NULL",
                (by, at, iso(now), iso(now), report_id),
            )
        return known is not None

    def reports(self, limit: int = 50) -> list[dict[str, Any]]:
        """Newest first, each with where it is: queued, delivered, acknowledged."""
        rows = self._rows(
            "SELECT body, created_at, delivered_at, acked_by, acked_at FROM reports "
            "ORDER BY seq DESC LIMIT ?", (limit,))
        return [json.loads(b) | {"created_at": c, "delivered_at": d,
                                 "ack": None if a is None else {"by": a, "at": at}}
                for b, c, d, a, at in rows]

    def undelivered(self) -> list[dict[str, Any]]:
        """Bodies of the reports the hub does not hold yet, oldest first (the backup radio)."""
        rows = self._rows(
            "SELECT body FROM reports WHERE delivered_at IS NULL ORDER BY seq", ())
        return [json.loads(r[0]) for r in rows]

    def _rows(self, sql: str, params: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        with self._lock:
            return self._db.execute(sql, params).fetchall()


def _between(start: str, now: datetime, end: str) -> bool:
    return parse_iso(start) <= now < parse_iso(end)
