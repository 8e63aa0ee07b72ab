"""Poller throughput: reads/s of Poller.poll_once (identity + role blocks, decode, state) next
to a bare pymodbus loop doing the same FC03 reads, against the same Modbus TCP server, in the
same run. Target: the poller reaches >= 0.8 of bare pymodbus.

Two servers: a pymodbus server in a separate process, and a virtual node (the real firmware on
MicroPython). Rounds alternate which loop runs first; the ratio is the median of paired rounds
(the machine is shared and noisy).
"""

from __future__ import annotations

import asyncio
import socket
import statistics
import subprocess
import sys
import time

from pymodbus.client import AsyncModbusTcpClient

from edge_server import regmap
from edge_server.clock import SystemClock
from edge_server.config import parse_config
from edge_server.poller import Poller
from edge_server.state import SiteState

CYCLES = 300
ROUNDS = 6

SERVER = """
import asyncio, sys
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice
from edge_server import regmap
rmap = regmap.load()
words = [0] * rmap.image_size
words[0] = rmap.version
words[2] = 7  # power, fridge, entrance
async def main():
    device = SimDevice(id=0, simdata=[SimData(0, values=words, datatype=DataType.REGISTERS)])
    server = ModbusTcpServer(device, address=("127.0.0.1", int(sys.argv[1])))
    await server.serve_forever()
asyncio.run(main())
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_port(port: int, deadline_s: float = 15.0) -> None:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("benchmark Modbus server did not start")


async def _bare(port: int, blocks: list[tuple[int, int]], unit: int) -> float:
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=1, retries=0)
    await client.connect()
    try:
        started = time.perf_counter()
        for _ in range(CYCLES):
            for start, size in blocks:
                rr = await client.read_holding_registers(start, count=size, device_id=unit)
                if rr.isError():
                    raise RuntimeError(f"exception reply {rr}")
        return CYCLES * len(blocks) / (time.perf_counter() - started)
    finally:
        client.close()


async def _poller(port: int, n_blocks: int, unit: int) -> float:
    text = (
        '[site]\nid = "bench"\n[poll]\ntimeout_s = 1\nretries = 0\n'
        f'[[buses]]\nname = "b"\nkind = "tcp"\nhost = "127.0.0.1"\nport = {port}\n'
        f'[[nodes]]\nname = "n"\nbus = "b"\nunit = {unit}\n'
        'roles = ["power", "fridge", "entrance"]\n'
    )
    state = SiteState("bench")
    poller = Poller(parse_config(text), state, SystemClock())
    try:
        await poller.poll_once()  # connect
        before = state.nodes["n"].counters.reads_ok
        started = time.perf_counter()
        for _ in range(CYCLES):
            await poller.poll_once()
        elapsed = time.perf_counter() - started
        reads = state.nodes["n"].counters.reads_ok - before
        if reads != CYCLES * n_blocks:
            raise RuntimeError(f"poller read {reads} blocks, expected {CYCLES * n_blocks}: "
                               f"{state.nodes['n'].last_error}")
        return reads / elapsed
    finally:
        poller.close()


def _compare(port: int, blocks: list[tuple[int, int]], unit: int) -> tuple[float, float, float]:
    """Best reads/s of each loop, and the median of the paired ratios poller/bare."""
    bare, polled, ratios = [], [], []
    for i in range(ROUNDS):
        if i % 2:
            p = asyncio.run(_poller(port, len(blocks), unit))
            b = asyncio.run(_bare(port, blocks, unit))
        else:
            b = asyncio.run(_bare(port, blocks, unit))
            p = asyncio.run(_poller(port, len(blocks), unit))
        bare.append(b)
        polled.append(p)
        ratios.append(p / b)
    return max(bare), max(polled), statistics.median(ratios)


def main() -> list[tuple[str, str]]:
    from edge_server.vnode import VirtualNode

    rmap = regmap.load()
    blocks = [(rmap.blocks[b].start, rmap.blocks[b].size)
              for b in ("identity", "power", "fridge", "entrance")]
    port = _free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER, str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        _wait_port(port)
        b, p, r = _compare(port, blocks, 1)
    finally:
        server.terminate()
        server.wait(timeout=10)
    with VirtualNode(1, ("power", "fridge", "entrance"), control=False) as node:
        assert node.tcp_port is not None
        vb, vp, vr = _compare(node.tcp_port, blocks, 1)
    return [
        ("pymodbus server: bare pymodbus FC03 block reads", f"{b:.0f} reads/s"),
        ("pymodbus server: poller poll_once (identity + 3 role blocks)", f"{p:.0f} reads/s"),
        ("pymodbus server: poller / bare, median of paired rounds (target >= 0.8)", f"{r:.2f}"),
        ("virtual node (MicroPython): bare pymodbus", f"{vb:.0f} reads/s"),
        ("virtual node (MicroPython): poller poll_once", f"{vp:.0f} reads/s"),
        ("virtual node (MicroPython): poller / bare, median of paired rounds", f"{vr:.2f}"),
    ]


if __name__ == "__main__":
    for figure, value in main():
        print(f"{figure}: {value}")
