# Role "entrance": two IR beams -> visitors in/out (persisted totals) and occupancy (in - out since the
# last reset, at least 0; coil occupancy_reset). The beam interrupts only queue edges (drivers/beams.py);
# direction is decided here from the edge order (nsp/direction.py). A beam broken for longer than
# blocked_fault_s is a fault (something parked in the door, a misaligned or cut receiver).
import sys
from time import ticks_diff

from machine import Pin
from nsp import regmap as rm
from nsp.direction import IN, OUT, DirectionDecoder
from nsp.drivers.beams import Beams


class EntranceRole:
    def __init__(self, image, cfg, store):
        self.image = image
        self.cfg = cfg
        self.store = store
        # A ThreadSafeFlag only when the node already runs asyncio (importing it here costs ~10 KB of
        # heap on the unix port); the tick polls the ring either way.
        flag = None
        aio = sys.modules.get("asyncio")
        if aio is not None and hasattr(aio, "ThreadSafeFlag"):
            flag = aio.ThreadSafeFlag()
        self.flag = flag
        self.beams = Beams(Pin(cfg["beam_a_pin"], Pin.IN), Pin(cfg["beam_b_pin"], Pin.IN), flag)
        self.decoder = DirectionDecoder()
        a, b = self.beams.levels()
        self.decoder.resync(a, b)
        self.decoder.errors = 0
        get = store.get if store is not None else (lambda k, d=None: d)
        self.visitors_in = get("visitors_in", 0)
        self.visitors_out = get("visitors_out", 0)
        self.occupancy = get("occupancy", 0)
        self._blocked_a = None
        self._blocked_b = None
        self._idle_since = None
        self.faults = 0
        image.coils[rm.C_OCCUPANCY_RESET] = 0

    def fault_bits(self):
        return self.faults

    def tick(self, now_ms):
        img = self.image
        beams = self.beams
        dec = self.decoder
        while beams.pending():
            beam, level, _t = beams.pop()
            d = dec.edge(beam, level)
            if d == IN:
                self.visitors_in += 1
                self.occupancy += 1
            elif d == OUT:
                self.visitors_out += 1
                if self.occupancy > 0:
                    self.occupancy -= 1
        a, b = beams.levels()
        if a != dec.a or b != dec.b:
            # the ring and the pins disagree (an edge lost to a full ring or latency): resync once
            # the lines have been quiet for a second
            if self._idle_since is None:
                self._idle_since = now_ms
            elif ticks_diff(now_ms, self._idle_since) >= 1000:
                dec.resync(a, b)
                self._idle_since = None
        else:
            self._idle_since = None
        if img.coils[rm.C_OCCUPANCY_RESET]:
            img.coils[rm.C_OCCUPANCY_RESET] = 0
            self.occupancy = 0
        limit_ms = self.cfg["blocked_fault_s"] * 1000
        self._blocked_a = (now_ms if self._blocked_a is None else self._blocked_a) if a else None
        self._blocked_b = (now_ms if self._blocked_b is None else self._blocked_b) if b else None
        f = 0
        if self._blocked_a is not None and ticks_diff(now_ms, self._blocked_a) >= limit_ms:
            f |= rm.B_BEAM_A_BLOCKED
        if self._blocked_b is not None and ticks_diff(now_ms, self._blocked_b) >= limit_ms:
            f |= rm.B_BEAM_B_BLOCKED
        self.faults = f
        img.set_u32(rm.R_VISITORS_IN, self.visitors_in)
        img.set_u32(rm.R_VISITORS_OUT, self.visitors_out)
        img.set_u16(rm.R_OCCUPANCY, self.occupancy if self.occupancy < 65535 else 65534)
        img.set_u16(rm.R_ENTRANCE_FAULTS, f)
        st = self.store
        if st is not None:
            st.set("visitors_in", self.visitors_in)
            st.set("visitors_out", self.visitors_out)
            st.set("occupancy", self.occupancy)
            st.maybe_flush(now_ms)
