# Writes over Modbus TCP only from the masters in modbus.tcp_write_allow: others get exception 01
# and change nothing; every accepted write (TCP or RTU) is counted with its writer and address.
import struct

import micropython

from nsp import regmap as rm
from nsp.image import Image
from nsp.modbus import Engine
from nsp.node import modbus_settings
from nsp.tcp import Peer, TcpFramer, ipv4_words, peer_words

UNIT = 7
EDGE = ipv4_words("192.168.1.10")
STRANGER = ipv4_words("192.168.1.66")
WRITES = (
    struct.pack(">BHH", 5, rm.C_ALARM_SILENCE, 0xFF00),
    struct.pack(">BHH", 6, rm.R_FRIDGE_LOW_C, 150),
    struct.pack(">BHHBB", 15, 0, 2, 1, 0b11),
    struct.pack(">BHHBHH", 16, rm.R_FRIDGE_LOW_C, 2, 4, 150, 700),
)


def _tcp(framer, pdu, tid=1):
    req = struct.pack(">HHHB", tid, 0, len(pdu) + 1, UNIT) + pdu
    framer.req[:len(req)] = req
    n = framer.process(framer.pdu_len())
    return bytes(framer.resp[7:n])


def test_address_words():
    assert EDGE == (0xC0A8, 0x010A)
    assert ipv4_words("10.0.0.256") is None and ipv4_words("edge.local") is None
    assert ipv4_words(5) is None and ipv4_words("1.2.3") is None
    assert peer_words(("192.168.1.10", 50123)) == EDGE  # the ESP32 port's peername
    unix = bytearray(b"\x02\x00\xd2\x31\x7f\x00\x00\x02" + bytes(8))  # the unix port's
    assert peer_words(unix) == (0x7F00, 0x0002)
    assert peer_words(None) == (0, 0)


def test_stranger_is_refused_with_exception_01_and_nothing_changes():
    img = Image()
    engine = Engine(img, UNIT)
    framer = TcpFramer(engine, Peer(STRANGER[0], STRANGER[1], False))
    before_regs = bytes(img.regs)
    before_coils = bytes(img.coils)
    for pdu in WRITES:
        reply = _tcp(framer, pdu)
        assert reply == bytes((pdu[0] | 0x80, 1)), reply
    assert bytes(img.coils) == before_coils
    changed = [a for a in range(rm.IMAGE_SIZE) if img.regs[a] != struct.unpack_from(
        "<H", before_regs, 2 * a)[0]]
    # only the counters moved: requests, exceptions, refusals
    assert sorted(changed) == [rm.R_RX_FRAMES, rm.R_EXCEPTIONS, rm.R_WRITES_REFUSED], changed
    assert img.get_u16(rm.R_WRITES_REFUSED) == 4 and img.get_u16(rm.R_WRITES_ACCEPTED) == 0
    # reads stay open to every master
    assert _tcp(framer, struct.pack(">BHH", 3, rm.R_MAP_VERSION, 1)) == bytes(
        (3, 2, 0, rm.MAP_VERSION))


def test_allowed_master_writes_and_is_counted():
    img = Image()
    engine = Engine(img, UNIT)
    framer = TcpFramer(engine, Peer(EDGE[0], EDGE[1], True))
    assert _tcp(framer, WRITES[1]) == WRITES[1]
    assert img.get_u16(rm.R_FRIDGE_LOW_C) == 150
    assert img.get_u16(rm.R_WRITES_ACCEPTED) == 1
    assert img.get_u32(rm.R_LAST_WRITER_IP) == 0xC0A8010A
    assert (img.get_u16(rm.R_LAST_WRITE_ADDRESS), img.get_u16(rm.R_LAST_WRITE_FC)) == (
        rm.R_FRIDGE_LOW_C, 6)
    assert _tcp(framer, WRITES[0])[:1] == b"\x05"
    assert (img.get_u16(rm.R_LAST_WRITE_ADDRESS), img.get_u16(rm.R_LAST_WRITE_FC)) == (
        rm.C_ALARM_SILENCE, 5)
    # a refused write (read-only register, exception 02) is not counted as accepted
    assert _tcp(framer, struct.pack(">BHH", 6, rm.R_NODE_ID, 9)) == b"\x86\x02"
    assert img.get_u16(rm.R_WRITES_ACCEPTED) == 2


def test_rtu_bus_writes_are_counted_with_writer_zero():
    img = Image()
    engine = Engine(img, UNIT)
    resp = bytearray(260)
    req = bytearray(WRITES[1])
    assert engine.handle(UNIT, req, 0, len(req), resp, 0) == 5
    assert img.get_u16(rm.R_WRITES_ACCEPTED) == 1 and img.get_u32(rm.R_LAST_WRITER_IP) == 0


def _serve(engine, reqs, peer_no, peer_yes, resp, out):
    for i in range(len(reqs)):
        out[i] = engine.handle(UNIT, reqs[i], 0, len(reqs[i]), resp, 0, peer_no)
        out[len(reqs) + i] = engine.handle(UNIT, reqs[i], 0, len(reqs[i]), resp, 0, peer_yes)


def test_allow_list_check_and_counting_allocate_nothing():
    engine = Engine(Image(), UNIT)
    reqs = [bytearray(p) for p in WRITES]
    no = Peer(STRANGER[0], STRANGER[1], False)
    yes = Peer(EDGE[0], EDGE[1], True)
    resp = bytearray(260)
    out = [0] * (2 * len(reqs))
    micropython.heap_lock()
    try:
        _serve(engine, reqs, no, yes, resp, out)
    finally:
        micropython.heap_unlock()
    assert out == [2] * len(reqs) + [5] * len(reqs), out


def test_config_allow_list():
    mb, errors = modbus_settings({"modbus": {"tcp_write_allow": ["192.168.1.10"]}})
    assert mb["tcp_write_allow"] == ["192.168.1.10"] and errors == []
    mb, errors = modbus_settings({})
    assert list(mb["tcp_write_allow"]) == [] and errors == []  # default: nobody writes over TCP
    mb, errors = modbus_settings({"modbus": {"tcp_write_allow": "192.168.1.10"}})
    assert list(mb["tcp_write_allow"]) == []
    assert errors[0].startswith("config.json: modbus.tcp_write_allow must be a list"), errors
