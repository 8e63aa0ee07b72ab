"""The virtual node (the real firmware on MicroPython) as a Modbus TCP server, against real masters:
pymodbus (AsyncModbusTcpClient) and mbpoll (libmodbus), plus raw bad frames written by the test."""

from __future__ import annotations

import asyncio
import socket
import struct
import subprocess
import time
from collections.abc import Callable

import pytest
from pymodbus.client import AsyncModbusTcpClient

from edge_server import regmap
from edge_server.vnode import VirtualNode
from tests.conftest import need_tool
from tests.vnode_fixtures import vnode_factory  # noqa: F401  (fixture)

UNIT = 5
RMAP = regmap.load()
SIZE = RMAP.image_size


@pytest.fixture
def node(vnode_factory: Callable[..., VirtualNode]) -> VirtualNode:  # noqa: F811
    return vnode_factory(unit=UNIT, roles=(), virtual_clock=True)


async def test_pymodbus_reads_and_writes_every_table(node: VirtualNode) -> None:
    client = AsyncModbusTcpClient("127.0.0.1", port=node.tcp_port, timeout=2, retries=1)
    await client.connect()
    try:
        hr = await client.read_holding_registers(0, count=SIZE, device_id=UNIT)
        ir = await client.read_input_registers(0, count=SIZE, device_id=UNIT)
        assert not hr.isError() and not ir.isError()
        assert len(hr.registers) == SIZE
        # same image (identity counters, uptime and free heap move between the two reads)
        assert hr.registers[20:] == ir.registers[20:] and hr.registers[:6] == ir.registers[:6]
        ident = RMAP.decode_block("identity", hr.registers[0:20])
        assert ident["map_version"] == RMAP.version and ident["node_id"] == UNIT
        assert ident["roles"] == 0 and ident["status"] == 8  # virtual clock bit
        # A node without roles: every role register reads as "not available" through the edge's
        # own decoder (this also checks the firmware's i16 sentinel list against the map).
        for block in ("power", "fridge", "entrance"):
            b = RMAP.blocks[block]
            decoded = RMAP.decode_block(block, hr.registers[b.start : b.start + b.size])
            assert all(v is None for v in decoded.values()), (block, decoded)
        settings = RMAP.decode_block("settings", hr.registers[80:90])
        assert settings["fridge_low_c"] == pytest.approx(2.0)
        assert settings["gen_start_deadline_s"] == 30

        rr = await client.write_register(81, 650, device_id=UNIT)
        assert not rr.isError()
        rr = await client.write_registers(82, [900, 45], device_id=UNIT)
        assert not rr.isError()
        hr = await client.read_holding_registers(80, count=4, device_id=UNIT)
        assert hr.registers == [200, 650, 900, 45]

        rr = await client.write_coil(3, True, device_id=UNIT)
        assert not rr.isError()
        rr = await client.write_coils(0, [True, False, True], device_id=UNIT)
        assert not rr.isError()
        co = await client.read_coils(0, count=4, device_id=UNIT)
        assert co.bits[:4] == [True, False, True, True]
        di = await client.read_discrete_inputs(0, count=6, device_id=UNIT)
        assert not di.isError() and di.bits[:6] == [False] * 6

        # exceptions as a master sees them
        bad = await client.write_register(1, 9, device_id=UNIT)  # node_id is read-only
        assert bad.isError() and bad.exception_code == 2
        bad = await client.read_holding_registers(SIZE - 1, count=2, device_id=UNIT)
        assert bad.isError() and bad.exception_code == 2
        ident2 = (await client.read_holding_registers(16, count=3, device_id=UNIT)).registers
        assert ident2[0] >= 12 and ident2[2] == 2  # rx_frames, exceptions
    finally:
        client.close()


async def test_several_clients_at_once(node: VirtualNode) -> None:
    clients = [AsyncModbusTcpClient("127.0.0.1", port=node.tcp_port, timeout=2) for _ in range(4)]
    for c in clients:
        await c.connect()
    try:
        replies = await asyncio.gather(
            *(c.read_holding_registers(0, count=20, device_id=UNIT)
              for c in clients for _ in range(5))
        )
        assert all(not r.isError() and r.registers[1] == UNIT for r in replies)
    finally:
        for c in clients:
            c.close()


