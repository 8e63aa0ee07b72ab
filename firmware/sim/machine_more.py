# The less used part of the fake `machine` (sim/machine.py), for the unix port ONLY: `machine.X`
# and `from machine import X` find these through machine.__getattr__, so callers see one module.
# It imports nothing of the sim: sim/machine.py hands it the world and its I2C class (bind()).

_world_fn = None  # set by bind(): returns the attached world, or None
SoftI2C = None  # the fake's I2C class; the ESP32's SoftI2C has the same API

_reset_cause = 1  # PWRON_RESET until a test or the virtual node says otherwise
_unique_id = b"\x24\x0a\xc4\x00\x00\x01"

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5


def bind(world_fn, i2c_class):
    """Called by sim/machine.py before each lookup (cheap: two assignments)."""
    global _world_fn, SoftI2C
    _world_fn = world_fn
    SoftI2C = i2c_class


def reset_cause():
    return _reset_cause


def set_reset_cause(cause):
    """Sim only: what the next reset_cause() reports (e.g. WDT_RESET for a watchdog test)."""
    global _reset_cause
    _reset_cause = cause


def unique_id():
    return _unique_id


def set_unique_id(uid):
    """Sim only: give this virtual board its own id (bytes)."""
    global _unique_id
    _unique_id = bytes(uid)


class ResetRequested(Exception):
    """Raised by reset()/soft_reset(): on the board the chip restarts; here the caller decides."""


def reset():
    raise ResetRequested("machine.reset()")


def soft_reset():
    raise ResetRequested("machine.soft_reset()")


def freq(hz=None):
    return 160000000


def idle():
    pass


def disable_irq():
    return 0


def enable_irq(state=0):
    pass


class Signal:
    def __init__(self, pin, invert=False):
        self._pin = pin
        self._invert = invert

    def value(self, x=None):
        if x is None:
            return self._pin.value() ^ (1 if self._invert else 0)
        self._pin.value((1 if x else 0) ^ (1 if self._invert else 0))

    def on(self):
        self.value(1)

    def off(self):
        self.value(0)


_uarts = {}  # UART id -> an open stream (sim/board.py opens the ptys before it remounts /)


def connect_uart(id, stream):
    """Sim only: what machine.UART(id, ...) returns (a pty from nsp.rtu.open_pty)."""
    _uarts[id] = stream


def UART(id, baudrate=19200, **kw):
    """The board's UART `id`: the stream connect_uart() gave (one end of a socat pty pair). The
    line settings are the pty's: it has no baud rate or parity."""
    if id not in _uarts:
        raise OSError("sim: no pty connected for machine.UART(%d)" % id)
    return _uarts[id]


class WDT:
    """Records feeds; the virtual node (or a test) checks `starved(now_ms)` to emulate the reset."""

    def __init__(self, id=0, timeout=5000):
        self.timeout_ms = timeout
        self.feeds = 0
        self.last_feed_ms = None

    def feed(self):
        self.feeds += 1
        w = _world_fn() if _world_fn is not None else None
        self.last_feed_ms = w.now_ms if w is not None else 0

    def starved(self, now_ms):
        if self.last_feed_ms is None:
            return False
        from time import ticks_diff

        return ticks_diff(now_ms, self.last_feed_ms) > self.timeout_ms
