"""Commands to the generator's controller over the edge API (POST /api/v1/generators/NAME/
commands), behind the interlocks: the real Service with a pymodbus power node and the virtual
DSE controller on real Modbus TCP (GenComm's control key and its complement), real tokens; the
controller's own mode shows what was carried out; every command and refusal in the event log."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge_server.api.app import create_app
from edge_server.auth import Role, UserStore
from edge_server.clock import ManualClock
from edge_server.config import parse_config
from edge_server.genset.engine import EngineModel
from edge_server.genset.profile import load_profile
from edge_server.genset.sim import VirtualController
from edge_server.service import Part, Service
from tests.test_genset_service import site
from tests.test_gentest_api import IDLE
from tests.test_poller import Peer, image, make_peer, peers  # noqa: F401  (fixture)

NOW = datetime(2026, 5, 4, 10, tzinfo=UTC)


@pytest.fixture
async def ctrl() -> AsyncIterator[VirtualController]:
    c = VirtualController(load_profile("dse-gencomm"), EngineModel(mode="manual"), unit=10)
    await c.start_tcp("127.0.0.1", 0)
    try:
        yield c
    finally:
        await c.stop()


async def test_commands_pass_the_interlocks_and_are_logged(
        tmp_path: Path, ctrl: VirtualController, peers: list[Peer]) -> None:  # noqa: F811
    node = await make_peer(peers, image(("power",), **IDLE))
    text = site(ctrl.port, tmp_path / "data").replace(
        'name = "nodes"\nkind = "tcp"\nhost = "127.0.0.1"\nport = 1',
        f'name = "nodes"\nkind = "tcp"\nhost = "127.0.0.1"\nport = {node.port}')
    clock = ManualClock(NOW)
    service = Service(parse_config(text), clock, parts=Part.STORAGE | Part.GENSET)
    await service.start(run_poller=False)
    try:
        users = UserStore(service.storage.require().connection)  # type: ignore[union-attr]
        tokens = {r.label: users.add(r.label, r, NOW) for r in Role}
        app = create_app(service, manage_service=False)
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://e")

        async def cmd(command: str, role: str = "technician", name: str = "gen") -> httpx.Response:
            return await client.post(f"/api/v1/generators/{name}/commands",
                                     json={"command": command},
                                     headers={"Authorization": f"Bearer {tokens[role]}"})

        await service.poller.poll_once()
        for role in ("viewer", "operator"):
            assert (await cmd("auto", role)).status_code == 403
        assert ctrl.engine.mode == "manual"
        r = await cmd("auto")
        assert r.status_code == 200 and r.json()["who"] == "technician"
        assert ctrl.engine.mode == "auto"  # the control key reached the controller
        r = await cmd("test_on_load")
        assert r.status_code == 200 and ctrl.engine.mode == "test"

        node.words = image(("power",), **{**IDLE, "mains_present": 0, "gen_running": 1})
        await service.poller.poll_once()  # an outage: the set carries the site
        for command in ("stop", "manual", "start", "test_on_load"):
            r = await cmd(command)
            assert r.status_code == 409 and r.json()["error"] == "MAINS_ABSENT", command
        assert "nooit gestopt" in (await cmd("stop")).json()["text_nl"]
        assert ctrl.engine.mode == "test"  # nothing of the refused reached it
        assert (await cmd("auto")).status_code == 200 and ctrl.engine.mode == "auto"

        await node.stop()  # the power node falls silent: the controller's own mains reading
        ctrl.engine.mains_present = False
        ctrl.step(0.5)
        await service.poller.poll_once()
        assert (await cmd("stop")).status_code == 409  # 0 V on the controller's mains side
        ctrl.engine.mains_present = True
        ctrl.step(0.5)
        await service.poller.poll_once()
        assert (await cmd("stop")).status_code == 200  # 231 V: mains is there, a stop may
        assert ctrl.engine.mode == "stop"
        assert (await cmd("auto", name="nope")).status_code == 404
        assert (await client.post("/api/v1/generators/gen/commands", json={"command": "boom"},
                                  headers={"Authorization": f"Bearer {tokens['admin']}"})
                ).status_code == 422
        events = service.storage.require().events(  # type: ignore[union-attr]
            NOW - timedelta(hours=1), NOW + timedelta(hours=1))
        done = [(e["data"]["command"], e["data"]["who"]) for e in events
                if e["code"] == "GENSET_COMMAND"]
        assert done == [("auto", "technician"), ("test_on_load", "technician"),
                        ("auto", "technician"), ("stop", "technician")]
        refused: list[Any] = [e["data"] for e in events if e["code"] == "GENSET_COMMAND_REFUSED"]
        assert {d["command"] for d in refused} >= {"stop", "manual", "start", "test_on_load"}
        assert all(d["who"] == "technician" and d["code"] == "MAINS_ABSENT" for d in refused)
        await client.aclose()
    finally:
        await service.stop()
