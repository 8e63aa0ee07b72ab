"""The virtual generator controller: a real pymodbus server (TCP or RTU) answering at a profile's
addresses (the DSE GenComm profile by default) from an EngineModel, and obeying the profile's
control (GenComm: the system control key and its complement in one write, page 16).

    ctrl = VirtualController(load_profile("dse-gencomm"), EngineModel(), unit=10)
    await ctrl.start_tcp("127.0.0.1", 0)    # or start_rtu("/dev/pts/7", baudrate=19200)
    ctrl.step(1.0)                           # the engine's time moves only when told
    await ctrl.stop()

`fail_reads` makes every read answer exception 04 (a controller in trouble) and `unplug` makes
a channel read the profile's sentinel (an unplugged sensor): both for the driver's tests.
"""

from __future__ import annotations

import logging
from typing import Any

from pymodbus.constants import ExcCodes
from pymodbus.server import ModbusSerialServer, ModbusTcpServer
from pymodbus.simulator import DataType, SimData, SimDevice

from edge_server.genset.codec import TOP, encode, sentinel_from
from edge_server.genset.engine import EngineModel
from edge_server.genset.profile import Channel, Profile

log = logging.getLogger(__name__)

# identity of the virtual set (GenComm page 0: manufacturer 1 = DSE)
IDENTITY = {"manufacturer_code": 1, "model_number": 7320, "serial_number": 21_04_0815}
MODE_RAW = {"stop": 0, "auto": 1, "manual": 2, "test": 3}


