"""`nsp-edge demo [--duration SECONDS]`: a whole virtual site on this machine.

Starts three virtual nodes (the real firmware on the MicroPython unix port, with
edge_server.vnode.VirtualNode, as `nsp-edge node-sim` does): power (unit 1), fridge (unit 2)
and entrance (unit 3), each with Modbus TCP on a free localhost port; writes a site
configuration for them in a temporary directory; runs the edge service (poller, API, site
page); starts the C-NSP hub when it exists; prints the URLs and, every few seconds, a few live
values. Ctrl-C (or --duration) stops everything and removes the temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
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
from edge_server.vnode import VirtualNode

# (node name, unit, roles, values printed every few seconds)
DEMO_NODES: tuple[tuple[str, int, str, tuple[str, ...]], ...] = (
    ("power", 1, "power", ("mains_present", "gen_running", "fuel_l", "battery_v")),
    ("fridge", 2, "fridge", ("fridge_temp_c", "ambient_temp_c", "door_open")),
    ("entrance", 3, "entrance", ("visitors_in", "occupancy")),
)
# Make something happen in the simulated world so values move (control channel, "set"):
# visitors walk in and out from the start; then, in a loop of STORY_S seconds, the fridge door
# is left open for a while and mains fails for a while (the generator starts).
WORLD_SETTINGS: tuple[tuple[str, str, object], ...] = (
    ("entrance", "visitors_per_hour", 1800),
)
STORY_S = 60.0
DEMO_SITE_ID = "demo-site"
# The week before the start is simulated (commands/demo_history.py): the name says so wherever
# the site is shown (site page, hub board).
DEMO_SITE_NAME = "Demo noodsteunpunt (week ervoor gesimuleerd / week before simulated)"


def story(t_s: float) -> list[tuple[str, str, object]]:
    """What the simulated world looks like t_s seconds into the demo."""
    t = t_s % STORY_S
    return [
        ("fridge", "door_open", 8 <= t < 20),
        ("power", "mains_present", not 25 <= t < 45),
    ]


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
    shown: tuple[str, ...]
    vnode: VirtualNode

    @property
    def unit(self) -> int:
        return self.vnode.unit

    @property
    def modbus_port(self) -> int:
        assert self.vnode.tcp_port is not None
        return self.vnode.tcp_port


def make_nodes() -> list[DemoNode]:
    """The demo's three virtual nodes (not started)."""
    return [DemoNode(name, shown, VirtualNode(unit, (roles,), control=True))
            for name, unit, roles, shown in DEMO_NODES]


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


def site_toml(nodes: list[DemoNode], workdir: Path, listen: str, extra: str = "") -> str:
    lines = [
        "# Written by `nsp-edge demo`: the demo site's three virtual nodes on localhost.",
        f'[site]\nid = "{DEMO_SITE_ID}"\nname = "{DEMO_SITE_NAME}"\n',
        f'[api]\nlisten = "{listen}"\n',
        f'[storage]\ndata_dir = "{workdir / "edge-data"}"\n',
        "[poll]\ninterval_s = 1.0\ntimeout_s = 0.5\nretries = 0\nbackoff_max_s = 8.0\n",
    ]
    for n in nodes:
        lines.append(f'[[buses]]\nname = "{n.name}-tcp"\nkind = "tcp"\nhost = "127.0.0.1"\n'
                     f"port = {n.modbus_port}\n")
    for n in nodes:
        roles = ", ".join(f'"{r}"' for r in n.vnode.roles)
        lines.append(f'[[nodes]]\nname = "{n.name}"\nbus = "{n.name}-tcp"\nunit = {n.unit}\n'
                     f"roles = [{roles}]\n")
    if extra:
        lines.append(extra)
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------
# The C-NSP hub (`nsp-edge hub`): the demo site is registered, its key handed to the edge's
# uplink, and an operator token printed so a person can open the regional board.
@dataclass
class HubRun:
    process: subprocess.Popen[bytes]
    url: str
    token: str
    uplink_toml: str


def _cli(*args: str) -> list[str]:
    return [sys.executable, "-m", "edge_server.cli", *args]