def test_fifth_client_is_refused_until_one_leaves(node: VirtualNode) -> None:
    req = _mbap(1, UNIT, struct.pack(">BHH", 3, 1, 1))
    answer = _mbap(1, UNIT, struct.pack(">BBH", 3, 2, UNIT))
    held = [socket.create_connection(("127.0.0.1", node.tcp_port)) for _ in range(4)]
    try:
        for s in held:
            assert _exchange(s, req) == answer
        with socket.create_connection(("127.0.0.1", node.tcp_port)) as extra:
            try:
                assert _exchange(extra, req) == b""  # closed by the node (max 4 clients)
            except (ConnectionResetError, BrokenPipeError):
                pass
        held.pop().close()
        deadline = time.monotonic() + 5
        while True:  # the node notices the hang-up on its next read; poll briefly
            with socket.create_connection(("127.0.0.1", node.tcp_port)) as again:
                try:
                    if _exchange(again, req) == answer:
                        break
                except (ConnectionResetError, BrokenPipeError):
                    pass
            assert time.monotonic() < deadline, "no client slot freed after a hang-up"
            time.sleep(0.05)
    finally:
        for s in held:
            s.close()


def test_mbpoll_reads_and_writes(node: VirtualNode) -> None:
    mbpoll = need_tool("mbpoll", "apt-get install -y mbpoll")
    base = [mbpoll, "-m", "tcp", "-p", str(node.tcp_port), "-a", str(UNIT), "-1"]
    # mbpoll counts from 1 by default: reference 1 = address 0 (map_version), 2 = node_id
    out = subprocess.run([*base, "-r", "1", "-c", "2", "127.0.0.1"], capture_output=True,
                         text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    assert f"[1]: \t{RMAP.version}" in out.stdout and f"[2]: \t{UNIT}" in out.stdout
    out = subprocess.run([*base, "-0", "-r", "82", "127.0.0.1", "1234"], capture_output=True,
                         text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    out = subprocess.run([*base, "-0", "-r", "82", "-c", "1", "127.0.0.1"], capture_output=True,
                         text=True, timeout=20)
    assert "[82]: \t1234" in out.stdout, out.stdout
    out = subprocess.run([*base, "-t", "0", "-r", "1", "127.0.0.1", "1", "0", "0", "1"],
                         capture_output=True, text=True, timeout=20)
    assert out.returncode == 0, out.stderr
    out = subprocess.run([*base, "-t", "0", "-r", "1", "-c", "4", "127.0.0.1"], capture_output=True,
                         text=True, timeout=20)
    assert "[1]: \t1" in out.stdout and "[2]: \t0" in out.stdout and "[4]: \t1" in out.stdout


def _exchange(sock: socket.socket, frame: bytes, timeout: float = 1.0) -> bytes:
    sock.settimeout(timeout)
    sock.sendall(frame)
    try:
        return sock.recv(300)
    except TimeoutError:
        return b""


def _mbap(tid: int, unit: int, pdu: bytes) -> bytes:
    return struct.pack(">HHHB", tid, 0, len(pdu) + 1, unit) + pdu


def test_bad_tcp_frames_get_the_right_answer(node: VirtualNode) -> None:
    with socket.create_connection(("127.0.0.1", node.tcp_port)) as s:
        assert _exchange(s, _mbap(1, UNIT, b"\x07")) == _mbap(1, UNIT, b"\x87\x01")
        assert _exchange(s, _mbap(2, UNIT, struct.pack(">BHH", 3, 500, 1))) == \
            _mbap(2, UNIT, b"\x83\x02")
        assert _exchange(s, _mbap(3, UNIT, struct.pack(">BHH", 4, 0, 126))) == \
            _mbap(3, UNIT, b"\x84\x03")
        assert _exchange(s, _mbap(4, UNIT, b"\x03\x00\x00")) == _mbap(4, UNIT, b"\x83\x03")
        assert _exchange(s, _mbap(5, UNIT, struct.pack(">BHH", 5, 0, 0x1234))) == \
            _mbap(5, UNIT, b"\x85\x03")
        # another unit id on this connection: no answer; then it still serves
        assert _exchange(s, _mbap(6, UNIT + 1, struct.pack(">BHH", 3, 0, 1)), 0.3) == b""
        reply = _exchange(s, _mbap(0xABCD, UNIT, struct.pack(">BHH", 3, 1, 1)))
        assert reply == _mbap(0xABCD, UNIT, struct.pack(">BBH", 3, 2, UNIT))
    # a header that is not Modbus (protocol id 1): the node drops the connection
    with socket.create_connection(("127.0.0.1", node.tcp_port)) as s:
        s.settimeout(2)
        s.sendall(struct.pack(">HHHB", 1, 1, 6, UNIT) + struct.pack(">BHH", 3, 0, 1))
        try:
            assert s.recv(100) == b""  # closed (a reset is fine too: unread bytes were left)
        except ConnectionResetError:
            pass
    # a client that hangs up mid-frame does not disturb the server
    with socket.create_connection(("127.0.0.1", node.tcp_port)) as s:
        s.sendall(_mbap(9, UNIT, struct.pack(">BHH", 3, 0, 1))[:9])
    with socket.create_connection(("127.0.0.1", node.tcp_port)) as s:
        assert _exchange(s, _mbap(10, UNIT, struct.pack(">BHH", 3, 1, 1))) == \
            _mbap(10, UNIT, struct.pack(">BBH", 3, 2, UNIT))


def test_offline_and_broadcast(node: VirtualNode) -> None:
    with socket.create_connection(("127.0.0.1", node.tcp_port)) as s:
        # broadcast write: executed, never answered
        assert _exchange(s, _mbap(1, 0, struct.pack(">BHH", 6, 80, 321)), 0.3) == b""
        assert node.control({"op": "offline", "value": True}) == {"ok": True, "offline": True}
        assert _exchange(s, _mbap(2, UNIT, struct.pack(">BHH", 3, 80, 1)), 0.3) == b""
        assert node.control({"op": "offline", "value": False})["ok"] is True
        assert _exchange(s, _mbap(3, UNIT, struct.pack(">BHH", 3, 80, 1))) == \
            _mbap(3, UNIT, struct.pack(">BBH", 3, 2, 321))
    bad = node.control({"op": "offline", "value": "yes"})
    assert bad["ok"] is False and "true or false" in bad["error"]
    assert node.control({"op": "nope"})["ok"] is False


def test_control_channel_world_and_virtual_clock(node: VirtualNode) -> None:
    assert node.control({"op": "ping"})["ok"] is True
    got = node.control({"op": "get"})
    assert got["ok"] is True and got["now_ms"] == 0 and "mains_present" in got["world"]
    assert node.control({"op": "set", "key": "mains_present", "value": False}) == {"ok": True}
    assert node.control({"op": "get"})["world"]["mains_present"] is False
    err = node.control({"op": "set", "key": "no_such_key", "value": 1})
    assert err["ok"] is False and "no_such_key" in err["error"]
    adv = node.control({"op": "advance", "ms": 90_500, "step_ms": 1000})
    assert adv == {"ok": True, "now_ms": 90_500, "steps": 91}
    with socket.create_connection(("127.0.0.1", node.tcp_port)) as s:
        reply = _exchange(s, _mbap(1, UNIT, struct.pack(">BHH", 3, 6, 2)))
    assert struct.unpack(">HH", reply[-4:]) == (0, 90)  # uptime_s follows the virtual clock
    assert node.control({"op": "advance", "ms": -1})["ok"] is False


def test_writes_only_from_the_allow_list(vnode_factory: Callable[..., VirtualNode]) -> None:  # noqa: F811
    """modbus.tcp_write_allow names 127.0.0.1 (the edge here): a master on 127.0.0.2 (another
    machine on the LAN, as far as the node can tell) is refused with exception 01 and changes
    nothing; reads stay open; the edge's writes work and are counted with their writer."""
    node = vnode_factory(unit=UNIT, roles=(), virtual_clock=True,
                         config_extra={"modbus": {"tcp_write_allow": ["127.0.0.1"]}})
    low = RMAP.register("fridge_low_c").address

    def exchange(source: str, pdu: bytes) -> bytes:
        with socket.socket() as s:
            s.bind((source, 0))
            s.settimeout(5)
            s.connect(("127.0.0.1", node.tcp_port))
            s.sendall(struct.pack(">HHHB", 1, 0, len(pdu) + 1, UNIT) + pdu)
            reply = s.recv(260)
        return reply[7:]

    def read(addr: int, count: int = 1) -> list[int]:
        reply = exchange("127.0.0.1", struct.pack(">BHH", 3, addr, count))
        return list(struct.unpack(f">{count}H", reply[2:]))

    before = read(low)
    assert exchange("127.0.0.2", struct.pack(">BHH", 6, low, 150)) == b"\x86\x01"
    assert exchange("127.0.0.2", struct.pack(">BHH", 5, 3, 0xFF00)) == b"\x85\x01"
    assert exchange("127.0.0.2", struct.pack(">BHH", 3, low, 1))[:2] == b"\x03\x02"  # reads open
    assert read(low) == before
    comms = RMAP.blocks["comms"]
    got = RMAP.decode_block("comms", read(comms.start, comms.size))
    assert got["writes_refused"] == 2 and got["writes_accepted"] == 0
    assert exchange("127.0.0.1", struct.pack(">BHH", 6, low, 150)) == struct.pack(
        ">BHH", 6, low, 150)
    assert read(low) == [150]
    got = RMAP.decode_block("comms", read(comms.start, comms.size))
    assert got["writes_accepted"] == 1 and got["last_writer_ip"] == 0x7F000001
    assert (got["last_write_address"], got["last_write_fc"]) == (low, 6)
