"""Messages the hub refuses for good: isolated, moved to dead letters, listed and requeued.

Real parts: a real hub on localhost (the same ManualClock as the edge), real SQLite outboxes, the
`nsp-edge uplink` command run in-process. A poison message is made the way an older or broken
edge would write it: a row whose `at` is no timestamp, put straight into the outbox file (the
public enqueue() cannot make one). The crash test kills a real process with SIGKILL inside the
move, at every SQL statement in turn.
"""

from __future__ import annotations

import logging
import math
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge_server import cli
from edge_server.api.app import create_app
from edge_server.clock import ManualClock
from edge_server.config import parse_config
from edge_server.hub.app import HubSettings
from edge_server.hub.testing import RunningHub, running_hub, sample_alert
from edge_server.service import Part, Service
from edge_server.uplink import client as client_module
from edge_server.uplink.client import Uplink, is_message_refusal
from edge_server.uplink.component import OUTBOX_FILE
from edge_server.uplink.outbox import Outbox
from tests.conftest import ROOT
from tests.test_auth import site_toml
from tests.test_uplink_e2e import make_uplink

T0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def hub(tmp_path: Path, clock: ManualClock) -> Iterator[RunningHub]:
    with running_hub(tmp_path / "hub", clock=clock, settings=HubSettings()) as h:
        yield h


class CountingTransport(httpx.AsyncHTTPTransport):
    """The real HTTP transport, counting round trips."""

    def __init__(self) -> None:
        super().__init__()
        self.requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        return await super().handle_async_request(request)


def poison(outbox_path: Path, msg_id: str) -> None:
    """Give a queued message an `at` the hub's schema refuses (422 invalid)."""
    db = sqlite3.connect(outbox_path)
    with db:
        assert db.execute("UPDATE outbox SET at = 'last tuesday' WHERE id = ?", (msg_id,)).rowcount
    db.close()


def enqueue_alerts(u: Uplink, n: int, prefix: str = "a") -> list[str]:
    return [u.enqueue("alert", sample_alert(f"{prefix}{i}", u.clock.now())) for i in range(n)]


def hub_ids(hub: RunningHub, site_id: str) -> list[str]:
    return [m["id"] for m in hub.store.messages(site_id)]


async def close(u: Uplink) -> None:
    await u.aclose()
    u.outbox.close()


# -- classification ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("status", "code", "n", "message_refused"),
    [
        (422, "invalid", 1, True),
        (422, "duplicate_id", 2, True),
        (400, "bad_json", 3, True),
        (413, "too_large", 1, True),  # one message over the hub's byte limit
        (413, "too_large", 2, False),  # several: halve the batch instead
        (422, "site_mismatch", 1, False),  # the site's setup, not a message
        (422, "invalid", 0, False),  # an empty batch refused: no message to blame
        (401, "bad_signature", 1, False),
        (401, "stale_timestamp", 1, False),
        (401, "unknown_site", 1, False),
        (404, "", 1, False),
        (408, "", 1, False),
        (429, "", 1, False),
        (500, "", 1, False),
        (503, "", 1, False),
        (None, "", 1, False),  # no answer at all
    ],
)
def test_which_answers_refuse_a_message_for_good(status, code, n, message_refused) -> None:
    assert is_message_refusal(status, code, n) is message_refused


