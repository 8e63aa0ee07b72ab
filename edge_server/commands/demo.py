"""`nsp-edge demo [--duration SECONDS]`: a whole virtual site on this machine.

Starts three virtual nodes (the real firmware on the MicroPython unix port, via
`nsp-edge node-sim`): power (unit 1), fridge (unit 2) and entrance (unit 3), each with Modbus TCP
on a free localhost port; writes a site configuration for them in a temporary directory; runs
the edge service (poller, API, site page); starts the C-NSP hub when it exists; prints the URLs
and, every few seconds, a few live values. Ctrl-C (or --duration) stops everything and removes
the temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from edge_server.state import SiteState

# (node name, unit, roles, values printed every few seconds)
DEMO_NODES: tuple[tuple[str, int, str, tuple[str, ...]], ...] = (
    ("power", 1, "power", ("mains_present", "gen_running", "fuel_l", "battery_v")),
    ("fridge", 2, "fridge", ("fridge_temp_c", "ambient_temp_c", "door_open")),
    ("entrance", 3, "entrance", ("visitors_in", "occupancy")),
)
# Make something happen in the simulated world so values move (control channel, "set").
WORLD_SETTINGS: tuple[tuple[str, str, object], ...] = (
    ("entrance", "visitors_per_hour", 600),
)
START_DEADLINE_S = 30.0


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("demo", help="run a virtual site: three virtual nodes, the edge service, "
                       "the hub; prints the URLs and live values")
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                   help="stop after this many seconds (default: until Ctrl-C)")
    p.add_argument("--port", type=int, default=0,
                   help="port of the site page and API (default: a free one)")
    p.add_argument("--every", type=float, default=3.0, metavar="SECONDS",
                   help="print live values this often (default 3 s)")
    p.set_defaults(func=run)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class DemoNode:
    name: str
    unit: int
    roles: str
    shown: tuple[str, ...]
    modbus_port: int
    control_port: int
    process: subprocess.Popen[bytes] | None = None


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "edge_server.cli", *args]


def start_node(node: DemoNode, workdir: Path) -> None:
    data = workdir / node.name
    data.mkdir()
    log = (workdir / f"{node.name}.log").open("wb")
    node.process = subprocess.Popen(
        _cli("node-sim", "--unit", str(node.unit), "--tcp", f"127.0.0.1:{node.modbus_port}",
             "--roles", node.roles, "--control", f"127.0.0.1:{node.control_port}",
             "--data", str(data)),
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
        start_new_session=True,  # Ctrl-C goes to the demo, which stops the nodes itself
    )
    log.close()


def wait_for_port(port: int, process: subprocess.Popen[bytes], deadline: float) -> bool:
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return True
        except OSError:
            time.sleep(0.05)
    return False


def stop_processes(processes: list[subprocess.Popen[bytes]]) -> None:
    for p in processes:
        if p.poll() is None:
            p.terminate()
    for p in processes:
        try:
            p.wait(timeout=5)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(timeout=5)


def control(port: int, request: dict[str, object]) -> dict[str, object]:
    """One request on a virtual node's control channel (one JSON object per line)."""
    with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
        s.sendall(json.dumps(request).encode() + b"\n")
        reply = s.makefile("rb").readline()
    result: dict[str, object] = json.loads(reply or b"{}")
    return result


def site_toml(nodes: list[DemoNode], workdir: Path, listen: str) -> str:
    lines = [
        "# Written by `nsp-edge demo`: the demo site's three virtual nodes on localhost.",
        '[site]\nid = "demo-site"\nname = "Demo noodsteunpunt"\n',
        f'[api]\nlisten = "{listen}"\n',
        f'[storage]\ndata_dir = "{workdir / "edge-data"}"\n',
        "[poll]\ninterval_s = 1.0\ntimeout_s = 0.5\nretries = 0\nbackoff_max_s = 8.0\n",
    ]
    for n in nodes:
        lines.append(f'[[buses]]\nname = "{n.name}-tcp"\nkind = "tcp"\nhost = "127.0.0.1"\n'
                     f"port = {n.modbus_port}\n")
    for n in nodes:
        lines.append(f'[[nodes]]\nname = "{n.name}"\nbus = "{n.name}-tcp"\nunit = {n.unit}\n'
                     f'roles = ["{n.roles}"]\n')
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------
# HUB HOOK (H5): start the C-NSP hub here once `nsp-edge hub` serves one. Return the process
# and the URL to print, or None while there is no hub. The demo stops the process at the end.
def start_hub(workdir: Path) -> tuple[subprocess.Popen[bytes], str] | None:
    return None
