# The request path allocates nothing: every function code, exception replies, the RTU framer
# (feed + CRC + engine + reply CRC) and the TCP MBAP framer run inside micropython.heap_lock(),
# where any allocation raises MemoryError. All state (buffers, requests) is made beforehand.
# fw-test-heap: 128k
# (Compiling test_modbus.py and nsp/tcp.py from source needs more than 96k; the heap budget is
# checked on .mpy files by tests/test_fw_wasm_heap.py and test_fw_soak.py.)
import struct

import micropython

from nsp import regmap as rm
from nsp.image import Image
from nsp.modbus import Engine
from nsp.rtu import RtuFramer
from nsp.tcp import TcpFramer

import test_modbus as h

UNIT = h.UNIT

PDUS = (
    struct.pack(">BHH", 1, 0, rm.N_COILS),
    struct.pack(">BHH", 2, 0, rm.N_DISCRETE),
    struct.pack(">BHH", 3, 0, rm.IMAGE_SIZE),
    struct.pack(">BHH", 4, 20, 60),
    struct.pack(">BHH", 5, 1, 0xFF00),
    struct.pack(">BHH", 6, rm.R_FRIDGE_LOW_C, 210),
    struct.pack(">BHHBB", 15, 0, 4, 1, 0b0110),
    struct.pack(">BHHBHHHH", 16, 80, 4, 8, 200, 800, 1800, 30),
    b"\x07",  # exception 01
    struct.pack(">BHH", 3, 200, 1),  # exception 02
    struct.pack(">BHH", 3, 0, 126),  # exception 03
)


def _serve_all(engine, reqs, lens, resp, out):
    for i in range(len(lens)):
        out[i] = engine.handle(UNIT, reqs[i], 0, lens[i], resp, 0)
    out[len(lens)] = engine.handle(0, reqs[5], 0, lens[5], resp, 0)  # broadcast
    out[len(lens) + 1] = engine.handle(UNIT + 1, reqs[2], 0, lens[2], resp, 0)  # foreign


def test_engine_every_fc_under_heap_lock():
    engine = Engine(Image(), UNIT)
    reqs = [bytearray(p) for p in PDUS]
    lens = [len(p) for p in PDUS]
    resp = bytearray(260)
    out = [0] * (len(PDUS) + 2)
    micropython.heap_lock()
    try:
        _serve_all(engine, reqs, lens, resp, out)
    finally:
        micropython.heap_unlock()
    assert out[:8] == [3, 3, 2 + 2 * rm.IMAGE_SIZE, 122, 5, 5, 5, 5], out
    assert out[8:11] == [2, 2, 2]
    assert out[11:] == [0, 0]


def _rtu_serve(framer, frames, lens, out):
    for i in range(len(lens)):
        framer.feed(frames[i], lens[i])
        out[i] = framer.process()


def test_rtu_framer_under_heap_lock():
    framer = RtuFramer(Engine(Image(), UNIT))
    frames = [bytearray(h.rtu_frame(UNIT, p)) for p in PDUS]
    bad = bytearray(frames[2])
    bad[-1] ^= 0xFF
    frames.append(bad)
    lens = [len(f) for f in frames]
    out = [0] * len(frames)
    micropython.heap_lock()
    try:
        _rtu_serve(framer, frames, lens, out)
    finally:
        micropython.heap_unlock()
    assert out[2] == 3 + 2 + 2 * rm.IMAGE_SIZE and out[-1] == 0, out
    assert framer.engine.image.get_u16(rm.R_CRC_ERRORS) == 1


def _tcp_serve(framer, reqs, out):
    for i in range(len(reqs)):
        r = reqs[i]
        for j in range(len(r)):
            framer.req[j] = r[j]
        n = framer.pdu_len()
        out[i] = framer.process(n)


def test_tcp_framer_under_heap_lock():
    framer = TcpFramer(Engine(Image(), UNIT))
    reqs = [bytearray(struct.pack(">HHHB", i, 0, len(p) + 1, UNIT) + p) for i, p in enumerate(PDUS)]
    out = [0] * len(reqs)
    micropython.heap_lock()
    try:
        _tcp_serve(framer, reqs, out)
    finally:
        micropython.heap_unlock()
    assert out[2] == 7 + 2 + 2 * rm.IMAGE_SIZE, out
    assert out[8] == 9  # an exception reply is 7 + 2


def test_heap_lock_catches_allocation():
    # The method above is only meaningful if an allocation really fails under the lock.
    micropython.heap_lock()
    try:
        try:
            bytearray(16)
            failed = False
        except MemoryError:
            failed = True
    finally:
        micropython.heap_unlock()
    assert failed
