# Modbus PDU engine: serves one request PDU against the register image, with no allocation.
#
# Both transports call Engine.handle() with the request PDU at an offset inside their own
# preallocated receive buffer and a preallocated response buffer (RTU: after the unit byte;
# TCP: after the 7-byte MBAP header), so no slice or memoryview is ever made per request.
# Function codes: 01 02 03 04 05 06 15 16. Exception replies: 01 illegal function, 02 illegal data
# address, 03 illegal data value (quantity out of the Modbus limits, byte count mismatch, bad
# coil value, wrong PDU length), 04 server failure (anything raised while serving).
# Writes touch only image.coils / image.regs (writable words); roles act on them in their next
# tick() (docs/interfaces.md: the request path never calls back into roles).
from micropython import const

from nsp import regmap as rm

EX_ILLEGAL_FUNCTION = const(1)
EX_ILLEGAL_ADDRESS = const(2)
EX_ILLEGAL_VALUE = const(3)
EX_SERVER_FAILURE = const(4)

# Per-request quantity limits (Modbus Application Protocol v1.1b; docs/sources.md).
MAX_READ_BITS = const(2000)
MAX_WRITE_BITS = const(1968)
MAX_READ_REGS = const(125)
MAX_WRITE_REGS = const(123)

BROADCAST = const(0)
# Largest response PDU: FC03 of 125 registers = 1 + 1 + 250 bytes.
MAX_PDU = const(253)