# -- (a) one poison message in a batch ---------------------------------------------------------
async def test_poison_message_is_dead_lettered_and_the_rest_arrive_once_in_order(
    hub, tmp_path, clock, caplog
) -> None:
    transport = CountingTransport()
    u = make_uplink(hub, "nsp-p", tmp_path, clock, transport=transport)
    ids = enqueue_alerts(u, 5)
    poison(tmp_path / "nsp-p-outbox.sqlite", ids[2])
    with caplog.at_level(logging.INFO, logger="edge_server.uplink"):
        assert await u.tick() is True
    good = [ids[0], ids[1], ids[3], ids[4]]
    assert hub_ids(hub, "nsp-p") == good  # exactly once each, in order
    assert u.outbox.pending() == 0
    [dead] = u.outbox.dead_letters()
    assert (dead.id, dead.kind, dead.http_status, dead.code) == (ids[2], "alert", 422, "invalid")
    assert "at" in dead.reason and "last tuesday" in dead.reason
    assert dead.attempts == 3  # refused in the batch of 5, of 2, and alone
    assert dead.body["alert_id"] == "a2" and dead.refused_at.startswith("2026-03-01T06:00")
    # 5 round trips: 5 refused (the hub names messages.2) -> 2 sent -> 2 refused -> 1 refused
    # and moved -> the last 2 sent.
    assert transport.requests == 5
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1 and ids[2] in warnings[0].getMessage()
    assert "alert" in warnings[0].getMessage() and "invalid" in warnings[0].getMessage()
    assert u._key.decode() not in caplog.text  # noqa: SLF001 - never log the key
    status = u.status()
    assert status["dead_letters"] == 1 and status["dead_lettered_since_start"] == 1
    assert status["newest_refusal"]["id"] == ids[2]
    assert status["newest_refusal"]["code"] == "invalid"
    assert status["link_up"] is True and status["pending_by_kind"] == {}
    await close(u)


@pytest.mark.parametrize("hub_names_the_message", [True, False])
@pytest.mark.parametrize("bad", [0, 17, 39])
async def test_round_trips_to_isolate_one_poison_message_in_40(
    hub, tmp_path, clock, monkeypatch, hub_names_the_message, bad
) -> None:
    if not hub_names_the_message:  # a hub whose errors name no message: plain bisection
        monkeypatch.setattr(client_module, "culprit_index", lambda reason, n: None)
    transport = CountingTransport()
    u = make_uplink(hub, "nsp-q", tmp_path, clock, batch_size=40, transport=transport)
    ids = enqueue_alerts(u, 40)
    poison(tmp_path / "nsp-q-outbox.sqlite", ids[bad])
    assert await u.tick() is True
    assert hub_ids(hub, "nsp-q") == ids[:bad] + ids[bad + 1 :]
    assert [d.id for d in u.outbox.dead_letters()] == [ids[bad]]
    bound = 5 if hub_names_the_message else 2 * math.ceil(math.log2(40)) + 2
    assert transport.requests <= bound, transport.requests
    await close(u)


async def test_a_single_message_over_the_byte_limit_is_dead_lettered(tmp_path, clock) -> None:
    with running_hub(tmp_path / "hub", clock=clock, settings=HubSettings(max_body_bytes=2048)) as h:
        u = make_uplink(h, "nsp-b", tmp_path, clock)
        big = u.enqueue("event", {"code": "log", "blob": "x" * 4000})
        after = u.enqueue("alert", sample_alert("after", clock.now()))
        assert await u.tick() is True
        assert hub_ids(h, "nsp-b") == [after]
        [dead] = u.outbox.dead_letters()
        assert (dead.id, dead.http_status, dead.code) == (big, 413, "too_large")
        await close(u)


# -- (b) 401 is never the messages' fault ------------------------------------------------------
async def test_wrong_key_keeps_messages_queued_and_delivers_after_the_fix(
    hub, tmp_path, clock, caplog
) -> None:
    u = make_uplink(hub, "nsp-k", tmp_path, clock)
    right_key = u._key  # noqa: SLF001
    u._key = b"an-old-key-that-was-rotated"  # noqa: SLF001 - the site kept a rotated key
    ids = enqueue_alerts(u, 3)
    with caplog.at_level(logging.DEBUG, logger="edge_server.uplink"):
        for _ in range(6):  # hours of refusals
            assert await u.tick() is False
            clock.advance(u.next_attempt_mono - clock.monotonic())
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1  # loud once, then DEBUG
    assert "bad_signature" in errors[0].getMessage() and "site key" in errors[0].getMessage()
    assert right_key.decode() not in caplog.text and "an-old-key" not in caplog.text
    assert u.outbox.pending() == 3 and u.outbox.dead_letter_count() == 0
    assert hub.store.count_messages() == 0
    status = u.status()
    assert status["last_error_status"] == 401 and status["last_error_code"] == "bad_signature"
    assert status["link_up"] is False

    u._key = right_key  # noqa: SLF001 - the technician installed the new key
    assert await u.tick() is True
    assert hub_ids(hub, "nsp-k") == ids
    assert u.outbox.pending() == 0 and u.outbox.dead_letter_count() == 0
    assert u.status()["last_error_status"] is None and u.link_up()
    await close(u)


