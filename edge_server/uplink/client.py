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

What the hub's answers mean (docs/uplink-protocol.md, "Refused messages / dead letters"):
- no answer, 5xx, 429, 408, 401 (key, clock, registration), 404, site_mismatch...: nothing is
  wrong with the messages; they stay queued and the sender backs off. 401 is logged at ERROR:
  only a person can fix it.
- 400/422 (bad_json, invalid, duplicate_id) and 413 for a single message: the hub refuses the
  batch's content for good, and the same bytes will be refused again. A refused batch of several
  messages is split (the hub's `messages.N` in the error points at the culprit; else halves)
  until the culprit travels alone; refused alone, it moves to the outbox's dead letters and the
  messages behind it go on, in order. One bad message can no longer hold up a fridge alarm.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx

from edge_server.clock import Clock
from edge_server.uplink.outbox import DeadLetter, Outbox, OutMessage
from edge_server.uplink.protocol import (
    HEADER_HUB_TIME,
    INGEST_PATH,
    encode_batch,
    sign_headers,
)
from edge_server.uplink.settings import UplinkSettings

log = logging.getLogger(__name__)

# Called with the hub's acknowledgements for this site's alerts: [{"alert_id", "by", "at"}].
AckCallback = Callable[[list[dict[str, Any]]], None]
# Called after a message moved to the dead letters (the service records an event).
DeadLetterCallback = Callable[[DeadLetter], None]
# Called with every 200 reply (after the outbox let go of `held`): the signed bulletins and
# report acknowledgements in it are edge_server/crisis's (docs/uplink-protocol.md, 1b).
ReplyCallback = Callable[[dict[str, Any]], object]

# 400/422 refuse what a batch holds. site_mismatch is about the site's setup (the batch's
# site_id differs from X-NSP-Site), not about a message: splitting the batch cannot help.
_CONTENT_REFUSALS = frozenset({400, 422})
_NOT_A_MESSAGE_CODES = frozenset({"site_mismatch"})
_MESSAGE_INDEX = re.compile(r"(?:^|; )messages\.(\d+)\.")
_REASON_CHARS = 500


def is_message_refusal(status: int | None, code: str, n_messages: int) -> bool:
    """Does this answer refuse the messages themselves, for good (not the link or the site)?"""
    if status is None or n_messages == 0:  # an empty batch refused: no message is to blame
        return False
    if status == 413:  # too large: only a single message is hopeless
        return n_messages == 1
    return status in _CONTENT_REFUSALS and code not in _NOT_A_MESSAGE_CODES


def culprit_index(reason: str, n_messages: int) -> int | None:
    """The first `messages.N` the hub's error names (our hub's `invalid` does), else None."""
    found = [int(i) for i in _MESSAGE_INDEX.findall(reason)]
    first = min(found, default=None)
    return first if first is not None and first < n_messages else None


@dataclass
class ExchangeResult:
    ok: bool
    status_code: int | None
    sent: int = 0
    held: int = 0
    error: str = ""
    code: str = ""  # the hub's machine code of a refusal ("invalid", "bad_signature", ...)
    # The hub answered and the sender should go on at once: the batch was halved (413) or a
    # refused batch is being split / its culprit moved to the dead letters.
    retry_now: bool = False
    # No answer or 5xx, and another instance of the hub is to be tried at once (failover).
    switched: bool = False


class Uplink:
    def __init__(
        self,
        site_id: str,
        key: bytes,
        settings: UplinkSettings,
        outbox: Outbox,
        clock: Clock,
        on_acks: AckCallback | None = None,
        on_dead_letter: DeadLetterCallback | None = None,
        rng: random.Random | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        on_reply: ReplyCallback | None = None,
    ) -> None:
        self.site_id = site_id
        self._key = key
        self.settings = settings
        self.outbox = outbox
        self.clock = clock
        self.on_acks = on_acks
        self.on_dead_letter = on_dead_letter
        self.on_reply = on_reply
        self._rng = rng or random.Random()
        self._transport = transport
        self._client: httpx.AsyncClient | None = None
        self.failures = 0
        self.next_attempt_mono = clock.monotonic()
        self.last_ok_mono: float | None = None
        self.last_error = ""
        self.last_status: int | None = None
        self.last_code = ""
        self.batch_size = settings.batch_size
        # Failover between the hub's instances (settings.urls()): the one in use, the ones that
        # failed since the last success, and when to try the primary again.
        self.urls = settings.urls()
        self.current = 0
        self._failed_urls: set[int] = set()
        self._primary_at_mono = 0.0
        # While a refused batch is split: the most messages the next batch may carry.
        self.isolate_limit: int | None = None
        self.dead_lettered = 0  # messages moved to the dead letters by this process
        self.next_dead_retry_mono = clock.monotonic() + settings.dead_letter_retry_h * 3600
        # Seconds added to this site's clock when signing: learned from the hub's 401
        # stale_timestamp (its X-NSP-Hub-Time), 0 while the clocks agree.
        self.clock_offset_s = 0.0
        self._wake = asyncio.Event()
        self.batches_sent = 0

    # -- state for readiness and the site page ------------------------------------------------
    def link_up(self) -> bool:
        if self.last_ok_mono is None or self.failures:
            return False
        return self.clock.monotonic() - self.last_ok_mono <= self.settings.link_up_within_s

    def status(self) -> dict[str, Any]:
        """The sender's state for people: site API, /metrics, the technician."""
        newest = self.outbox.newest_dead_letter()
        return {
            "link_up": self.link_up(),
            "pending_by_kind": self.outbox.pending_by_kind(),
            "last_error": self.last_error,
            "last_error_status": self.last_status,
            "last_error_code": self.last_code,
            "dead_letters": self.outbox.dead_letter_count(),
            "dead_lettered_since_start": self.dead_lettered,
            "newest_refusal": None if newest is None else newest.summary(),
            "clock_offset_s": round(self.clock_offset_s),
        }

    def notify(self) -> None:
        """A new message is in the outbox: try now unless backing off."""
        self._wake.set()

    def enqueue(self, kind: str, body: dict[str, Any], at: datetime | None = None,
                msg_id: str | None = None) -> str:
        """Store a message durably (returns its id) and wake the sender."""
        msg_id = self.outbox.enqueue(kind, body, at or self.clock.now(), msg_id)
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
                timeout=self.settings.timeout_s,
                transport=self._transport,
            )
        return self._client

    async def exchange_once(self) -> ExchangeResult:
        """Send one batch (possibly empty: it still fetches acks) and apply the reply."""
        limit = self.batch_size
        if self.isolate_limit is not None:
            limit = min(limit, self.isolate_limit)
        batch = self.outbox.next_batch(limit)
        now = self.clock.now() + timedelta(seconds=self.clock_offset_s)
        body = encode_batch(self.site_id, str(uuid.uuid4()), now, [m.wire() for m in batch])
        headers = sign_headers(self.site_id, self._key, body, int(now.timestamp()))
        if self.current != 0 and self.clock.monotonic() >= self._primary_at_mono:
            self._switch(0, "trying the primary again")
        try:
            resp = await self._http().post(self.hub_url + INGEST_PATH, content=body,
                                           headers=headers)
        except httpx.HTTPError as exc:
            return self._failover(ExchangeResult(False, None, len(batch),
                                                 error=f"{type(exc).__name__}: {exc}"))
        if resp.status_code >= 500:
            return self._failover(ExchangeResult(
                False, resp.status_code, len(batch),
                error=f"HTTP {resp.status_code}: {resp.text[:200]}"))
        self._failed_urls.clear()  # this instance answered: a round of failover starts anew
        if resp.status_code == 413 and len(batch) > 1:
            self.batch_size = max(1, len(batch) // 2)
            return ExchangeResult(
                False, 413, len(batch), error="batch too large; halved", retry_now=True
            )
        if resp.status_code != 200:
            code, reason = _refusal(resp)
            if resp.status_code == 401 and code == "stale_timestamp" and self._learn_offset(resp):
                return ExchangeResult(
                    False, 401, len(batch), error=f"HTTP 401 {code}: {reason[:200]}", code=code,
                    retry_now=True,
                )
            result = ExchangeResult(
                False,
                resp.status_code,
                len(batch),
                error=f"HTTP {' '.join(filter(None, (str(resp.status_code), code)))}: "
                f"{reason[:200]}",
                code=code,
            )
            if is_message_refusal(resp.status_code, code, len(batch)):
                self._refused(batch, resp.status_code, code, reason)
                result.retry_now = True
            return result
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
        if self.on_reply is not None and isinstance(reply, dict):
            try:
                self.on_reply(reply)
            except Exception:  # as above: delivery goes on
                log.exception("uplink: handling the hub's reply failed")
        self.batches_sent += 1
        return ExchangeResult(True, 200, len(batch), removed)

    @property
    def hub_url(self) -> str:
        """The hub instance the next batch goes to."""
        return self.urls[self.current] if self.urls else ""

    def _switch(self, index: int, why: str) -> None:
        if index != self.current:
            log.warning("uplink: %s: sending to %s (was %s)", why, self.urls[index],
                        self.hub_url)
        self.current = index
        if index != 0:
            self._primary_at_mono = self.clock.monotonic() + self.settings.primary_retry_s

    def _failover(self, result: ExchangeResult) -> ExchangeResult:
        """No answer or 5xx from the instance in use: the next untried one at once (the ids
        make a batch the first one did store harmless: the hub keeps each id once); when every
        instance failed in this round, the normal back-off (result unchanged)."""
        self._failed_urls.add(self.current)
        untried = [i for i in range(len(self.urls)) if i not in self._failed_urls]
        if untried:
            self._switch(untried[0], f"{self.hub_url} failed ({result.error[:120]})")
            result.switched = True
        else:
            self._failed_urls.clear()
            self._switch(0, "no instance of the hub answers; the primary first after the "
                            "back-off")
        return result

    def _refused(self, batch: list[OutMessage], status: int, code: str, reason: str) -> None:
        """The hub refused this batch's content for good: split it, or dead-letter its one."""
        self.outbox.count_refusal([m.id for m in batch])
        if len(batch) > 1:
            index = culprit_index(reason, len(batch))
            # Send the good messages before the culprit; with no hint, bisect.
            self.isolate_limit = len(batch) // 2 if index is None else max(1, index)
            log.info(
                "uplink: hub refused a batch of %d (HTTP %d %s); sending at most %d to find "
                "the message it refuses",
                len(batch), status, code, self.isolate_limit,
            )
            return
        msg = batch[0]
        self.isolate_limit = None
        dead = self.outbox.dead_letter(
            msg.id, self.clock.now(), status, code, reason[:_REASON_CHARS]
        )
        if dead is None:  # gone meanwhile (acknowledged by another sender): nothing to move
            return
        self.dead_lettered += 1
        log.warning(
            "uplink: the hub refused %s message %s for good (HTTP %d %s: %s); moved to the "
            "dead letters, later messages go on (list: nsp-edge uplink dead-letters)",
            msg.kind, msg.id, status, code, reason[:200],
        )
        if self.on_dead_letter is not None:
            try:
                self.on_dead_letter(dead)
            except Exception:  # recording the event must not stop delivery
                log.exception("uplink: recording the dead letter %s failed", msg.id)

    def _learn_offset(self, resp: httpx.Response) -> bool:
        """The hub refused our timestamp and said what its clock reads: sign with the hub's time
        from now on. True when the offset moved (retry at once), False when there is nothing to
        learn (an old hub without the header, or the same offset again: a real refusal)."""
        text = resp.headers.get(HEADER_HUB_TIME, "")
        if not text.isdigit():
            return False
        offset = int(text) - self.clock.now().timestamp()
        if abs(offset - self.clock_offset_s) < 2.0:
            return False
        self.clock_offset_s = offset
        log.warning(
            "uplink: this site's clock is %+.0f s off the C-NSP hub's; requests are signed with "
            "the hub's time from now on. Set the clock (NTP, or by hand): alert and status "
            "times are still this site's clock", -offset,
        )
        return True

    def _contact_ok(self) -> None:
        if self.failures > 0:
            log.info("uplink: link to the hub is up again")
        self.failures = 0
        self.last_ok_mono = self.clock.monotonic()
        self.last_error = ""
        self.last_status = None
        self.last_code = ""

    async def attempt(self) -> bool:
        """Send batches until the outbox is empty or a send fails; schedules the next attempt."""
        while True:
            result = await self.exchange_once()
            if result.switched:
                continue  # the next instance of the hub at once (not a contact: no reset)
            if result.ok or result.retry_now:
                # The hub answered (a refusal of content too): the link and the key work.
                self._contact_ok()
            if result.retry_now:
                continue
            if result.ok:
                if self.outbox.pending() == 0 or result.held == 0:
                    # Drained: a split that found no single culprit (e.g. an id twice across
                    # the halves) must not keep batches small for ever.
                    self.isolate_limit = None
                    self.next_attempt_mono = (
                        self.clock.monotonic() + self.settings.status_interval_s
                    )
                    return True
                continue
            self.failures += 1
            delay = self.backoff_s() * self._rng.uniform(0.5, 1.0)
            self.next_attempt_mono = self.clock.monotonic() + delay
            new_kind = (result.status_code, result.code) != (self.last_status, self.last_code)
            if result.status_code == 401:
                # Not the messages' fault (key, clock or registration): they stay queued, and
                # only a person can fix it, so say it loudly (again whenever the reason changes).
                level = logging.ERROR if self.failures == 1 or new_kind else logging.DEBUG
                log.log(
                    level,
                    "uplink: the hub refuses this site (%s): check the site key, the clock and "
                    "the registration at the hub; %d messages stay queued; retry in %.0f s",
                    result.error, self.outbox.pending(), delay,
                )
            else:
                level = logging.WARNING if self.failures == 1 else logging.DEBUG
                log.log(level, "uplink: send failed (%s); retry in %.0f s", result.error, delay)
            self.last_error = result.error
            self.last_status = result.status_code
            self.last_code = result.code
            return False

    async def tick(self) -> bool | None:
        """One attempt if due (None when not due)."""
        self._retry_dead_letters()
        if not self.due():
            return None
        return await self.attempt()

    def _retry_dead_letters(self) -> None:
        """Every dead_letter_retry_h, the dead letters go back to the end of the outbox: a hub
        that refused them may have been fixed since (a schema or size limit raised). One still
        refused is back in the dead letters after one round trip, its attempts counted on."""
        every_s = self.settings.dead_letter_retry_h * 3600
        now = self.clock.monotonic()
        if every_s <= 0 or now < self.next_dead_retry_mono:
            return
        self.next_dead_retry_mono = now + every_s
        ids = self.outbox.requeue()
        if ids:
            log.info(
                "uplink: %d dead letter(s) back in the outbox for another try (every %g h)",
                len(ids), self.settings.dead_letter_retry_h,
            )

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


def _refusal(resp: httpx.Response) -> tuple[str, str]:
    """(code, text) of a refusal: the hub's JSON `{"error", "code"}`, else the raw text."""
    try:
        doc = resp.json()
    except ValueError:
        doc = None
    if isinstance(doc, dict) and isinstance(doc.get("code"), str):
        return doc["code"], str(doc.get("error", ""))
    return "", resp.text.strip()[:_REASON_CHARS]
