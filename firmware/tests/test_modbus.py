# The Modbus PDU engine and the RTU/TCP framers on the real MicroPython interpreter: every
# function code, every exception reply, broadcast, foreign unit ids, CRC, and the counters.
import struct

from nsp import regmap as rm
from nsp.crc import crc16
from nsp.image import Image
from nsp.modbus import Engine
from nsp.rtu import RtuFramer, t15_us, t35_us
from nsp.tcp import TcpFramer

UNIT = 7


def make():
    img = Image()
    return img, Engine(img, UNIT)


def call(engine, pdu, unit=UNIT):
    """Serve a PDU (bytes); returns the response PDU as bytes (b"" when no reply)."""
    req = bytearray(260)
    req[3 : 3 + len(pdu)] = pdu
    resp = bytearray(260)
    n = engine.handle(unit, req, 3, len(pdu), resp, 2)
    return bytes(resp[2 : 2 + n])


def rtu_frame(unit, pdu):
    body = bytes([unit]) + pdu
    c = crc16(body, 0, len(body))
    return body + bytes([c & 0xFF, c >> 8])


def rtu_call(framer, frame):
    framer.feed(frame, len(frame))
    n = framer.process()
    return bytes(framer.resp[:n])


def test_crc_known_vectors():
    # Modbus spec example: 01 03 00 00 00 0A -> CRC C5CD, sent as CD C5
    assert crc16(b"\x01\x03\x00\x00\x00\x0a", 0, 6) == 0xCDC5
    assert crc16(b"123456789", 0, 9) == 0x4B37  # CRC-16/MODBUS check value


def test_fc03_fc04_read_registers():
    img, e = make()
    img.set_u16(rm.R_NODE_ID, UNIT)
    img.set_u32(rm.R_UPTIME_S, 0x12345)
    for fc in (3, 4):
        r = call(e, struct.pack(">BHH", fc, 0, 10))
        assert r[0] == fc and r[1] == 20, r
        words = struct.unpack(">10H", r[2:])
        assert words[rm.R_MAP_VERSION] == rm.MAP_VERSION
        assert words[rm.R_NODE_ID] == UNIT
        assert words[6] == 0x1 and words[7] == 0x2345
    r = call(e, struct.pack(">BHH", 3, 0, rm.IMAGE_SIZE))
    assert r[1] == 2 * rm.IMAGE_SIZE


def test_fc03_role_blocks_are_sentinels_and_settings_defaults():
    img, e = make()
    r = call(e, struct.pack(">BHH", 3, rm.R_MAINS_PRESENT, 1))
    assert r == b"\x03\x02\xff\xff"
    r = call(e, struct.pack(">BHH", 3, rm.R_FRIDGE_TEMP_C, 1))
    assert r == b"\x03\x02\x80\x00"
    r = call(e, struct.pack(">BHH", 3, rm.R_VISITORS_IN, 2))
    assert r == b"\x03\x04\xff\xff\xff\xff"
    for addr, default in rm.WRITABLE:
        r = call(e, struct.pack(">BHH", 3, addr, 1))
        assert struct.unpack(">H", r[2:])[0] == default


def test_fc01_fc02_read_bits():
    img, e = make()
    img.coils[0] = 1
    img.coils[3] = 1
    img.discrete[rm.D_DOOR_OPEN] = 1
    img.discrete[rm.D_ANY_FAULT] = 1
    assert call(e, struct.pack(">BHH", 1, 0, 4)) == b"\x01\x01\x09"
    assert call(e, struct.pack(">BHH", 1, 1, 3)) == b"\x01\x01\x04"
    assert call(e, struct.pack(">BHH", 2, 0, rm.N_DISCRETE)) == b"\x02\x01\x28"


def test_fc05_write_single_coil():
    img, e = make()
    req = struct.pack(">BHH", 5, rm.C_OCCUPANCY_RESET, 0xFF00)
    assert call(e, req) == req
    assert img.coils[rm.C_OCCUPANCY_RESET] == 1
    req = struct.pack(">BHH", 5, rm.C_OCCUPANCY_RESET, 0)
    assert call(e, req) == req
    assert img.coils[rm.C_OCCUPANCY_RESET] == 0


def test_fc06_write_single_register():
    img, e = make()
    req = struct.pack(">BHH", 6, rm.R_FRIDGE_HIGH_C, 750)
    assert call(e, req) == req
    assert img.get_u16(rm.R_FRIDGE_HIGH_C) == 750


def test_fc15_write_multiple_coils():
    img, e = make()
    req = struct.pack(">BHHBB", 15, 0, 4, 1, 0b1010)
    assert call(e, req) == req[:5]
    assert list(img.coils) == [0, 1, 0, 1]


