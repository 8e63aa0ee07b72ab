"""The uplink part of the edge service: outbox + sender, wired to the rules engine.

Built by edge_server.service with the rules part and storage's event log, and started after
the rules:
- every message the rules engine emits ({"kind", "at", "body"}) goes into the durable outbox;
- the engine's readiness asks `Uplink.link_up()` (a link down for long makes the site DEGRADED);
- acknowledgements made at the C-NSP hub come back in ingest replies and are applied to the
  site's alerts as "<operator> (C-NSP)";
- a message the hub refuses for good goes to the outbox's dead letters and is recorded as an
  event UPLINK_DEAD_LETTER (severity warning) in storage's event log; `status()` counts them.
With [uplink] enabled = false nothing is started and link_up() is None ("no uplink configured").
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge_server.clock import Clock
from edge_server.rules.component import RulesComponent, RulesEngine
from edge_server.storage.component import EventLog
from edge_server.uplink.client import Uplink
from edge_server.uplink.outbox import DeadLetter, Outbox
from edge_server.uplink.protocol import parse_iso
from edge_server.uplink.settings import UplinkSettings

log = logging.getLogger(__name__)
OUTBOX_FILE = "outbox.sqlite"


class UplinkComponent:
    def __init__(
        self,
        site_id: str,
        settings: UplinkSettings,
        data_dir: Path,
        clock: Clock,
        *,
        rules: RulesComponent | None = None,
        events: EventLog | None = None,
    ) -> None:
        self.site_id = site_id
        self.settings = settings
        self.data_dir = data_dir
        self.clock = clock
        self.rules = rules
        self.events = events
        self.uplink: Uplink | None = None
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        # Called with each 200 reply of the hub (edge_server/crisis: bulletins, report acks).
        self.reply_listeners: list[Callable[[dict[str, Any]], object]] = []

    def link_up(self) -> bool | None:
        return None if self.uplink is None else self.uplink.link_up()

    def status(self) -> dict[str, Any]:
        """The uplink for people (/metrics, the technician): see Uplink.status()."""
        if self.uplink is None:
            return {"enabled": False}
        return {"enabled": True, **self.uplink.status()}

    def put(self, message: dict[str, Any]) -> None:
        """A rules-engine sink: {"kind", "at" (ISO), "body"[, "id"]} -> the outbox. A message
        with an id was committed with its alert record in site.db (the hand-off); it is let go
        there only once the outbox has committed it, so a crash in between loses nothing."""
        if self.uplink is None:
            return
        msg_id = message.get("id")
        self.uplink.enqueue(str(message["kind"]), dict(message["body"]), parse_iso(message["at"]),
                            msg_id)
        engine = self._engine()
        if msg_id is not None and engine is not None:
            engine.handed_off(str(msg_id))

    def _take_handoff(self, engine: RulesEngine) -> None:
        """What the rules committed but a crash kept from the outbox: moved now, in order."""
        pending = engine.pending_handoff()
        for message in pending:
            self.put(message)
        if pending:
            log.warning("uplink: %d alert message(s) committed before a crash were moved into "
                        "the outbox now", len(pending))

    def _apply_acks(self, acks: list[dict[str, Any]]) -> None:
        engine = self._engine()
        if engine is None:
            return
        now = self.clock.now()
        for ack in acks:
            try:
                engine.acknowledge(int(ack["alert_id"]), f"{ack['by']} (C-NSP)", now)
                log.info("alert %s acknowledged at the C-NSP by %s", ack["alert_id"], ack["by"])
            except Exception as exc:  # already acknowledged here, or unknown: nothing to do
                log.debug("hub ack %s not applied: %s", ack.get("alert_id"), exc)

    def _dead_letter_event(self, dead: DeadLetter) -> None:
        """An event in storage's log (the rules own alerts; this is the system's own record)."""
        if self.events is None:
            return
        self.events.add_event(
            parse_iso(dead.refused_at),
            "UPLINK_DEAD_LETTER",
            severity="warning",
            text_en=f"The C-NSP hub refused {dead.kind} message {dead.id}: {dead.reason}",
            text_nl=f"De C-NSP-hub weigerde {dead.kind}-bericht {dead.id}: {dead.reason}",
            data=dead.summary(),
        )

    def _on_reply(self, reply: dict[str, Any]) -> None:
        for listener in list(self.reply_listeners):
            try:
                listener(reply)
            except Exception:  # one listener's fault must not keep the reply from the others
                log.exception("uplink: a reply listener failed")

    def _engine(self) -> RulesEngine | None:
        return None if self.rules is None else self.rules.engine

    async def start(self) -> None:
        if not self.settings.enabled:
            log.info("uplink disabled ([uplink] enabled = false)")
            return
        outbox = Outbox(self.data_dir / OUTBOX_FILE)
        self.uplink = Uplink(
            self.site_id,
            self.settings.load_key(),
            self.settings,
            outbox,
            self.clock,
            on_acks=self._apply_acks,
            on_dead_letter=self._dead_letter_event,
            on_reply=self._on_reply,
        )
        engine = self._engine()
        if engine is not None:
            engine.add_sink(self.put, durable=True)
            engine.uplink_up = self.link_up
            self._take_handoff(engine)
        self._stop.clear()
        self._task = asyncio.create_task(self.uplink.run(self._stop), name="uplink")

    async def stop(self) -> None:
        self._stop.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout=5)
            except TimeoutError:
                self._task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await self._task
            self._task = None
        if self.uplink is not None:
            await self.uplink.aclose()
            self.uplink.outbox.close()
            self.uplink = None
