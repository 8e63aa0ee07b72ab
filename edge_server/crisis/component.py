"""The crisis part of the edge service: the site's crisis store, the inbox for the hub's signed
notices, and what the kiosk page reads.

Built by edge_server.service after the uplink and started after it (it listens to the uplink's
replies). Without an uplink (or with [uplink] enabled = false) the kiosk still shows the bulletins
kept before, and the site's state.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

from edge_server.clock import Clock
from edge_server.crisis.inbox import CrisisInbox
from edge_server.crisis.kiosk import KioskSource
from edge_server.crisis.store import FILE_NAME, CrisisStore
from edge_server.rules.component import RulesComponent
from edge_server.uplink.component import UplinkComponent

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

    async def start(self) -> None:
        self.store = CrisisStore(self.data_dir / FILE_NAME)
        self.source = KioskSource(self.store, self.clock, self.site_name or self.site_id,
                                  self._status, self._link_up)
        sender = None if self.uplink is None else self.uplink.uplink
        if self.uplink is not None and sender is not None:
            self.inbox = CrisisInbox(self.store, self.site_id, self.uplink.settings.load_key(),
                                     sender.enqueue, self.clock)
            self.uplink.reply_listeners.append(self.inbox.take)

    async def stop(self) -> None:
        if self.uplink is not None and self.inbox is not None:
            self.uplink.reply_listeners.remove(self.inbox.take)
        self.inbox = None
        self.source = None
        if self.store is not None:
            self.store.close()
            self.store = None