def test_fc16_write_multiple_registers():
    img, e = make()
    req = struct.pack(">BHHBHH", 16, rm.R_FRIDGE_LOW_C, 2, 4, 150, 900)
    assert call(e, req) == req[:5]
    assert img.get_u16(rm.R_FRIDGE_LOW_C) == 150
    assert img.get_u16(rm.R_FRIDGE_HIGH_C) == 900


def exc(e, pdu):
    r = call(e, pdu)
    assert len(r) == 2 and r[0] == pdu[0] | 0x80, r
    return r[1]


def test_exception_01_illegal_function():
    img, e = make()
    assert exc(e, b"\x07") == 1
    assert exc(e, b"\x2b\x0e\x01\x00") == 1
    assert exc(e, struct.pack(">BHH", 0x17, 0, 1)) == 1


def test_exception_02_illegal_address():
    img, e = make()
    assert exc(e, struct.pack(">BHH", 3, rm.IMAGE_SIZE - 1, 2)) == 2
    assert exc(e, struct.pack(">BHH", 4, 0xFFFF, 1)) == 2
    assert exc(e, struct.pack(">BHH", 1, 0, rm.N_COILS + 1)) == 2
    assert exc(e, struct.pack(">BHH", 2, rm.N_DISCRETE, 1)) == 2
    assert exc(e, struct.pack(">BHH", 5, rm.N_COILS, 0xFF00)) == 2
    # read-only register, and a block write that touches one read-only word: nothing written
    assert exc(e, struct.pack(">BHH", 6, rm.R_NODE_ID, 5)) == 2
    assert exc(e, struct.pack(">BHHBHH", 16, rm.R_GEN_START_DEADLINE_S, 2, 4, 60, 1)) == 2
    assert img.get_u16(rm.R_GEN_START_DEADLINE_S) == 30
    assert exc(e, struct.pack(">BHHBB", 15, 2, 3, 1, 7)) == 2
    assert list(img.coils) == [0, 0, 0, 0]


def test_exception_03_illegal_value():
    img, e = make()
    assert exc(e, struct.pack(">BHH", 3, 0, 0)) == 3
    assert exc(e, struct.pack(">BHH", 3, 0, 126)) == 3
    assert exc(e, struct.pack(">BHH", 4, 0, 126)) == 3
    assert exc(e, struct.pack(">BHH", 1, 0, 0)) == 3
    assert exc(e, struct.pack(">BHH", 1, 0, 2001)) == 3
    assert exc(e, struct.pack(">BHH", 2, 0, 2001)) == 3
    assert exc(e, struct.pack(">BHH", 5, 0, 0x1234)) == 3  # coil value not FF00/0000
    assert exc(e, struct.pack(">BHHB", 15, 0, 1969, 247) + bytes(247)) == 3
    assert exc(e, struct.pack(">BHHBB", 15, 0, 4, 2, 1)) == 3  # byte count mismatch
    assert exc(e, struct.pack(">BHHBH", 16, 80, 124, 248, 0) + bytes(246)) == 3
    assert exc(e, struct.pack(">BHHBH", 16, 80, 2, 2, 5)) == 3  # byte count != 2*qty
    assert exc(e, struct.pack(">BHHBHH", 16, 80, 2, 4, 5, 6)[:-1]) == 3  # truncated data
    assert exc(e, b"\x03\x00\x00\x00") == 3  # PDU too short
    # the bigger limits are accepted where the address range allows: 125 registers is legal
    assert exc(e, struct.pack(">BHH", 3, 0, 125)) == 2


def test_exception_04_server_failure():
    img, e = make()
    img.coils = None  # a broken image: the engine must answer, not die
    assert exc(e, struct.pack(">BHH", 1, 0, 1)) == 4
    assert img.get_u16(rm.R_EXCEPTIONS) == 1


def test_counters():
    img, e = make()
    call(e, struct.pack(">BHH", 3, 0, 1))
    call(e, struct.pack(">BHH", 3, 0, 0))
    call(e, b"\x07")
    call(e, struct.pack(">BHH", 3, 0, 1), unit=UNIT + 1)  # not ours: not counted
    assert img.get_u16(rm.R_RX_FRAMES) == 3
    assert img.get_u16(rm.R_EXCEPTIONS) == 2
    img.regs[rm.R_RX_FRAMES] = 0xFFFF
    call(e, struct.pack(">BHH", 3, 0, 1))
    assert img.get_u16(rm.R_RX_FRAMES) == 0  # wraps


