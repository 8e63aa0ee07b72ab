"""Edge outbox -> hub over real HTTP on localhost: a 72-hour outage and a kill -9 of the sender.

The hub and the edge share one ManualClock in the outage test, so back-off, signatures and the
hub's timestamp window all move with simulated time; the hub is really stopped (connection
refused) and really started again on the same port.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge_server.clock import ManualClock, SystemClock
from edge_server.hub.app import HubSettings
from edge_server.hub.testing import RunningHub, running_hub, sample_alert, sample_status
from edge_server.uplink.client import Uplink
from edge_server.uplink.outbox import Outbox
from edge_server.uplink.settings import UplinkSettings

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 1, 6, 0, tzinfo=UTC))


@pytest.fixture
def hub(tmp_path: Path, clock: ManualClock) -> Iterator[RunningHub]:
    with running_hub(tmp_path / "hub", clock=clock, settings=HubSettings()) as h:
        yield h


def make_uplink(
    hub: RunningHub,
    site_id: str,
    tmp: Path,
    clock: ManualClock,
    acks: list[Any] | None = None,
    batch_size: int = 10,
    outbox_path: Path | None = None,
    transport: httpx.AsyncBaseTransport | None = None,
) -> Uplink:
    key = hub.store.add_site(site_id, clock.now()).encode()
    settings = UplinkSettings(
        enabled=True,
        hub_url=hub.url,
        batch_size=batch_size,
        backoff_min_s=2,
        backoff_max_s=300,
        status_interval_s=60,
    )
    outbox = Outbox(outbox_path or tmp / f"{site_id}-outbox.sqlite")
    return Uplink(
        site_id,
        key,
        settings,
        outbox,
        clock,
        on_acks=(acks.extend if acks is not None else None),
        rng=random.Random(7),
        transport=transport,
    )


async def test_72_hour_outage_delivers_every_alert_once_in_order(hub, tmp_path, clock) -> None:
    uplinks = [make_uplink(hub, s, tmp_path, clock) for s in ("nsp-a", "nsp-b")]
    for u in uplinks:
        u.enqueue("status", sample_status(at=clock.now()))
        assert await u.tick() is True
        assert u.link_up()
    hub.stop()  # the link drops: connection refused from now on

    expected: dict[str, list[str]] = {u.site_id: [] for u in uplinks}
    delays: list[float] = []
    attempts = 0
    for minute in range(72 * 60):
        clock.advance(60)
        for i, u in enumerate(uplinks):
            if minute % 5 == 4:  # a status every 5 minutes (the last one at minute 4319)
                u.enqueue("status", sample_status(fuel_autonomy_h=72 - minute / 60, at=clock.now()))
            if minute % 97 == i * 13:  # an alert now and then, at different times per site
                state = "raised" if minute % 2 == 0 else "cleared"
                mid = u.enqueue("alert", sample_alert(f"al-{minute}", clock.now(), state))
                expected[u.site_id].append(mid)
            before = u.clock.monotonic()
            if await u.tick() is False:
                attempts += 1
                delays.append(u.next_attempt_mono - before)
                assert not u.link_up()
    # Back-off: bounded by [min/2, max], and it reaches the cap (no hammering for 72 h).
    assert all(1.0 <= d <= 300.0 for d in delays)
    assert max(delays) > 150.0
    assert attempts < 2 * 72 * 60 * 60 / 150  # at most one try per ~2.5 min per site
    # Only the newest status per site survives in the outbox; every alert is kept.
    for u in uplinks:
        u.outbox.next_batch(1)  # building a batch drops superseded statuses
        assert u.outbox.pending_by_kind() == {"alert": len(expected[u.site_id]), "status": 1}
    assert sum(len(v) for v in expected.values()) >= 80

    hub.start()  # the link is back
    clock.advance(301)
    for u in uplinks:
        assert await u.tick() is True
        assert u.outbox.pending() == 0
        assert u.link_up()
        stored = hub.store.messages(u.site_id)
        after = stored[1:]  # the first status was delivered before the outage
        alerts = [m["id"] for m in after if m["kind"] == "alert"]
        assert alerts == expected[u.site_id]  # every alert, exactly once, in order
        assert [m["kind"] for m in after][-1] == "status"  # alerts before the status
        assert sum(1 for m in after if m["kind"] == "status") == 1  # statuses coalesced
        assert after[-1]["body"]["fuel_autonomy_h"] == pytest.approx(72 - (72 * 60 - 1) / 60)
        await u.aclose()
        u.outbox.close()


async def test_hub_acknowledgement_flows_back_to_the_site(hub, tmp_path, clock) -> None:
    acks: list[Any] = []
    u = make_uplink(hub, "nsp-c", tmp_path, clock, acks)
    token = hub.store.add_user("olga", "operator")
    u.enqueue("alert", sample_alert("fridge-1", clock.now()))
    assert await u.tick() is True
    r = httpx.post(
        hub.url + "/api/v1/alerts/nsp-c/fridge-1/ack", headers={"Authorization": f"Bearer {token}"}
    )
    assert r.status_code == 200
    assert acks == []
    clock.advance(60)
    assert await u.tick() is True  # the next exchange (even an empty batch) carries the ack
    assert [(a["alert_id"], a["by"]) for a in acks] == [("fridge-1", "olga")]
    await u.aclose()
    u.outbox.close()


async def test_wrong_key_or_skewed_clock_keeps_messages_and_backs_off(hub, tmp_path, clock) -> None:
    u = make_uplink(hub, "nsp-d", tmp_path, clock)
    u._key = b"an-old-key-that-was-rotated"  # noqa: SLF001 - the site kept a rotated key
    u.enqueue("alert", sample_alert("x", clock.now()))
    assert await u.tick() is False
    assert "401" in u.last_error and u.outbox.pending() == 1
    assert hub.store.count_messages() == 0
    assert await u.tick() is None  # backing off: not due yet
    await u.aclose()
    u.outbox.close()


def test_kill_9_of_the_sender_mid_delivery_loses_and_doubles_nothing(tmp_path: Path) -> None:
    n_alerts = 400
    with running_hub(tmp_path / "hub", clock=SystemClock()) as hub:
        key = hub.store.add_site("nsp-k", SystemClock().now())
        key_file = tmp_path / "site.key"
        key_file.write_text(key)
        key_file.chmod(0o600)
        outbox_path = tmp_path / "outbox.sqlite"
        outbox = Outbox(outbox_path)
        now = SystemClock().now()
        ids = [outbox.enqueue("alert", sample_alert(f"k{i}", now), now) for i in range(n_alerts)]
        outbox.close()
        cmd = [
            sys.executable,
            "-m",
            "edge_server.uplink.sender",
            "--outbox",
            str(outbox_path),
            "--hub",
            hub.url,
            "--site",
            "nsp-k",
            "--key-file",
            str(key_file),
            "--batch",
            "2",
        ]
        proc = subprocess.Popen(cmd, cwd=ROOT, stderr=subprocess.PIPE)
        try:
            deadline = time.monotonic() + 30
            while hub.store.count_messages() < 40:
                assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
                assert time.monotonic() < deadline, "sender made no progress"
                time.sleep(0.005)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        at_kill = hub.store.count_messages()
        assert 40 <= at_kill < n_alerts, "the kill must land mid-delivery"
        proc2 = subprocess.run(cmd, cwd=ROOT, capture_output=True, timeout=120)
        assert proc2.returncode == 0, proc2.stderr.decode()
        stored = [m["id"] for m in hub.store.messages("nsp-k")]
        assert stored == ids  # nothing lost, nothing doubled, in order
        check = Outbox(outbox_path)
        assert check.pending() == 0
        check.close()
