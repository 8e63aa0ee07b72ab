"""Hub ingest at national scale on this machine, next to a bare endpoint (the ceiling).

The national network: 3,600 L-NSPs each post a status, then a blackout burst in which every site
posts three alerts at once (3,600 signed requests of 3 alerts: 10,800 messages). The load
generator runs in its own processes (benchmarks/loadgen.py: pre-signed distinct bodies,
keep-alive connections, a minimal client; its own CPU use is printed). Servers, in one run:
- bare: a FastAPI endpoint doing the same JSON parse and HMAC check as the hub, storing nothing;
- the hub on SQLite (WAL, synchronous=FULL) and on PostgreSQL (a throwaway cluster with fsync
  on, synchronous_commit=on), each with 1, 2 and 4 uvicorn workers (`nsp-edge hub --workers`);
- the status round of 36,000 sites (ten times the network) on SQLite, one worker.
Figures: messages/s answered 200, p50/p99, messages lost (stored at the hub vs answered 200),
the hub/bare ratio; and one batch's commit under NORMAL vs FULL in-process.

    python -m benchmarks.bench_hub        (or `python -m benchmarks` for all)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi import Request as HttpRequest
from fastapi.responses import JSONResponse

from benchmarks.loadgen import Request, Result, fire, http_post
from edge_server.hub.store import HubStore
from edge_server.hub.testing import free_port, sample_alert, sample_status, wait_http
from edge_server.uplink.protocol import (
    HEADER_SIGNATURE,
    HEADER_SITE,
    HEADER_TIMESTAMP,
    INGEST_PATH,
    encode_batch,
    iso,
    sign_headers,
    verify_signature,
)

ROOT = Path(__file__).resolve().parent.parent
N_SITES = 3600
BIG_SITES = 36000
ALERTS_PER_SITE = 3
CONNECTIONS = 64
LOAD_PROCESSES = 2
WORKERS = (1, 2, 4)
KEYS_ENV = "NSP_BENCH_KEYS"  # a JSON file {site: key} for the bare endpoint

# The hub's framework settings (edge_server/hub/app.py): the same stack, without the store.
bare_app = FastAPI(telemetry={"tracing": False, "metrics": False, "logs": False})
_bare_keys: dict[str, bytes] = {}


@bare_app.post(INGEST_PATH)
async def _bare_ingest(request: HttpRequest) -> JSONResponse:
    """What the hub does before storing: the body, the site's key, HMAC, JSON parse."""
    if not _bare_keys:
        keys = json.loads(Path(os.environ[KEYS_ENV]).read_text())
        _bare_keys.update({k: v.encode() for k, v in keys.items()})
    body = await request.body()
    key = _bare_keys.get(request.headers.get(HEADER_SITE, ""))
    ok = key is not None and verify_signature(
        key, request.headers.get(HEADER_TIMESTAMP, ""), body,
        request.headers.get(HEADER_SIGNATURE, ""))
    if not ok:
        return JSONResponse({"error": "bad signature"}, status_code=401)
    doc = json.loads(body)
    return JSONResponse({"held": [m["id"] for m in doc["messages"]], "acks": []})


def build_requests(keys: dict[str, bytes]) -> tuple[list[Request], list[Request]]:
    """Signed requests made before timing, so the client's JSON/HMAC cost is not measured."""
    now = datetime.now(UTC)
    ts = int(now.timestamp())

    def one(site: str, msgs: list[dict[str, Any]]) -> Request:
        raw = encode_batch(site, str(uuid.uuid4()), now, msgs)
        return http_post(INGEST_PATH, raw, sign_headers(site, keys[site], raw, ts)), len(msgs)

    statuses = [
        one(s, [{"id": str(uuid.uuid4()), "kind": "status", "at": iso(now),
                 "body": sample_status(at=now)}])
        for s in keys
    ]
    # The blackout burst: each site sends its three alerts at once, as one batch.
    alerts = [
        one(s, [{"id": str(uuid.uuid4()), "kind": "alert", "at": iso(now),
                 "body": sample_alert(f"{s}-{i}", now, code=f"blackout_{i}")}
                for i in range(ALERTS_PER_SITE)])
        for s in keys
    ]
    return statuses, alerts



def pct(values: list[float], p: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(p / 100 * len(s)))] if s else float("nan")


def serve(cmd: list[str], port: int, env: dict[str, str]) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(
        cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
    )
    wait_http(f"http://127.0.0.1:{port}/openapi.json", timeout_s=60, proc=proc)
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
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


def _register(data: Path, n: int, url: str = "", fast: bool = False) -> dict[str, bytes]:
    store = HubStore(data, db_url=url, synchronous="NORMAL" if fast else "FULL")
    now = datetime.now(UTC)
    keys = {f"nsp-{i:05d}": store.add_site(f"nsp-{i:05d}", now).encode() for i in range(n)}
    store.close()
    return keys


def _stored(data: Path, url: str) -> int:
    store = HubStore(data, db_url=url)
    try:
        return store.count_messages()
    finally:
        store.close()


def _run(name: str, cmd: list[str], port: int, env: dict[str, str], keys: dict[str, bytes],
         rounds: tuple[str, ...] = ("status round", "blackout burst")
         ) -> list[tuple[str, Result]]:
    statuses, alerts = build_requests(keys)
    by_name = {"status round": statuses, "blackout burst": alerts}
    proc = serve(cmd, port, env)
    try:
        return [(r, fire(port, by_name[r], LOAD_PROCESSES, CONNECTIONS)) for r in rounds]
    finally:
        stop(proc)


