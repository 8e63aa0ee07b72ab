"""Silent and slow TCP clients never lock the edge out of a node: the virtual node (the real
firmware on MicroPython) against the edge's own Modbus adapter (edge_server.modbus_client, on
pymodbus) polling while 40 silent clients and a slow-loris client (a request header dribbled a
byte at a time, never finished) connect. The node keeps at most 4 clients; a newcomer takes the
place of the longest-idle one (never-served first), so the edge, which polls, is never the one
dropped; a client silent past modbus.tcp_idle_s is closed on the node's (virtual) clock."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable

from edge_server import regmap
from edge_server.config import TcpBus
from edge_server.modbus_client import BusClient
from edge_server.vnode import VirtualNode
from tests.vnode_fixtures import vnode_factory  # noqa: F401  (fixture)

UNIT = 4
RMAP = regmap.load()
SILENT = 40


async def test_edge_polls_without_a_miss_through_40_silent_clients_and_a_slow_loris(
    vnode_factory: Callable[..., VirtualNode],  # noqa: F811
) -> None:
    node = vnode_factory(unit=UNIT, roles=(), virtual_clock=True)
    edge = BusClient(TcpBus(name="lan", kind="tcp", host="127.0.0.1", port=node.tcp_port),
                     timeout_s=2.0, retries=0)
    loop = asyncio.get_running_loop()
    opened: list[socket.socket] = []

    async def connect() -> socket.socket:
        s = socket.socket()
        s.setblocking(False)
        opened.append(s)
        await loop.sock_connect(s, ("127.0.0.1", node.tcp_port))
        return s

    try:
        polls = 0
        loris = await connect()
        header = b"\x00\x01\x00\x00\x00\x06"  # MBAP of an FC03 request, never completed
        for _ in range(4):  # every place taken before the edge comes (4 once locked it out)
            await connect()
        for i in range(SILENT):
            if i % 10 == 0:
                edge.close()  # the edge (re)starts: its next read opens a new connection
            await connect()
            try:  # one more byte of the never-finished header
                await loop.sock_sendall(loris, header[i % len(header):i % len(header) + 1])
            except (BrokenPipeError, ConnectionResetError):
                loris = await connect()  # dropped by the node: it comes back, as one would
            words = await edge.read_registers(UNIT, 0, 20)  # raises NoAnswer on a miss
            assert words[1] == UNIT
            polls += 1
        assert polls == SILENT
        comms = RMAP.blocks["comms"]
        got = RMAP.decode_block("comms", await edge.read_registers(UNIT, comms.start, comms.size))
        # 4 edge connections + 45 others through 4 places: the others were dropped for them
        assert isinstance(got["tcp_clients_dropped"], int)
        assert got["tcp_clients_dropped"] >= SILENT + 5 - 3, got
    finally:
        edge.close()
        for s in opened:
            s.close()


async def test_a_silent_client_is_closed_after_the_idle_time(
    vnode_factory: Callable[..., VirtualNode],  # noqa: F811
) -> None:
    node = vnode_factory(unit=UNIT, roles=(), virtual_clock=True,
                         config_extra={"modbus": {"tcp_idle_s": 30}})
    with socket.create_connection(("127.0.0.1", node.tcp_port)) as silent:
        silent.settimeout(5)
        await asyncio.to_thread(node.control, {"op": "advance", "ms": 29_000})
        silent.setblocking(False)
        try:
            assert silent.recv(1) == b"", "closed before its idle time"
            raise AssertionError("closed before its idle time")
        except BlockingIOError:
            pass  # still open at 29 s
        silent.setblocking(True)
        await asyncio.to_thread(node.control, {"op": "advance", "ms": 2_000})
        assert silent.recv(1) == b""  # closed by the node at 31 s