def test_broadcast_writes_without_reply():
    img, e = make()
    assert call(e, struct.pack(">BHH", 6, rm.R_FRIDGE_ALARM_DELAY_S, 600), unit=0) == b""
    assert img.get_u16(rm.R_FRIDGE_ALARM_DELAY_S) == 600
    assert call(e, struct.pack(">BHH", 5, rm.C_ALARM_SILENCE, 0xFF00), unit=0) == b""
    assert img.coils[rm.C_ALARM_SILENCE] == 1
    assert call(e, struct.pack(">BHH", 3, 0, 200), unit=0) == b""  # no exception reply either
    assert img.get_u16(rm.R_EXCEPTIONS) == 0


def test_foreign_unit_ignored():
    img, e = make()
    for unit in (1, 6, 8, 247, 255):
        assert call(e, struct.pack(">BHH", 6, rm.R_FRIDGE_LOW_C, 1), unit=unit) == b""
    assert img.get_u16(rm.R_FRIDGE_LOW_C) == 200


def test_offline_ignores_everything():
    img, e = make()
    e.offline = True
    assert call(e, struct.pack(">BHH", 3, 0, 1)) == b""
    assert img.get_u16(rm.R_RX_FRAMES) == 0


def test_rtu_frame_roundtrip_and_crc():
    img, e = make()
    f = RtuFramer(e)
    r = rtu_call(f, rtu_frame(UNIT, struct.pack(">BHH", 3, 0, 2)))
    assert r == rtu_frame(UNIT, b"\x03\x04\x00\x01\x00\x00")
    bad = bytearray(rtu_frame(UNIT, struct.pack(">BHH", 3, 0, 2)))
    bad[-1] ^= 0x01
    assert rtu_call(f, bad) == b""
    assert rtu_call(f, b"\x07\x03") == b""  # truncated
    assert img.get_u16(rm.R_CRC_ERRORS) == 2
    assert rtu_call(f, rtu_frame(UNIT + 1, struct.pack(">BHH", 3, 0, 2))) == b""
    assert rtu_call(f, rtu_frame(UNIT, b"\x07")) == rtu_frame(UNIT, b"\x87\x01")
    # the framer keeps serving after all that
    assert rtu_call(f, rtu_frame(UNIT, struct.pack(">BHH", 3, 0, 1)))[:3] == bytes([UNIT, 3, 2])


def test_rtu_frame_in_chunks_and_overflow():
    img, e = make()
    f = RtuFramer(e)
    frame = rtu_frame(UNIT, struct.pack(">BHH", 4, 1, 1))
    for i in range(len(frame)):
        f.feed(frame[i : i + 1], 1)
    n = f.process()
    assert bytes(f.resp[:n]) == rtu_frame(UNIT, b"\x04\x02\x00\x00")
    f.feed(bytes(200), 200)
    f.feed(bytes(100), 100)  # 300 bytes: longer than any Modbus frame
    assert f.process() == 0
    assert img.get_u16(rm.R_CRC_ERRORS) == 1


def test_rtu_t15_gap_discards_when_measured():
    img, e = make()
    f = RtuFramer(e, 19200, check_t15=True)
    frame = rtu_frame(UNIT, struct.pack(">BHH", 3, 0, 1))
    f.feed(frame[:3], 3)
    f.feed(frame[3:], len(frame) - 3, gap_us=t15_us(19200) + 1)
    assert f.process() == 0
    f.feed(frame[:3], 3)
    f.feed(frame[3:], len(frame) - 3, gap_us=500)
    assert f.process() == 7


def test_rtu_timing_constants():
    assert t35_us(19200) == 2006 or t35_us(19200) == 2005
    assert 4010 <= t35_us(9600) <= 4011
    assert t35_us(38400) == 1750 and t15_us(115200) == 750
    assert 859 <= t15_us(19200) <= 860


def test_tcp_mbap():
    img, e = make()
    f = TcpFramer(e)
    req = struct.pack(">HHHBBHH", 0xBEEF, 0, 6, UNIT, 3, 0, 1)
    f.req[: len(req)] = req
    assert f.pdu_len() == 5
    n = f.process(5)
    assert bytes(f.resp[:n]) == struct.pack(">HHHBBBH", 0xBEEF, 0, 5, UNIT, 3, 2, rm.MAP_VERSION)
    # unit 0xFF = this device; protocol id != 0 or a silly length is refused
    f.req[6] = 0xFF
    n = f.process(5)
    assert n == 11 and f.resp[6] == 0xFF
    f.req[2] = 1
    assert f.pdu_len() == -1
    f.req[2] = 0
    f.req[4] = 1
    assert f.pdu_len() == -1
    f.req[4] = 0
    f.req[5] = 1
    assert f.pdu_len() == -1
