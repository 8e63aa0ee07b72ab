"""`nsp-edge commission`: the site technician's check of every node, read-only.

    nsp-edge commission --config site.toml [--unit N] [--lang nl|en] [--json] [--watch SECONDS]
    nsp-edge commission --config site.toml --record [--by NAME]      # + a record for the C-NSP
    nsp-edge commission --tcp HOST:PORT [--units 1-10]               # bench, no site config
    nsp-edge commission --rtu /dev/ttyUSB0 [--baud 19200] [--parity E] [--units 1-247]

Exit status: 0 all PASS, 1 warnings, 2 failures (or a bad config / port / argument).
Without --record nothing is sent anywhere; with it the result goes into the site's uplink outbox
(kind "commissioning", docs/schemas/commissioning-body.json) and the edge service delivers it.
docs/commissioning.md explains the checklist.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TextIO

from pydantic import ValidationError

from edge_server.commission.assess import (
    Check,
    SiteReport,
    Target,
    changes,
    port_error_check,
    render_text,
    to_json,
)
from edge_server.commission.genset import check_generators
from edge_server.commission.probe import Extra, ReadBus, commission, make_client, scan, watch
from edge_server.commission.texts import Lang, Level, message
from edge_server.commission.walkaround import walk_around
from edge_server.config import (
    ConfigError,
    RtuBus,
    TcpBus,
    format_validation_error,
    load_config,
    parse_listen,
)
from edge_server.modbus_client import PortUnavailable

DEFAULT_TIMEOUT_S = 1.0
# A scan asks each unit for 3 registers: at 19200 baud request + reply take ~10 ms on the wire,
# so 0.1 s leaves a slow node 90 ms to answer and scans 1-247 in ~25 s.
DEFAULT_SCAN_TIMEOUT_S = 0.1
BAUD_RATES = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)  # config.RtuBus.baudrate
IO_POLL_S = 0.5  # --test-io reads the node twice a second while waiting for the technician


def _units(text: str) -> list[int]:
    first, _, last = text.partition("-")
    try:
        lo, hi = int(first), int(last or first)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"--units takes FIRST-LAST such as 1-10, got {text!r}") from None
    if not 1 <= lo <= hi <= 247:
        raise argparse.ArgumentTypeError(
            f"--units: unit ids are 1-247 and FIRST <= LAST, got {text!r}")
    return list(range(lo, hi + 1))


def _unit(text: str) -> int:
    if not text.isdigit() or not 1 <= int(text) <= 247:
        raise argparse.ArgumentTypeError(f"--unit must be a Modbus unit id 1-247, got {text!r}")
    return int(text)


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value > 0:
        raise argparse.ArgumentTypeError(f"expected a number of seconds > 0, got {text!r}")
    return value


def add_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "commission", help="check every node for the site technician (read-only): PASS/WARN/FAIL",
        description="Read each node once and check it: map version, unit, roles, firmware, "
        "resets, status bits, heap, bus errors, every sensor with its faults. Read-only: never "
        "writes to a node (not to the generator start relay either). Exit 0 pass, 1 warn, 2 fail.")
    where = p.add_mutually_exclusive_group(required=True)
    where.add_argument("--config", type=Path, help="the site's TOML configuration")
    where.add_argument("--tcp", metavar="HOST:PORT", help="no config: a Modbus TCP node/gateway")
    where.add_argument("--rtu", metavar="DEVICE", help="no config: a serial port, /dev/ttyUSB0")
    p.add_argument("--unit", type=_unit, help="only this unit id (no scan without --config)")
    p.add_argument("--units", type=_units, default=None, metavar="FIRST-LAST",
                   help="units to scan without --config (default 1-247)")
    p.add_argument("--baud", type=int, default=19200, choices=BAUD_RATES, metavar="BAUD",
                   help="RTU baud rate (default 19200; the firmware's modbus.baud)")
    p.add_argument("--parity", choices=("E", "O", "N"), default="E",
                   help="RTU parity (default E; N uses 2 stop bits)")
    p.add_argument("--lang", choices=("nl", "en"), default="nl", help="language (default nl)")
    p.add_argument("--json", action="store_true", help="machine-readable report (one per read)")
    p.add_argument("--watch", type=_positive, metavar="SECONDS",
                   help="read again every SECONDS and show what changed (Ctrl-C stops)")
    p.add_argument("--test-io", action="store_true",
                   help="ask the technician to act (open the door, walk in, pull the fuel plug) "
                   "and confirm what each node saw")
    p.add_argument("--io-timeout", type=_positive, default=60.0, metavar="SECONDS",
                   help="seconds to wait for each --test-io action (default 60)")
    p.add_argument("--record", action="store_true",
                   help="with --config: queue the result for the C-NSP hub (the site's uplink "
                   "outbox; the running edge service sends it). Without it nothing is sent")
    p.add_argument("--by", metavar="NAME",
                   help="who commissioned, for --record (default: the operating-system user)")
    p.add_argument("--timeout", type=_positive,
                   help=f"seconds per request (default poll.timeout_s, else {DEFAULT_TIMEOUT_S})")
    p.add_argument("--scan-timeout", type=_positive, default=DEFAULT_SCAN_TIMEOUT_S,
                   help=f"seconds per unit while scanning (default {DEFAULT_SCAN_TIMEOUT_S})")
    p.set_defaults(func=run)


class UsageError(Exception):
    """Arguments or a config that cannot be used: printed as is, exit 2."""


def _bench_bus(args: argparse.Namespace) -> RtuBus | TcpBus:
    try:
        if args.tcp:
            try:
                host, port = parse_listen(args.tcp)
            except ValueError:
                raise UsageError(f"--tcp: {args.tcp!r} is not HOST:PORT; write e.g. "
                                 "192.168.10.23:502 (Modbus TCP is port 502)") from None
            return TcpBus(name="tcp", kind="tcp", host=host, port=port)
        return RtuBus(name="rtu", kind="rtu", port=args.rtu, baudrate=args.baud,
                      parity=args.parity, stopbits=2 if args.parity == "N" else 1)
    except ValidationError as exc:
        raise UsageError(format_validation_error(exc, "command line")) from None


async def _plan(args: argparse.Namespace, lang: Lang, clients: dict[str, ReadBus],
                ) -> tuple[list[Target], list[Check], Extra | None]:
    """The targets (from the config, or found by a scan), the scan's own report lines and the
    generator controllers' checks (`[[generators]]`, commission/genset.py)."""
    if args.config is not None:
        try:
            cfg = load_config(args.config)
        except ConfigError as exc:
            raise UsageError(str(exc)) from None
        nodes = [n for n in cfg.nodes if args.unit is None or n.unit == args.unit]
        if not nodes:
            raise UsageError(message("unit_not_configured", lang, unit=args.unit,
                                     source=args.config,
                                     units=", ".join(str(n.unit) for n in cfg.nodes)))
        timeout = args.timeout or cfg.poll.timeout_s
        for n in nodes:
            if n.bus not in clients:
                clients[n.bus] = make_client(cfg.bus(n.bus), timeout, cfg.poll.retries)
        gens = [g for g in cfg.generators if args.unit is None or g.unit == args.unit]
        for g in gens:
            if g.bus not in clients:
                clients[g.bus] = make_client(cfg.bus(g.bus), timeout, cfg.poll.retries)

        async def generators() -> list[Check]:
            where = {bus: c.describe for bus, c in clients.items()}
            return await check_generators(gens, clients, where)

        targets = [Target(n.name, n.bus, n.unit, tuple(n.roles)) for n in nodes]
        return targets, [], generators if gens else None
    bus = _bench_bus(args)
    clients[bus.name] = make_client(bus, args.timeout or DEFAULT_TIMEOUT_S, 1)
    if args.unit is not None:
        return [Target(f"unit{args.unit}", bus.name, args.unit)], [], None
    units = args.units or list(range(1, 248))
    scanner = make_client(bus, args.scan_timeout, 0)
    t0 = time.monotonic()
    try:
        found = await scan(scanner, units)
    finally:
        scanner.close()
    seconds = time.monotonic() - t0
    where = clients[bus.name].describe
    if not found:
        check = Check.msg(Level.FAIL, "scan_none", "scan_none", first=units[0], last=units[-1],
                          bus=where)
    else:
        check = Check.msg(Level.INFO, "scan_found", "scan_found", bus=where,
                          units=", ".join(map(str, found)), seconds=seconds)
    return [Target(f"unit{u}", bus.name, u) for u in found], [check], None


