"""GET /api/v1/history and GET /metrics on the real service with its storage component."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from edge_server.api.app import create_app
from edge_server.clock import ManualClock
from edge_server.config import parse_config
from edge_server.service import Part, Service
from edge_server.state import NodeStatus, Quality, Reading
from tests.test_auth import site_toml

T0 = datetime(2026, 3, 1, tzinfo=UTC)


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[Service]:
    clock = ManualClock(T0)
    svc = Service(parse_config(site_toml(tmp_path / "data")), clock,
                  parts=Part.STORAGE)
    await svc.start(run_poller=False)
    try:
        yield svc
    finally:
        await svc.stop()


def client(service: Service) -> httpx.AsyncClient:
    app = create_app(service, manage_service=False)
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://edge")


def cycle(service: Service, temp_c: float | None, door: bool | None) -> None:
    clock = service.clock
    assert isinstance(clock, ManualClock)
    at = clock.now()
    for name, value, unit in (("fridge_temp_c", temp_c, "C"), ("door_open", door, "")):
        q = Quality.GOOD if value is not None else Quality.UNAVAILABLE
        service.state.put(Reading("fridge1", name, value, unit, at, q))
    service.state.notify(at)
    clock.advance(30)


async def test_history_over_http(service: Service):
    temps = [4.0, 5.0, 6.0, None, 7.0, 3.0]
    for t in temps:
        cycle(service, t, False)
    end = service.clock.now()
    async with client(service) as c:
        r = await c.get("/api/v1/history", params={
            "channel": "fridge1.fridge_temp_c", "from": T0.isoformat(),
            "to": end.isoformat(), "step": "raw"})
        assert r.status_code == 200
        body = r.json()
        assert body["step"] == "raw" and body["unit"] == "C"
        assert [p[2] for p in body["points"]] == temps
        assert body["points"][0][0] == int(T0.timestamp() * 1000)
        assert body["columns"] == ["t_ms", "min", "mean", "max"]

        # 1-minute buckets, computed from the same inputs: [4, 5], [6, gap], [7, 3].
        r = await c.get("/api/v1/history", params={
            "channel": "fridge1.fridge_temp_c", "from": T0.isoformat(),
            "to": end.isoformat(), "step": "1m"})
        assert [p[1:] for p in r.json()["points"]] == [[4.0, 4.5, 5.0], [6.0, 6.0, 6.0],
                                                       [3.0, 5.0, 7.0]]
        # A naive time is UTC; auto picks raw for a short span.
        r = await c.get("/api/v1/history", params={
            "channel": "fridge1.fridge_temp_c", "from": "2026-03-01T00:00:00",
            "to": "2026-03-01T00:01:00"})
        assert r.json()["step"] == "raw" and len(r.json()["points"]) == 2

        r = await c.get("/api/v1/history", params={"channel": "fridge1.fridge_temp_c",
                                                   "step": "5m"})
        assert r.status_code == 422 and "step" in r.text
        r = await c.get("/api/v1/history", params={
            "channel": "fridge1.fridge_temp_c", "from": end.isoformat(),
            "to": T0.isoformat()})
        assert r.status_code == 422 and "to:" in r.json()["detail"]
        r = await c.get("/api/v1/history", params={
            "channel": "fridge1.fridge_temp_c", "from": "2026-02-01T00:00:00Z",
            "to": end.isoformat(), "step": "raw"})
        assert r.status_code == 422 and "step=1m" in r.json()["detail"]
        r = await c.get("/api/v1/history", params={"channel": "fridge1.nothing"})
        assert r.status_code == 404 and "fridge1.fridge_temp_c" in r.json()["detail"]


def _metric(text: str, name: str, **labels: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + "{") and all(f'{k}="{v}"' in line for k, v in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    raise AssertionError(f"{name} {labels} not in /metrics")


async def test_metrics_show_good_readings_nodes_and_storage_health(service: Service):
    service.state.add_node(NodeStatus("fridge1", 2, "b", ("fridge",), online=True))
    service.state.nodes["fridge1"].counters.reads_ok = 12
    cycle(service, 4.25, True)
    async with client(service) as c:
        r = await c.get("/metrics")
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    text = r.text
    assert _metric(text, "nsp_reading", channel="fridge_temp_c", site="test-site") == 4.25
    assert _metric(text, "nsp_reading", channel="door_open") == 1.0
    assert _metric(text, "nsp_node_online", node="fridge1") == 1.0
    assert _metric(text, "nsp_node_reads_ok_total", node="fridge1") == 12.0
    assert _metric(text, "nsp_poll_cycles_total") == 1.0
    assert _metric(text, "nsp_storage_ok") == 1.0
    # First cycle: one row per channel: a value, or the start of a gap (never-read channels).
    assert _metric(text, "nsp_storage_rows_written_total") == len(service.state.readings)
    assert text.count("# TYPE nsp_reading gauge") == 1

    cycle(service, None, True)  # the fridge probe becomes unavailable: not exported as a value
    async with client(service) as c:
        text = (await c.get("/metrics")).text
    with pytest.raises(AssertionError):
        _metric(text, "nsp_reading", channel="fridge_temp_c")


async def test_full_disk_shows_in_metrics_and_the_service_keeps_going(service: Service):
    storage = service.storage.require()
    cycle(service, 5.0, False)
    storage.set_size_limit_pages(storage.connection.execute("PRAGMA page_count").fetchone()[0])
    for k in range(2000):  # each step beyond the 0.1 °C deadband: every poll is a row to store
        cycle(service, 5.0 + k / 5, k % 2 == 0)
        if storage.health.disk_full:
            break
    async with client(service) as c:
        text = (await c.get("/metrics")).text
        assert _metric(text, "nsp_storage_disk_full") == 1.0
        assert _metric(text, "nsp_storage_ok") == 0.0
        assert _metric(text, "nsp_storage_rows_pending") > 0
        # Polling goes on: the latest value is served, and so is the site page's data.
        assert _metric(text, "nsp_reading", channel="fridge_temp_c") == pytest.approx(
            5.0 + k / 5)
        assert (await c.get("/api/v1/site")).status_code == 200
    storage.set_size_limit_pages(1_000_000)
    cycle(service, 6.0, False)
    assert storage.health.ok and storage.health.rows_pending == 0
    stored = storage.history("fridge1.fridge_temp_c", T0, service.clock.now() + timedelta(1),
                             "raw").points
    assert len(stored) == k + 3
