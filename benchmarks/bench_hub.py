"""Hub ingest at national scale on this machine, next to a bare FastAPI endpoint (the ceiling).

The national network: 3,600 L-NSPs each post a status, then a blackout burst in which every site
posts three alerts at once (10,800 signed requests). 64 concurrent connections from one
httpx.AsyncClient against a real uvicorn server (one worker) on localhost. The same client run
against a FastAPI endpoint that only answers 200 gives the framework's ceiling here.
Figures: accepted messages/s, p50/p99 latency, messages lost (stored at the hub vs accepted);
the hub commits with synchronous=FULL, and one batch's commit under NORMAL vs FULL in-process.

    python -m benchmarks.bench_hub        (or `python -m benchmarks` for all)
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse

from edge_server.hub.store import HubStore
from edge_server.hub.testing import free_port, sample_alert, sample_status, wait_http
from edge_server.uplink.protocol import INGEST_PATH, encode_batch, iso, sign_headers

ROOT = Path(__file__).resolve().parent.parent
N_SITES = 3600
ALERTS_PER_SITE = 3
CONCURRENCY = 64

bare_app = FastAPI()


@bare_app.post(INGEST_PATH)
async def _bare_ingest() -> JSONResponse:
    return JSONResponse({"held": [], "acks": []})


Request = tuple[bytes, dict[str, str], int]  # body, headers, messages in it


def build_requests(keys: dict[str, bytes]) -> tuple[list[Request], list[Request]]:
    """Signed requests made before timing, so the client's JSON/HMAC cost is not measured."""
    now = datetime.now(UTC)
    ts = int(now.timestamp())

    def one(site: str, kind: str, body: dict[str, Any]) -> Request:
        msg = {"id": str(uuid.uuid4()), "kind": kind, "at": iso(now), "body": body}
        raw = encode_batch(site, str(uuid.uuid4()), now, [msg])
        return raw, sign_headers(site, keys[site], raw, ts), 1

    statuses = [one(s, "status", sample_status(at=now)) for s in keys]
    # The blackout burst: each site sends its three alerts at once, as one batch.
    alerts = []
    for s in keys:
        msgs = [
            {
                "id": str(uuid.uuid4()),
                "kind": "alert",
                "at": iso(now),
                "body": sample_alert(f"{s}-{i}", now, code=f"blackout_{i}"),
            }
            for i in range(ALERTS_PER_SITE)
        ]
        raw = encode_batch(s, str(uuid.uuid4()), now, msgs)
        alerts.append((raw, sign_headers(s, keys[s], raw, ts), len(msgs)))
    return statuses, alerts


Result = tuple[float, list[float], int, int]
FAILURES: dict[str, int] = {}


async def fire(url: str, requests: list[Request]) -> Result:
    """Send all requests over CONCURRENCY connections; (seconds, latencies, accepted, failed)."""
    latencies: list[float] = []
    accepted = failed = 0
    queue: asyncio.Queue[Request] = asyncio.Queue()
    for r in requests:
        queue.put_nowait(r)
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=60) as client:

        async def worker() -> None:
            nonlocal accepted, failed
            while True:
                try:
                    body, headers, n = queue.get_nowait()
                except asyncio.QueueEmpty:
                    return
                t0 = time.perf_counter()
                try:
                    resp = await client.post(INGEST_PATH, content=body, headers=headers)
                    ok = resp.status_code == 200
                    why = f"HTTP {resp.status_code} {resp.text[:60]}"
                except httpx.HTTPError as exc:
                    ok = False
                    why = type(exc).__name__
                latencies.append(time.perf_counter() - t0)
                if ok:
                    accepted += n
                else:
                    failed += n
                    FAILURES[why] = FAILURES.get(why, 0) + n

        start = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
        elapsed = time.perf_counter() - start
    return elapsed, latencies, accepted, failed


def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))] if s else float("nan")


def serve(cmd: list[str], port: int) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ)
    )
    wait_http(f"http://127.0.0.1:{port}/", timeout_s=30)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


COMMITS = 400