def start_hub(workdir: Path, site_id: str) -> HubRun | None:
    """Start the hub; None (with a message) when it cannot run, the demo goes on without it."""
    hub_dir = workdir / "hub"
    try:
        added = subprocess.run(_cli("hub", "--data", str(hub_dir), "add-site", site_id),
                               capture_output=True, text=True, timeout=60, check=True)
        key = added.stdout.split()[-1]
        user = subprocess.run(_cli("hub", "--data", str(hub_dir), "add-user", "demo",
                                   "--role", "operator"),
                              capture_output=True, text=True, timeout=60, check=True)
        token = user.stdout.split()[-1]
    except (subprocess.SubprocessError, OSError, IndexError) as exc:
        print(f"demo: the C-NSP hub cannot be set up, going on without it: {exc}",
              file=sys.stderr)
        return None
    key_file = workdir / "site.key"
    key_file.write_text(key + "\n", encoding="utf-8")
    key_file.chmod(0o600)
    port = free_port()
    with (workdir / "hub.log").open("wb") as log:
        process = subprocess.Popen(
            _cli("hub", "--data", str(hub_dir), "--listen", f"127.0.0.1:{port}"),
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C goes to the demo, which stops the hub itself
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.05)
    else:
        stop_processes([process])
        print("demo: the C-NSP hub did not start, going on without it:\n"
              + (workdir / "hub.log").read_text(errors="replace")[-2000:], file=sys.stderr)
        return None
    uplink = (f'[uplink]\nenabled = true\nhub_url = "http://127.0.0.1:{port}"\n'
              f'key_file = "{key_file}"\nstatus_interval_s = 5.0\n')
    return HubRun(process, f"http://127.0.0.1:{port}/", token, uplink)
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


def _set_world(nodes: list[DemoNode], name: str, key: str, value: object) -> None:
    node = next(n for n in nodes if n.name == name)
    try:
        reply = node.vnode.control({"op": "set", "key": key, "value": value}, timeout=5)
        if not reply.get("ok"):
            print(f"demo: {name}: set {key}: {reply.get('error')}", file=sys.stderr)
    except (OSError, ValueError) as exc:
        print(f"demo: {name}: control channel: {exc}", file=sys.stderr)


async def _serve(nodes: list[DemoNode], config_path: Path, port: int, hub: HubRun | None,
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
        if service.storage is not None:
            from edge_server.commands.demo_history import DAYS, backfill

            for _ in range(50):  # the first poll gives the tank's live level (<= 5 s)
                fuel = service.state.get("power.fuel_l")
                if fuel is not None and fuel.ok:
                    break
                await asyncio.sleep(0.1)
            live = None if fuel is None or not fuel.ok else fuel.value
            level = float(live) if isinstance(live, int | float) else 412.0
            rows = backfill(service.storage.require(), service.clock.now(),
                            {"power": "power", "fridge": "fridge"}, level)
        print("NSP demo site is running (Ctrl-C stops it):")
        if service.storage is not None:
            print(f"  history:   {DAYS} simulated days before now ({rows} readings; "
                  "event DEMO_HISTORY), so the plots show something at once")
        print(f"  site page: {url}/")
        print(f"  API:       {url}/api/v1/site")
        if hub is not None:
            print(f"  hub:       {hub.url} (operator token: {hub.token}), pid {hub.process.pid}")
        else:
            print("  hub:       (not running)")
        for n in nodes:
            pid = n.vnode.process.pid if n.vnode.process else "-"
            print(f"  node {n.name}: unit {n.unit}, Modbus TCP 127.0.0.1:{n.modbus_port}, "
                  f"pid {pid}")
        sys.stdout.flush()
        started = loop.time()
        world: dict[tuple[str, str], object] = {}
        while not stop.is_set():
            for name, key, value in story(loop.time() - started):
                if world.get((name, key)) != value:
                    world[(name, key)] = value
                    await asyncio.to_thread(_set_world, nodes, name, key, value)
            try:
                await asyncio.wait_for(stop.wait(), timeout=every_s)
            except TimeoutError:
                pass
            print(time.strftime("%H:%M:%S"), format_values(service.state, nodes), flush=True)
            if duration_s is not None and loop.time() - started >= duration_s:
                break
    print("demo stopped", flush=True)


def run(args: argparse.Namespace) -> int:
    logging.getLogger("httpx").setLevel(logging.WARNING)  # one line per uplink request is noise
    workdir = Path(tempfile.mkdtemp(prefix="nsp-demo-"))
    nodes = make_nodes()
    hub: HubRun | None = None
    try:
        for node in nodes:
            try:
                node.vnode.start()  # waits until its Modbus and control ports answer
            except (RuntimeError, TimeoutError, FileNotFoundError) as exc:
                print(f"demo: virtual node {node.name} did not start: {exc}", file=sys.stderr)
                return 1
        for name, key, value in WORLD_SETTINGS:
            _set_world(nodes, name, key, value)
        hub = start_hub(workdir, DEMO_SITE_ID)
        port = args.port or free_port()
        config_path = workdir / "site.toml"
        config_path.write_text(
            site_toml(nodes, workdir, f"127.0.0.1:{port}", hub.uplink_toml if hub else ""),
            encoding="utf-8",
        )
        asyncio.run(_serve(nodes, config_path, port, hub, args.duration, args.every))
        return 0
    except KeyboardInterrupt:
        return 0
    finally:
        if hub is not None:
            stop_processes([hub.process])
        for node in nodes:
            node.vnode.stop()
        shutil.rmtree(workdir, ignore_errors=True)
