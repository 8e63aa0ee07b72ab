"""Two hub processes (`nsp-edge hub --db URL`) on one PostgreSQL database, 300 sites posting signed
batches at once, the way the edge sends them: a batch is sent again (same body, same message ids)
after a connection failure or a 5xx, on the other hub, until a 200; after its 200 it is never
sent again (the site deletes what the hub confirmed). So a 200 for something not stored would
show as a message missing from the database at the end, and a double store as one too many.

- One hub killed -9 mid-burst: the sites move to the survivor; every message is in PostgreSQL
  exactly once and the survivor serves the board of all 300 sites with their newest status.
- The database stopped mid-burst and started again: while it is down both hubs answer 503 (with
  Retry-After), never 200; afterwards every message is stored exactly once.

The cluster runs with fsync on (tests/pgserver.py): a 200 means the commit is on disk.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from edge_server.commands.demo import stop_processes
from edge_server.hub.store import HubStore
from edge_server.hub.testing import sample_alert, sample_status, wait_http
from edge_server.uplink.protocol import encode_batch, iso, sign_headers
from tests.conftest import ROOT, free_port
from tests.pgserver import PgServer

pytestmark = pytest.mark.slow

SITES = 300
BATCHES = 4  # per site, each a status, an alert and an event: 3,600 messages in all
CONCURRENCY = 64  # connections the sites share (a C-NSP region's burst, not one at a time)


@pytest.fixture(scope="module")
def pg() -> Iterator[PgServer]:
    server = PgServer.create(fsync=True)
    try:
        yield server
    finally:
        server.close()


@dataclass
class Hubs:
    db_url: str
    urls: list[str]
    procs: list[subprocess.Popen[bytes]]
    keys: dict[str, bytes]
    token: str
    logs: list[Path]

    def log_tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in self.logs)


def start_hub(data: Path, db_url: str, log: Path) -> tuple[subprocess.Popen[bytes], str]:
    """`nsp-edge hub --db URL` on a free port; its log in a file (a pipe nobody reads would
    block it once full: it logs every 503). A new port when another process took the first."""
    env = {k: v for k, v in os.environ.items() if k not in ("NSP_HUB_DB",
                                                             "NSP_HUB_MASTER_KEY_FILE")}
    for attempt in range(5):
        port = free_port()
        with log.open("ab") as err:
            proc = subprocess.Popen(
                [sys.executable, "-m", "edge_server.cli", "hub", "--data", str(data),
                 "--db", db_url, "--listen", f"127.0.0.1:{port}"],
                cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err)
        url = f"http://127.0.0.1:{port}"
        try:
            wait_http(url + "/api/v1/sites", timeout_s=30, proc=proc)
            return proc, url
        except ChildProcessError:
            if attempt == 4:
                raise
    raise AssertionError("unreachable")


@pytest.fixture
def hubs(pg: PgServer, tmp_path: Path) -> Iterator[Hubs]:
    """300 sites and an operator registered through one store, then two hub processes with
    their own data folders holding the same master key file."""
    db_url = pg.new_database()
    a, b = tmp_path / "hub-a", tmp_path / "hub-b"
    store = HubStore(a, db_url=db_url)
    now = datetime.now(UTC)
    keys = {f"nsp-{i:03d}": store.add_site(f"nsp-{i:03d}", now).encode() for i in range(SITES)}
    token = store.add_user("olga", "operator")
    master = store.master_key_file
    store.close()
    b.mkdir(mode=0o700)
    shutil.copy2(master, b / master.name)  # the same key: either hub decrypts every site key
    procs: list[subprocess.Popen[bytes]] = []
    logs = [tmp_path / "hub-a.log", tmp_path / "hub-b.log"]
    try:
        urls = []
        for data, log in zip((a, b), logs, strict=True):
            proc, url = start_hub(data, db_url, log)
            procs.append(proc)
            urls.append(url)
        yield Hubs(db_url, urls, procs, keys, token, logs)
    finally:
        stop_processes(procs)
        pg.drop_database(db_url)


@dataclass
class Burst:
    """What the sites saw: answers by (status or "conn", hub), the batches confirmed, and
    the answers given while the database was down."""

    total: int
    answers: Counter[tuple[str, int]] = field(default_factory=Counter)
    during_outage: Counter[str] = field(default_factory=Counter)
    confirmed: int = 0
    confirmed_at_fault: int | None = None
    outage: bool = False
    sent: set[tuple[str, str]] = field(default_factory=set)
    third: asyncio.Event = field(default_factory=asyncio.Event)
    outage_seen: asyncio.Event = field(default_factory=asyncio.Event)

    def note(self, what: str, hub: int, sent_in_outage: bool = False) -> None:
        """An answer; it counts as "during the outage" when the request was sent and answered
        while the database was down (a 200 sent before the stop is for a commit made before it,
        its reply only arriving late)."""
        self.answers[(what, hub)] += 1
        if self.outage and sent_in_outage:
            self.during_outage[what] += 1
            if self.during_outage["503"] >= 50:
                self.outage_seen.set()


def batch_messages(site_id: str, n: int, t0: datetime) -> list[dict[str, Any]]:
    at = t0 + timedelta(milliseconds=n)  # the site's own order: the last batch is the newest
    return [
        {"id": str(uuid.uuid4()), "kind": "status", "at": iso(at),
         "body": sample_status(fuel_autonomy_h=40.0 + n, at=at)},
        {"id": str(uuid.uuid4()), "kind": "alert", "at": iso(at),
         "body": sample_alert(f"{site_id}-a{n}", at)},
        {"id": str(uuid.uuid4()), "kind": "event", "at": iso(at),
         "body": {"code": "DOOR_OPENED", "text_en": "Door opened", "text_nl": "Deur open",
                  "subject": "door", "at": None, "value": None}},
    ]


async def run_site(client: httpx.AsyncClient, hubs: Hubs, site_id: str, burst: Burst,
                   t0: datetime, rng: random.Random) -> None:
    """One site's batches in order; each until its 200, moving to the other hub on a
    connection failure or a 5xx (with a short back-off: the edge's, shortened for a test)."""
    index = int(site_id[-3:])
    hub = index % 2  # half the sites have hub A as their primary, half hub B
    for n in range(BATCHES):
        messages = batch_messages(site_id, n, t0)
        burst.sent.update((site_id, m["id"]) for m in messages)
        body = encode_batch(site_id, str(uuid.uuid4()), datetime.now(UTC), messages)
        deadline = time.monotonic() + 90
        while True:
            assert time.monotonic() < deadline, f"{site_id} batch {n}: no 200 in 90 s"
            headers = sign_headers(site_id, hubs.keys[site_id], body, int(time.time()))
            sent_in_outage = burst.outage
            try:
                r = await client.post(hubs.urls[hub] + "/api/v1/ingest", content=body,
                                      headers=headers)
            except httpx.TransportError:
                burst.note("conn", hub, sent_in_outage)
            else:
                burst.note(str(r.status_code), hub, sent_in_outage)
                if r.status_code == 200:
                    assert r.json()["held"] == [m["id"] for m in messages]
                    break
                # nothing but "stored" or "not stored, send again": no 500, no 4xx
                assert r.status_code == 503, r.text
                assert r.headers.get("retry-after") == "5"
            hub = 1 - hub
            await asyncio.sleep(rng.uniform(0.02, 0.1))
        burst.confirmed += 1
        if burst.confirmed * 3 >= burst.total:
            burst.third.set()


async def burst_of_all_sites(hubs: Hubs, fault: Any) -> Burst:
    """Every site posts its batches; `fault(burst)` runs once a third of them are confirmed."""
    burst = Burst(total=SITES * BATCHES)
    rng = random.Random(18)
    t0 = datetime.now(UTC) - timedelta(seconds=5)
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:

        async def trigger() -> None:
            await burst.third.wait()
            burst.confirmed_at_fault = burst.confirmed
            await fault(burst)

        sites = [run_site(client, hubs, s, burst, t0, rng) for s in hubs.keys]
        fault_task = asyncio.create_task(trigger())
        try:
            await asyncio.gather(*sites)
            await asyncio.wait_for(fault_task, timeout=60)
        finally:
            fault_task.cancel()
    return burst


def stored(db_url: str) -> list[tuple[str, str]]:
    with psycopg.connect(db_url) as c:
        return [(r[0], r[1]) for r in c.execute("SELECT site_id, id FROM messages").fetchall()]


def assert_exactly_once(hubs: Hubs, burst: Burst) -> None:
    rows = stored(hubs.db_url)
    assert len(burst.sent) == SITES * BATCHES * 3
    assert len(rows) == len(burst.sent), f"{len(rows)} rows for {len(burst.sent)} messages"
    assert set(rows) == burst.sent


def test_one_hub_killed_mid_burst_the_other_stores_everything_once(hubs: Hubs) -> None:
    started = time.monotonic()

    async def kill_hub_a(burst: Burst) -> None:
        hubs.procs[0].send_signal(signal.SIGKILL)

    burst = asyncio.run(burst_of_all_sites(hubs, kill_hub_a))
    took = time.monotonic() - started
    assert hubs.procs[0].wait(timeout=10) == -signal.SIGKILL
    # mid-burst: batches were still to be confirmed when it died, and its sites moved over
    assert burst.confirmed_at_fault is not None and burst.confirmed_at_fault < burst.total
    assert burst.answers[("conn", 0)] > 0, burst.answers
    assert burst.answers[("200", 1)] > burst.total // 2, burst.answers
    assert_exactly_once(hubs, burst)

    # the board, from the survivor: every site, each with the status of its last batch
    r = httpx.get(hubs.urls[1] + "/api/v1/sites",
                  headers={"Authorization": f"Bearer {hubs.token}"}, timeout=30)
    assert r.status_code == 200, r.text
    board = r.json()
    assert board["total"] == SITES and len(board["sites"]) == SITES
    fuel = Counter(s.get("fuel_autonomy_h") for s in board["sites"])
    assert fuel == {40.0 + BATCHES - 1: SITES}, fuel
    page = httpx.get(hubs.urls[1] + "/", timeout=30)
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    print(f"\nkill -9 of one hub mid-burst: {burst.total} batches in {took:.1f} s, "
          f"answers {dict(burst.answers)}")


def test_database_restart_mid_burst_is_503_then_everything_once(
    pg: PgServer, hubs: Hubs
) -> None:
    started = time.monotonic()
    outage_s = 0.0

    async def restart_database(burst: Burst) -> None:
        nonlocal outage_s
        await asyncio.to_thread(pg.stop)
        burst.outage = True  # from here until start(): the database is down
        down = time.monotonic()
        try:
            await asyncio.wait_for(burst.outage_seen.wait(), timeout=60)
        finally:
            burst.outage = False
            outage_s = time.monotonic() - down
            await asyncio.to_thread(pg.start)

    try:
        burst = asyncio.run(burst_of_all_sites(hubs, restart_database))
    finally:
        if not pg.running:
            pg.start()
    took = time.monotonic() - started
    assert burst.confirmed_at_fault is not None and burst.confirmed_at_fault < burst.total
    # sent and answered while the database was down: 503 from both hubs, never a 200 nor a
    # 500 (a late 200 for a request sent before the stop is a commit made before it; that
    # every 200 was really stored is what assert_exactly_once checks)
    assert burst.during_outage["503"] >= 50, burst.during_outage
    assert burst.during_outage["200"] == 0, burst.during_outage
    assert set(burst.during_outage) <= {"503"}, burst.during_outage
    assert burst.answers[("503", 0)] > 0 and burst.answers[("503", 1)] > 0, burst.answers
    assert all(p.poll() is None for p in hubs.procs), hubs.log_tail()
    assert_exactly_once(hubs, burst)
    print(f"\ndatabase restart mid-burst: {burst.total} batches in {took:.1f} s, down "
          f"{outage_s:.1f} s, answers {dict(burst.answers)}")
