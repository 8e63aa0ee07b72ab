# Modbus RTU transport: frames out of a byte stream, delimited by 3.5 character times of silence.
#
# RtuFramer is the allocation-free core (feed bytes, then process() the frame when the line has
# been silent for t3.5); RtuServer is the asyncio shell over a stream: a machine.UART on the
# ESP32 (RS-485 transceiver whose DE/RE pin is high only while we transmit) or, on the unix port,
# a pty opened by open_pty() (the virtual node; tests put a socat pty pair in between).
#
# Timing (Modbus over Serial Line v1.02 §2.5.1.1): a character is 11 bits; t3.5 = 38.5 bit times
# (2.005 ms at 19,200 baud, 4.01 ms at 9,600), fixed 1.75 ms above 19,200 baud; t1.5 = 16.5 bit
# times (fixed 0.75 ms above 19,200).
# What each platform can measure:
# - t3.5 (end of frame): measured on both. After bytes arrive the server sleeps ~t3.5 and looks
#   again; the frame ends when no byte came for >= t3.5 since the last read that returned data
#   (conservative: that read happened after the byte arrived). The asyncio loop adds ~1 ms of
#   latency to the end-of-frame decision, which the line budget (two t3.5 gaps per poll) covers.
# - t1.5 (gap inside a frame): NOT measurable on the unix port: a pty hands bytes over in chunks
#   and the loop wakes with ~1 ms jitter, more than t1.5 (0.86 ms at 19,200). On the ESP32 the UART
#   FIFO also delivers chunks without per-character timestamps. So RtuServer passes no gap and a
#   torn frame is caught by its CRC instead. RtuFramer.feed() does enforce t1.5 when given a
#   measured gap (check_t15=True), for a port that can timestamp characters (tested on the core).
import time

from micropython import const

from nsp import regmap as rm
from nsp.crc import crc16

MAX_FRAME = const(256)  # Modbus serial frame limit
_CHUNK = const(64)


def t35_us(baud):
    return 1750 if baud > 19200 else (38500000 + baud - 1) // baud


def t15_us(baud):
    return 750 if baud > 19200 else (16500000 + baud - 1) // baud


class RtuFramer:
    """Collects one frame, checks its CRC, serves it through the engine; allocates nothing."""

    def __init__(self, engine, baud=19200, check_t15=False):
        self.engine = engine
        self.req = bytearray(MAX_FRAME)
        self.resp = bytearray(MAX_FRAME)
        self.n = 0
        self.broken = False  # overflow or (where measurable) a t1.5 gap: drop at end of frame
        self.check_t15 = check_t15
        self.t15_us = t15_us(baud)

    def feed(self, chunk, k, gap_us=0):
        """Append chunk[:k]; gap_us = silence before these bytes, if the port can measure it."""
        if self.n and self.check_t15 and gap_us > self.t15_us:
            self.broken = True
        n = self.n
        if n + k > MAX_FRAME:
            self.broken = True
            k = MAX_FRAME - n
        req = self.req
        for i in range(k):
            req[n + i] = chunk[i]
        self.n = n + k

    def process(self):
        """The line went silent for t3.5: serve the frame. Returns bytes to send from self.resp."""
        n = self.n
        broken = self.broken
        self.n = 0
        self.broken = False
        if n == 0:
            return 0
        req = self.req
        image = self.engine.image
        if broken or n < 4:
            image.inc_u16(rm.R_CRC_ERRORS)
            return 0
        crc = crc16(req, 0, n - 2)
        if req[n - 2] != crc & 0xFF or req[n - 1] != crc >> 8:
            image.inc_u16(rm.R_CRC_ERRORS)  # silently dropped (the master retries)
            return 0
        resp = self.resp
        unit = req[0]
        rl = self.engine.handle(unit, req, 1, n - 3, resp, 1)
        if rl == 0:
            return 0
        resp[0] = unit
        crc = crc16(resp, 0, 1 + rl)
        resp[1 + rl] = crc & 0xFF
        resp[2 + rl] = crc >> 8
        return rl + 3


def open_pty(path):
    """Unix port only: open a serial pty raw with VMIN=0, VTIME=0 (reads never wait).

    The usual pty recipe sets VTIME=1, but MicroPython's readinto() keeps reading until its buffer is
    full or a read returns nothing: with VTIME=1 every chunk then costs a 100 ms wait (measured:
    104 ms per FC03 exchange). With VTIME=0 it returns what is there; poll() says when to read."""
    import termios

    f = open(path, "r+b")
    fd = f.fileno()
    termios.setraw(fd)
    attrs = termios.tcgetattr(fd)
    attrs[-1][6] = 0  # VMIN
    attrs[-1][5] = 0  # VTIME: no inter-byte wait either
    termios.tcsetattr(fd, termios.TCSANOW, attrs)
    return f


class RtuServer:
    """Serves Modbus RTU on a stream (machine.UART or a pty file) inside the asyncio loop."""

    def __init__(self, engine, port, baud=19200, de_pin=None, checkin=None):
        import select

        self.framer = RtuFramer(engine, baud)
        self.port = port
        self.baud = baud
        self.de = de_pin
        self.checkin = checkin  # called after each served frame (watchdog bookkeeping)
        self.t35_us = t35_us(baud)
        self._wait_ms = (self.t35_us + 999) // 1000
        self._chunk = bytearray(_CHUNK)
        self._poller = select.poll()
        self._poller.register(port, select.POLLIN)
        if de_pin is not None:
            de_pin.value(0)  # receive

    def _read_ready(self):
        # Non-blocking read: only read when poll says bytes are waiting (a pty read with
        # VTIME=1 would otherwise block the loop for 100 ms).
        for _ in self._poller.ipoll(0):
            k = self.port.readinto(self._chunk)
            return k or 0
        return 0

    async def serve(self):
        import asyncio

        reader = asyncio.StreamReader(self.port)
        framer = self.framer
        chunk = self._chunk
        ticks_us = time.ticks_us
        ticks_diff = time.ticks_diff
        while True:
            k = await reader.readinto(chunk)  # sleeps until the first bytes of a frame
            if not k:
                await asyncio.sleep_ms(50)  # pty peer gone (EOF): wait for it to come back
                continue
            framer.feed(chunk, k)
            last_us = ticks_us()
            while True:
                await asyncio.sleep_ms(self._wait_ms)
                k = self._read_ready()
                now_us = ticks_us()
                if k:
                    framer.feed(chunk, k)
                    last_us = now_us
                elif ticks_diff(now_us, last_us) >= self.t35_us:
                    break
            n = framer.process()
            if n:
                await self._send(n)
            if self.checkin is not None:
                self.checkin()

    async def _send(self, n):
        import asyncio

        de = self.de
        if de is not None:
            de.value(1)
        port = self.port
        resp = self.framer.resp
        sent = 0
        while sent < n:
            k = port.write(resp, sent, n - sent)
            if not k:
                await asyncio.sleep_ms(1)
                continue
            sent += k
        if de is not None:
            # Hold DE high until the last stop bit is out, then release the bus at once: sleep
            # most of the transmit time, then spin on txdone() (ESP32) for the last character.
            tx_ms = n * 11000 // self.baud
            if tx_ms > 1:
                await asyncio.sleep_ms(tx_ms - 1)
            txdone = getattr(port, "txdone", None)
            if txdone is not None:
                while not txdone():
                    pass
            de.value(0)
