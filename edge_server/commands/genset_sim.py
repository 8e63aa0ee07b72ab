"""`nsp-edge genset-sim`: a virtual generator controller (DSE GenComm by default) on Modbus TCP
and/or RTU, with a modelled engine in real time (docs/generators.md).

    nsp-edge genset-sim --unit 10 --tcp 127.0.0.1:5030 [--rtu /dev/pts/7 --baud 19200]
                        [--profile dse-gencomm] [--rated-kw 32] [--load-kw 12]
                        [--mode auto] [--crank-fails] [--fault low_oil_pressure]
                        [--mains absent] [--unplug gen_kw --unplug coolant_temp_c]

The engine steps every --step-s seconds of wall time. It runs until SIGINT/SIGTERM.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys

from edge_server.commands.node_sim import _host_port
from edge_server.genset.engine import EngineModel
from edge_server.genset.profile import ProfileError, load_profile
from edge_server.genset.sim import VirtualController

FAULTS = ("low_oil_pressure", "high_coolant_temp", "over_speed")


def _unit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 247:
        raise argparse.ArgumentTypeError(f"a Modbus unit id is 1..247, got {text!r}")
    return int(text)


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("genset-sim", help="run a virtual generator controller (DSE GenComm)",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--unit", type=_unit, required=True, help="Modbus unit id (1..247)")
    p.add_argument("--tcp", type=_host_port, help="listen on HOST:PORT (Modbus TCP)")
    p.add_argument("--rtu", metavar="PORT", help="serve Modbus RTU on this serial device")
    p.add_argument("--baud", type=int, default=19200, help="RTU baud rate (default 19200)")
    p.add_argument("--profile", default="dse-gencomm",
                   help="shipped profile name or a profile file (default dse-gencomm)")
    p.add_argument("--rated-kw", type=float, default=32.0)
    p.add_argument("--load-kw", type=float, default=12.0, help="site load when on load")
    p.add_argument("--mode", choices=("stop", "auto", "manual", "test"), default="auto")
    p.add_argument("--mains", choices=("present", "absent"), default="present")
    p.add_argument("--crank-fails", action="store_true", help="every crank fails")
    p.add_argument("--fault", choices=FAULTS, help="a shutdown that develops while running")
    p.add_argument("--unplug", action="append", default=[], metavar="CHANNEL",
                   help="a sensor that reads the controller's fault sentinel (repeatable)")
    p.add_argument("--step-s", type=float, default=0.5, help="engine step (wall seconds)")
    p.set_defaults(func=run)


async def _serve(args: argparse.Namespace) -> int:
    try:
        profile = load_profile(args.profile)
    except ProfileError as exc:
        print(f"nsp-edge genset-sim: {exc}", file=sys.stderr)
        return 2
    names = {c.name for c in profile.channels}
    unknown = [n for n in args.unplug if n not in names]
    if unknown:
        print(f"nsp-edge genset-sim: --unplug {', '.join(unknown)}: no such channel in "
              f"{profile.profile.name}; use one of {', '.join(sorted(names))}", file=sys.stderr)
        return 2
    load = float(args.load_kw)
    engine = EngineModel(rated_kw=args.rated_kw, load_kw=lambda _t: load, mode=args.mode,
                         crank_fails=args.crank_fails, fault=args.fault,
                         mains_present=args.mains == "present")
    ctrl = VirtualController(profile, engine, unit=args.unit)
    ctrl.unplug.update(args.unplug)
    ctrl.refresh()
    rtu: VirtualController | None = None
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        if args.tcp:
            host, _, port = args.tcp.rpartition(":")
            bound = await ctrl.start_tcp(host, int(port))
            print(f"genset-sim: unit {args.unit} ({profile.profile.name}) on tcp "
                  f"{host}:{bound}", flush=True)
        if args.rtu:
            rtu = VirtualController(profile, engine, unit=args.unit)
            rtu.unplug.update(args.unplug)
            await rtu.start_rtu(args.rtu, baudrate=args.baud)
            print(f"genset-sim: unit {args.unit} on rtu {args.rtu} at {args.baud} baud",
                  flush=True)
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), args.step_s)
            ctrl.step(args.step_s)
            if rtu is not None:
                rtu.refresh()  # the same engine, seen on the serial port too
    except OSError as exc:
        print(f"nsp-edge genset-sim: cannot listen: {exc}", file=sys.stderr)
        return 2
    finally:
        await ctrl.stop()
        if rtu is not None:
            await rtu.stop()
    return 0


def run(args: argparse.Namespace) -> int:
    if not args.tcp and not args.rtu:
        print("nsp-edge genset-sim: give --tcp HOST:PORT and/or --rtu PORT", file=sys.stderr)
        return 2
    return asyncio.run(_serve(args))