async def commission_main(
    args: argparse.Namespace, out: TextIO | None = None, iterations: int | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> int:
    """The command, as a coroutine: tests pass `iterations` and a `sleep` that moves the world."""
    lang: Lang = args.lang
    stream = out or sys.stdout  # looked up per call: pytest's capsys replaces sys.stdout
    clients: dict[str, ReadBus] = {}
    scan_checks: list[Check] = []

    def emit(report: SiteReport, before: SiteReport | None) -> None:
        report.checks[:0] = scan_checks
        if args.json:
            stream.write(json.dumps(to_json(report, lang), ensure_ascii=False) + "\n")
        elif before is None:
            stream.write(render_text(report, lang))
        else:
            stamp = time.strftime("%H:%M:%S")
            lines = changes(before, report, lang) or [message("watch_same", lang)]
            stream.write("".join(f"{stamp} {line}\n" for line in lines))
        stream.flush()

    if args.test_io and args.watch:
        raise UsageError("--test-io and --watch: choose one (--test-io waits for each action)")
    record = getattr(args, "record", False)
    if record and (args.config is None or args.watch):
        raise UsageError("--record needs --config (the site and its outbox) and no --watch "
                         "(one result to record)")
    if getattr(args, "by", None) and not record:
        raise UsageError("--by names who commissioned for --record: add --record")
    try:
        try:
            targets, scan_checks, extra = await _plan(args, lang, clients)
        except PortUnavailable as exc:  # the port itself: missing, busy, refused
            where = next(iter(clients.values())).describe if clients else "?"
            out_check = port_error_check(where, str(exc))
            emit(SiteReport([], [out_check]), None)
            return 2
        if not targets:
            emit(SiteReport([]), None)
            return 2
        if args.test_io:
            prompts = sys.stderr if args.json else stream  # JSON keeps stdout machine-readable

            def say(line: str) -> None:
                prompts.write(line + "\n")
                prompts.flush()

            report = await commission(targets, clients, extra)
            for node in report.nodes:
                if node.answered and node.blocks:
                    node.checks += await walk_around(
                        clients[node.target.bus], node, lang, say, sleep, args.io_timeout,
                        IO_POLL_S)
            emit(report, None)
        else:
            interval = args.watch
            report = await watch(targets, clients, interval or 0.0, emit,
                                 iterations=0 if interval is None else iterations, sleep=sleep,
                                 extra=extra)
        if record:
            _record(args, report, sys.stderr if args.json else stream)
        return report.exit_code
    finally:
        for client in clients.values():
            client.close()


def _record(args: argparse.Namespace, report: SiteReport, stream: TextIO) -> None:
    """Queue the commissioning record in the site's outbox and say where it went."""
    from edge_server.clock import SystemClock
    from edge_server.commission.record import queue_record, record_body, who_ran_it

    cfg = load_config(args.config)  # read by _plan already: valid
    now = SystemClock().now()
    body = record_body(report, cfg.site.id, who_ran_it(args.by), now)
    msg_id, path = queue_record(cfg, body, now)
    lang: Lang = args.lang
    stream.write(message("record_queued", lang, result=body["result"], by=body["by"],
                         path=path.resolve(), id=msg_id) + "\n")
    if not cfg.uplink.enabled:
        stream.write(message("record_no_uplink", lang) + "\n")
    stream.flush()


def run(args: argparse.Namespace) -> int:
    try:
        return asyncio.run(commission_main(args))
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # --watch ends with Ctrl-C: the last report's code is unknown
        return 130
