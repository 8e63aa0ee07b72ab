# fw-test-heap: 256k
# Filters, direction decoding and the allocation-free beam interrupt handler.
import micropython

import machine
from nsp.direction import IN, NONE, OUT, DirectionDecoder
from nsp.drivers.beams import Beams
from nsp.filters import Debounce, Median, MovingAverage, interpolate


def test_median_rejects_spike():
    m = Median(5)
    out = [m.add(x) for x in (10.0, 10.0, 10.0, 90.0, 10.0, 10.0)]
    assert max(out) == 10.0, out
    m2 = Median(3)
    assert [m2.add(x) for x in (1.0, 3.0, 2.0, 5.0)] == [1.0, 3.0, 2.0, 3.0]


def test_moving_average_window():
    a = MovingAverage(4)
    assert a.add(4.0) == 4.0
    a.add(8.0)
    a.add(0.0)
    assert a.add(0.0) == 3.0
    assert a.add(4.0) == 3.0  # 8, 0, 0, 4 after the first 4 fell out


def test_debounce_needs_stable_level():
    d = Debounce(500)
    assert d.update(1, 0) == 1
    assert d.update(0, 100) == 1
    assert d.update(1, 200) == 1  # bounce back: timer restarts
    assert d.update(0, 300) == 1
    assert d.update(0, 700) == 1
    assert d.update(0, 800) == 0
    assert d.changes == 1


def test_interpolate_extrapolates_ends():
    t = [[0, 0.0], [10, 100.0], [20, 150.0]]
    assert interpolate(t, 5) == 50.0
    assert interpolate(t, 15) == 125.0
    assert interpolate(t, 30) == 200.0
    assert interpolate(t, -10) == -100.0


def walk(dec, edges):
    got = []
    for beam, level in edges:
        r = dec.edge(beam, level)
        if r != NONE:
            got.append(r)
    return got


A1, A0, B1, B0 = (0, 1), (0, 0), (1, 1), (1, 0)


def test_direction_cases():
    assert walk(DirectionDecoder(), (A1, B1, A0, B0)) == [IN]
    assert walk(DirectionDecoder(), (B1, A1, B0, A0)) == [OUT]
    assert walk(DirectionDecoder(), (A1, A0)) == []  # broke A and backed out
    assert walk(DirectionDecoder(), (A1, B1, B0, A0)) == []  # A+B then retreat
    assert walk(DirectionDecoder(), (A1, B1, A0, A1, A0, B0)) == [IN]  # a bounce on A
    assert walk(DirectionDecoder(), (A1, B1, A0, A1, B0, A0)) == []  # almost in, then back out
    assert walk(DirectionDecoder(), (A1, A1, B1, B1, A0, B0)) == [IN]  # repeated edges ignored
    assert walk(DirectionDecoder(), (A1, B1, A0, B0, B1, A1, B0, A0)) == [IN, OUT]


def _isr_burst(beams, pa, pb):
    # runs with the heap locked: any allocation raises MemoryError
    for _ in range(3):
        pa._out = 1
        beams._irq_a(pa)
        beams._irq_b(pb)
        beams._irq_a(pa)
        beams._irq_b(pb)


def test_beam_interrupt_allocates_nothing():
    from world import WORLD

    WORLD.reset()
    pa = machine.Pin(32, machine.Pin.IN)
    pb = machine.Pin(33, machine.Pin.IN)
    beams = Beams(pa, pb)
    micropython.heap_lock()
    try:
        _isr_burst(beams, pa, pb)
    finally:
        micropython.heap_unlock()
    n = 0
    while beams.pop() is not None:
        n += 1
    assert n == 12, n


def test_beam_ring_overrun_counted_not_crashing():
    from world import WORLD

    WORLD.reset()
    pa = machine.Pin(32, machine.Pin.IN)
    pb = machine.Pin(33, machine.Pin.IN)
    beams = Beams(pa, pb)
    micropython.heap_lock()
    try:
        for _ in range(100):
            beams._irq_a(pa)
    finally:
        micropython.heap_unlock()
    assert beams.overruns == 100 - 63, beams.overruns
