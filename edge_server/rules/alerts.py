"""Alert records in SQLite (<data_dir>/site.db, table `alerts`): raised -> acknowledged -> cleared.

One open alert per (code, subject) at most (a partial unique index enforces it), so a restarted
evaluator that resumes the open alerts cannot raise one twice. Events (MAINS_RESTORED,
NODE_REBOOTED) are stored as records that are raised and cleared at the same moment.

The uplink hand-off (a transactional outbox): with `handoff=True` every change also writes its
uplink message, with its message id, into the table `uplink_handoff` IN THE SAME TRANSACTION as
the alert row. The uplink moves it into its outbox under that id and then deletes it here; after
a crash at any point the uplink moves what is left at its next start (`pending_handoff()`). So
an alert raised at the site always reaches the C-NSP, and exactly once: the hub keeps one copy
per message id (docs/uplink-protocol.md).
"""

from __future__ import annotations

import json
import sqlite3
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from edge_server.rules.engine import Transition
from edge_server.storage.db import migrate

SCHEMA = [
    """
    CREATE TABLE alerts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        kind TEXT NOT NULL CHECK (kind IN ('alert', 'event')),
        code TEXT NOT NULL,
        subject TEXT NOT NULL,
        severity TEXT NOT NULL CHECK (severity IN ('info', 'warning', 'critical')),
        raised_at TEXT NOT NULL,
        acknowledged_at TEXT,
        acknowledged_by TEXT,
        cleared_at TEXT,
        text_en TEXT NOT NULL,
        text_nl TEXT NOT NULL,
        channel TEXT NOT NULL DEFAULT '',
        value REAL
    );
    CREATE UNIQUE INDEX alerts_one_open ON alerts(code, subject) WHERE cleared_at IS NULL;
    CREATE INDEX alerts_raised ON alerts(raised_at);
    """,
    """
    CREATE TABLE uplink_handoff (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        id TEXT NOT NULL UNIQUE,
        kind TEXT NOT NULL,
        at TEXT NOT NULL,
        body TEXT NOT NULL
    );
    """,
]

Message = dict[str, Any]

AlertStateName = Literal["raised", "acknowledged", "cleared"]


class AlertNotFound(LookupError):
    pass


class AlreadyAcknowledged(ValueError):
    pass


@dataclass(frozen=True, slots=True)
class Alert:
    id: int
    kind: str
    code: str
    subject: str
    severity: str
    raised_at: datetime
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    cleared_at: datetime | None
    text_en: str
    text_nl: str
    channel: str
    value: float | None

    @property
    def state(self) -> AlertStateName:
        if self.cleared_at is not None:
            return "cleared"
        return "acknowledged" if self.acknowledged_at is not None else "raised"

    @property
    def open(self) -> bool:
        return self.cleared_at is None

    def to_json(self) -> dict[str, Any]:
        """The uplink `alert` body (docs/interfaces.md) plus id, kind and subject."""
        return {
            "id": self.id,
            "alert_id": str(self.id),
            "kind": self.kind,
            "code": self.code,
            "subject": self.subject,
            "severity": self.severity,
            "state": self.state,
            "raised_at": self.raised_at.isoformat(),
            "acknowledged_at": _iso(self.acknowledged_at),
            "acknowledged_by": self.acknowledged_by,
            "cleared_at": _iso(self.cleared_at),
            "text_en": self.text_en,
            "text_nl": self.text_nl,
            "channel": self.channel,
            "value": self.value,
        }


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat()


def _dt(s: str | None) -> datetime | None:
    return None if s is None else datetime.fromisoformat(s)


_COLS = ("id, kind, code, subject, severity, raised_at, acknowledged_at, acknowledged_by, "
         "cleared_at, text_en, text_nl, channel, value")


def _row(r: tuple[Any, ...]) -> Alert:
    return Alert(int(r[0]), r[1], r[2], r[3], r[4], datetime.fromisoformat(r[5]), _dt(r[6]), r[7],
                 _dt(r[8]), r[9], r[10], r[11], r[12])


def uplink_message(alert: Alert, at: datetime) -> Message:
    """The uplink message for a changed record: {"kind", "at", "body"} (docs/schemas)."""
    if alert.kind == "event":
        body: Message = {
            "code": alert.code, "text_en": alert.text_en, "text_nl": alert.text_nl,
            "subject": alert.subject, "at": at.isoformat(), "value": alert.value,
        }
        return {"kind": "event", "at": at.isoformat(), "body": body}
    return {"kind": "alert", "at": at.isoformat(), "body": alert.to_json()}


