"""An edge with several hub URLs (the instances of one hub over one database): it moves to the
next on no answer or 5xx at once, backs off only when none answers, and comes back to the
primary after primary_retry_s. Real hubs over HTTP (two instances on one SQLite database), a
real server that answers 503, the real outbox; time is a ManualClock."""

from __future__ import annotations

import http.server
import random
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge_server.clock import ManualClock
from edge_server.hub.testing import RunningHub, running_hub, sample_alert
from edge_server.uplink.client import Uplink
from edge_server.uplink.outbox import Outbox
from edge_server.uplink.settings import UplinkSettings


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 1, 6, 0, tzinfo=UTC))


@pytest.fixture
def hubs(tmp_path: Path, clock: ManualClock) -> Iterator[tuple[RunningHub, RunningHub]]:
    with running_hub(tmp_path / "hub", clock=clock) as a, \
            running_hub(tmp_path / "hub", clock=clock) as b:
        yield a, b


class Busy(http.server.BaseHTTPRequestHandler):
    """A hub instance whose database is away: 503 to everything."""

    def do_POST(self) -> None:  # noqa: N802 (the stdlib's name)
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.end_headers()
        self.wfile.write(b'{"error": "unavailable", "message": "database restarting"}')

    def log_message(self, *_args: object) -> None:
        pass


@pytest.fixture
def busy() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Busy)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


def uplink(urls: list[str], key: bytes, tmp: Path, clock: ManualClock) -> Uplink:
    settings = UplinkSettings(enabled=True, hub_url=urls[0], hub_urls=urls[1:],
                              backoff_min_s=2, backoff_max_s=300, primary_retry_s=300)
    return Uplink("nsp-a", key, settings, Outbox(tmp / "outbox.sqlite"), clock,
                  rng=random.Random(1))


def _alert(u: Uplink, clock: ManualClock, n: int) -> str:
    return u.enqueue("alert", sample_alert(f"al-{n}", clock.now()))


async def test_fails_over_and_comes_back_to_the_primary(
        hubs: tuple[RunningHub, RunningHub], tmp_path: Path, clock: ManualClock) -> None:
    a, b = hubs
    key = a.store.add_site("nsp-a", clock.now()).encode()  # one database: b knows it too
    u = uplink([a.url, b.url], key, tmp_path, clock)
    sent = [_alert(u, clock, 0)]
    assert await u.tick() is True and u.hub_url == a.url
    a.stop()  # the primary instance goes down
    sent.append(_alert(u, clock, 1))
    clock.advance(61)
    assert await u.tick() is True  # no back-off: the second instance took it at once
    assert u.hub_url == b.url and u.failures == 0 and u.outbox.pending() == 0
    a.start()
    clock.advance(120)
    sent.append(_alert(u, clock, 2))
    assert await u.tick() is True and u.hub_url == b.url  # not yet time to try the primary
    clock.advance(300)
    sent.append(_alert(u, clock, 3))
    assert await u.tick() is True and u.hub_url == a.url  # back on the primary
    ids = [m["id"] for m in a.store.messages("nsp-a") if m["kind"] == "alert"]
    assert ids == sent  # every alert once, in order, whichever instance took it
    await u.aclose()
    u.outbox.close()


async def test_a_5xx_moves_on_and_none_answering_backs_off(
        hubs: tuple[RunningHub, RunningHub], busy: str, tmp_path: Path,
        clock: ManualClock) -> None:
    a, b = hubs
    key = a.store.add_site("nsp-a", clock.now()).encode()
    u = uplink([busy, a.url], key, tmp_path, clock)
    mid = _alert(u, clock, 0)
    assert await u.tick() is True and u.hub_url == a.url  # 503 from the first: the second
    assert [m["id"] for m in a.store.messages("nsp-a")] == [mid]
    a.stop()
    b.stop()
    clock.advance(400)  # time to try the (503) primary again; then nothing answers at all
    kept = _alert(u, clock, 1)
    assert await u.tick() is False
    assert u.failures == 1 and u.outbox.pending() == 1 and not u.link_up()
    assert u.next_attempt_mono > clock.monotonic()  # the normal back-off, not a tight loop
    assert u.hub_url == busy  # the next round starts at the primary
    a.start()
    clock.advance(301)
    assert await u.tick() is True and u.hub_url == a.url
    assert [m["id"] for m in a.store.messages("nsp-a")] == [mid, kept]
    await u.aclose()
    u.outbox.close()


def test_settings_name_a_bad_url() -> None:
    with pytest.raises(ValueError, match=r"uplink.hub_urls\[1\]: 'cnsp-2.example.nl' is not"):
        UplinkSettings(enabled=True, hub_url="https://cnsp-1.example.nl",
                       hub_urls=["https://cnsp-3.example.nl", "cnsp-2.example.nl"])
    s = UplinkSettings(enabled=True, hub_url="https://a.example/",
                       hub_urls=["https://b.example", "https://a.example"])
    assert s.urls() == ["https://a.example", "https://b.example"]