def commit_cost(tmp: Path) -> list[tuple[str, str]]:
    """One alert per ingest() (one transaction each), in-process, under synchronous=NORMAL and
    FULL: what waiting for the disk before the 200 costs, without the HTTP stack around it."""
    rows = []
    for mode in ("NORMAL", "FULL"):
        store = HubStore(tmp / f"commit-{mode}", synchronous=mode)
        now = datetime.now(UTC)
        store.add_site("nsp-x", now)
        times = []
        for i in range(COMMITS):
            msg = {"id": str(uuid.uuid4()), "kind": "alert", "at": iso(now),
                   "body": sample_alert(f"a{i}", now)}
            t0 = time.perf_counter()
            store.ingest("nsp-x", [msg], now)
            times.append(time.perf_counter() - t0)
        store.close()
        rows.append((
            f"hub commit of one batch, synchronous={mode}: p50 / p99",
            f"{pct(times, 50) * 1000:.2f} ms / {pct(times, 99) * 1000:.2f} ms "
            f"({COMMITS} sequential commits, ext4 on this machine's disk)",
        ))
    return rows


def board_s(store: HubStore) -> float:
    """The board's list of every site, through the app (each body checked on the way out)."""
    from fastapi.testclient import TestClient

    from edge_server.clock import SystemClock
    from edge_server.hub.app import create_app

    token = store.add_user("bench", "operator")
    client = TestClient(create_app(store, SystemClock()))
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        r = client.get("/api/v1/sites", headers={"Authorization": f"Bearer {token}"})
        times.append(time.perf_counter() - t0)
        assert r.status_code == 200 and r.json()["total"] == N_SITES, r.text[:200]
    return pct(times, 50)


def main() -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-hub-") as tmp:
        rows += commit_cost(Path(tmp))
        data = Path(tmp) / "hub"
        store = HubStore(data)
        now = datetime.now(UTC)
        keys = {
            f"nsp-{i:04d}": store.add_site(f"nsp-{i:04d}", now).encode() for i in range(N_SITES)
        }
        store.close()
        statuses, alerts = build_requests(keys)
        total = sum(r[2] for r in statuses + alerts)

        results: dict[str, list[Result]] = {}
        for name in ("bare FastAPI (200 only)", "hub"):
            port = free_port()
            if name == "hub":
                cmd = [
                    sys.executable,
                    "-m",
                    "edge_server.cli",
                    "hub",
                    "--data",
                    str(data),
                    "--listen",
                    f"127.0.0.1:{port}",
                ]
            else:
                cmd = [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "benchmarks.bench_hub:bare_app",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                    "--log-level",
                    "warning",
                    "--no-access-log",
                ]
            proc = serve(cmd, port)
            try:
                url = f"http://127.0.0.1:{port}"
                results[name] = [asyncio.run(fire(url, statuses)), asyncio.run(fire(url, alerts))]
            finally:
                stop(proc)

        check = HubStore(data)
        stored = check.count_messages()
        rows.append(("GET /api/v1/sites, every site (board refresh): p50 of 5",
                     f"{board_s(check) * 1000:.0f} ms for {N_SITES} sites, each stored body "
                     "checked against its model (in-process)"))
        check.close()
        for name, phases in results.items():
            for phase, (elapsed, lat, ok, bad) in zip(
                ("status round", "blackout burst"), phases, strict=True
            ):
                rows.append(
                    (
                        f"{name}, {phase}: accepted",
                        f"{ok / elapsed:,.0f} messages/s "
                        f"({ok} in {elapsed:.1f} s, {bad} refused/failed)",
                    )
                )
                rows.append(
                    (
                        f"{name}, {phase}: latency p50 / p99",
                        f"{pct(lat, 50) * 1000:.1f} ms / {pct(lat, 99) * 1000:.1f} ms",
                    )
                )
        hub_accepted = sum(p[2] for p in results["hub"])
        rows.append(
            ("hub messages sent / accepted / stored", f"{total} / {hub_accepted} / {stored}")
        )
        rows.append(("hub messages lost (accepted but not stored)", f"{hub_accepted - stored}"))
        rows.append(("hub messages not accepted", f"{total - hub_accepted} {FAILURES or ''}"))
        rows.append(
            (
                "setup",
                f"{N_SITES} sites, {CONCURRENCY} connections, one uvicorn worker, "
                "SQLite WAL synchronous=FULL; statuses 1 per request, alerts 3 per request",
            )
        )
    return rows


if __name__ == "__main__":
    for figure, value in main():
        print(f"{figure}: {value}")