class AlertStore:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn
        self.handoff = False  # write each change's uplink message in its transaction
        migrate(conn, "alerts", SCHEMA)

    def _hand_off(self, alert: Alert, at: datetime) -> Message:
        """The change's uplink message; with `handoff`, also stored in the open transaction."""
        msg = uplink_message(alert, at)
        if self.handoff:
            msg["id"] = str(uuid.uuid4())
            self.conn.execute(
                "INSERT INTO uplink_handoff(id, kind, at, body) VALUES (?, ?, ?, ?)",
                (msg["id"], msg["kind"], msg["at"],
                 json.dumps(msg["body"], separators=(",", ":"), ensure_ascii=False)),
            )
        return msg

    def pending_handoff(self) -> list[Message]:
        """Messages written with their change but not yet in the uplink's outbox, oldest first."""
        rows = self.conn.execute(
            "SELECT id, kind, at, body FROM uplink_handoff ORDER BY seq").fetchall()
        return [{"id": r[0], "kind": r[1], "at": r[2], "body": json.loads(r[3])} for r in rows]

    def handed_off(self, msg_id: str) -> None:
        """The uplink holds `msg_id` in its outbox now (committed there): forget it here."""
        with self.conn:
            self.conn.execute("DELETE FROM uplink_handoff WHERE id = ?", (msg_id,))

    def get(self, alert_id: int) -> Alert:
        r = self.conn.execute(f"SELECT {_COLS} FROM alerts WHERE id = ?", (alert_id,)).fetchone()
        if r is None:
            raise AlertNotFound(f"no alert with id {alert_id}")
        return _row(r)

    def query(self, *, open_only: bool, limit: int = 500) -> list[Alert]:
        where = "WHERE cleared_at IS NULL" if open_only else ""
        rows = self.conn.execute(
            f"SELECT {_COLS} FROM alerts {where} ORDER BY id DESC LIMIT ?", (limit,)
        ).fetchall()
        return [_row(r) for r in rows]

    def open_alerts(self) -> list[Alert]:
        return self.query(open_only=True, limit=100000)

    def last_events(self, code: str) -> dict[str, datetime]:
        """subject -> time of the newest event `code` (e.g. the last refuel per tank)."""
        rows = self.conn.execute(
            "SELECT subject, max(raised_at) FROM alerts WHERE kind = 'event' AND code = ? "
            "GROUP BY subject", (code,),
        ).fetchall()
        return {str(subject): datetime.fromisoformat(at) for subject, at in rows}

    def count_open(self) -> int:
        return int(self.conn.execute(
            "SELECT count(*) FROM alerts WHERE cleared_at IS NULL").fetchone()[0])

    def apply(self, tr: Transition, now: datetime | None = None) -> tuple[Alert, Message] | None:
        """Store a transition; the changed record and its uplink message stamped `now` (the
        evaluation; default the transition's time), or None for a clear with nothing open.
        With `handoff` the message is committed with the record."""
        with self.conn:
            alert = self._apply(tr)
            return None if alert is None else (alert, self._hand_off(alert, now or tr.at))

    def _apply(self, tr: Transition) -> Alert | None:
        at = tr.at.isoformat()
        if tr.kind == "raise":
            cur = self.conn.execute(
                "INSERT INTO alerts(kind, code, subject, severity, raised_at, text_en, text_nl,"
                " channel, value) VALUES ('alert', ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (tr.code, tr.subject, tr.severity.value, at, tr.text_en, tr.text_nl,
                 tr.channel, tr.value),
            )
            if cur.rowcount == 0:  # already open (should not happen after resume)
                return None
            return self.get(int(cur.lastrowid or 0))
        if tr.kind == "clear":
            row = self.conn.execute(
                "SELECT id FROM alerts WHERE code = ? AND subject = ? AND cleared_at IS NULL",
                (tr.code, tr.subject),
            ).fetchone()
            if row is None:
                return None
            self.conn.execute("UPDATE alerts SET cleared_at = ? WHERE id = ?", (at, row[0]))
            return self.get(int(row[0]))
        cur = self.conn.execute(
            "INSERT INTO alerts(kind, code, subject, severity, raised_at, cleared_at, text_en,"
            " text_nl, channel, value) VALUES ('event', ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (tr.code, tr.subject, tr.severity.value, at, at, tr.text_en, tr.text_nl,
             tr.channel, tr.value),
        )
        return self.get(int(cur.lastrowid or 0))

    def acknowledge(self, alert_id: int, by: str, at: datetime) -> tuple[Alert, Message]:
        """Record who acknowledged; the record and its uplink message (see apply)."""
        if not by.strip():
            raise ValueError("acknowledged_by: give the user name of who acknowledges")
        with self.conn:
            alert = self.get(alert_id)
            if alert.acknowledged_at is not None:
                raise AlreadyAcknowledged(
                    f"alert {alert_id} was already acknowledged by {alert.acknowledged_by} "
                    f"at {alert.acknowledged_at.isoformat()}"
                )
            self.conn.execute(
                "UPDATE alerts SET acknowledged_at = ?, acknowledged_by = ? WHERE id = ?",
                (at.isoformat(), by, alert_id),
            )
            alert = self.get(alert_id)
            return alert, self._hand_off(alert, at)
