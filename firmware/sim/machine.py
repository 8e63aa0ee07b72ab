# The fake of the ESP32's `machine` module, for the MicroPython unix port ONLY (firmware/sim is first
# on MICROPYPATH, so `import machine` finds this file). It is the one explicit, small, shared fake:
# every device reads or drives the simulated world (sim/world.py) instead of silicon.
#   Pin: input levels come from the world's wiring (pin id -> signal); outputs go to the world;
#        irq(handler, trigger) handlers are called by the world when it changes a level (the board
#        calls them from its interrupt machinery).
#   ADC: read_uv() gives the world's microvolts on that pin, with the ESP32's non-linearity.
#   I2C: readfrom_mem_into / writeto_mem / scan talk to the world's fake I2C devices (INA226);
#        a missing device raises OSError(19) (ENODEV), as the ESP32 port does.
#   WDT, reset_cause, unique_id, reset, freq, idle, Signal, SoftI2C and the reset constants of the
#   ESP32 port live in sim/machine_more.py and load on first use (module __getattr__): the roles use
#   only Pin, ADC and I2C, so the soak's heap (firmware/tests/soak.py) carries only those. Of the
#   ESP32 API only what the firmware and its tests use is here: every name is a heap qstr and every
#   method a heap object on the unix port (firmware/README.md, "Memory").
# Nothing here is used by firmware logic directly: drivers take these objects as arguments.
# Imports go one way: world.py (or stim.py, or a test's null world) imports this module and
# attaches itself; this module and machine_more.py never import a world.

_world = None
_pins = {}  # pin id -> the Pin object last made for it (whose irq handler the world calls)


def attach(world):
    """The world registers itself here (sim/world.py does so when imported)."""
    global _world
    _world = world


def _w():
    if _world is None:
        raise RuntimeError("no simulated world: import world (sim/world.py) or machine.attach(w)")
    return _world


class Pin:
    IN = 1
    OUT = 3
    PULL_UP = 2
    IRQ_RISING = 1
    IRQ_FALLING = 2

    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id = id
        self._mode = self.IN
        self._pull = None
        self._out = 0
        self._handler = None
        self._trigger = 0
        _pins[id] = self
        if mode != -1:
            self._mode = mode
        if pull != -1:
            self._pull = pull
        if value is not None:
            self.value(value)

    def value(self, x=None):
        if x is None:
            if self._mode == self.OUT:
                return self._out
            level = _w().pin_level(self.id)
            if level is None:  # nothing wired: the pull decides, else it floats (read 0)
                return 1 if self._pull == self.PULL_UP else 0
            return level
        self._out = 1 if x else 0
        if self._mode == self.OUT:
            _w().pin_out(self.id, self._out)
        return None

    def __call__(self, x=None):
        return self.value(x)

    def irq(self, handler=None, trigger=3, hard=False):
        self._handler = handler
        self._trigger = trigger if handler is not None else 0
        return None

    def _edge(self, level):
        """Called by the world after it changed this pin's input level."""
        if self._handler is None:
            return
        if (level and self._trigger & self.IRQ_RISING) or (not level and self._trigger & self.IRQ_FALLING):
            self._handler(self)


def _fire_edge(pin_id, level):
    pin = _pins.get(pin_id)
    if pin is not None:
        pin._edge(level)


class ADC:
    ATTN_11DB = 3  # ~0-3.1 V: the only attenuation the firmware uses

    def __init__(self, pin, atten=3):
        self._id = pin.id if isinstance(pin, Pin) else pin

    def read_uv(self):
        return _w().adc_uv(self._id)


class I2C:
    def __init__(self, id=0, scl=None, sda=None, freq=400000, timeout=50000):
        self.id = id

    def _dev(self, addr):
        dev = _w().i2c_device(self.id, addr)
        if dev is None:
            raise OSError(19)  # ENODEV: no ACK, as the ESP32 port reports it
        return dev

    def scan(self):
        return _w().i2c_scan(self.id)

    def readfrom_mem_into(self, addr, memaddr, buf, addrsize=8):
        self._dev(addr).read_into(memaddr, buf)

    def writeto_mem(self, addr, memaddr, buf, addrsize=8):
        self._dev(addr).write(memaddr, buf)


def _world_or_none():
    return _world


def __getattr__(name):
    """The rest of the fake (sim/machine_more.py), imported on first use and handed what it needs
    from here (the world, I2C), so that it imports nothing of the sim itself."""
    import machine_more

    machine_more.bind(_world_or_none, I2C)
    return getattr(machine_more, name)
