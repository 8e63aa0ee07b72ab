"""The generator-controller driver: reads a controller described by a profile (identity, control
mode, engine, generator, mains, alarms mapped to our alert codes) and sends its commands, over the
poller's bus hubs (edge_server.poller.BusHub: the bus lock, the RTU inter-frame gap).

    driver = GensetDriver(profile, hub, unit=10)
    reading = await driver.read()      # never raises for the controller's faults: see below
    await driver.command("auto", who="anna")

A controller that answers with exceptions or not at all gives a reading with `online` False and
the error; a value past the profile's sentinels or outside its channel range is a Fault in
`faults`, never a value. Commands (the interlocks are the caller's: GensetControl) go through the
profile's control: GenComm's system control key and its ones' complement in ONE write.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from edge_server.genset.codec import Fault, decode
from edge_server.genset.profile import Alarm, Channel, Profile
from edge_server.modbus_client import BusClient, ExceptionReply, ModbusError

T = TypeVar("T")
MERGE_GAP = 8  # registers: read across a gap this small (within one 256-register page)


class Hub(Protocol):
    """What the driver needs of edge_server.poller.BusHub."""

    async def call(self, request: Callable[[BusClient], Awaitable[T]]) -> T: ...


@dataclass(frozen=True)
class ActiveAlarm:
    name: str
    code: str
    severity: str
    text_en: str
    text_nl: str


@dataclass
class GensetReading:
    online: bool
    error: str | None = None
    identity: dict[str, float] = field(default_factory=dict)
    values: dict[str, float] = field(default_factory=dict)
    faults: dict[str, Fault] = field(default_factory=dict)
    mode: str | None = None  # stop | auto | manual | test; None: unknown raw value or unread
    alarms: list[ActiveAlarm] = field(default_factory=list)


def blocks(addresses: list[tuple[int, int]], max_block: int) -> list[tuple[int, int]]:
    """(start, count) reads covering every (address, words), merged across small gaps within a
    page and at most max_block registers each."""
    out: list[tuple[int, int]] = []
    for addr, words in sorted(set(addresses)):
        if out:
            start, count = out[-1]
            end = start + count
            if (addr <= end + MERGE_GAP and addr // 256 == start // 256
                    and addr + words - start <= max_block):
                out[-1] = (start, max(end, addr + words) - start)
                continue
        out.append((addr, words))
    return out


class GensetDriver:
    def __init__(self, profile: Profile, hub: Hub, unit: int) -> None:
        self.profile, self.hub, self.unit = profile, hub, unit
        p = profile
        wanted = [(c.address, c.words) for c in (*p.identity, *p.channels)]
        wanted += [(a.address, 1) for a in p.alarms.alarm]
        if p.mode is not None:
            wanted.append((p.mode.address, 1))
        self.reads = blocks(wanted, p.profile.max_block)

    async def _read_all(self) -> dict[int, int]:
        words: dict[int, int] = {}
        for start, count in self.reads:
            def request(c: BusClient, s: int = start, n: int = count) -> Awaitable[list[int]]:
                return c.read_registers(self.unit, s, n)

            got = await self.hub.call(request)
            if len(got) < count:
                raise ExceptionReply(0, f"short reply at {start}: {len(got)} of {count} words")
            words.update({start + i: w for i, w in enumerate(got)})
        return words

    def _channel(self, ch: Channel, words: dict[int, int], out: GensetReading,
                 into: dict[str, float]) -> None:
        value = decode(ch, [words[ch.address + i] for i in range(ch.words)], self.profile.profile)
        if isinstance(value, Fault):
            out.faults[ch.name] = value
        else:
            into[ch.name] = value

    def _alarm(self, a: Alarm, word: int) -> ActiveAlarm | None:
        field_ = (word >> a.bit) & ((1 << a.width) - 1)
        if a.width == 1:
            severity = a.severity if field_ else None
        else:
            state = next((s for s in self.profile.alarms.states if s.value == field_), None)
            # a value the profile does not know: shown as a warning, never silently "fine"
            severity = "warning" if state is None else (state.severity if state.active else None)
        if severity is None:
            return None
        return ActiveAlarm(a.name, a.code, severity, a.text_en or a.name, a.text_nl or a.name)

    async def read(self) -> GensetReading:
        """All pages, one reading; an exception reply or no answer gives online False."""
        try:
            words = await self._read_all()
        except ModbusError as exc:
            return GensetReading(online=False, error=str(exc))
        out = GensetReading(online=True)
        for ch in self.profile.identity:
            self._channel(ch, words, out, out.identity)
        for ch in self.profile.channels:
            self._channel(ch, words, out, out.values)
        if self.profile.mode is not None:
            raw = str(words[self.profile.mode.address])
            out.mode = self.profile.mode.values.get(raw)
        for a in self.profile.alarms.alarm:
            active = self._alarm(a, words[a.address])
            if active is not None:
                out.alarms.append(active)
        return out

    async def command(self, command: str) -> None:
        """Send one command of the profile (raises ModbusError, or KeyError when the profile has
        no such command). The interlocks and the audit are GensetControl's."""
        ctl = self.profile.control
        if ctl is None or command not in ctl.commands:
            raise KeyError(f"profile {self.profile.profile.name} has no command {command!r}")
        key = ctl.commands[command]
        if ctl.method == "key_complement":
            assert ctl.address is not None
            address = ctl.address
            await self.hub.call(
                lambda c: c.write_registers(self.unit, address, [key, ~key & 0xFFFF]))
        else:
            await self.hub.call(lambda c: c.write_coil(self.unit, key, True))