# ------------------------------------------------------------------------------------------


def format_values(state: SiteState, nodes: list[DemoNode]) -> str:
    parts = []
    for n in nodes:
        status = state.nodes[n.name]
        shown = []
        for name in n.shown:
            r = state.get(f"{n.name}.{name}")
            if r is None or r.value is None:
                shown.append(f"{name}=n/a")
            elif isinstance(r.value, float):
                shown.append(f"{name}={r.value:g}{(' ' + r.unit) if r.unit else ''}")
            else:
                shown.append(f"{name}={r.value}{(' ' + r.unit) if r.unit else ''}")
        word = "online" if status.online else "OFFLINE"
        parts.append(f"{n.name} [{word}] " + " ".join(shown))
    return " | ".join(parts)


async def _serve(nodes: list[DemoNode], config_path: Path, port: int, hub_url: str | None,
                 duration_s: float | None, every_s: float) -> None:
    from edge_server.api.app import create_app, serving
    from edge_server.clock import SystemClock
    from edge_server.config import load_config
    from edge_server.service import Service

    service = Service(load_config(config_path), SystemClock())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with serving(create_app(service), "127.0.0.1", port):
        url = f"http://127.0.0.1:{port}"
        print("NSP demo site is running (Ctrl-C stops it):")
        print(f"  site page: {url}/")
        print(f"  API:       {url}/api/v1/site")
        print(f"  hub:       {hub_url or '(not available yet: `nsp-edge hub` is not built)'}")
        for n in nodes:
            pid = n.process.pid if n.process else "-"
            print(f"  node {n.name}: unit {n.unit}, Modbus TCP 127.0.0.1:{n.modbus_port}, "
                  f"pid {pid}")
        sys.stdout.flush()
        started = loop.time()
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=every_s)
            except TimeoutError:
                pass
            print(time.strftime("%H:%M:%S"), format_values(service.state, nodes), flush=True)
            if duration_s is not None and loop.time() - started >= duration_s:
                break
    print("demo stopped", flush=True)


def run(args: argparse.Namespace) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="nsp-demo-"))
    processes: list[subprocess.Popen[bytes]] = []
    try:
        nodes = [DemoNode(name, unit, roles, shown, free_port(), free_port())
                 for name, unit, roles, shown in DEMO_NODES]
        for node in nodes:
            start_node(node, workdir)
            assert node.process is not None
            processes.append(node.process)
        deadline = time.monotonic() + START_DEADLINE_S
        for node in nodes:
            assert node.process is not None
            if not wait_for_port(node.modbus_port, node.process, deadline):
                log = (workdir / f"{node.name}.log").read_text(errors="replace")[-2000:]
                print(f"demo: virtual node {node.name} did not start (nsp-edge node-sim):\n{log}",
                      file=sys.stderr)
                return 1
        for name, key, value in WORLD_SETTINGS:
            node = next(n for n in nodes if n.name == name)
            try:
                reply = control(node.control_port, {"op": "set", "key": key, "value": value})
                if not reply.get("ok"):
                    print(f"demo: {name}: set {key}: {reply.get('error')}", file=sys.stderr)
            except (OSError, ValueError) as exc:
                print(f"demo: {name}: control channel: {exc}", file=sys.stderr)
        hub = start_hub(workdir)
        if hub is not None:
            processes.append(hub[0])
        port = args.port or free_port()
        config_path = workdir / "site.toml"
        config_path.write_text(site_toml(nodes, workdir, f"127.0.0.1:{port}"), encoding="utf-8")
        asyncio.run(_serve(nodes, config_path, port, hub[1] if hub else None,
                           args.duration, args.every))
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        stop_processes(processes)
        shutil.rmtree(workdir, ignore_errors=True)
