"""The poller against real pymodbus servers (TCP on 127.0.0.1) serving a regmap-shaped image.

Behaviour over time uses a ManualClock (back-off) and the counters; no sleeps. The only real
waiting is one 0.2 s Modbus timeout against a peer that accepts and never answers.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from edge_server import regmap
from edge_server.clock import ManualClock
from edge_server.config import parse_config
from edge_server.poller import CommandRejected, Poller
from edge_server.state import Quality, SiteState

RMAP = regmap.load()


def image(roles: tuple[str, ...] = ("power", "fridge"), **raw: int) -> list[int]:
    """A register image as a node builds it: identity filled in, role values as raw words."""
    words = [0] * RMAP.image_size
    # Blocks of roles the node does not have read as "not available".
    for reg in RMAP.registers:
        if reg.role is not None:
            _set(words, reg.name, reg.sentinel)
    bits = sum(regmap.ROLE_BITS[r] for r in roles)
    values = {"map_version": RMAP.version, "node_id": 1, "roles": bits, "fw_major": 1,
              "uptime_s": 3600, "crc_errors": 7, **raw}
    for name, value in values.items():
        _set(words, name, value)
    return words


def _set(words: list[int], name: str, value: int) -> None:
    reg = RMAP.register(name)
    value &= (1 << (16 * reg.words)) - 1
    if reg.words == 1:
        words[reg.address] = value
    else:
        words[reg.address] = value >> 16
        words[reg.address + 1] = value & 0xFFFF


@dataclass
class Peer:
    """A pymodbus server with a mutable image; `busy_at` makes reads there answer exception 06.

    Port 0: the first start() listens on a port the kernel picks (no free_port() race) and
    records it; a restart after stop() listens on that same port again.
    """

    port: int
    words: list[int]
    busy_at: set[int] = field(default_factory=set)
    writes: list[tuple[int, int, list[int] | list[bool]]] = field(default_factory=list)
    server: ModbusTcpServer | None = None

    async def action(
        self,
        function_code: int,
        start_address: int,
        address: int,
        count: int,
        registers: list[int],
        set_values: list[int] | list[bool] | None,
    ) -> ExcCodes | None:
        if set_values is not None:
            self.writes.append((function_code, address, list(set_values)))
            return None
        if address in self.busy_at:
            return ExcCodes.DEVICE_BUSY
        registers[: len(self.words)] = self.words
        return None

    async def start(self) -> None:
        device = SimDevice(
            id=0,  # answer every unit id, like a node behind its own TCP port
            simdata=[SimData(0, count=RMAP.image_size, values=0, datatype=DataType.REGISTERS)],
            action=self.action,
        )
        self.server = ModbusTcpServer(device, address=("127.0.0.1", self.port))
        await self.server.serve_forever(background=True)
        if self.port == 0:
            self.port = int(self.server.transport.sockets[0].getsockname()[1])

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.shutdown()
            self.server = None


@pytest.fixture
async def peers() -> AsyncIterator[list[Peer]]:
    started: list[Peer] = []
    yield started
    for p in started:
        await p.stop()


async def make_peer(peers: list[Peer], words: list[int]) -> Peer:
    p = Peer(0, words)
    await p.start()
    peers.append(p)
    return p


def site(ports: dict[str, int], roles: dict[str, str], extra_poll: str = "") -> str:
    buses = "".join(
        f'[[buses]]\nname = "bus_{n}"\nkind = "tcp"\nhost = "127.0.0.1"\nport = {p}\n\n'
        for n, p in ports.items()
    )
    nodes = "".join(
        f'[[nodes]]\nname = "{n}"\nbus = "bus_{n}"\nunit = {i + 1}\nroles = [{roles[n]}]\n\n'
        for i, n in enumerate(ports)
    )
    return (
        '[site]\nid = "test-site"\n\n'
        f"[poll]\ninterval_s = 2\ntimeout_s = 0.2\nretries = 0\nbackoff_max_s = 16\n{extra_poll}\n"
        + buses + nodes
    )


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def make_poller(text: str, clock: ManualClock) -> tuple[Poller, SiteState]:
    cfg = parse_config(text)
    state = SiteState(cfg.site.id)
    return Poller(cfg, state, clock), state


async def test_values_decode_with_units(peers: list[Peer], clock: ManualClock) -> None:
    p = await make_peer(peers, image(fridge_temp_c=455, fuel_l=12345, mains_present=1,
                                     battery_a=-250))
    poller, state = make_poller(site({"n1": p.port}, {"n1": '"power", "fridge"'}), clock)
    cycles: list[object] = []
    state.subscribe(lambda s, now: cycles.append(now))
    try:
        await poller.poll_once()
        # A value that changes on the node changes in the state at the next cycle.
        first = state.get("n1.fridge_temp_c")
        p.words = image(fridge_temp_c=300, fuel_l=12345, mains_present=1, battery_a=-250)
        clock.advance(2)
        await poller.poll_once()
        second = state.get("n1.fridge_temp_c")
        assert first is not None and first.value == 4.55
        assert second is not None and second.value == 3.0 and second.at == clock.now()
        p.words = image(fridge_temp_c=455, fuel_l=12345, mains_present=1, battery_a=-250)
        clock.advance(2)
        await poller.poll_once()
    finally:
        poller.close()
    fridge = state.get("n1.fridge_temp_c")
    assert fridge is not None and fridge.value == 4.55 and fridge.unit == "°C"
    assert fridge.quality is Quality.GOOD and fridge.at == clock.now()
    fuel = state.get("n1.fuel_l")
    assert fuel is not None and fuel.value == 1234.5 and fuel.unit == "L"
    battery = state.get("n1.battery_a")
    assert battery is not None and battery.value == -2.5 and battery.unit == "A"
    assert state.get("n1.mains_present") is not None
    assert state.readings["n1.mains_present"].value is True
    node = state.nodes["n1"]
    assert node.online and node.last_ok == clock.now() and node.last_error is None
    assert node.identity["map_version"] == RMAP.version and node.identity["uptime_s"] == 3600
    assert node.counters.reads_ok == 3 * 3  # identity + power + fridge, 3 cycles
    assert node.counters.crc_errors == 7  # from the node's own identity register
    assert len(cycles) == 3 and cycles[-1] == clock.now()


async def test_sentinel_is_unavailable(peers: list[Peer], clock: ManualClock) -> None:
    p = await make_peer(peers, image(fridge_temp_c=0x8000, ambient_temp_c=2150))
    poller, state = make_poller(site({"n1": p.port}, {"n1": '"power", "fridge"'}), clock)
    try:
        await poller.poll_once()
    finally:
        poller.close()
    fridge = state.readings["n1.fridge_temp_c"]
    assert fridge.value is None and fridge.quality is Quality.UNAVAILABLE
    assert state.readings["n1.ambient_temp_c"].value == 21.5
    assert state.readings["n1.ambient_temp_c"].quality is Quality.GOOD
    # fuel sender not connected in this image: unavailable too, never zero
    assert state.readings["n1.fuel_l"].quality is Quality.UNAVAILABLE


async def test_unknown_map_version_is_refused(
    peers: list[Peer], clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    p = await make_peer(peers, image(("fridge",), map_version=99, fridge_temp_c=455))
    poller, state = make_poller(site({"n1": p.port}, {"n1": '"fridge"'}), clock)
    caplog.set_level(logging.DEBUG, logger="edge_server.poller")
    try:
        await poller.poll_once()
    finally:
        poller.close()
    node = state.nodes["n1"]
    assert node.last_error is not None
    assert "refused" in node.last_error and "version 99" in node.last_error
    assert node.last_ok is None
    assert node.counters.decode_errors == 1 and node.counters.reads_ok == 1  # no block decoded
    fridge = state.readings["n1.fridge_temp_c"]
    assert fridge.value is None and fridge.quality is Quality.UNAVAILABLE
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1 and "n1" in errors[0].getMessage()
    assert "unit 1" in errors[0].getMessage()


async def test_dead_node_backs_off_and_does_not_stall_the_other(
    peers: list[Peer], clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    a = await make_peer(peers, image(("fridge",), fridge_temp_c=455))
    b = await make_peer(peers, image(("fridge",), fridge_temp_c=611))
    poller, state = make_poller(
        site({"a": a.port, "b": b.port}, {"a": '"fridge"', "b": '"fridge"'}), clock
    )
    caplog.set_level(logging.DEBUG, logger="edge_server.poller")
    try:
        await poller.poll_once()
        assert state.readings["a.fridge_temp_c"].value == 4.55
        await a.stop()  # the cable is pulled mid-run

        clock.advance(2)
        await poller.poll_once()
        na = state.nodes["a"]
        reading = state.readings["a.fridge_temp_c"]
        assert not na.online and na.counters.timeouts == 1
        assert reading.value is None and reading.quality is Quality.UNAVAILABLE  # not stale
        assert reading.at == clock.now()
        assert state.nodes["b"].counters.reads_ok == 4
        assert state.readings["b.fridge_temp_c"].quality is Quality.GOOD

        # Back-off 2 s, 4 s, 8 s, 16 s (max): the dead node is tried only when due,
        # the live one every cycle.
        tries_at: list[float] = []
        for _ in range(16):
            before = na.counters.timeouts
            clock.advance(2)
            await poller.poll_once()
            if na.counters.timeouts > before:
                tries_at.append(clock.monotonic())
        assert tries_at == [4.0, 8.0, 16.0, 32.0]  # failed at 2: +2, +4, +8, then capped +16
        assert state.nodes["b"].counters.reads_ok == 4 + 2 * 16
        assert state.nodes["b"].online
        errors = [r for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1 and "node a (unit 1" in errors[0].getMessage()

        # The node comes back: online at its next try, values good again.
        await a.start()
        a.words = image(("fridge",), fridge_temp_c=470)
        for _ in range(8):
            clock.advance(2)
            await poller.poll_once()
            if na.online:
                break
        assert na.online and na.last_error is None
        assert state.readings["a.fridge_temp_c"].value == 4.7
        assert state.readings["a.fridge_temp_c"].quality is Quality.GOOD
        # and is polled every cycle again (back-off reset)
        before = na.counters.reads_ok
        clock.advance(2)
        await poller.poll_once()
        assert na.counters.reads_ok == before + 2
    finally:
        poller.close()


async def test_exception_reply_is_not_a_timeout(peers: list[Peer], clock: ManualClock) -> None:
    p = await make_peer(peers, image(fridge_temp_c=455, fuel_l=5000))
    p.busy_at = {RMAP.blocks["fridge"].start}
    poller, state = make_poller(site({"n1": p.port}, {"n1": '"power", "fridge"'}), clock)
    try:
        await poller.poll_once()
    finally:
        poller.close()
    node = state.nodes["n1"]
    assert node.counters.exceptions == 1 and node.counters.timeouts == 0
    assert node.online  # it answered
    assert node.last_error is not None and "exception 06" in node.last_error
    assert "fridge" in node.last_error
    assert state.readings["n1.fridge_temp_c"].quality is Quality.UNAVAILABLE
    assert state.readings["n1.fuel_l"].value == 500.0


async def test_silent_peer_is_a_timeout(clock: ManualClock) -> None:
    async def never_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while await reader.read(256):
                pass
        finally:
            writer.close()

    server = await asyncio.start_server(never_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    poller, state = make_poller(site({"n1": port}, {"n1": '"fridge"'}), clock)
    try:
        await poller.poll_once()
    finally:
        poller.close()
        server.close()
        await server.wait_closed()
    node = state.nodes["n1"]
    assert node.counters.timeouts == 1 and node.counters.exceptions == 0
    assert not node.online
    assert state.readings["n1.fridge_temp_c"].quality is Quality.UNAVAILABLE


async def test_roles_mismatch_warns_and_reads_what_exists(
    peers: list[Peer], clock: ManualClock
) -> None:
    p = await make_peer(peers, image(roles=("power",), fuel_l=5000, fridge_temp_c=455))
    poller, state = make_poller(site({"n1": p.port}, {"n1": '"power", "fridge"'}), clock)
    try:
        await poller.poll_once()
    finally:
        poller.close()
    node = state.nodes["n1"]
    assert node.last_error is not None and "roles differ" in node.last_error
    assert state.readings["n1.fuel_l"].value == 500.0
    assert state.readings["n1.fridge_temp_c"].quality is Quality.UNAVAILABLE
    assert node.counters.reads_ok == 2  # identity + power; the missing fridge block is not read


async def test_commands_write_and_name_who(
    peers: list[Peer], clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    p = await make_peer(peers, image(("power",), mains_present=1, gen_run_reason=0))
    poller, _ = make_poller(site({"n1": p.port}, {"n1": '"power"'}), clock)
    caplog.set_level(logging.INFO, logger="edge_server.poller")
    try:
        with pytest.raises(CommandRejected, match="mains is absent or unknown"):
            await poller.write_coil("n1", "gen_test_run", True, who="operator:jan")  # not read
        await poller.poll_once()
        await poller.write_coil("n1", "gen_test_run", True, who="operator:jan")
        await poller.write_register("n1", "fridge_high_c", 9.0, who="technician:piet")
        with pytest.raises(CommandRejected, match="unknown coil 'start_gen'"):
            await poller.write_coil("n1", "start_gen", True, who="x")
        with pytest.raises(CommandRejected, match="not writable"):
            await poller.write_register("n1", "fuel_l", 10, who="x")
        with pytest.raises(CommandRejected, match="unknown node 'n9'"):
            await poller.write_coil("n9", "gen_test_run", True, who="x")
        with pytest.raises(CommandRejected, match="who gave it"):
            await poller.write_coil("n1", "gen_test_run", True, who=" ")
    finally:
        poller.close()
    assert p.writes == [
        (5, RMAP.coils[0].address, [True]),
        (6, RMAP.register("fridge_high_c").address, [900]),
    ]
    messages = " ".join(r.getMessage() for r in caplog.records)
    assert "operator:jan" in messages and "technician:piet" in messages


async def test_generator_interlocks_at_the_edge(peers: list[Peer], clock: ManualClock) -> None:
    """Never start a test run while mains is absent; never stop a generator carrying the site."""
    p = await make_peer(peers, image(("power",), mains_present=0, gen_running=1,
                                     gen_run_reason=1))
    poller, state = make_poller(site({"n1": p.port}, {"n1": '"power"'}), clock)
    try:
        await poller.poll_once()
        assert state.readings["n1.mains_present"].value is False
        with pytest.raises(CommandRejected, match="mains is absent"):
            await poller.write_coil("n1", "gen_test_run", True, who="operator:jan")
        with pytest.raises(CommandRejected, match="carrying the site"):
            await poller.write_coil("n1", "gen_test_run", False, who="operator:jan")
        # Mains back, generator still running for the test: ending the test is allowed.
        p.words = image(("power",), mains_present=1, gen_running=1, gen_run_reason=2)
        clock.advance(2)
        await poller.poll_once()
        await poller.write_coil("n1", "gen_test_run", False, who="operator:jan")
        # The node stops answering: its mains reading is unknown, so no start.
        await p.stop()
        clock.advance(2)
        await poller.poll_once()
        with pytest.raises(CommandRejected, match="unknown"):
            await poller.write_coil("n1", "gen_test_run", True, who="operator:jan")
    finally:
        poller.close()
    assert p.writes == [(5, RMAP.coils[0].address, [False])]
