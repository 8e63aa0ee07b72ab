# TI INA226 current/voltage monitor on I2C (site battery shunt). Reads the shunt voltage (2.5 uV/LSB)
# and bus voltage (1.25 mV/LSB) registers and works out current in integers: no calibration register
# needed. A missing chip (OSError ENODEV) or a wrong manufacturer id is reported, never turned into 0 A.
from micropython import const

_REG_CONFIG = const(0x00)
_REG_SHUNT = const(0x01)
_REG_BUS = const(0x02)
_REG_MANUFACTURER = const(0xFE)
_TI = const(0x5449)
# averages 16, bus and shunt 1.1 ms conversions, continuous: a 50 Hz charger ripple averages out
_CONFIG = const(0x4527)


class INA226:
    def __init__(self, i2c, addr=0x40, shunt_mohm=0.75):
        self._i2c = i2c
        self._addr = addr
        self._shunt_uohm = int(shunt_mohm * 1000)
        self._buf = bytearray(2)
        self._cfg = bytearray(2)
        self.ready = False
        self.bus_mv = 0
        self.current_ma = 0

    def _read(self, reg):
        self._i2c.readfrom_mem_into(self._addr, reg, self._buf)
        return (self._buf[0] << 8) | self._buf[1]

    def configure(self):
        """True when the chip answered as an INA226 and took the configuration."""
        try:
            if self._read(_REG_MANUFACTURER) != _TI:
                self.ready = False
                return False
            self._cfg[0] = _CONFIG >> 8
            self._cfg[1] = _CONFIG & 0xFF
            self._i2c.writeto_mem(self._addr, _REG_CONFIG, self._cfg)
            self.ready = True
        except OSError:
            self.ready = False
        return self.ready

    def read(self):
        """Update bus_mv and current_ma (positive = into the battery). False on a bus error."""
        if not self.ready and not self.configure():
            return False
        try:
            shunt = self._read(_REG_SHUNT)
            bus = self._read(_REG_BUS)
        except OSError:
            self.ready = False
            return False
        if shunt & 0x8000:
            shunt -= 0x10000
        self.bus_mv = bus * 5 // 4
        # I = V_shunt / R: (shunt * 2.5 uV) / (R uOhm) A  ->  mA
        self.current_ma = shunt * 2500 // self._shunt_uohm if self._shunt_uohm else 0
        return True
