"""What the C-NSP sends to its sites and what it did about their reports.

    notices = HubNotices.in_folder(data_dir)  # SQLite crisis.sqlite next to hub.sqlite, 0600, FULL
    notices = HubNotices(store.db)            # PostgreSQL: the hub's own database (any instance)
    notices.add_bulletin(doc, site_ids, by, now)
    notices.pending_bulletins(site_id, now) # for this site's next ingest reply, until it confirms
    notices.receipt(site_id, "bulletin", id, site_time, now)

Tables: `bulletins` (one row per bulletin, the operator's text and its target), `bulletin_sites`
(one row per bulletin and site it is meant for, resolved when it is written: a site registered
later does not get older bulletins; `received_at` is set when the site's receipt arrives),
`report_acks` (an operator's acknowledgement of a site's emergency report, repeated to the site
until its receipt arrives), `audit` (who wrote or acknowledged what, when).

The emergency reports themselves stay in hub.sqlite's `messages` (stored in the ingest's own
transaction, so what the hub said it holds is there); see hub/reports.py. A receipt is recorded
here after that transaction: should the hub die in between, it sends the notice once more and
the site confirms again (the site keeps each notice once), so nothing is lost either way.
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from edge_server.hub.sql import Conn, Database, SqliteDatabase
from edge_server.uplink.notices import MAX_PER_REPLY
from edge_server.uplink.protocol import iso

FILE_NAME = "crisis.sqlite"

NOTICES_SCHEMA = """
CREATE TABLE IF NOT EXISTS bulletins (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL,
    created_by TEXT NOT NULL,
    valid_from TEXT NOT NULL,
    valid_until TEXT NOT NULL,
    target TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS bulletin_sites (
    bulletin_id TEXT NOT NULL, site_id TEXT NOT NULL,
    received_at TEXT, confirmed_at TEXT,
    PRIMARY KEY (bulletin_id, site_id)
);
CREATE INDEX IF NOT EXISTS bulletin_sites_waiting ON bulletin_sites(site_id)
    WHERE confirmed_at IS NULL;
CREATE TABLE IF NOT EXISTS report_acks (
    site_id TEXT NOT NULL, report_id TEXT NOT NULL, by TEXT NOT NULL, at TEXT NOT NULL,
    confirmed_at TEXT,
    PRIMARY KEY (site_id, report_id)
);
CREATE INDEX IF NOT EXISTS report_acks_waiting ON report_acks(site_id) WHERE confirmed_at IS NULL;
CREATE TABLE IF NOT EXISTS audit (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at TEXT NOT NULL, who TEXT NOT NULL, action TEXT NOT NULL, subject TEXT NOT NULL,
    detail TEXT NOT NULL
);
"""


class HubNotices:
    """On PostgreSQL the tables come with the hub's migrations (store.py); on SQLite they are
    made here, in their own file."""

    def __init__(self, db: Database) -> None:
        self._db = db

    @classmethod
    def in_folder(cls, data_dir: Path) -> HubNotices:
        path = data_dir / FILE_NAME
        if not path.exists():
            fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
        # FULL: a written bulletin or an acknowledgement is on disk before the operator's 201.
        db = SqliteDatabase(path)
        db.conn.executescript(NOTICES_SCHEMA)
        return cls(db)

    def close(self) -> None:
        self._db.close()

    def _audit(self, db: Conn, now: datetime, who: str, action: str,
               subject: str, detail: dict[str, Any]) -> None:
        db.execute(
            "INSERT INTO audit(at, who, action, subject, detail) VALUES (?, ?, ?, ?, ?)",
            (iso(now), who, action, subject, json.dumps(detail, ensure_ascii=False)),
        )

    # -- bulletins ----------------------------------------------------------------------------
    def add_bulletin(self, doc: dict[str, Any], target: dict[str, Any], site_ids: list[str],
                     by: str, now: datetime) -> None:
        """A bulletin (`doc`: id, texts, validity, issued_at/by) for `site_ids`, with its audit
        line, in one transaction."""
        with self._db.write() as db:
            db.execute(
                "INSERT INTO bulletins(id, created_at, created_by, valid_from, valid_until, "
                "target, body) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (doc["id"], iso(now), by, doc["valid_from"], doc["valid_until"],
                 json.dumps(target), json.dumps(doc, ensure_ascii=False)),
            )
            db.executemany(
                "INSERT INTO bulletin_sites(bulletin_id, site_id) VALUES (?, ?)",
                [(doc["id"], s) for s in site_ids],
            )
            self._audit(db, now, by, "bulletin_written", doc["id"],
                        {"title_nl": doc["title_nl"], "target": target, "sites": len(site_ids),
                         "valid_until": doc["valid_until"]})

    def pending_bulletins(self, site_id: str, now: datetime) -> list[dict[str, Any]]:
        """The bulletins this site has not confirmed yet and that are still valid, oldest
        first, at most MAX_PER_REPLY (the rest follow in the next replies)."""
        with self._db.read() as db:
            rows = db.execute(
                "SELECT b.body FROM bulletin_sites s JOIN bulletins b ON b.id = s.bulletin_id "
                "WHERE s.site_id = ? AND s.confirmed_at IS NULL AND b.valid_until > ? "
                "ORDER BY b.seq LIMIT ?",
                (site_id, iso(now), MAX_PER_REPLY),
            ).fetchall()
        return [json.loads(r[0]) for r in rows]

    def bulletins(self, limit: int) -> list[dict[str, Any]]:
        """The newest bulletins first, each with `deliveries`: per site, when it confirmed."""
        with self._db.read() as db:
            rows = db.execute(
                "SELECT id, created_at, created_by, target, body FROM bulletins "
                "ORDER BY seq DESC LIMIT ?", (limit,),
            ).fetchall()
            out = []
            for bid, created_at, created_by, target, body in rows:
                sites = db.execute(
                    "SELECT site_id, received_at, confirmed_at FROM bulletin_sites "
                    "WHERE bulletin_id = ? ORDER BY site_id", (bid,),
                ).fetchall()
                out.append(json.loads(body) | {
                    "created_at": created_at,
                    "created_by": created_by,
                    "target": json.loads(target),
                    "deliveries": [
                        {"site_id": s, "received_at": r, "confirmed_at": c} for s, r, c in sites
                    ],
                })
        return out

    # -- report acknowledgements ----------------------------------------------------------------
    def ack_report(self, site_id: str, report_id: str, by: str, now: datetime) -> bool:
        """Record an operator's acknowledgement (the first one counts); False if it was there."""
        with self._db.write() as db:
            added = db.execute(
                "INSERT INTO report_acks(site_id, report_id, by, at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (site_id, report_id, by, iso(now)),
            ).rowcount
            if added:
                self._audit(db, now, by, "report_acknowledged", f"{site_id}/{report_id}", {})
        return bool(added)

    def report_acks(self) -> dict[tuple[str, str], dict[str, Any]]:
        with self._db.read() as db:
            rows = db.execute(
                "SELECT site_id, report_id, by, at, confirmed_at FROM report_acks"
            ).fetchall()
        return {(s, r): {"by": b, "at": a, "confirmed_at": c} for s, r, b, a, c in rows}

    def pending_report_acks(self, site_id: str) -> list[dict[str, Any]]:
        with self._db.read() as db:
            rows = db.execute(
                "SELECT report_id, by, at FROM report_acks WHERE site_id = ? "
                "AND confirmed_at IS NULL ORDER BY at LIMIT ?", (site_id, MAX_PER_REPLY),
            ).fetchall()
        return [{"report_id": r, "by": b, "at": a} for r, b, a in rows]

    # -- receipts and the log -------------------------------------------------------------------
    def receipt(self, site_id: str, of: str, notice_id: str, site_time: str,
                now: datetime) -> None:
        """The site holds this notice: stop repeating it (a second receipt changes nothing)."""
        with self._db.write() as db:
            if of == "bulletin":
                db.execute(
                    "UPDATE bulletin_sites SET received_at = ?, confirmed_at = ? "
                    "WHERE bulletin_id = ? AND site_id = ? AND confirmed_at IS NULL",
                    (site_time, iso(now), notice_id, site_id),
                )
            elif of == "report_ack":
                db.execute(
                    "UPDATE report_acks SET confirmed_at = ? "
                    "WHERE site_id = ? AND report_id = ? AND confirmed_at IS NULL",
                    (iso(now), site_id, notice_id),
                )

    def audit(self, limit: int) -> list[dict[str, Any]]:
        with self._db.read() as db:
            rows = db.execute(
                "SELECT at, who, action, subject, detail FROM audit ORDER BY seq DESC LIMIT ?",
                (limit,),
            ).fetchall()
        return [{"at": a, "who": w, "action": c, "subject": s, "detail": json.loads(d)}
                for a, w, c, s, d in rows]
