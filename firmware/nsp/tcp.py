# Modbus TCP transport: MBAP header (transaction id echoed, protocol id 0, length, unit id) over
# asyncio streams; one task per client, several clients at once.
#
# TcpFramer is the allocation-free core (parse the MBAP header, serve the PDU through the engine,
# build the reply header); each connection gets its own preallocated buffers. The asyncio stream
# calls in the shell allocate a little (MicroPython's stream machinery), the request path does not.
# Unit id 0xFF addresses "the device behind this TCP connection" (Modbus Messaging on TCP/IP
# Implementation Guide §4.4.2), so it is served as our own unit; 0 is broadcast (writes, no reply).
# Writes (FC05/06/15/16) are carried out only for a master whose IPv4 address is in the node's
# modbus.tcp_write_allow list; others get exception 01 (docs/security.md: Modbus has no
# authentication, so the address is all the node can check).
from time import ticks_diff

from micropython import const

MBAP_LEN = const(7)
_BUF = const(7 + 253)  # header + the largest PDU


def ipv4_words(text):
    """'192.168.1.10' -> (0xC0A8, 0x010A), two small ints (a u32 would be a big int on the
    ESP32's 31-bit small ints); None when it is not a dotted IPv4 address."""
    parts = text.split(".") if isinstance(text, str) else ()
    if len(parts) != 4:
        return None
    b = []
    for p in parts:
        if not p.isdigit() or int(p) > 255:
            return None
        b.append(int(p))
    return (b[0] << 8) | b[1], (b[2] << 8) | b[3]


def peer_words(peername):
    """The master's IPv4 as (hi, lo) from asyncio's peername: a (host, port) tuple on the ESP32,
    a raw sockaddr_in (family, port, 4 address bytes, ...) on the unix port; (0, 0) if unknown."""
    if isinstance(peername, tuple):
        w = ipv4_words(peername[0])
        return w if w is not None else (0, 0)
    if peername is not None and len(peername) >= 8:
        return (peername[4] << 8) | peername[5], (peername[6] << 8) | peername[7]
    return 0, 0


class Peer:
    """One TCP master, made at accept: its address and whether it may write (the engine reads
    these on the request path, so nothing is computed per request), and the server's
    bookkeeping: its task (cancelled to drop it) and when it last completed a request (accept
    time until then). One object per client: on a ~100 KB heap every object counts."""

    def __init__(self, ip_hi, ip_lo, may_write, task=None, now_ms=0):
        self.ip_hi = ip_hi
        self.ip_lo = ip_lo
        self.may_write = may_write
        self.task = task
        self.last_ms = now_ms
        self.served = False


class TcpFramer:
    def __init__(self, engine, peer=None):
        self.engine = engine
        self.peer = peer if peer is not None else Peer(0, 0, True)
        self.req = bytearray(_BUF)
        self.resp = bytearray(_BUF)

    def pdu_len(self):
        """Length of the PDU announced by the header in req[:7], or -1 if the header is invalid."""
        req = self.req
        if req[2] != 0 or req[3] != 0:  # protocol id must be 0 (Modbus)
            return -1
        length = (req[4] << 8) | req[5]  # unit id + PDU
        if length < 2 or length > 254:
            return -1
        return length - 1

    def process(self, pdu_len):
        """Serve req[7:7+pdu_len]; returns the reply length in resp (0: no reply due)."""
        req = self.req
        resp = self.resp
        unit = req[6]
        engine = self.engine
        served_unit = engine.unit if unit == 0xFF else unit
        rl = engine.handle(served_unit, req, MBAP_LEN, pdu_len, resp, MBAP_LEN, self.peer)
        if rl == 0:
            return 0
        resp[0] = req[0]
        resp[1] = req[1]
        resp[2] = 0
        resp[3] = 0
        resp[4] = (rl + 1) >> 8
        resp[5] = (rl + 1) & 0xFF
        resp[6] = unit
        return MBAP_LEN + rl


async def _fill(reader, mv, start, end):
    # readexactly() would allocate a new bytes per call; readinto() fills our own buffer.
    while start < end:
        k = await reader.readinto(mv[start:end])
        if not k:
            return False  # the client hung up
        start += k
    return True


# A client that has served a request within this long is never dropped for a newcomer: then the
# newcomer is refused instead (several busy masters keep their connections).
EVICT_MIN_IDLE_MS = const(2000)


