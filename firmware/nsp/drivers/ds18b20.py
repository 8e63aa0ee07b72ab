# DS18B20 temperature probes, several on one 1-Wire bus, addressed by ROM id. Non-blocking: start()
# sends CONVERT T to all probes at once (SKIP ROM); the caller comes back >= 750 ms later (12-bit
# conversion time) and read(rom) fetches each scratchpad. Never returns a wrong temperature: a bad
# CRC, the 85.0 degC power-on value, an all-0xFF read (nobody answered: unplugged) or an all-zero read
# (bus shorted: the CRC of zeros is zero!) come back as a status, not a reading.
from micropython import const

CONVERSION_MS = const(750)
OK = const(0)
MISSING = const(1)
CRC_ERROR = const(2)
POWER_ON = const(3)
_CONVERT = const(0x44)
_READ_SCRATCH = const(0xBE)
_SKIP_ROM = const(0xCC)
_POWER_ON_RAW = const(0x0550)  # 85.0 degC


def crc8(buf, n):
    """Dallas/Maxim CRC-8 (x^8+x^5+x^4+1, reflected 0x8C) of buf[:n]."""
    crc = 0
    for i in range(n):
        crc ^= buf[i]
        for _ in range(8):
            crc = (crc >> 1) ^ 0x8C if crc & 1 else crc >> 1
    return crc


def rom_from_hex(text):
    return bytes(int(text[i:i + 2], 16) for i in range(0, 16, 2))


class DS18B20:
    def __init__(self, ow):
        self._ow = ow
        self._buf = bytearray(9)
        self.raw = 0  # last good reading, 1/16 degC (signed)

    def start(self):
        """Start a conversion on every probe. False when no probe answered the reset."""
        if not self._ow.reset():
            return False
        self._ow.writebyte(_SKIP_ROM)
        self._ow.writebyte(_CONVERT)
        return True

    def read(self, rom):
        """Status of the probe with this ROM; on OK the value is in self.raw (1/16 degC)."""
        ow = self._ow
        buf = self._buf
        ow.select_rom(rom)
        ow.writebyte(_READ_SCRATCH)
        ow.readinto(buf)
        ff = zero = True
        for b in buf:
            if b != 0xFF:
                ff = False
            if b != 0:
                zero = False
        if ff:
            return MISSING
        if zero or crc8(buf, 8) != buf[8]:
            return CRC_ERROR
        raw = buf[0] | (buf[1] << 8)
        if raw & 0x8000:
            raw -= 0x10000
        if raw == _POWER_ON_RAW:
            return POWER_ON
        self.raw = raw
        return OK

    @staticmethod
    def centi_c(raw):
        """1/16 degC -> 1/100 degC, in integers (rounded)."""
        v = raw * 100
        return (v + 8) // 16 if v >= 0 else -((-v + 8) // 16)
