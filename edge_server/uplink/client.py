"""The uplink sender: drains the outbox to the C-NSP hub with signed batches and back-off.

    uplink = Uplink(site_id, key, settings, outbox, clock, on_acks=apply_hub_acks)
    await uplink.tick()        # one attempt if due: sends batches until the outbox is empty
    uplink.link_up()           # for readiness: did the last exchange succeed recently?
    await uplink.run(stop)     # the service's task: tick, then wait for new messages or back-off

Delivery is at-least-once with idempotent ids: a message leaves the outbox only after the hub
listed its id as held, so a lost reply or a kill -9 at any point causes a resend, never a loss;
the hub ignores an id it already holds, so nothing is stored twice.
Back-off after a failure doubles from backoff_min_s up to backoff_max_s, times a random factor in
[0.5, 1.0] (jitter: thousands of sites must not hammer a hub that comes back at the same second).
All timing reads the injected clock, so a 72-hour outage is simulated without sleeping.
"""

from __future__ import annotations

import asyncio
import logging
import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx

from edge_server.clock import Clock
from edge_server.uplink.outbox import Outbox
from edge_server.uplink.protocol import INGEST_PATH, encode_batch, sign_headers
from edge_server.uplink.settings import UplinkSettings

log = logging.getLogger(__name__)

# Called with the hub's acknowledgements for this site's alerts: [{"alert_id", "by", "at"}].
AckCallback = Callable[[list[dict[str, Any]]], None]


@dataclass
class ExchangeResult:
    ok: bool
    status_code: int | None
    sent: int = 0
    held: int = 0
    error: str = ""


class Uplink:
    def __init__(
        self,
        site_id: str,
        key: bytes,
        settings: UplinkSettings,
        outbox: Outbox,
        clock: Clock,
        on_acks: AckCallback | None = None,
        rng: random.Random | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.site_id = site_id
        self._key = key
        self.settings = settings
        self.outbox = outbox
        self.clock = clock
        self.on_acks = on_acks
        self._rng = rng or random.Random()
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self.failures = 0
        self.next_attempt_mono = clock.monotonic()
        self.last_ok_mono: float | None = None
        self.last_error = ""
        self.batch_size = settings.batch_size
        self._wake = asyncio.Event()
        self.batches_sent = 0

    # -- state for readiness and the site page ------------------------------------------------
    def link_up(self) -> bool:
        if self.last_ok_mono is None or self.failures:
            return False
        return self.clock.monotonic() - self.last_ok_mono <= self.settings.link_up_within_s

    def notify(self) -> None:
        """A new message is in the outbox: try now unless backing off."""
        self._wake.set()

    def enqueue(self, kind: str, body: dict[str, Any], at: datetime | None = None) -> str:
        """Store a message durably (returns its id) and wake the sender."""
        msg_id = self.outbox.enqueue(kind, body, at or self.clock.now())
        self.notify()
        return msg_id

    def due(self) -> bool:
        return self.clock.monotonic() >= self.next_attempt_mono

    def backoff_s(self) -> float:
        """The delay after the current run of failures (before jitter)."""
        exp = min(self.failures - 1, 30)
        return min(self.settings.backoff_max_s, self.settings.backoff_min_s * (2.0**exp))

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    # -- sending ---------------------------------------------------------------------------------
    def _http(self) -> httpx.AsyncClient:
        if self._client is None:
            self._client = httpx.AsyncClient(
                base_url=self.settings.hub_url.rstrip("/"),
                timeout=self.settings.timeout_s,
                transport=self._transport,
            )
        return self._client

    async def exchange_once(self) -> ExchangeResult:
        """Send one batch (possibly empty: it still fetches acks) and apply the reply."""
        batch = self.outbox.next_batch(self.batch_size)
        now = self.clock.now()
        body = encode_batch(self.site_id, str(uuid.uuid4()), now, [m.wire() for m in batch])
        headers = sign_headers(self.site_id, self._key, body, int(now.timestamp()))
        try:
            resp = await self._http().post(INGEST_PATH, content=body, headers=headers)
        except httpx.HTTPError as exc:
            return ExchangeResult(False, None, len(batch), error=f"{type(exc).__name__}: {exc}")
        if resp.status_code == 413 and self.batch_size > 1:
            self.batch_size = max(1, self.batch_size // 2)
            return ExchangeResult(False, 413, len(batch), error="batch too large; halved")
        if resp.status_code != 200:
            return ExchangeResult(
                False,
                resp.status_code,
                len(batch),
                error=f"HTTP {resp.status_code}: {resp.text[:200]}",
            )
        try:
            reply = resp.json()
            held = [str(i) for i in reply.get("held", [])]
            acks = list(reply.get("acks", []))
        except (ValueError, AttributeError, TypeError) as exc:
            return ExchangeResult(False, 200, len(batch), error=f"bad reply: {exc}")
        sent_ids = {m.id for m in batch}
        removed = self.outbox.ack([i for i in held if i in sent_ids])
        if acks and self.on_acks is not None:
            try:
                self.on_acks(acks)
            except Exception:  # the callback's bug must not stop delivery
                log.exception("uplink: applying hub acknowledgements failed")
        self.batches_sent += 1
        return ExchangeResult(True, 200, len(batch), removed)

    async def attempt(self) -> bool:
        """Send batches until the outbox is empty or a send fails; schedules the next attempt."""
        while True:
            result = await self.exchange_once()
            if result.ok:
                first_ok = self.failures > 0
                self.failures = 0
                self.last_ok_mono = self.clock.monotonic()
                self.last_error = ""
                if first_ok:
                    log.info("uplink: link to the hub is up again")
                if self.outbox.pending() == 0 or result.held == 0:
                    self.next_attempt_mono = (
                        self.clock.monotonic() + self.settings.status_interval_s
                    )
                    return True
                continue
            if result.status_code == 413 and self.batch_size > 1:
                continue
            self.failures += 1
            delay = self.backoff_s() * self._rng.uniform(0.5, 1.0)
            self.next_attempt_mono = self.clock.monotonic() + delay
            level = logging.WARNING if self.failures == 1 else logging.DEBUG
            log.log(level, "uplink: send failed (%s); retry in %.0f s", result.error, delay)
            self.last_error = result.error
            return False

    async def tick(self) -> bool | None:
        """One attempt if due (None when not due)."""
        if not self.due():
            return None
        return await self.attempt()

    async def run(self, stop: asyncio.Event) -> None:
        """The service task: attempt when due or woken by a new message (not while backing off)."""
        while not stop.is_set():
            if self._wake.is_set() and self.failures == 0:
                self.next_attempt_mono = min(self.next_attempt_mono, self.clock.monotonic())
            self._wake.clear()
            await self.tick()
            wait_s = max(0.05, self.next_attempt_mono - self.clock.monotonic())
            waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
            try:
                await asyncio.wait(waiters, timeout=wait_s, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for w in waiters:
                    w.cancel()
        await self.aclose()
