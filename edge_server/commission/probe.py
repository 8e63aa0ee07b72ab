"""Reading nodes for commissioning: one FC03 read of the whole image per node, a unit scan, and
the --watch loop. Read-only: this module only ever calls `read_registers`.

The clients are typed as `ReadBus` (read_registers + close), so no write to a coil or register
(the generator start relay is coil 0) can be written here without the type check noticing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from typing import Protocol

from edge_server import regmap
from edge_server.commission.assess import (
    Check,
    NodeReport,
    SiteReport,
    Target,
    assess_node,
    exception_reply,
    no_answer,
    site_checks,
)
from edge_server.commission.texts import Level
from edge_server.config import RtuBus, TcpBus
from edge_server.modbus_client import BusClient, ExceptionReply, NoAnswer, PortUnavailable

TCP_ANY_UNIT = 255
SCAN_REGISTERS = 3  # map_version, node_id, roles: an 11-byte RTU reply (5.7 ms at 19200 baud)


class ReadBus(Protocol):
    describe: str
    timeout_s: float
    retries: int

    async def read_registers(self, unit: int, address: int, count: int) -> list[int]: ...

    def close(self) -> None: ...


def make_client(bus: RtuBus | TcpBus, timeout_s: float, retries: int) -> ReadBus:
    return BusClient(bus, timeout_s=timeout_s, retries=retries)


async def read_node(client: ReadBus, target: Target) -> NodeReport:
    """The whole register image in one request (it fits one FC03 read by the map's own check);
    on an exception reply, the map version alone, to tell an unknown map from a wrong device."""
    size = regmap.load().image_size
    try:
        words = await client.read_registers(target.unit, 0, size)
    except NoAnswer as exc:
        port_error = isinstance(exc, PortUnavailable)
        other = None if port_error else await _whoever_answers(client, size)
        if other is None:
            return no_answer(target, client.describe, str(exc),
                             client.timeout_s * (client.retries + 1), port_error)
        words = other
    except ExceptionReply as exc:
        try:
            words = await client.read_registers(target.unit, 0, 1)
        except (NoAnswer, ExceptionReply):
            return exception_reply(target, client.describe, str(exc))
        if words and words[0] in regmap.KNOWN_VERSIONS:
            return exception_reply(target, client.describe, str(exc))
    return assess_node(target, client.describe, words)


async def _whoever_answers(client: ReadBus, size: int) -> list[int] | None:
    """Over Modbus TCP, unit 255 addresses the device at the other end whatever its id (Modbus
    Messaging on TCP/IP Implementation Guide 4.4.2; the firmware serves it as its own unit): a
    node there with another node_id is then reported as a wrong unit, naming both ids."""
    if not client.describe.startswith("tcp "):
        return None
    try:
        return await client.read_registers(TCP_ANY_UNIT, 0, size)
    except (NoAnswer, ExceptionReply):
        return None


Extra = Callable[[], Awaitable[list[Check]]]


async def commission(targets: list[Target], clients: dict[str, ReadBus],
                     extra: Extra | None = None) -> SiteReport:
    """Read every target; buses in parallel, the nodes of one bus one after the other. `extra`
    adds site checks read after the nodes (the generator controllers: commission/genset.py)."""
    by_bus: dict[str, list[Target]] = {}
    for t in targets:
        by_bus.setdefault(t.bus, []).append(t)

    async def one_bus(bus: str, nodes: list[Target]) -> list[NodeReport]:
        return [await read_node(clients[bus], t) for t in nodes]

    results = await asyncio.gather(*(one_bus(b, n) for b, n in by_bus.items()))
    reports = {(r.target.bus, r.target.unit, r.target.name): r for rs in results for r in rs}
    site = SiteReport([reports[(t.bus, t.unit, t.name)] for t in targets])
    for bus, nodes in by_bus.items():
        got = [reports[(t.bus, t.unit, t.name)] for t in nodes]
        if len(got) > 1 and not any(r.answered for r in got) and all(
                c.code == "no_answer" for r in got for c in r.checks):
            site.checks.append(Check.msg(Level.FAIL, "bus_silent", "bus_silent",
                                         bus=clients[bus].describe))
    site_checks(site)
    if extra is not None:
        site.checks += await extra()
    return site


async def scan(client: ReadBus, units: Iterable[int]) -> list[int]:
    """Units that answer (with data or a Modbus exception) a read of the first registers.

    Raises PortUnavailable when the port itself cannot be opened (no point asking 247 units)."""
    found = []
    for unit in units:
        try:
            await client.read_registers(unit, 0, SCAN_REGISTERS)
        except ExceptionReply:
            pass  # it answered: a device is there, read_node will say what is wrong
        except PortUnavailable:
            raise
        except NoAnswer:
            continue
        found.append(unit)
    return found


async def watch(
    targets: list[Target], clients: dict[str, ReadBus], interval_s: float,
    emit: Callable[[SiteReport, SiteReport | None], None],
    iterations: int | None = None,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    extra: Extra | None = None,
) -> SiteReport:
    """Read, emit, then every interval_s read again and emit (with the previous report, so the
    caller shows what changed). `iterations` reads after the first (None: until cancelled);
    `sleep` is injected so tests move the world instead of waiting."""
    report = await commission(targets, clients, extra)
    emit(report, None)
    done = 0
    while iterations is None or done < iterations:
        await sleep(interval_s)
        new = await commission(targets, clients, extra)
        emit(new, report)
        report = new
        done += 1
    return report