# -- (c) the moves are one transaction each ----------------------------------------------------
_KILLER = r"""
import os, signal, sys
from datetime import UTC, datetime
from pathlib import Path
from edge_server.uplink.outbox import Outbox

path, op, msg_id, kill_at = Path(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
box = Outbox(path)
seen = 0


def trace(sql):
    global seen
    seen += 1
    if seen == kill_at:  # kill -9 just as this statement starts
        os.kill(os.getpid(), signal.SIGKILL)


box._db.set_trace_callback(trace)
if op == "dead_letter":
    box.dead_letter(msg_id, datetime.now(UTC), 422, "invalid", "messages.0.at: bad")
else:
    box.requeue([msg_id])
"""


def where_is(path: Path, msg_id: str, others: list[str]) -> str:
    box = Outbox(path)
    try:
        queued = [m.id for m in box.next_batch(100)]
        dead = [d.id for d in box.dead_letters()]
    finally:
        box.close()
    assert [i for i in queued if i != msg_id] == others  # the other messages are untouched
    assert (msg_id in queued) + (msg_id in dead) == 1, (queued, dead)  # in exactly one table
    assert dead in ([], [msg_id])
    return "outbox" if msg_id in queued else "dead"


@pytest.mark.parametrize(("op", "before", "after"), [
    ("dead_letter", "outbox", "dead"),
    ("requeue", "dead", "outbox"),
])
def test_kill_9_inside_a_move_leaves_the_message_in_exactly_one_table(
    tmp_path, op, before, after
) -> None:
    seen: list[str] = []
    for kill_at in range(1, 20):
        path = tmp_path / f"{op}-{kill_at}.sqlite"
        box = Outbox(path)
        ids = [box.enqueue("alert", sample_alert(str(i), T0), T0) for i in range(3)]
        if op == "requeue":
            box.dead_letter(ids[1], T0, 422, "invalid", "x")
        box.close()
        proc = subprocess.run(
            [sys.executable, "-c", _KILLER, str(path), op, ids[1], str(kill_at)],
            cwd=ROOT, capture_output=True, timeout=60,
        )
        killed = proc.returncode == -signal.SIGKILL
        assert killed or proc.returncode == 0, proc.stderr.decode()
        seen.append(where_is(path, ids[1], [ids[0], ids[2]]))
        if not killed:
            break
    # Killed at every statement in turn, then once it ran to the end: before the commit the
    # message is where it was, after it where it went; never both, never neither.
    assert killed is False and seen[-1] == after
    assert seen[0] == before and len(seen) >= 3
    assert seen == sorted(seen, key=lambda s: s == after)  # one switch, at the commit
    if op == "requeue":  # requeued at the END of the outbox
        box = Outbox(path)
        assert [m.id for m in box.next_batch(10)] == [ids[0], ids[2], ids[1]]
        box.close()


# -- (d) requeue with the CLI ------------------------------------------------------------------
def write_config(tmp_path: Path) -> Path:
    config = tmp_path / "site.toml"
    config.write_text(site_toml(tmp_path / "edge"))
    return config


def nsp_edge(capsys, *argv: str) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