class Engine:
    def __init__(self, image, unit):
        self.image = image
        self.unit = unit
        # "Cable pulled" (virtual node control op `offline`): every request is ignored.
        self.offline = False

    def handle(self, unit, req, off, n, resp, roff, peer=None):
        """Serve the request PDU req[off:off+n] sent to `unit`.

        `peer` is the TCP connection's nsp.tcp.Peer (its address and whether it may write), None
        on the RS-485 bus, where the bus itself is the boundary. Writes the response PDU at
        resp[roff:] and returns its length; returns 0 when no reply is due (broadcast, another
        unit's request, node offline, empty PDU)."""
        if self.offline or n < 1:
            return 0
        if unit != self.unit and unit != BROADCAST:
            return 0
        img = self.image
        img.inc_u16(rm.R_RX_FRAMES)
        fc = req[off]
        write = fc == 5 or fc == 6 or fc == 15 or fc == 16
        if write and peer is not None and not peer.may_write:
            # Exception 01: this function is not allowed for this master (docs/security.md).
            img.inc_u16(rm.R_WRITES_REFUSED)
            result = -EX_ILLEGAL_FUNCTION
        else:
            try:
                result = self._serve(fc, req, off, n, resp, roff)
            except Exception:  # a bug must not kill the server: answer "server failure"
                result = -EX_SERVER_FAILURE
            if write and result > 0:
                regs = img.regs
                img.inc_u16(rm.R_WRITES_ACCEPTED)
                regs[rm.R_LAST_WRITER_IP] = peer.ip_hi if peer is not None else 0
                regs[rm.R_LAST_WRITER_IP + 1] = peer.ip_lo if peer is not None else 0
                regs[rm.R_LAST_WRITE_ADDRESS] = (req[off + 1] << 8) | req[off + 2]
                regs[rm.R_LAST_WRITE_FC] = fc
        if unit == BROADCAST:
            return 0
        if result < 0:
            img.inc_u16(rm.R_EXCEPTIONS)
            resp[roff] = (fc | 0x80) & 0xFF
            resp[roff + 1] = -result
            return 2
        return result

    def _serve(self, fc, req, off, n, resp, roff):
        # Returns the response length, or -exception_code.
        if fc == 3 or fc == 4:
            if n != 5:
                return -EX_ILLEGAL_VALUE
            addr = (req[off + 1] << 8) | req[off + 2]
            qty = (req[off + 3] << 8) | req[off + 4]
            if qty < 1 or qty > MAX_READ_REGS:
                return -EX_ILLEGAL_VALUE
            if addr + qty > rm.IMAGE_SIZE:
                return -EX_ILLEGAL_ADDRESS
            regs = self.image.regs
            resp[roff] = fc
            resp[roff + 1] = qty << 1
            j = roff + 2
            for a in range(addr, addr + qty):
                v = regs[a]
                resp[j] = v >> 8
                resp[j + 1] = v & 0xFF
                j += 2
            return 2 + (qty << 1)
        if fc == 1 or fc == 2:
            if n != 5:
                return -EX_ILLEGAL_VALUE
            addr = (req[off + 1] << 8) | req[off + 2]
            qty = (req[off + 3] << 8) | req[off + 4]
            if qty < 1 or qty > MAX_READ_BITS:
                return -EX_ILLEGAL_VALUE
            bits = self.image.coils if fc == 1 else self.image.discrete
            if addr + qty > len(bits):
                return -EX_ILLEGAL_ADDRESS
            nbytes = (qty + 7) >> 3
            resp[roff] = fc
            resp[roff + 1] = nbytes
            for j in range(roff + 2, roff + 2 + nbytes):
                resp[j] = 0
            for i in range(qty):
                if bits[addr + i]:
                    j = roff + 2 + (i >> 3)
                    resp[j] = resp[j] | (1 << (i & 7))
            return 2 + nbytes
        if fc == 5:
            if n != 5:
                return -EX_ILLEGAL_VALUE
            addr = (req[off + 1] << 8) | req[off + 2]
            value = (req[off + 3] << 8) | req[off + 4]
            if value != 0xFF00 and value != 0:
                return -EX_ILLEGAL_VALUE
            if addr >= len(self.image.coils):
                return -EX_ILLEGAL_ADDRESS
            self.image.coils[addr] = 1 if value else 0
            return self._echo(req, off, resp, roff)
        if fc == 6:
            if n != 5:
                return -EX_ILLEGAL_VALUE
            addr = (req[off + 1] << 8) | req[off + 2]
            if addr >= rm.IMAGE_SIZE or not self.image.writable[addr]:
                return -EX_ILLEGAL_ADDRESS
            self.image.regs[addr] = (req[off + 3] << 8) | req[off + 4]
            return self._echo(req, off, resp, roff)
        if fc == 15:
            if n < 6:
                return -EX_ILLEGAL_VALUE
            addr = (req[off + 1] << 8) | req[off + 2]
            qty = (req[off + 3] << 8) | req[off + 4]
            nbytes = req[off + 5]
            if qty < 1 or qty > MAX_WRITE_BITS or nbytes != (qty + 7) >> 3 or n != 6 + nbytes:
                return -EX_ILLEGAL_VALUE
            coils = self.image.coils
            if addr + qty > len(coils):
                return -EX_ILLEGAL_ADDRESS
            for i in range(qty):
                coils[addr + i] = (req[off + 6 + (i >> 3)] >> (i & 7)) & 1
            return self._echo(req, off, resp, roff)
        if fc == 16:
            if n < 6:
                return -EX_ILLEGAL_VALUE
            addr = (req[off + 1] << 8) | req[off + 2]
            qty = (req[off + 3] << 8) | req[off + 4]
            nbytes = req[off + 5]
            if qty < 1 or qty > MAX_WRITE_REGS or nbytes != qty << 1 or n != 6 + nbytes:
                return -EX_ILLEGAL_VALUE
            if addr + qty > rm.IMAGE_SIZE:
                return -EX_ILLEGAL_ADDRESS
            writable = self.image.writable
            for a in range(addr, addr + qty):
                if not writable[a]:
                    return -EX_ILLEGAL_ADDRESS  # checked for all words before writing any
            regs = self.image.regs
            j = off + 6
            for a in range(addr, addr + qty):
                regs[a] = (req[j] << 8) | req[j + 1]
                j += 2
            return self._echo(req, off, resp, roff)
        return -EX_ILLEGAL_FUNCTION

    @staticmethod
    def _echo(req, off, resp, roff):
        # FC05/06 echo the request; FC15/16 answer function, address, quantity: 5 bytes either way.
        for i in range(5):
            resp[roff + i] = req[off + i]
        return 5
