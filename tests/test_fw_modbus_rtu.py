"""The virtual node as a Modbus RTU server over a socat pty pair, against pymodbus
(AsyncModbusSerialClient, RTU framer) and mbpoll -m rtu, plus raw bad frames."""

from __future__ import annotations

import os
import select
import struct
import subprocess
import termios
import time
import tty
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient

from edge_server import regmap
from edge_server.vnode import VirtualNode
from tests.conftest import need_tool
from tests.vnode_fixtures import vnode_factory  # noqa: F401  (fixture)

UNIT = 9
SIZE = regmap.load().image_size  # the register image's end: reads past it get exception 02


def crc16(data: bytes) -> bytes:
    crc = 0xFFFF
    for b in data:
        crc ^= b
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return bytes([crc & 0xFF, crc >> 8])


def frame(unit: int, pdu: bytes) -> bytes:
    body = bytes([unit]) + pdu
    return body + crc16(body)


@pytest.fixture
def pty_pair(tmp_path: Path) -> Iterator[tuple[str, str]]:
    socat = need_tool("socat", "apt-get install -y socat")
    a, b = tmp_path / "ttyNode", tmp_path / "ttyMaster"
    proc = subprocess.Popen(
        [socat, f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 5
        while not (a.exists() and b.exists()):
            assert time.monotonic() < deadline, "socat did not create the pty pair"
            time.sleep(0.02)
        yield str(a), str(b)
    finally:
        proc.terminate()
        proc.wait(timeout=5)


@pytest.fixture
def node(vnode_factory: Callable[..., VirtualNode],  # noqa: F811
         pty_pair: tuple[str, str]) -> VirtualNode:
    return vnode_factory(unit=UNIT, roles=(), rtu=pty_pair[0], virtual_clock=True)


async def test_pymodbus_rtu_every_table(node: VirtualNode, pty_pair: tuple[str, str]) -> None:
    client = AsyncModbusSerialClient(pty_pair[1], framer=FramerType.RTU, baudrate=19200,
                                     timeout=1, retries=1)  # a pty has no parity to set
    assert await client.connect()
    try:
        hr = await client.read_holding_registers(0, count=90, device_id=UNIT)
        assert not hr.isError() and hr.registers[1] == UNIT and len(hr.registers) == 90
        ir = await client.read_input_registers(20, count=60, device_id=UNIT)
        assert not ir.isError() and ir.registers[0] == 0xFFFF
        assert not (await client.write_register(80, 150, device_id=UNIT)).isError()
        assert not (await client.write_registers(81, [700, 600], device_id=UNIT)).isError()
        hr = await client.read_holding_registers(80, count=3, device_id=UNIT)
        assert hr.registers == [150, 700, 600]
        assert not (await client.write_coil(1, True, device_id=UNIT)).isError()
        assert not (await client.write_coils(2, [True, True], device_id=UNIT)).isError()
        co = await client.read_coils(0, count=4, device_id=UNIT)
        assert co.bits[:4] == [False, True, True, True]
        di = await client.read_discrete_inputs(0, count=6, device_id=UNIT)
        assert not di.isError() and di.bits[:6] == [False] * 6
        bad = await client.read_holding_registers(SIZE - 5, count=10, device_id=UNIT)
        assert bad.isError() and bad.exception_code == 2
    finally:
        client.close()


def test_mbpoll_rtu(node: VirtualNode, pty_pair: tuple[str, str]) -> None:
    mbpoll = need_tool("mbpoll", "apt-get install -y mbpoll")
    base = [mbpoll, "-m", "rtu", "-b", "19200", "-P", "even", "-a", str(UNIT), "-1", "-o", "1"]
    out = subprocess.run([*base, "-r", "1", "-c", "3", pty_pair[1]], capture_output=True,
                         text=True, timeout=20)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "[1]: \t1" in out.stdout and f"[2]: \t{UNIT}" in out.stdout
    out = subprocess.run([*base, "-r", "84", pty_pair[1], "45"], capture_output=True,
                         text=True, timeout=20)
    assert out.returncode == 0, out.stdout + out.stderr
    out = subprocess.run([*base, "-0", "-r", "83", "-c", "1", pty_pair[1]], capture_output=True,
                         text=True, timeout=20)
    assert "[83]: \t45" in out.stdout, out.stdout


class RawLine:
    """The master's end of the pty, raw: write bytes, read what comes back within a deadline."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
        tty.setraw(self.fd)
        termios.tcflush(self.fd, termios.TCIOFLUSH)

    def exchange(self, data: bytes, wait_s: float = 1.0, expect: int = 0) -> bytes:
        os.write(self.fd, data)
        got = b""
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            r, _, _ = select.select([self.fd], [], [], deadline - time.monotonic())
            if r:
                got += os.read(self.fd, 512)
                if expect and len(got) >= expect:
                    break
        return got

    def close(self) -> None:
        os.close(self.fd)


def test_bad_rtu_frames(node: VirtualNode, pty_pair: tuple[str, str]) -> None:
    line = RawLine(pty_pair[1])
    try:
        good = frame(UNIT, struct.pack(">BHH", 3, 1, 1))
        answer = frame(UNIT, struct.pack(">BBH", 3, 2, UNIT))
        assert line.exchange(good, expect=len(answer)) == answer
        # Counters before this test's frames (VirtualNode's readiness probe is counted too).
        reply = line.exchange(frame(UNIT, struct.pack(">BHH", 3, 16, 3)), expect=11)
        rx0, crc0, exc0 = struct.unpack(">HHH", reply[3:9])
        wrong_crc = good[:-1] + bytes([good[-1] ^ 0x55])
        assert line.exchange(wrong_crc, 0.3) == b""  # silently dropped
        assert line.exchange(good[:5], 0.3) == b""  # truncated: CRC cannot match
        assert line.exchange(frame(UNIT + 1, struct.pack(">BHH", 3, 1, 1)), 0.3) == b""
        assert line.exchange(frame(UNIT, b"\x2b\x0e\x01\x00"), expect=5) == \
            frame(UNIT, b"\xab\x01")
        assert line.exchange(frame(UNIT, struct.pack(">BHH", 4, SIZE, 1)), expect=5) == \
            frame(UNIT, b"\x84\x02")
        assert line.exchange(frame(UNIT, struct.pack(">BHH", 1, 0, 2001)), expect=5) == \
            frame(UNIT, b"\x81\x03")
        # broadcast write: executed without a reply
        assert line.exchange(frame(0, struct.pack(">BHH", 6, 80, 111)), 0.3) == b""
        # still serving, and the counters saw it all since the baseline read: 2 CRC errors,
        # 3 exceptions, 5 frames for us (3 exceptions, the broadcast, this read)
        reply = line.exchange(frame(UNIT, struct.pack(">BHH", 3, 16, 3)), expect=11)
        rx, crc_errors, exceptions = struct.unpack(">HHH", reply[3:9])
        assert (crc_errors - crc0, exceptions - exc0, rx - rx0) == (2, 3, 5), reply.hex()
        reply = line.exchange(frame(UNIT, struct.pack(">BHH", 3, 80, 1)), expect=7)
        assert reply == frame(UNIT, struct.pack(">BBH", 3, 2, 111))
    finally:
        line.close()
