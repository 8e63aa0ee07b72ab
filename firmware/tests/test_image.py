# The register image: sentinels, defaults, the set_* helpers (and that they do not allocate).
import micropython

from nsp import regmap as rm
from nsp.image import I16_ROLE_REGS, Image


def test_initial_image():
    img = Image()
    assert img.get_u16(rm.R_MAP_VERSION) == rm.MAP_VERSION
    for start, size in (rm.BLOCK_POWER, rm.BLOCK_FRIDGE, rm.BLOCK_ENTRANCE):
        for a in range(start, start + size):
            want = rm.NA_I16 if a in I16_ROLE_REGS else rm.NA_U16
            assert img.get_u16(a) == want, a
    for addr, default in rm.WRITABLE:
        assert img.get_u16(addr) == default and img.writable[addr] == 1
    assert sum(img.writable) == len(rm.WRITABLE)
    assert list(img.coils) == [0] * rm.N_COILS and list(img.discrete) == [0] * rm.N_DISCRETE


def test_setters():
    img = Image()
    img.set_i16(rm.R_FRIDGE_TEMP_C, -250)
    assert img.get_u16(rm.R_FRIDGE_TEMP_C) == 0xFF06 and img.get_i16(rm.R_FRIDGE_TEMP_C) == -250
    img.set_i16(rm.R_FRIDGE_TEMP_C, -40000)  # clamped, never the sentinel
    assert img.get_i16(rm.R_FRIDGE_TEMP_C) == -32767
    img.set_i16(rm.R_FRIDGE_TEMP_C, None)
    assert img.get_u16(rm.R_FRIDGE_TEMP_C) == rm.NA_I16
    img.set_u32(rm.R_VISITORS_IN, 70000)
    assert img.get_u16(rm.R_VISITORS_IN) == 1 and img.get_u16(rm.R_VISITORS_IN + 1) == 4464
    assert img.get_u32(rm.R_VISITORS_IN) == 70000
    img.set_u32(rm.R_VISITORS_IN, None)
    assert img.get_u32(rm.R_VISITORS_IN) == rm.NA_U32
    img.set_bool(rm.R_DOOR_OPEN, True)
    assert img.get_u16(rm.R_DOOR_OPEN) == 1
    img.set_bool(rm.R_DOOR_OPEN, None)
    assert img.get_u16(rm.R_DOOR_OPEN) == rm.NA_U16
    img.set_u16(rm.R_OCCUPANCY, 70000)
    assert img.get_u16(rm.R_OCCUPANCY) == 70000 & 0xFFFF
    img.clear_block(*rm.BLOCK_FRIDGE)
    assert img.get_u16(rm.R_DOOR_OPEN) == rm.NA_U16


def _set_many(img, n):
    for i in range(n):
        img.set_u16(rm.R_OCCUPANCY, i)
        img.set_i16(rm.R_FRIDGE_TEMP_C, i - 50)
        img.set_u32(rm.R_VISITORS_IN, i * 1000)
        img.set_bool(rm.R_DOOR_OPEN, i & 1)
        img.inc_u16(rm.R_RX_FRAMES)


def test_setters_do_not_allocate():
    img = Image()
    micropython.heap_lock()
    try:
        _set_many(img, 100)
    finally:
        micropython.heap_unlock()
    assert img.get_u32(rm.R_VISITORS_IN) == 99000