async def test_requeued_message_goes_last_and_is_delivered_once_the_hub_accepts_it(
    tmp_path, clock, capsys
) -> None:
    config = write_config(tmp_path)
    outbox_path = tmp_path / "edge" / OUTBOX_FILE
    with running_hub(tmp_path / "hub", clock=clock, settings=HubSettings(max_body_bytes=2048)) as h:
        u = make_uplink(h, "nsp-r", tmp_path, clock, outbox_path=outbox_path)
        first = u.enqueue("alert", sample_alert("first", clock.now()))
        big = u.enqueue("event", {"code": "log", "blob": "x" * 4000})
        assert await u.tick() is True
        assert [d.id for d in u.outbox.dead_letters()] == [big]
        later = u.enqueue("alert", sample_alert("later", clock.now()))  # queued, not sent yet

        code, out, _ = nsp_edge(capsys, "uplink", "dead-letters", "--config", str(config))
        assert code == 0 and big in out and "event" in out and "HTTP 413 too_large" in out
        assert "2026-03-01T06:00:00Z" in out

        h.stop()  # the hub is upgraded: it takes bigger requests now
        h.settings = HubSettings()
        h.start()
        code, out, _ = nsp_edge(capsys, "uplink", "requeue", big, "--config", str(config))
        assert code == 0 and "requeued 1 message(s)" in out and big in out
        assert u.outbox.dead_letter_count() == 0
        clock.advance(60)
        assert await u.tick() is True
        assert hub_ids(h, "nsp-r") == [first, later, big]  # requeued at the end, same id
        assert u.outbox.pending() == 0 and u.outbox.dead_letter_count() == 0
        await close(u)


async def test_dead_letters_are_retried_by_themselves_after_dead_letter_retry_h(
    tmp_path, clock
) -> None:
    """No technician needed once the hub is fixed: every 6 h (default) the dead letters go back
    to the outbox; before that, and with dead_letter_retry_h = 0, they stay put."""
    with running_hub(tmp_path / "hub", clock=clock, settings=HubSettings(max_body_bytes=2048)) as h:
        u = make_uplink(h, "nsp-t", tmp_path, clock)
        assert u.settings.dead_letter_retry_h == 6.0
        first = u.enqueue("alert", sample_alert("first", clock.now()))
        big = u.enqueue("event", {"code": "log", "blob": "x" * 4000})
        assert await u.tick() is True
        assert [d.id for d in u.outbox.dead_letters()] == [big]
        clock.advance(6 * 3600 - 120)  # not yet: the refusal stands, one round trip per retry
        await u.tick()
        assert u.outbox.dead_letter_count() == 1 and hub_ids(h, "nsp-t") == [first]
        clock.advance(120)  # 6 h: retried, refused again by the same hub, attempts counted on
        assert await u.tick() is True
        [dead] = u.outbox.dead_letters()
        assert dead.id == big and dead.attempts == 2 and hub_ids(h, "nsp-t") == [first]

        h.stop()  # the hub is upgraded: it takes bigger requests now
        h.settings = HubSettings()
        h.start()
        clock.advance(6 * 3600)
        assert await u.tick() is True
        assert hub_ids(h, "nsp-t") == [first, big]
        assert u.outbox.pending() == 0 and u.outbox.dead_letter_count() == 0
        await close(u)

        off = make_uplink(h, "nsp-u", tmp_path, clock)
        off.settings = off.settings.model_copy(update={"dead_letter_retry_h": 0.0})
        off.next_dead_retry_mono = clock.monotonic()
        [bad] = enqueue_alerts(off, 1)
        poison(tmp_path / "nsp-u-outbox.sqlite", bad)
        assert await off.tick() is True
        clock.advance(30 * 24 * 3600)
        await off.tick()
        assert off.outbox.dead_letter_count() == 1 and off.outbox.pending() == 0
        await close(off)


async def test_requeued_message_refused_again_is_back_in_the_dead_letters(
    hub, tmp_path, clock, capsys
) -> None:
    config = write_config(tmp_path)
    outbox_path = tmp_path / "edge" / OUTBOX_FILE
    u = make_uplink(hub, "nsp-s", tmp_path, clock, outbox_path=outbox_path)
    [bad] = enqueue_alerts(u, 1)
    poison(outbox_path, bad)
    assert await u.tick() is True
    code, out, _ = nsp_edge(capsys, "uplink", "requeue", "--all", "--config", str(config))
    assert code == 0 and bad in out
    assert u.outbox.pending() == 1
    clock.advance(60)
    assert await u.tick() is True
    [dead] = u.outbox.dead_letters()
    assert dead.id == bad and dead.attempts == 2  # refused once, requeued, refused again
    assert u.outbox.pending() == 0 and hub.store.count_messages() == 0
    await close(u)


