# CRC-16/MODBUS (poly 0xA001 reflected, init 0xFFFF; sent low byte first) for RTU frames.
# Table-driven: 256 precomputed words (512 bytes of RAM, built once at import) make a 256-byte
# frame cost one table lookup per byte instead of eight shift/xor steps. No allocation per call:
# the loop indexes the caller's buffer and only small ints are created.
from array import array


def _make_table():
    table = array("H", bytes(512))
    for i in range(256):
        crc = i
        for _ in range(8):
            if crc & 1:
                crc = (crc >> 1) ^ 0xA001
            else:
                crc >>= 1
        table[i] = crc
    return table


TABLE = _make_table()


def crc16(buf, start, end):
    """CRC of buf[start:end] (no slice is made). The wire order is low byte, then high byte."""
    crc = 0xFFFF
    table = TABLE
    for i in range(start, end):
        crc = (crc >> 8) ^ table[(crc ^ buf[i]) & 0xFF]
    return crc