def _rows(name: str, results: list[tuple[str, Result]], stored: int | None
          ) -> list[tuple[str, str]]:
    rows = []
    for phase, r in results:
        codes = {k: v for k, v in r.statuses.items() if k != "200"}
        rows.append((
            f"{name}, {phase}",
            f"{r.ok_messages / r.elapsed_s:,.0f} messages/s, p50 {pct(r.latencies, 50) * 1000:.1f}"
            f" ms, p99 {pct(r.latencies, 99) * 1000:.1f} ms ({r.ok_messages} in "
            f"{r.elapsed_s:.1f} s{', not 200: ' + str(codes) if codes else ''}; load generator "
            f"CPU {r.cpu_s / r.elapsed_s:.2f} cores)",
        ))
    if stored is not None:
        answered = sum(r.ok_messages for _p, r in results)
        rows.append((f"{name}: answered 200 / stored / lost",
                     f"{answered} / {stored} / {max(0, answered - stored)}"))
    return rows


def _rate(results: list[tuple[str, Result]], phase: str) -> float:
    r = dict(results)[phase]
    return r.ok_messages / r.elapsed_s


def main() -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-hub-") as tmp_name:
        tmp = Path(tmp_name)
        rows += commit_cost(tmp)
        template = tmp / "sqlite-template"
        keys = _register(template, N_SITES)
        board = HubStore(template, db_url="")
        rows.append(("GET /api/v1/sites, every site (board refresh): p50 of 5",
                     f"{board_s(board) * 1000:.0f} ms for {N_SITES} sites, each stored body "
                     "checked against its model (in-process)"))
        board.close()
        keys_file = tmp / "keys.json"
        keys_file.write_text(json.dumps({k: v.decode() for k, v in keys.items()}))
        env = dict(os.environ, NSP_HUB_DB="", **{KEYS_ENV: str(keys_file)})
        runs: dict[str, list[tuple[str, Result]]] = {}

        def hub_cmd(data: Path, port: int, workers: int, url: str = "") -> list[str]:
            return [sys.executable, "-m", "edge_server.cli", "hub", "--data", str(data),
                    "--listen", f"127.0.0.1:{port}", "--workers", str(workers),
                    *(["--db", url] if url else [])]

        for n in WORKERS:
            port = free_port()
            cmd = [sys.executable, "-m", "uvicorn", "benchmarks.bench_hub:bare_app", "--host",
                   "127.0.0.1", "--port", str(port), "--workers", str(n), "--log-level",
                   "warning", "--no-access-log"]
            name = f"bare (parse + HMAC), {n} worker(s)"
            runs[name] = _run(name, cmd, port, env, keys)
            rows += _rows(name, runs[name], None)
        for n in WORKERS:
            data = tmp / f"sqlite-{n}"
            shutil.copytree(template, data)
            port = free_port()
            name = f"hub on SQLite, {n} worker(s)"
            runs[name] = _run(name, hub_cmd(data, port, n), port, env, keys)
            rows += _rows(name, runs[name], _stored(data, ""))
        pg = _postgres()
        if isinstance(pg, str):
            rows.append(("hub on PostgreSQL", f"not run: {pg}"))
        else:
            try:
                pg_data = tmp / "pg"
                tpl = pg.new_database()
                pg_keys = _register(pg_data, N_SITES, tpl)
                for n in WORKERS:
                    url = _copy_database(pg, tpl, f"bench_{n}")
                    port = free_port()
                    name = f"hub on PostgreSQL, {n} worker(s)"
                    runs[name] = _run(name, hub_cmd(pg_data, port, n, url), port, env, pg_keys)
                    rows += _rows(name, runs[name], _stored(pg_data, url))
            finally:
                pg.close()
        for n in WORKERS:
            bare = runs[f"bare (parse + HMAC), {n} worker(s)"]
            for store_name in ("SQLite", "PostgreSQL"):
                hub = runs.get(f"hub on {store_name}, {n} worker(s)")
                if hub is None:
                    continue
                rows.append((
                    f"hub on {store_name} / bare, {n} worker(s)",
                    " / ".join(f"{phase} {_rate(hub, phase) / _rate(bare, phase):.2f}"
                               for phase in ("status round", "blackout burst")),
                ))
        big = tmp / "sqlite-36000"
        big_keys = _register(big, BIG_SITES, fast=True)
        port = free_port()
        name = f"hub on SQLite, 1 worker, {BIG_SITES:,} sites"
        result = _run(name, hub_cmd(big, port, 1), port, env, big_keys, ("status round",))
        rows += _rows(name, result, _stored(big, ""))
        rows.append((
            "setup",
            f"{N_SITES} sites (and {BIG_SITES:,} for the last row), {CONNECTIONS} keep-alive "
            f"connections from {LOAD_PROCESSES} load-generator processes on this same machine; "
            "statuses 1 per request, alerts 3 per request; every 200 durable (SQLite "
            "synchronous=FULL; PostgreSQL fsync on, synchronous_commit=on)",
        ))
    return rows


def _copy_database(pg: Any, template_url: str, name: str) -> str:
    """A new database with the template's sites and keys (CREATE DATABASE ... TEMPLATE)."""
    import psycopg

    with psycopg.connect(pg.url, autocommit=True) as c:
        c.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_url.rsplit("/", 1)[1]}"')
    return str(pg.url_of(name))


def _postgres() -> Any:
    """A throwaway PostgreSQL cluster with fsync on (tests/pgserver.py), or why there is none."""
    try:
        from tests.pgserver import PgServer

        return PgServer.create(fsync=True)
    except BaseException as exc:  # pytest's skip outside pytest: PostgreSQL is not installed
        return f"{type(exc).__name__}: {exc}"


if __name__ == "__main__":
    for figure, value in main():
        print(f"{figure}: {value}")
