"""Fuzzing the edge's HTTP API from its own OpenAPI document: no input is a 500.

The real Service (storage, rules, generator tests; no Modbus peer answers, so commands fail the
way they fail at a site with a dead bus) behind the real uvicorn server on a localhost port, as
`nsp-edge run` serves it; schemathesis sends every operation a few dozen generated requests,
without a token and with an admin's. Seconds, not minutes.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis

from edge_server.api.app import create_app, serving
from edge_server.auth import Role, UserStore
from edge_server.clock import ManualClock
from edge_server.config import parse_config
from edge_server.hub.testing import free_port
from edge_server.service import Part, Service
from tests.test_alerts_api import TOML
from tests.test_fuzz_http import fuzz_schema


class RunningEdge:
    """The edge service and its API in a thread of their own (one event loop, as in production)."""

    def __init__(self, data: Path) -> None:
        self.data = data
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.token = ""
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="edge-fuzz", daemon=True)

    def _run(self) -> None:
        try:
            asyncio.run(self._main())
        except BaseException as exc:  # reported by start()
            self._error = exc
            self._ready.set()

    async def _main(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        clock = ManualClock()
        service = Service(parse_config(TOML.format(data=self.data)), clock,
                          parts=Part.STORAGE | Part.RULES | Part.GENTEST)
        await service.start(run_poller=False)
        try:
            users = UserStore(service.storage.require().connection)
            self.token = users.add("ada", Role.ADMIN, clock.now())
            async with serving(create_app(service, manage_service=False), "127.0.0.1", self.port):
                self._ready.set()
                await self._stop.wait()
        finally:
            await service.stop()

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(timeout=30)
        if self._error is not None:
            raise self._error

    def schema(self) -> Any:
        return schemathesis.openapi.from_url(self.url + "/openapi.json")

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=30)


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningEdge]:
    e = RunningEdge(tmp_path_factory.mktemp("fuzz-edge"))
    e.start()
    try:
        yield e
    finally:
        e.stop()


def test_edge_api_without_a_token_never_answers_500(edge: RunningEdge) -> None:
    found, operations = fuzz_schema(edge.schema(), {})
    assert found == [] and operations >= 10


def test_edge_api_with_an_admins_token_never_answers_500(edge: RunningEdge) -> None:
    found, operations = fuzz_schema(edge.schema(), {"Authorization": f"Bearer {edge.token}"})
    assert found == [] and operations >= 10
