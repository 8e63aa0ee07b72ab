"""The crisis part of the edge service: the site's crisis store, the inbox for the hub's signed
notices, and what the kiosk page reads.

Built by edge_server.service after the uplink and started after it (it listens to the uplink's
replies). Without an uplink (or with [uplink] enabled = false) the kiosk still shows the bulletins
kept before, and the site's state.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

from edge_server.clock import Clock
from edge_server.crisis.inbox import CrisisInbox
from edge_server.crisis.kiosk import KioskSource
from edge_server.crisis.store import FILE_NAME, CrisisStore
from edge_server.rules.component import RulesComponent
from edge_server.uplink.component import UplinkComponent
from edge_server.uplink.protocol import ReportBody, iso, parse_iso

log = logging.getLogger(__name__)


class CrisisComponent:
    def __init__(self, site_id: str, site_name: str, data_dir: Path, clock: Clock, *,
                 uplink: UplinkComponent | None = None,
                 rules: RulesComponent | None = None) -> None:
        self.site_id = site_id
        self.site_name = site_name
        self.data_dir = data_dir
        self.clock = clock
        self.uplink = uplink
        self.rules = rules
        self.store: CrisisStore | None = None
        self.inbox: CrisisInbox | None = None
        self.source: KioskSource | None = None  # the kiosk's data (edge_server/crisis/kiosk.py)

    def _status(self, now: datetime) -> dict[str, Any] | None:
        engine = None if self.rules is None else self.rules.engine
        return None if engine is None else dict(engine.status_body(now))

    def _link_up(self) -> bool | None:
        return None if self.uplink is None else self.uplink.link_up()

    def _on_reply(self, reply: dict[str, Any]) -> None:
        """The hub's reply: reports it now holds, then its signed notices."""
        held = reply.get("held")
        if self.store is not None and isinstance(held, list):
            self.store.delivered([str(h) for h in held], self.clock.now())
        if self.inbox is not None:
            self.inbox.take(reply)

    def report(self, fields: dict[str, Any], by: str) -> dict[str, Any]:
        """An emergency report typed by staff: committed here first, then into the outbox
        under the same message id (ahead of everything else there); a crash in between is
        repaired at the next start (`_take_handoff`), so it is delayed, never lost."""
        if self.store is None:
            raise RuntimeError("the crisis part is not running")
        now = self.clock.now()
        body = ReportBody.model_validate(fields | {
            "report_id": str(uuid.uuid4()), "reported_by": by, "reported_at": iso(now),
        }).model_dump()
        msg_id = str(uuid.uuid4())
        self.store.add_report(body, msg_id, now)
        self._hand_off(msg_id, body, now)
        log.warning("emergency report %s (%s, %s) by %s queued for the C-NSP",
                    body["report_id"], body["kind"], body["urgency"], by)
        return body

    def _hand_off(self, msg_id: str, body: dict[str, Any], at: datetime) -> None:
        sender = None if self.uplink is None else self.uplink.uplink
        if sender is None or self.store is None:
            return  # no uplink: the report stays in the store (and on the page) as not sent
        sender.enqueue("report", body, at, msg_id)
        self.store.handed_off(body["report_id"])

    def _take_handoff(self) -> None:
        assert self.store is not None
        pending = self.store.not_handed_off()
        for msg_id, body, created_at in pending:
            self._hand_off(msg_id, body, parse_iso(created_at))
        if pending:
            log.warning("crisis: %d emergency report(s) committed before a crash were moved "
                        "into the outbox now", len(pending))

    async def start(self) -> None:
        self.store = CrisisStore(self.data_dir / FILE_NAME)
        self.source = KioskSource(self.store, self.clock, self.site_name or self.site_id,
                                  self._status, self._link_up)
        sender = None if self.uplink is None else self.uplink.uplink
        if self.uplink is not None and sender is not None:
            self.inbox = CrisisInbox(self.store, self.site_id, self.uplink.settings.load_key(),
                                     sender.enqueue, self.clock)
            self.uplink.reply_listeners.append(self._on_reply)
        self._take_handoff()

    async def stop(self) -> None:
        if self.uplink is not None and self.inbox is not None:
            self.uplink.reply_listeners.remove(self._on_reply)
        self.inbox = None
        self.source = None
        if self.store is not None:
            self.store.close()
            self.store = None