class TcpServer:
    # Each client costs ~1 KB (two 260-byte buffers, a task, a socket): cap them on a ~100 KB heap.
    # Silent and slow clients must not lock the others out (4 silent sockets once kept the edge
    # off a node until they closed): a client that completes no request for idle_ms is closed
    # (reap(), from the node's tick), and a newcomer at the cap takes the place of the client
    # that has been idle longest, first those that never completed a request.
    def __init__(self, engine, host="0.0.0.0", port=502, checkin=None, max_clients=4,
                 write_allow=(), idle_ms=60000, ticks_ms=None):
        import time

        self.engine = engine
        self.max_clients = max_clients
        # (hi, lo) address words of the masters that may write; bad entries were reported by
        # nsp.node.modbus_settings and are left out here.
        self.write_allow = [w for w in (ipv4_words(a) for a in write_allow) if w is not None]
        self.idle_ms = idle_ms
        self.ticks_ms = ticks_ms or time.ticks_ms
        self.host = host
        self.port = port
        self.checkin = checkin
        self.server = None
        self.clients = 0
        self.refused = 0
        self.dropped = 0
        self.conns = []

    async def start(self):
        import asyncio

        self.server = await asyncio.start_server(self._client, self.host, self.port)
        return self.server

    def close(self):
        if self.server is not None:
            self.server.close()

    def _count_drop(self):
        if self.engine is not None:
            from nsp import regmap as rm

            self.engine.image.inc_u16(rm.R_TCP_CLIENTS_DROPPED)

    def _drop(self, conn):
        if conn in self.conns:
            self.conns.remove(conn)  # at once: the cancelled task cleans up when it next runs
            self.dropped += 1
            self._count_drop()
            conn.task.cancel()

    def reap(self, now_ms):
        """Close every client silent for longer than idle_ms (called from the node's tick)."""
        if not self.idle_ms:
            return
        for conn in self.conns:
            if ticks_diff(now_ms, conn.last_ms) > self.idle_ms:
                self._drop(conn)
                return  # one per tick: the list changed; the next tick takes the next

    def _evict_for_newcomer(self):
        """Drop the longest-idle client (never-served first); False if all are busy."""
        now = self.ticks_ms()
        best = None
        for conn in self.conns:
            if best is None or (best.served and not conn.served) or (
                    best.served == conn.served and ticks_diff(best.last_ms, conn.last_ms) > 0):
                best = conn
        if best is None or (best.served and ticks_diff(now, best.last_ms) < EVICT_MIN_IDLE_MS):
            return False
        self._drop(best)
        return True

    async def _client(self, reader, writer):
        import asyncio

        if len(self.conns) >= self.max_clients and not self._evict_for_newcomer():
            self.refused += 1
            self._count_drop()
            writer.close()  # too many busy masters: hang up at once rather than run out of heap
            await writer.wait_closed()
            return
        try:
            hi, lo = peer_words(writer.get_extra_info("peername"))
            conn = Peer(hi, lo, (hi, lo) in self.write_allow, asyncio.current_task(),
                        self.ticks_ms())
            framer = TcpFramer(self.engine, conn)
            req_mv = memoryview(framer.req)
            resp_mv = memoryview(framer.resp)
        except MemoryError:
            # No heap for this client's buffers (measured at 104k on the unix port with a 4th
            # client): refuse this one master, keep serving the others. An uncaught error here
            # would reach the global handler and stop the node.
            self.refused += 1
            writer.close()
            await writer.wait_closed()
            return
        self.conns.append(conn)
        self.clients += 1
        try:
            while True:
                if not await _fill(reader, req_mv, 0, MBAP_LEN):
                    break
                pdu_len = framer.pdu_len()
                if pdu_len < 0:
                    break  # not Modbus: drop the connection rather than guess where frames start
                if not await _fill(reader, req_mv, MBAP_LEN, MBAP_LEN + pdu_len):
                    break
                n = framer.process(pdu_len)
                conn.last_ms = self.ticks_ms()
                conn.served = True
                if n:
                    writer.write(resp_mv[:n])
                    await writer.drain()
                if self.checkin is not None:
                    self.checkin()
        except (EOFError, OSError):
            pass  # hang-up or reset by the client
        except asyncio.CancelledError:
            pass  # dropped: idle too long, or the oldest idle one when a newcomer came
        except MemoryError:
            self.refused += 1  # the stream machinery ran out of heap: drop this client only
        finally:
            self.clients -= 1
            if conn in self.conns:
                self.conns.remove(conn)
            try:
                writer.close()
                await writer.wait_closed()
            except (OSError, asyncio.CancelledError):
                pass
