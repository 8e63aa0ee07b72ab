# Walking direction from two IR beams a few cm apart: A outside, B inside (1 = broken). Pure logic.
# The pair (A, B) is treated like a quadrature encoder: the Gray sequence 00 -> 10 -> 11 -> 01 -> 00
# is one step in (+4), its mirror one step out (-4). Every edge moves the position by one; a count
# happens only when both beams are clear again AND the whole sequence was walked. So "broke A and
# backed out" (00 10 00) and "A+B then retreat" (00 10 11 10 00) end at 0 or +-2: no count; a bouncing
# beam just moves back and forth. Two people side by side or nose to tail count as one (an estimate).
from micropython import const

_POS = (0, 3, 1, 2)  # index (a<<1)|b: 00->0, 01->3, 10->1, 11->2
IN = const(1)
OUT = const(-1)
NONE = const(0)


class DirectionDecoder:
    def __init__(self):
        self.a = 0
        self.b = 0
        self._steps = 0
        self.errors = 0  # edges that did not fit the sequence (a missed edge)

    def edge(self, beam, level):
        """beam 0 = A, 1 = B; level 1 = broken. Returns IN, OUT or NONE (a count happens here)."""
        a, b = self.a, self.b
        if beam == 0:
            if a == level:
                return NONE  # no change (a glitch shorter than the handler latency)
            na, nb = level, b
        else:
            if b == level:
                return NONE
            na, nb = a, level
        old = _POS[(a << 1) | b]
        new = _POS[(na << 1) | nb]
        d = (new - old) % 4
        self._steps += 1 if d == 1 else -1
        self.a, self.b = na, nb
        if na == 0 and nb == 0:
            steps = self._steps
            self._steps = 0
            if steps >= 4:
                return IN
            if steps <= -4:
                return OUT
        return NONE

    def resync(self, a, b):
        """Set the state from the pin levels after a missed edge; no count from the partial walk."""
        if a != self.a or b != self.b:
            self.errors += 1
            self.a, self.b = a, b
            self._steps = 0
