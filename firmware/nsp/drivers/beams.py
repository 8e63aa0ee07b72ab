# Two IR beam receivers (A outside, B inside; pin 1 = beam broken, so a cut cable reads "broken" and
# becomes a blocked-beam fault instead of silently counting nobody). The interrupt handler allocates
# nothing and does no float math: it stores (beam, level) and a timestamp into preallocated rings,
# bumps the write index and sets a ThreadSafeFlag. The role drains the ring in its tick.
from array import array
from time import ticks_ms

from micropython import const

_RING = const(64)  # a crossing is 4 edges; 64 = 16 crossings between two ticks


class Beams:
    def __init__(self, pin_a, pin_b, flag=None, clock=ticks_ms):
        self.pin_a = pin_a
        self.pin_b = pin_b
        self._codes = bytearray(_RING)
        self._times = array("i", [0] * _RING)
        self._head = 0  # written by the handler only
        self._tail = 0  # read by drain() only
        self.overruns = 0
        self._flag = flag
        self._clock = clock
        self._on_a = self._irq_a  # bound methods made once: making them in irq() allocates
        self._on_b = self._irq_b
        both = pin_a.IRQ_RISING | pin_a.IRQ_FALLING
        pin_a.irq(handler=self._on_a, trigger=both)
        pin_b.irq(handler=self._on_b, trigger=both)

    def _store(self, code):
        h = self._head
        if ((h + 1) & (_RING - 1)) == self._tail:
            self.overruns += 1
            return
        self._codes[h] = code
        self._times[h] = self._clock() & 0x3FFFFFFF
        self._head = (h + 1) & (_RING - 1)
        if self._flag is not None:
            self._flag.set()

    def _irq_a(self, pin):
        self._store(pin.value())  # code = beam*2 + level: A -> 0/1

    def _irq_b(self, pin):
        self._store(2 + pin.value())  # B -> 2/3

    def pending(self):
        return self._head != self._tail

    def pop(self):
        """Oldest (beam, level, time_ms) or None."""
        t = self._tail
        if t == self._head:
            return None
        code = self._codes[t]
        when = self._times[t]
        self._tail = (t + 1) & (_RING - 1)
        return code >> 1, code & 1, when

    def levels(self):
        return self.pin_a.value(), self.pin_b.value()
