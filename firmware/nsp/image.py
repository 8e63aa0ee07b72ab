# The node's register image: what Modbus FC01-FC16 read and write, rebuilt by the roles' tick().
# One array('H') for registers (FC03 and FC04 read the same words), bytearrays for coils and
# discrete inputs. Made once at boot; the set_* helpers write in place and allocate nothing
# (small ints only; a u32 is split with shifts so no big int is made for values below 2**30).
# Layout and sentinels come from nsp/regmap.py (generated from edge_server/regmap/registers.toml).
from array import array

from nsp import regmap as rm

# Signed registers inside role blocks: their "not available" sentinel is NA_I16 (0x8000), not
# 0xFFFF. regmap.py lists addresses but not types; tests/test_fw_modbus_tcp.py reads every role
# register of a zero-role node through the edge's decoder and fails if one of these is missed.
I16_ROLE_REGS = (
    rm.R_BATTERY_A,
    rm.R_BATTERY_W,
    rm.R_FRIDGE_TEMP_C,
    rm.R_AMBIENT_TEMP_C,
    rm.R_FRIDGE_MIN_C,
    rm.R_FRIDGE_MAX_C,
)
ROLE_BLOCKS = (rm.BLOCK_POWER, rm.BLOCK_FRIDGE, rm.BLOCK_ENTRANCE)


class Image:
    def __init__(self):
        self.regs = array("H", bytes(2 * rm.IMAGE_SIZE))
        self.coils = bytearray(rm.N_COILS)
        self.discrete = bytearray(rm.N_DISCRETE)
        # 1 where FC06/FC16 may write (regmap.WRITABLE); the Modbus engine checks it per word.
        self.writable = bytearray(rm.IMAGE_SIZE)
        for start, size in ROLE_BLOCKS:
            self.clear_block(start, size)
        for addr, default in rm.WRITABLE:
            self.writable[addr] = 1
            self.regs[addr] = default
        self.regs[rm.R_MAP_VERSION] = rm.MAP_VERSION

    def clear_block(self, start, size):
        """Set a block to its "not available" sentinels (a role that is absent or faulted)."""
        regs = self.regs
        for a in range(start, start + size):
            regs[a] = rm.NA_U16
        for a in I16_ROLE_REGS:
            if start <= a < start + size:
                regs[a] = rm.NA_I16

    def set_u16(self, addr, raw):
        self.regs[addr] = rm.NA_U16 if raw is None else raw & 0xFFFF

    def set_i16(self, addr, raw):
        # Clamp so a real value never reads as the sentinel -32768.
        if raw is None:
            self.regs[addr] = rm.NA_I16
            return
        if raw < -32767:
            raw = -32767
        elif raw > 32767:
            raw = 32767
        self.regs[addr] = raw & 0xFFFF

    def set_u32(self, addr, raw):
        """Two words, high word first; None writes the NA_U32 sentinel (0xFFFF, 0xFFFF)."""
        if raw is None:
            self.regs[addr] = 0xFFFF
            self.regs[addr + 1] = 0xFFFF
            return
        self.regs[addr] = (raw >> 16) & 0xFFFF
        self.regs[addr + 1] = raw & 0xFFFF

    def set_bool(self, addr, value):
        self.regs[addr] = rm.NA_U16 if value is None else (1 if value else 0)

    def get_u16(self, addr):
        return self.regs[addr]

    def get_i16(self, addr):
        v = self.regs[addr]
        return v - 0x10000 if v & 0x8000 else v

    def get_u32(self, addr):
        return (self.regs[addr] << 16) | self.regs[addr + 1]

    def inc_u16(self, addr):
        """Wrapping counter (rx_frames, crc_errors, exceptions)."""
        self.regs[addr] = (self.regs[addr] + 1) & 0xFFFF
