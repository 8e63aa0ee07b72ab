"""What the site takes from its hub's replies: verified bulletins and report acknowledgements.

    inbox = CrisisInbox(store, site_id, key, enqueue, clock)
    uplink_component.reply_listeners.append(inbox.take)    # each 200 reply of the hub

Every notice is verified with the site's own key (edge_server/uplink/notices.py) before anything
of it is kept: an unsigned notice, one signed with another key or for another site, or a
malformed one is refused and logged (the kiosk shows residents only what came from their C-NSP).
A kept notice is confirmed with a `receipt` message through the outbox, so the hub stops
repeating it; it is confirmed again when it comes again (a crash between keeping it and queueing
the receipt must not make the hub repeat it forever: the site keeps each id once).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from edge_server.clock import Clock
from edge_server.crisis.store import CrisisStore
from edge_server.uplink.notices import NoticeRefused, open_notice, read_bulletin, read_report_ack
from edge_server.uplink.protocol import iso

log = logging.getLogger(__name__)

# (kind, body, at) -> the outbox (Uplink.enqueue)
Enqueue = Callable[[str, dict[str, Any], datetime], Any]


@dataclass
class Taken:
    bulletins_new: int = 0
    acks: int = 0
    refused: int = 0


class CrisisInbox:
    def __init__(self, store: CrisisStore, site_id: str, key: bytes, enqueue: Enqueue,
                 clock: Clock) -> None:
        self.store = store
        self.site_id = site_id
        self._key = key
        self._enqueue = enqueue
        self.clock = clock
        self.refused = 0  # since start, for the technician (/metrics)

    def take(self, reply: dict[str, Any]) -> Taken:
        now = self.clock.now()
        taken = Taken()
        for item in _items(reply, "bulletins"):
            try:
                bulletin = read_bulletin(open_notice(self._key, self.site_id, item))
            except NoticeRefused as exc:
                self._refuse("bulletin", exc)
                taken.refused += 1
                continue
            if self.store.keep_bulletin(bulletin, now):
                taken.bulletins_new += 1
                log.info("bulletin %s from the C-NSP kept: %s", bulletin.id, bulletin.title_nl)
            self._receipt("bulletin", bulletin.id, now)
        for item in _items(reply, "report_acks"):
            try:
                ack = read_report_ack(open_notice(self._key, self.site_id, item))
            except NoticeRefused as exc:
                self._refuse("report acknowledgement", exc)
                taken.refused += 1
                continue
            if self.store.acknowledged(ack.report_id, ack.by, ack.at, now):
                taken.acks += 1
            self._receipt("report_ack", ack.report_id, now)
        return taken

    def _refuse(self, what: str, exc: NoticeRefused) -> None:
        self.refused += 1
        log.warning("uplink: a %s in the hub's reply was refused: %s", what, exc)

    def _receipt(self, of: str, notice_id: str, now: datetime) -> None:
        self._enqueue("receipt", {"of": of, "id": notice_id, "received_at": iso(now)}, now)


def _items(reply: dict[str, Any], field: str) -> list[Any]:
    items = reply.get(field)
    return items if isinstance(items, list) else []
