"""`nsp-edge node-sim`: run one virtual node, the real firmware on the MicroPython unix port.

Writes the node's config.json (in --data DIR, else a temporary directory removed on exit),
compiles the firmware to .mpy, starts `micropython firmware/sim/vnode.py` (see
edge_server/vnode.py), forwards SIGINT/SIGTERM to it and exits with its exit code.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from types import FrameType

from edge_server.vnode import DEFAULT_HEAP, WORLDS, compile_firmware, node_command, node_config

ROLES = ("power", "fridge", "entrance")


def _host_port(text: str) -> str:
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"expected HOST:PORT such as 127.0.0.1:5020, got {text!r}")
    return f"{host or '127.0.0.1'}:{port}"


def _roles(text: str) -> list[str]:
    names = [r.strip() for r in text.split(",") if r.strip()]
    bad = [r for r in names if r not in ROLES]
    if bad:
        raise argparse.ArgumentTypeError(
            f"unknown role(s) {', '.join(bad)}; choose from {', '.join(ROLES)}")
    return names


def _heap(text: str) -> str:
    if not re.fullmatch(r"\d+[kKmM]?", text):
        raise argparse.ArgumentTypeError(f"--heap takes a size such as 96k or 128k, got {text!r}")
    return text


def _unit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 247:
        raise argparse.ArgumentTypeError(f"--unit must be a Modbus unit id 1-247, got {text!r}")
    return int(text)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("node-sim", help="run a virtual node (the real firmware on MicroPython)")
    p.add_argument("--unit", type=_unit, required=True, help="Modbus unit id (node_id), 1-247")
    p.add_argument("--tcp", type=_host_port, required=True, metavar="HOST:PORT",
                   help="Modbus TCP listen address")
    p.add_argument("--rtu", metavar="PTY_PATH", help="serve Modbus RTU on this pty (socat pair)")
    p.add_argument("--baud", type=int, default=19200, help="RTU baud rate (default 19200)")
    p.add_argument("--roles", type=_roles, default=[], help="comma list of power,fridge,entrance")
    p.add_argument("--heap", type=_heap, default=DEFAULT_HEAP,
                   help=f"MicroPython heap (default {DEFAULT_HEAP}: the firmware with all roles "
                        "plus the simulated world, code in ROMFS; with --world scripted 100k "
                        "serves four clients over a day, 92k one; the firmware alone with all "
                        "roles and Modbus TCP holds ~69 KB on this 64-bit port, so 64k cannot "
                        "hold it; firmware/README.md Memory)")
    p.add_argument("--world", choices=WORLDS, default="physics",
                   help="the site the fakes read: physics (firmware/sim/world.py, default; the "
                        "control channel's set changes it) or scripted (firmware/sim/stim.py, the "
                        "soak's scripted day: less heap, get only, no set)")
    p.add_argument("--control", type=_host_port, metavar="HOST:PORT",
                   help="control channel (JSON lines: ping/get/set/advance/offline)")
    p.add_argument("--virtual-clock", action="store_true",
                   help="time moves only on the control channel's advance")
    p.add_argument("--data", type=Path, metavar="DIR",
                   help="keep config.json and the persistent counters here (default: temp dir)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    tmp = Path(tempfile.mkdtemp(prefix=f"nsp-node-sim{args.unit}-"))
    try:
        data: Path = args.data or tmp / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = data / "config.json"
        config.write_text(json.dumps(node_config(args.unit, args.roles), indent=2) + "\n")
        build = compile_firmware(tmp / "mpy")
        argv, env = node_command(config, args.tcp, rtu=args.rtu, control=args.control,
                                 virtual_clock=args.virtual_clock, data=data, heap=args.heap,
                                 baud=args.baud, build=build, world=args.world)
        child = subprocess.Popen(argv, env=env, cwd=tmp)

        stop_requested = []

        def forward(signum: int, frame: FrameType | None) -> None:
            stop_requested.append(signum)
            if child.poll() is None:
                child.send_signal(signum)

        old = {s: signal.signal(s, forward) for s in (signal.SIGINT, signal.SIGTERM)}
        try:
            rc = child.wait()
            if rc < 0:  # ended by a signal: a stop we forwarded is a clean exit
                return 0 if -rc in stop_requested else 128 - rc
            return rc
        finally:
            for s, h in old.items():
                signal.signal(s, h)
            if child.poll() is None:
                child.kill()
                child.wait()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
