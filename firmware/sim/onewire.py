# Fake of the ESP32 port's `onewire` module (micropython-lib onewire.py over the C `_onewire`), for the
# unix port ONLY. OneWire(pin) talks to the DS18B20 models the world hangs on that pin (sim/world.py).
# It decodes the byte stream the way the chips do: reset -> ROM command (SKIP 0xCC / MATCH 0x55 + 8
# bytes) -> function (CONVERT 0x44, READ SCRATCHPAD 0xBE) -> reads. Nobody driving the bus reads 0xFF
# (the pull-up), which is what an unplugged probe gives.


class OneWireError(Exception):
    pass


def _crc8_maxim(data):
    # Independent of the driver's CRC (nsp/drivers/ds18b20.py) so a bug there cannot hide here:
    # table-free, reflected polynomial 0x8C, done per byte with a different loop shape.
    crc = 0
    for byte in data:
        for _ in range(8):
            mix = (crc ^ byte) & 1
            crc >>= 1
            if mix:
                crc ^= 0x8C
            byte >>= 1
    return crc


def make_rom(family, serial):
    """An 8-byte ROM id with a valid CRC: family byte, 6-byte serial (int), CRC."""
    rom = bytearray(8)
    rom[0] = family
    for i in range(6):
        rom[1 + i] = (serial >> (8 * i)) & 0xFF
    rom[7] = _crc8_maxim(rom[:7])
    return bytes(rom)


class FakeDS18B20:
    """One probe. temp_fn() gives the temperature it senses now (°C); now_fn() the world's ms."""

    CONVERSION_MS = 750  # 12-bit resolution, datasheet max

    def __init__(self, rom, temp_fn, now_fn):
        self.rom = rom
        self._temp_fn = temp_fn
        self._now_fn = now_fn
        self.present = True
        self.crc_noise = False  # corrupt one bit of every scratchpad read (EMI on a long cable)
        self._raw = 0x0550  # 85.0 °C: the power-on value of the temperature register
        self._conv_done_ms = None
        self._pending_raw = 0

    def power_cycle(self):
        self._raw = 0x0550
        self._conv_done_ms = None

    def convert(self):
        t = self._temp_fn()
        raw = int(round(t * 16))
        self._pending_raw = raw & 0xFFFF
        self._conv_done_ms = self._now_fn() + self.CONVERSION_MS

    def scratchpad(self):
        if self._conv_done_ms is not None and self._now_fn() >= self._conv_done_ms:
            self._raw = self._pending_raw
            self._conv_done_ms = None
        sp = bytearray(9)
        sp[0] = self._raw & 0xFF
        sp[1] = self._raw >> 8
        sp[2] = 0x4B  # TH default
        sp[3] = 0x46  # TL default
        sp[4] = 0x7F  # config: 12-bit
        sp[5] = 0xFF
        sp[6] = 0x0C
        sp[7] = 0x10
        sp[8] = _crc8_maxim(sp[:8])
        if self.crc_noise:
            sp[0] ^= 0x04
        return sp


class OneWire:
    MATCH_ROM = 0x55
    SKIP_ROM = 0xCC

    def __init__(self, pin):
        import machine  # the world attached there (sim/world.py, or sim/stim.py for the soak)

        self._devices = machine._w().onewire_devices(pin.id if hasattr(pin, "id") else pin)
        self._state = "idle"
        self._selected = None  # None = nobody, "all" = SKIP ROM, else a device
        self._match = bytearray()
        self._out = None
        self._pos = 0

    def _present(self):
        return [d for d in self._devices if d.present]

    def reset(self, required=False):
        self._state = "rom"
        self._selected = None
        self._out = None
        ok = len(self._present()) > 0
        if required and not ok:
            raise OneWireError
        return ok

    def writebyte(self, value):
        s = self._state
        if s == "rom":
            if value == self.SKIP_ROM:
                self._selected = "all"
                self._state = "fn"
            elif value == self.MATCH_ROM:
                self._match = bytearray()
                self._state = "match"
            else:
                self._state = "idle"
        elif s == "match":
            self._match.append(value)
            if len(self._match) == 8:
                self._selected = None
                for d in self._present():
                    if d.rom == bytes(self._match):
                        self._selected = d
                self._state = "fn"
        elif s == "fn":
            devs = self._present() if self._selected == "all" else ([self._selected] if self._selected else [])
            if value == 0x44:
                for d in devs:
                    d.convert()
                self._state = "idle"
            elif value == 0xBE and len(devs) == 1:
                self._out = devs[0].scratchpad()
                self._pos = 0
                self._state = "read"
            else:
                self._state = "idle"

    def write(self, buf):
        for b in buf:
            self.writebyte(b)

    def select_rom(self, rom):
        self.reset()
        self.writebyte(self.MATCH_ROM)
        self.write(rom)

    def readbyte(self):
        if self._state == "read" and self._out is not None and self._pos < len(self._out):
            b = self._out[self._pos]
            self._pos += 1
            return b
        return 0xFF

    def readinto(self, buf):
        for i in range(len(buf)):
            buf[i] = self.readbyte()

    def scan(self):
        return [bytearray(d.rom) for d in self._present()]

    def crc8(self, data):
        return _crc8_maxim(data)
