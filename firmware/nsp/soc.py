# Site battery state of charge: counts charge (coulomb counting from the INA226 current), re-anchored
# on the rest voltage after the battery has rested (|I| below rest_a for rest_ms; docs/sources.md: 4-24 h).
# Pure logic. 12 V lead-acid rest voltage -> SoC (BCI): 12.65 V 100 %, 12.45 75 %, 12.24 50 %,
# 12.06 25 %, 11.89 empty.
from time import ticks_diff

from nsp.filters import interpolate

LEAD_ACID_12V = ((11.89, 0.0), (12.06, 0.25), (12.24, 0.5), (12.45, 0.75), (12.65, 1.0))


def soc_from_rest_v(v, table=LEAD_ACID_12V):
    if v <= table[0][0]:
        return 0.0
    if v >= table[-1][0]:
        return 1.0
    return interpolate(table, v)


class SocEstimator:
    def __init__(self, capacity_ah, rest_a=0.5, rest_ms=14400000, soc=None):
        self.capacity_ah = capacity_ah
        self.rest_a = rest_a
        self.rest_ms = rest_ms
        self.soc = soc  # 0..1, None until the first reading
        self.anchors = 0
        self._rest_since = None
        self._anchored = False
        self._last_ms = None

    def update(self, voltage_v, current_a, now_ms):
        if self.soc is None:
            self.soc = soc_from_rest_v(voltage_v)  # a first guess; the next rest re-anchors it
        elif self._last_ms is not None:
            dt_h = ticks_diff(now_ms, self._last_ms) / 3600000
            s = self.soc + current_a * dt_h / self.capacity_ah
            self.soc = 0.0 if s < 0 else (1.0 if s > 1 else s)
        self._last_ms = now_ms
        if -self.rest_a < current_a < self.rest_a:
            if self._rest_since is None:
                self._rest_since = now_ms
                self._anchored = False
            elif not self._anchored and ticks_diff(now_ms, self._rest_since) >= self.rest_ms:
                self.soc = soc_from_rest_v(voltage_v)
                self._anchored = True
                self.anchors += 1
        else:
            self._rest_since = None
        return self.soc
