"""A site whose clock is off is not refused for ever.

During a long outage an edge computer may have no NTP (the internet is down; the link to the
C-NSP is a private radio network) and a board without a battery-backed clock comes back from a
power cut at the wrong time. The hub refuses timestamps more than ±300 s off its clock (replay
window) with 401 stale_timestamp and says what its clock reads (X-NSP-Hub-Time); the sender
then signs with the hub's time and delivers. Two ManualClocks: the edge's and the hub's.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import httpx
import pytest

from edge_server.clock import ManualClock
from edge_server.hub.testing import running_hub, sample_alert
from edge_server.uplink.protocol import HEADER_HUB_TIME
from tests.test_uplink_dead_letter import close, hub_ids
from tests.test_uplink_e2e import make_uplink

HUB_NOW = ManualClock().now() + timedelta(days=40)


async def test_a_site_two_hours_behind_signs_with_the_hubs_time_and_delivers(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    hub_clock = ManualClock(HUB_NOW)
    edge_clock = ManualClock(HUB_NOW - timedelta(hours=2))
    with running_hub(tmp_path / "hub", clock=hub_clock) as hub:
        u = make_uplink(hub, "nsp-clock", tmp_path, edge_clock)
        first = u.enqueue("alert", sample_alert("late-clock", edge_clock.now()))
        with caplog.at_level(logging.WARNING, logger="edge_server.uplink.client"):
            assert await u.tick() is True  # refused once (stale_timestamp), then delivered
        assert hub_ids(hub, "nsp-clock") == [first]
        assert u.outbox.pending() == 0 and u.failures == 0
        assert u.clock_offset_s == pytest.approx(7200, abs=1)
        assert u.status()["clock_offset_s"] == 7200
        warnings = [r.getMessage() for r in caplog.records if "clock is" in r.getMessage()]
        assert len(warnings) == 1 and "-7200 s off the C-NSP hub's" in warnings[0]

        # Later messages go at once, without another refusal.
        second = u.enqueue("alert", sample_alert("later", edge_clock.now()))
        edge_clock.advance(60)
        hub_clock.advance(60)
        assert await u.tick() is True
        assert hub_ids(hub, "nsp-clock") == [first, second]

        # The site's clock is set right (NTP is back): the learned offset is now wrong, the
        # hub refuses it once, and the sender learns again (offset ~0).
        edge_clock.advance(7200)
        third = u.enqueue("alert", sample_alert("fixed", edge_clock.now()))
        assert await u.tick() is True
        assert hub_ids(hub, "nsp-clock") == [first, second, third]
        assert abs(u.clock_offset_s) < 2
        await close(u)


class _OldHub(httpx.AsyncBaseTransport):
    """A hub that refuses the timestamp but does not say its time (before X-NSP-Hub-Time)."""

    def __init__(self, hub_time: str | None) -> None:
        self.hub_time = hub_time
        self.requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        headers = {HEADER_HUB_TIME: self.hub_time} if self.hub_time is not None else {}
        return httpx.Response(
            401, json={"error": "X-NSP-Timestamp is -7200 s from the hub's clock",
                       "code": "stale_timestamp"}, headers=headers)


@pytest.mark.parametrize("hub_time", [None, "not-a-number"])
async def test_without_the_hubs_time_it_backs_off_and_keeps_the_messages(
    tmp_path: Path, hub_time: str | None
) -> None:
    edge_clock = ManualClock(HUB_NOW)
    with running_hub(tmp_path / "hub", clock=ManualClock(HUB_NOW)) as hub:
        old = _OldHub(hub_time)
        u = make_uplink(hub, "nsp-old", tmp_path, edge_clock, transport=old)
        u.enqueue("alert", sample_alert("kept", edge_clock.now()))
        assert await u.tick() is False  # one request, then back-off: no loop, nothing learned
        assert old.requests == 1 and u.failures == 1 and u.clock_offset_s == 0.0
        assert u.outbox.pending() == 1 and u.outbox.dead_letter_count() == 0
        await close(u)


async def test_the_same_refusal_twice_is_not_retried_in_a_loop(tmp_path: Path) -> None:
    """A hub that refuses even the corrected time (its clock jumps meanwhile): learn once,
    retry once, then back off like any failure."""
    edge_clock = ManualClock(HUB_NOW)
    with running_hub(tmp_path / "hub", clock=ManualClock(HUB_NOW)) as hub:
        stubborn = _OldHub(str(int((HUB_NOW + timedelta(hours=1)).timestamp())))
        u = make_uplink(hub, "nsp-stubborn", tmp_path, edge_clock, transport=stubborn)
        u.enqueue("alert", sample_alert("kept", edge_clock.now()))
        assert await u.tick() is False
        assert stubborn.requests == 2 and u.failures == 1
        assert u.clock_offset_s == pytest.approx(3600, abs=1)
        assert u.outbox.pending() == 1
        await close(u)
