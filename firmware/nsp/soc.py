# Site battery state of charge: counts charge (coulomb counting from the INA226 current), re-anchored
# on the rest voltage after the battery has rested (|I| below rest_a for rest_ms; docs/sources.md: 4-24 h).
# Pure logic. Rest-voltage tables per cell; a bank of 12/24/48 V has 6/12/24 lead-acid cells or
# 4/8/16 LiFePO4 cells (3.2 V nominal), so the bank's voltage is divided by its cells first.
# Sources (firmware/README.md, "Battery state of charge"):
# - flooded lead-acid, Battery Council International: 12.65 V 100 %, 12.45 75 %, 12.24 50 %,
#   12.06 25 %, 11.89 empty (12 V, rest 4-24 h), here / 6 cells.
# - AGM: sunonbattery.com "AGM battery voltage" (a maker's OCV table, 2 h rest): 12.85 V 100 %,
#   12.55 75 %, 12.25 50 %, 11.95 25 %, 11.65 0 %; Polaris' AGM charging table agrees within
#   0.05 V at 100/75/50/25 % (12.8, 12.6, 12.3, 12.0 V).
# - LiFePO4 per cell: 3.068 V 10 %, 3.159 20 %, 3.221 50 %, 3.262 90 %, 3.348 100 % (docs/sources.md),
#   0 % at the usual cell discharge cut-off of 2.50 V (e.g. EVE LF280K datasheet). The curve is so
#   flat between 20 and 90 % that rest voltage only re-anchors roughly: counting current decides.
from time import ticks_diff

from nsp.filters import interpolate

LEAD_ACID_12V = ((11.89, 0.0), (12.06, 0.25), (12.24, 0.5), (12.45, 0.75), (12.65, 1.0))
FLOODED_CELL = tuple((v / 6, s) for v, s in LEAD_ACID_12V)
AGM_CELL = tuple((v / 6, s) for v, s in ((11.65, 0.0), (11.95, 0.25), (12.25, 0.5), (12.55, 0.75),
                                          (12.85, 1.0)))
LIFEPO4_CELL = ((2.50, 0.0), (3.068, 0.1), (3.159, 0.2), (3.221, 0.5), (3.262, 0.9), (3.348, 1.0))
_CELLS_PER_12V = {"flooded": 6, "agm": 6, "lifepo4": 4}
_TABLES = {"flooded": FLOODED_CELL, "agm": AGM_CELL, "lifepo4": LIFEPO4_CELL}


def rest_table(chemistry, nominal_v):
    """(per-cell table, cells in the bank) for config.json's battery_chemistry, battery_nominal_v."""
    return _TABLES[chemistry], _CELLS_PER_12V[chemistry] * nominal_v // 12


def bank_soc(v, chemistry, nominal_v):
    """State of charge 0..1 of a bank at rest from its terminal voltage."""
    table, cells = rest_table(chemistry, nominal_v)
    return soc_from_rest_v(v / cells, table)


def soc_from_rest_v(v, table=LEAD_ACID_12V):
    if v <= table[0][0]:
        return 0.0
    if v >= table[-1][0]:
        return 1.0
    return interpolate(table, v)


class SocEstimator:
    def __init__(self, capacity_ah, rest_a=0.5, rest_ms=14400000, soc=None, table=LEAD_ACID_12V,
                 cells=1):
        self.capacity_ah = capacity_ah
        self.table = table  # rest voltage per cell (or per bank with cells=1) -> SoC
        self.cells = cells
        self.rest_a = rest_a
        self.rest_ms = rest_ms
        self.soc = soc  # 0..1, None until the first reading
        self.anchors = 0
        self._rest_since = None
        self._anchored = False
        self._last_ms = None

    def update(self, voltage_v, current_a, now_ms):
        if self.soc is None:
            self.soc = soc_from_rest_v(voltage_v / self.cells, self.table)  # a first guess
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
                self.soc = soc_from_rest_v(voltage_v / self.cells, self.table)
                self._anchored = True
                self.anchors += 1
        else:
            self._rest_since = None
        return self.soc
