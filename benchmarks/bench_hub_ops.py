"""The hub's operations at national scale: one GET /metrics scrape with 3,600 sites (in-process
ASGI, real SQLite), the ingest counter's work per reply, and `hub backup` of that database."""

from __future__ import annotations

import asyncio
import json
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import httpx

from edge_server.clock import ManualClock
from edge_server.hub.app import create_app
from edge_server.hub.backup import backup
from edge_server.hub.metrics import IngestCounts
from edge_server.hub.store import HubStore
from edge_server.hub.testing import sample_status
from edge_server.uplink.protocol import iso

SITES = 3_600
REPEATS = 7


def _fill(store: HubStore, clock: ManualClock) -> None:
    for n in range(SITES):
        site_id = f"nsp-{n:05d}"
        store.add_site(site_id, clock.now())
        store.ingest(site_id, [{"id": str(uuid.uuid4()), "kind": "status",
                                "at": iso(clock.now()), "body": sample_status(at=clock.now())}],
                     clock.now())


async def _scrapes(store: HubStore, clock: ManualClock, token: str) -> list[float]:
    app = create_app(store, clock)
    transport = httpx.ASGITransport(app=app)
    times = []
    async with httpx.AsyncClient(transport=transport, base_url="http://hub") as c:
        for _ in range(REPEATS):
            t0 = time.perf_counter()
            r = await c.get("/metrics", headers={"Authorization": f"Bearer {token}"})
            times.append(time.perf_counter() - t0)
            assert r.status_code == 200
    return times


def main() -> list[tuple[str, str]]:
    clock = ManualClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "hub"
        # NORMAL only to fill the database quickly: the figures below do not write.
        store = HubStore(data, synchronous="NORMAL")
        try:
            _fill(store, clock)
            token = store.add_user("prometheus", "operator")
            scrape = statistics.median(asyncio.run(_scrapes(store, clock, token)))
            t0 = time.perf_counter()
            size = backup(data, Path(tmp) / "backup.sqlite")
            backup_s = time.perf_counter() - t0
        finally:
            store.close()
    reply = json.dumps({"held": [str(uuid.uuid4()) for _ in range(20)], "acks": []}).encode()
    counts = IngestCounts()
    n = 20_000
    t0 = time.perf_counter()
    for _ in range(n):
        counts.count("ingest", 200, reply)
    per_reply = (time.perf_counter() - t0) / n
    return [
        (f"GET /metrics with {SITES:,} sites (median of {REPEATS})", f"{scrape * 1000:.0f} ms"),
        ("ingest counter per 200 reply (20 held ids)", f"{per_reply * 1e6:.1f} µs"),
        (f"hub backup of {SITES:,} sites with a status each",
         f"{backup_s * 1000:.0f} ms, {size / 1e6:.1f} MB"),
    ]


if __name__ == "__main__":
    for figure, value_text in main():
        print(f"{figure}: {value_text}")
