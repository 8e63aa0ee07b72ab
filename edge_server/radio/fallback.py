"""The edge's fallback to the backup radio when the primary uplink is down.

After the primary link has been down for `fallback_after_min` (default 10), the radio sends every
emergency report the hub does not hold yet as a compact report frame (first of all, twice
`REPORT_REPEAT_S` apart: nothing comes back over the air to say it arrived), the compact status
when the readiness changes and otherwise every `status_every_min`, and every raised critical
alert once as a compact alert frame, within the duty cycle and in priority order (queue.py).
When the primary link is back the radio stops and its queue is dropped: the outbox kept every
message and delivers them over the primary link, in order (the hub holds each id once; a fact
that came by radio first stays marked so in the hub's messages).

`tick(now)` is the whole decision, with the clock passed in; `start()`/`stop()` run it every
second as a task. Radio is best effort: what was sent is kept in memory only, so after a
restart an alert or a report may go once more by radio (the hub holds one alert row, and a
report's radio copies are one message; the primary link still delivers everything exactly once,
the report in full).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from edge_server.clock import Clock
from edge_server.crisis.component import CrisisComponent
from edge_server.radio.budget import DutyCycleBudget
from edge_server.radio.queue import Pending, Priority, RadioQueue
from edge_server.radio.settings import RadioSettings
from edge_server.radio.transport import SerialRadio, Transport, frame_airtime_s
from edge_server.rules.component import RulesComponent
from edge_server.uplink.compact import encode_alert, encode_report, encode_status
from edge_server.uplink.component import UplinkComponent

log = logging.getLogger(__name__)

REPORT_SENDS = 2  # times one report goes by radio while the link is down
REPORT_REPEAT_S = 600.0  # between them: a lost packet is not followed by the same fade


@dataclass(frozen=True)
class Sent:
    at: datetime
    kind: str
    priority: Priority
    airtime_s: float
    payload: dict[str, Any]


class RadioFallback:
    def __init__(
        self,
        site_id: str,
        key: bytes | Callable[[], bytes],
        settings: RadioSettings,
        clock: Clock,
        transport: Transport,
        link_up: Callable[[], bool | None],
        status: Callable[[datetime], dict[str, Any]],
        open_alerts: Callable[[], list[dict[str, Any]]],
        reports: Callable[[], list[dict[str, Any]]] | None = None,
    ) -> None:
        self.site_id = site_id
        # A callable is read at start(): reading the key file is I/O, not for a constructor.
        self._key_source = key
        self.key = key if isinstance(key, bytes) else b""
        self.settings = settings
        self.clock = clock
        self.transport = transport
        self._link_up = link_up
        self._status = status
        self._open_alerts = open_alerts
        # Bodies of the emergency reports the hub does not hold yet (CrisisStore.undelivered).
        self._reports = reports or (lambda: [])
        self.budget = DutyCycleBudget(duty_cycle=settings.duty_cycle)
        self.queue = RadioQueue()
        self.sent: list[Sent] = []
        self.active = False
        self._down_since: float | None = None
        self._last_readiness: tuple[Any, ...] | None = None
        self._last_status_at: float | None = None
        self._alerts_queued: set[str] = set()
        self._reports_queued: set[str] = set()
        self._report_sends: dict[str, tuple[int, float]] = {}  # report_id -> (sends, last)
        self._busy_until = 0.0
        self._last_ts = 0
        self._task: asyncio.Task[None] | None = None

    # -- the decision ------------------------------------------------------------------------
    def tick(self, now: datetime) -> Sent | None:
        mono = self.clock.monotonic()
        if self._link_up() is not False:  # up, or not known yet: the primary link is in charge
            if self.active:
                log.info("radio: the primary uplink is back; the radio stops")
            self.active = False
            self._down_since = None
            self.queue = RadioQueue()
            self._reports_queued.clear()
            return None
        if self._down_since is None:
            self._down_since = mono
        if mono - self._down_since < self.settings.fallback_after_min * 60:
            return None
        if not self.active:
            log.warning("radio: primary uplink down for %.0f min; sending by radio",
                        (mono - self._down_since) / 60)
            self.active = True
            self._last_readiness = None
            self._last_status_at = None
        self._queue_facts(now, mono)
        return self._send_next(now, mono)

    def _queue_facts(self, now: datetime, mono: float) -> None:
        for report in self._reports():
            rid = str(report.get("report_id"))
            sends, last = self._report_sends.get(rid, (0, 0.0))
            if (rid not in self._reports_queued and sends < REPORT_SENDS
                    and (sends == 0 or mono - last >= REPORT_REPEAT_S)):
                self._reports_queued.add(rid)
                self.queue.push(Priority.REPORT, "report", report, mono)
        for alert in self._open_alerts():
            aid = str(alert.get("alert_id"))
            if (alert.get("severity") == "critical" and alert.get("state") == "raised"
                    and alert.get("kind", "alert") == "alert" and aid not in self._alerts_queued):
                self._alerts_queued.add(aid)
                self.queue.push(Priority.CRITICAL_ALERT, "alert", alert, mono)
        status = self._status(now)
        essence = (status.get("readiness"),
                   tuple(str(r.get("code")) for r in status.get("reasons") or []))
        if essence != self._last_readiness:
            self._last_readiness = essence
            self._last_status_at = mono
            self.queue.push(Priority.READINESS_CHANGE, "status", status, mono)
        elif (self._last_status_at is None
              or mono - self._last_status_at >= self.settings.status_every_min * 60):
            self._last_status_at = mono
            self.queue.push(Priority.PERIODIC_STATUS, "status", status, mono)

    def _frame(self, item: Pending, now: datetime) -> bytes:
        # Strictly increasing frame times: the hub refuses a frame not newer than the last.
        ts = max(int(now.timestamp()), self._last_ts + 1)
        at = datetime.fromtimestamp(ts, now.tzinfo)
        if item.kind == "alert":
            return encode_alert(self.site_id, self.key, item.payload, at)
        if item.kind == "report":
            return encode_report(self.site_id, self.key, item.payload, at)
        return encode_status(self.site_id, self.key, item.payload, at)

    def _airtime(self, item: Pending) -> float:
        # The frame's length does not depend on its time: encode with a fixed one to measure.
        frame = self._frame(item, datetime.fromtimestamp(self._last_ts + 1))
        return frame_airtime_s(self.transport.params, self.site_id, frame)

    def _send_next(self, now: datetime, mono: float) -> Sent | None:
        if mono < self._busy_until:  # one radio: the last packet is still on air
            return None
        item, _when = self.queue.next_due(mono, self.budget, self._airtime)
        if item is None:
            return None
        frame = self._frame(item, now)
        self._last_ts = int.from_bytes(frame[2:6], "big")
        airtime = self.transport.send(self.site_id, frame)
        self.budget.record(mono, airtime)
        self.queue.remove(item)
        self._busy_until = mono + airtime
        if item.kind == "report":
            rid = str(item.payload.get("report_id"))
            self._reports_queued.discard(rid)
            self._report_sends[rid] = (self._report_sends.get(rid, (0, 0.0))[0] + 1, mono)
            log.warning("radio: emergency report %s sent by radio (%d bytes, %.2f s on air)",
                        rid, len(frame), airtime)
        sent = Sent(now, item.kind, item.priority, airtime, item.payload)
        self.sent.append(sent)
        return sent

    # -- the task ------------------------------------------------------------------------------
    async def start(self) -> None:
        if not isinstance(self._key_source, bytes):
            self.key = self._key_source()
        self.transport.open()
        self._task = asyncio.create_task(self._run(), name="radio")

    async def _run(self) -> None:
        while True:
            try:
                self.tick(self.clock.now())
            except Exception:  # a radio fault must not end the service
                log.exception("radio: tick failed")
            await asyncio.sleep(1.0)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        self.transport.close()


def build_fallback(
    site_id: str,
    settings: RadioSettings,
    uplink: UplinkComponent,
    rules: RulesComponent,
    clock: Clock,
    crisis: CrisisComponent | None = None,
) -> RadioFallback:
    """The service's wiring (edge_server/service.py): the rules' status and open alerts, the
    crisis part's undelivered reports, the uplink's link state and key, a serial modem. No I/O
    here: start() opens the port."""

    def status(now: datetime) -> dict[str, Any]:
        if rules.engine is None:
            return {"readiness": "UNKNOWN", "reasons": []}
        return rules.engine.status_body(now)

    def open_alerts() -> list[dict[str, Any]]:
        if rules.engine is None:
            return []
        return [a.to_json() for a in rules.engine.store.open_alerts()]

    def reports() -> list[dict[str, Any]]:
        store = None if crisis is None else crisis.store
        return [] if store is None else store.undelivered()

    transport = SerialRadio(settings.port, settings.params(), settings.baudrate)
    return RadioFallback(site_id, uplink.settings.load_key, settings, clock, transport,
                         uplink.link_up, status, open_alerts, reports)
