"""The one place that talks to pymodbus (pinned 3.16.1): a small client per bus.

Everything else in the edge speaks this adapter, so a pymodbus API change (it renamed `slave=` to
`device_id=` in 3.x) is fixed here only. Two failures are kept apart on purpose:

- `NoAnswer`: nothing usable came back (timeout, connection refused or lost, a frame the client
  dropped for a bad CRC). The node may be gone: the poller backs off.
- `ExceptionReply`: the node answered with a valid Modbus exception (`rr.isError()`), e.g. 02
  illegal data address. The node is alive; the request was wrong.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient, AsyncModbusTcpClient
from pymodbus.exceptions import ModbusException

from edge_server.config import RtuBus, TcpBus

EXCEPTION_NAMES: dict[int, str] = {
    1: "illegal function",
    2: "illegal data address",
    3: "illegal data value",
    4: "server failure",
    5: "acknowledge",
    6: "server busy",
}


class ModbusError(Exception):
    """A Modbus request that did not give data."""


class NoAnswer(ModbusError):
    """No (valid) reply: timeout, connection refused/lost, or a frame dropped for a bad CRC."""


class PortUnavailable(NoAnswer):
    """The serial port could not be opened or the TCP connection made: no unit was asked."""


class ExceptionReply(ModbusError):
    """The node answered with a Modbus exception code."""

    def __init__(self, code: int, what: str) -> None:
        self.code = code
        name = EXCEPTION_NAMES.get(code, "unknown exception")
        super().__init__(f"exception {code:02d} ({name}) {what}")


def rtu_gap_s(baudrate: int) -> float:
    """t3.5: the silent interval between RTU frames (Modbus over Serial Line 2.5.1.1).

    A character is 11 bits; above 19,200 baud the spec fixes t3.5 at 1.750 ms.
    9,600 baud -> 4.01 ms, 19,200 baud -> 2.005 ms.
    """
    if baudrate > 19200:
        return 0.00175
    return 3.5 * 11 / baudrate


class BusClient:
    """One pymodbus client for one bus (a serial line, or one TCP peer/gateway)."""

    def __init__(self, bus: RtuBus | TcpBus, timeout_s: float, retries: int) -> None:
        self.bus = bus
        self.timeout_s = timeout_s
        self.retries = retries
        if isinstance(bus, TcpBus):
            self.describe = f"tcp {bus.host}:{bus.port}"
        else:
            self.describe = f"rtu {bus.port} {bus.baudrate} baud"
        # Made on first use: a pymodbus client binds to the running event loop when created,
        # so it is built inside the service's loop (the FastAPI lifespan), not at construction.
        self._client: AsyncModbusTcpClient | AsyncModbusSerialClient | None = None

    def _make_client(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        # pymodbus logs every timeout at ERROR itself; the poller logs the first one per node
        # with the node's name and address, and repeats at DEBUG.
        logging.getLogger("pymodbus").setLevel(logging.CRITICAL)
        bus = self.bus
        if isinstance(bus, TcpBus):
            # reconnect_delay=0: no background reconnect loop; the poller decides when to retry.
            return AsyncModbusTcpClient(
                bus.host, port=bus.port, timeout=self.timeout_s, retries=self.retries,
                reconnect_delay=0,
            )
        return AsyncModbusSerialClient(
            bus.port,
            framer=FramerType.RTU,
            baudrate=bus.baudrate,
            parity=bus.parity,
            stopbits=bus.stopbits,
            bytesize=8,
            timeout=self.timeout_s,
            retries=self.retries,
            reconnect_delay=0,
        )

    async def _ensure_connected(self) -> AsyncModbusTcpClient | AsyncModbusSerialClient:
        if self._client is None:
            self._client = self._make_client()
        client = self._client
        if client.connected:
            return client
        try:
            ok = await client.connect()
        except Exception as exc:  # noqa: BLE001  (pyserial raises termios.error, not OSError)
            raise PortUnavailable(f"cannot open {self.describe}: {exc}") from None
        if not ok:
            raise PortUnavailable(f"cannot connect to {self.describe}")
        return client

    async def _request(self, what: str, call: Callable[[Any], Awaitable[Any]]) -> Any:
        """Run one request; no answer (timeout, closed link) and an exception reply differ."""
        client = await self._ensure_connected()
        try:
            rr = await call(client)
        except (ModbusException, OSError, TimeoutError) as exc:
            raise NoAnswer(f"no answer {what}: {exc}") from None
        if rr.isError():
            raise ExceptionReply(int(rr.exception_code), what)
        return rr

    async def read_registers(self, unit: int, address: int, count: int) -> list[int]:
        """FC03 read of `count` registers; raises NoAnswer or ExceptionReply."""
        rr = await self._request(
            f"reading registers {address}..{address + count - 1}",
            lambda c: c.read_holding_registers(address, count=count, device_id=unit))
        # A short reply is returned as is: the decoder refuses it (a decode error, not a timeout).
        registers: list[int] = list(rr.registers)
        return registers

    async def write_coil(self, unit: int, address: int, value: bool) -> None:
        await self._request(f"writing coil {address}",
                            lambda c: c.write_coil(address, value, device_id=unit))

    async def write_register(self, unit: int, address: int, raw: int) -> None:
        await self._request(f"writing register {address}",
                            lambda c: c.write_register(address, raw, device_id=unit))

    async def write_registers(self, unit: int, address: int, raws: list[int]) -> None:
        """FC16: several registers in ONE request (GenComm's control key and its complement)."""
        await self._request(f"writing registers {address}..{address + len(raws) - 1}",
                            lambda c: c.write_registers(address, raws, device_id=unit))

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