class VirtualController:
    def __init__(self, profile: Profile, engine: EngineModel, unit: int = 10) -> None:
        self.profile, self.engine, self.unit = profile, engine, unit
        self.size = 1 + max([c.address + c.words for c in (*profile.identity, *profile.channels)]
                            + [a.address for a in profile.alarms.alarm]
                            + [profile.mode.address if profile.mode else 0]
                            + [(profile.control.address or 0) + 1 if profile.control else 0])
        self.words = [0] * self.size
        self.fail_reads = False
        self.unplug: set[str] = set()
        self.commands: list[str] = []  # every command carried out, for the tests
        self.rejected_writes = 0
        self.server: ModbusTcpServer | ModbusSerialServer | None = None
        self.port = 0
        self.refresh()

    # ------------------------------------------------------------------ image
    def _put(self, name: str, value: float) -> None:
        try:
            ch = self.profile.channel(name)
        except KeyError:
            return  # the profile does not have it: the controller does not either
        if name in self.unplug:
            self.words[ch.address:ch.address + ch.words] = self._unplugged(ch)
            return
        self.words[ch.address:ch.address + ch.words] = encode(ch, value, self.profile.profile)

    def _unplugged(self, ch: Channel) -> list[int]:
        """What the controller reads for an unplugged sensor: GenComm's "transducer fault"
        sentinel, three below the type's largest number (0xFFFC, 0xFFFFFFFC; signed types at the
        top of the positive range, 0x7FFC, 0x7FFFFFFC: codec.decode cites the document); a
        profile without sentinels for the type gets the type's largest number, which is far
        outside any channel's range."""
        info = self.profile.profile
        raw = TOP[ch.type] - (3 if sentinel_from(ch, info) is not None else 0)
        raw_words = [raw] if ch.words == 1 else [raw >> 16, raw & 0xFFFF]
        if ch.words == 2 and info.word_order == "low_first":
            raw_words.reverse()
        return raw_words

    def refresh(self) -> None:
        e = self.engine
        for ident, number in IDENTITY.items():
            self._put(ident, number)
        v = e.voltage_v
        amps = e.kw * 1000 / (3 * 230 * 0.9) if v > 0 else 0.0
        values: dict[str, float] = {
            "oil_pressure_kpa": e.oil_kpa, "coolant_temp_c": e.coolant_c,
            "fuel_level_pct": e.fuel_level_pct, "battery_v": 13.6 if e.running else 12.7,
            "engine_speed_rpm": e.rpm, "gen_frequency_hz": e.frequency_hz if e.running else 0.0,
            "gen_l1n_v": v, "gen_l2n_v": v, "gen_l3n_v": v,
            "gen_l1_a": amps, "gen_l2_a": amps, "gen_l3_a": amps,
            "mains_frequency_hz": 50.0 if e.mains_present else 0.0,
            "mains_l1n_v": e.mains_v if e.mains_present else 0.0,
            "mains_l2n_v": e.mains_v if e.mains_present else 0.0,
            "mains_l3n_v": e.mains_v if e.mains_present else 0.0,
            "gen_kw": e.kw, "gen_kva": e.kw / 0.9, "gen_pf": 0.9 if e.kw > 0 else 0.0,
            "gen_load_pct": 100.0 * e.kw / e.rated_kw, "run_hours_h": e.run_s / 3600.0,
            "starts": e.starts,
        }
        for name, value in values.items():
            self._put(name, value)
        if self.profile.mode is not None:
            raw: dict[str, int] = {m: int(k) for k, m in
                                   reversed(self.profile.mode.values.items())}
            self.words[self.profile.mode.address] = raw.get(e.mode, 0)
        states: dict[str, int] = {str(s.severity): s.value for s in self.profile.alarms.states
                                  if s.active}
        inactive = next((s.value for s in self.profile.alarms.states
                         if not s.active and s.meaning == "not active"), 0)
        for a in self.profile.alarms.alarm:
            mask = ((1 << a.width) - 1) << a.bit
            sev = e.alarms.get(a.name)
            if a.width == 1:
                field = 1 if sev is not None else 0
            else:
                field = inactive if sev is None else states.get(sev, inactive)
            self.words[a.address] = (self.words[a.address] & ~mask) | (field << a.bit)

    def step(self, dt_s: float) -> None:
        self.engine.step(dt_s)
        self.refresh()

    # ------------------------------------------------------------------ Modbus
    def _write(self, address: int, values: list[int]) -> ExcCodes | None:
        ctl = self.profile.control
        if ctl is None or ctl.method != "key_complement" or address != ctl.address:
            self.rejected_writes += 1
            return ExcCodes.ILLEGAL_ADDRESS
        if len(values) != 2 or values[1] != (~values[0] & 0xFFFF):
            # GenComm: a key without its complement in the same write is not carried out
            self.rejected_writes += 1
            return ExcCodes.ILLEGAL_VALUE
        command = next((c for c, k in ctl.commands.items() if k == values[0]), None)
        if command is None:
            self.rejected_writes += 1
            return ExcCodes.ILLEGAL_VALUE
        e = self.engine
        if command in ("stop", "auto", "manual"):
            e.mode, e.manual_run = command, False
        elif command == "test_on_load":
            e.mode = "test"
        elif command == "start":
            if e.mode not in ("manual", "test"):
                self.rejected_writes += 1
                return ExcCodes.ILLEGAL_VALUE  # GenComm: start only in manual or test mode
            e.manual_run = True
        elif command == "reset_alarms":
            e.reset_alarms()
        self.commands.append(command)
        log.info("genset-sim: unit %d: %s", self.unit, command)
        self.refresh()
        return None

    async def _action(self, function_code: int, start_address: int, address: int, count: int,
                      registers: list[int], set_values: list[int] | list[bool] | None,
                      ) -> ExcCodes | None:
        if set_values is not None:
            return self._write(address, [int(v) for v in set_values])
        if self.fail_reads:
            return ExcCodes.DEVICE_FAILURE
        registers[: self.size] = self.words
        return None

    def _device(self) -> SimDevice:
        return SimDevice(id=self.unit, simdata=[SimData(0, count=self.size, values=0,
                                                        datatype=DataType.REGISTERS)],
                         action=self._action)

    async def start_tcp(self, host: str = "127.0.0.1", port: int = 0) -> int:
        server = ModbusTcpServer(self._device(), address=(host, port))
        self.server = server
        await server.serve_forever(background=True)
        transport: Any = server.transport  # an asyncio Server once serving
        self.port = int(transport.sockets[0].getsockname()[1]) if port == 0 else port
        return self.port

    async def start_rtu(self, device: str, baudrate: int = 19200, **kw: Any) -> None:
        server = ModbusSerialServer(self._device(), port=device, baudrate=baudrate, **kw)
        self.server = server
        await server.serve_forever(background=True)

    async def stop(self) -> None:
        if self.server is not None:
            await self.server.shutdown()  # type: ignore[no-untyped-call]
            self.server = None
