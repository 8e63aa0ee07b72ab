"""The radio transport: send a frame, receive a frame, know the airtime budget.

On the serial line (an Ebyte E22 in transparent mode passes the bytes through unchanged, so they
also go on the air) one packet is SLIP-framed (RFC 1055) around `site_len, site_id, frame`:
the receiver learns the sender from the packet (transparent mode has no sender address) and the
site id stays inside the frame's MAC. SLIP, because the receiver must find packet boundaries in a
byte stream after a lost or cut packet: END (0xC0) ends every packet, so one bad packet costs
only itself. It is 15 lines; no package was worth a dependency for it.
"""

from __future__ import annotations

from typing import Any, Protocol

from edge_server.radio.airtime import LoRaParams, airtime_s

END, ESC, ESC_END, ESC_ESC = 0xC0, 0xDB, 0xDC, 0xDD
MAX_SITE = 63


class BadPacket(ValueError):
    pass


def slip_encode(data: bytes) -> bytes:
    out = bytearray([END])  # a leading END flushes noise the line picked up before us
    for b in data:
        if b == END:
            out += bytes([ESC, ESC_END])
        elif b == ESC:
            out += bytes([ESC, ESC_ESC])
        else:
            out.append(b)
    out.append(END)
    return bytes(out)


class SlipDecoder:
    """Bytes in (any chunking), whole packets out."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._esc = False

    def feed(self, data: bytes) -> list[bytes]:
        packets: list[bytes] = []
        for b in data:
            if b == END:
                if self._buf:
                    packets.append(bytes(self._buf))
                self._buf.clear()
                self._esc = False
            elif self._esc:
                self._buf.append(END if b == ESC_END else ESC if b == ESC_ESC else b)
                self._esc = False
            elif b == ESC:
                self._esc = True
            else:
                self._buf.append(b)
                if len(self._buf) > 1024:  # no packet is this long: a line full of noise
                    self._buf.clear()
        return packets


def pack(site_id: str, frame: bytes) -> bytes:
    site = site_id.encode("ascii")
    if not 1 <= len(site) <= MAX_SITE:
        raise BadPacket(f"site id {site_id!r}: 1..{MAX_SITE} ASCII characters")
    return bytes([len(site)]) + site + frame


def unpack(packet: bytes) -> tuple[str, bytes]:
    if not packet or packet[0] == 0 or len(packet) < 1 + packet[0]:
        raise BadPacket(f"radio packet of {len(packet)} bytes has no site id")
    n = packet[0]
    try:
        site = packet[1 : 1 + n].decode("ascii")
    except UnicodeDecodeError as exc:
        raise BadPacket("radio packet's site id is not ASCII") from exc
    return site, packet[1 + n :]


def on_air_bytes(site_id: str, frame: bytes) -> int:
    """The bytes the modem sends for one frame (transparent mode sends the SLIP framing too)."""
    return len(slip_encode(pack(site_id, frame)))


def frame_airtime_s(params: LoRaParams, site_id: str, frame: bytes) -> float:
    return airtime_s(params, on_air_bytes(site_id, frame))


class Transport(Protocol):
    params: LoRaParams

    def send(self, site_id: str, frame: bytes) -> float:
        """Send one frame; returns its airtime in seconds."""
        ...

    def receive(self, timeout_s: float) -> tuple[str, bytes] | None:
        """The next (site id, frame) heard, or None after timeout_s. Undecodable packets are
        dropped and counted in `bad_packets`."""
        ...

    def open(self) -> None: ...

    def close(self) -> None: ...


class SerialRadio:
    """A LoRa UART modem in transparent mode on a serial port (E22-900T22D: 9600 8N1 default)."""

    def __init__(self, port: str, params: LoRaParams, baudrate: int = 9600) -> None:
        self.port = port
        self.params = params
        self.baudrate = baudrate
        self.bad_packets = 0
        self._serial: Any = None
        self._decoder = SlipDecoder()
        self._ready: list[bytes] = []

    def open(self) -> None:
        """Open the port (OSError naming it when it cannot); the constructor does no I/O."""
        import serial

        if self._serial is None:
            self._serial = serial.Serial(self.port, baudrate=self.baudrate, timeout=0.05)

    def send(self, site_id: str, frame: bytes) -> float:
        self.open()
        data = slip_encode(pack(site_id, frame))
        self._serial.write(data)
        self._serial.flush()
        return airtime_s(self.params, len(data))

    def receive(self, timeout_s: float) -> tuple[str, bytes] | None:
        import time

        self.open()
        deadline = time.monotonic() + timeout_s
        while True:
            while self._ready:
                try:
                    return unpack(self._ready.pop(0))
                except BadPacket:
                    self.bad_packets += 1
            chunk = self._serial.read(max(1, self._serial.in_waiting))
            if chunk:
                self._ready.extend(self._decoder.feed(chunk))
            elif time.monotonic() >= deadline:
                return None

    def close(self) -> None:
        if self._serial is not None:
            self._serial.close()
            self._serial = None