# -- (e) the CLI's errors ----------------------------------------------------------------------
def test_cli_errors_are_clear(tmp_path, capsys) -> None:
    missing = tmp_path / "nope.toml"
    code, _, err = nsp_edge(capsys, "uplink", "dead-letters", "--config", str(missing))
    assert code == 2 and str(missing) in err and "cannot read" in err

    config = write_config(tmp_path)
    code, _, err = nsp_edge(capsys, "uplink", "dead-letters", "--config", str(config))
    assert code == 1 and "no outbox at" in err and str(tmp_path / "edge" / OUTBOX_FILE) in err

    box = Outbox(tmp_path / "edge" / OUTBOX_FILE)
    kept = box.enqueue("alert", sample_alert("1", T0), T0)
    box.dead_letter(kept, T0, 422, "invalid", "messages.0.at: Input should be a valid datetime")
    box.close()
    code, out, _ = nsp_edge(capsys, "uplink", "dead-letters", "--config", str(config))
    assert code == 0 and "1 dead letter(s)" in out
    row = next(line for line in out.splitlines() if line.startswith(kept))
    assert "alert" in row and "2026-03-01T06:00:00Z" in row
    assert "HTTP 422 invalid: messages.0.at: Input should be a valid datetime" in row
    code, out, _ = nsp_edge(capsys, "uplink", "dead-letters", "--json", "--config", str(config))
    assert code == 0 and '"alert_id": "1"' in out

    code, _, err = nsp_edge(capsys, "uplink", "requeue", "not-an-id", "--config", str(config))
    assert code == 1 and "not a dead letter: not-an-id" in err and "nothing requeued" in err
    code, _, err = nsp_edge(capsys, "uplink", "requeue", "--config", str(config))
    assert code == 2 and "ids or --all" in err
    box = Outbox(tmp_path / "edge" / OUTBOX_FILE)
    assert [d.id for d in box.dead_letters()] == [kept] and box.pending() == 0
    box.close()


# -- visible to people: event log, status, /metrics --------------------------------------------
async def test_dead_letter_is_an_event_and_shows_in_status_and_metrics(
    hub, tmp_path, clock, monkeypatch
) -> None:
    async def parked(self: Uplink, stop: Any) -> None:  # this test drives attempt() itself
        await stop.wait()

    monkeypatch.setattr(Uplink, "run", parked)
    key_file = tmp_path / "site.key"
    key_file.write_text(hub.store.add_site("test-site", clock.now()))
    toml = site_toml(tmp_path / "edge") + (
        f'[uplink]\nenabled = true\nhub_url = "{hub.url}"\nkey_file = "{key_file}"\n'
    )
    service = Service(parse_config(toml), clock, parts=Part.STORAGE | Part.UPLINK)
    await service.start(run_poller=False)
    try:
        comp = service.uplink
        assert comp.uplink is not None
        comp.put({"kind": "alert", "at": T0.isoformat(), "body": sample_alert("1", T0)})
        bad = comp.uplink.enqueue("alert", sample_alert("2", T0))
        poison(tmp_path / "edge" / OUTBOX_FILE, bad)
        assert await comp.uplink.attempt() is True
        events = service.storage.require().events(
            T0 - timedelta(days=1), T0 + timedelta(days=1)
        )
        [event] = [e for e in events if e["code"] == "UPLINK_DEAD_LETTER"]
        assert event["severity"] == "warning" and event["data"]["id"] == bad
        assert bad in event["text_en"] and bad in event["text_nl"]
        status = comp.status()
        assert status["enabled"] and status["dead_letters"] == 1
        assert status["newest_refusal"]["code"] == "invalid"
        app = create_app(service, manage_service=False)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://edge"
        ) as c:
            text = (await c.get("/metrics")).text
            site_up = (await c.get("/api/v1/site")).json()["uplink"]
        assert site_up["enabled"] and site_up["dead_letters"] == 1 and site_up["link_up"]
        assert site_up["newest_refusal"]["code"] == "invalid"
        assert 'nsp_uplink_dead_letters{site="test-site"} 1.0' in text
        assert 'nsp_uplink_dead_lettered_total{site="test-site"} 1.0' in text
        assert 'nsp_uplink_up{site="test-site"} 1.0' in text
    finally:
        await service.stop()
