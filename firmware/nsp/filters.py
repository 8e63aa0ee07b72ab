# Small signal filters for slow sensors (fuel level, voltages) and digital inputs. Pure logic: values
# and now_ms in, values out; buffers made once in __init__ so the steady state allocates little.
from time import ticks_diff


class Median:
    """Running median of the last n samples: one slosh spike or ADC glitch never reaches the output."""

    def __init__(self, n=5):
        self._ring = [0.0] * n
        self._sorted = [0.0] * n
        self._n = n
        self._count = 0
        self._pos = 0

    def reset(self):
        self._count = 0
        self._pos = 0

    def add(self, x):
        self._ring[self._pos] = x
        self._pos = (self._pos + 1) % self._n
        if self._count < self._n:
            self._count += 1
        c = self._count
        s = self._sorted
        for i in range(c):  # insertion sort into the preallocated list (n is small)
            s[i] = self._ring[i]
        for i in range(1, c):
            v = s[i]
            j = i - 1
            while j >= 0 and s[j] > v:
                s[j + 1] = s[j]
                j -= 1
            s[j + 1] = v
        return s[c // 2]


class MovingAverage:
    """Mean of the last n samples (n x sample period = the time constant against sloshing)."""

    def __init__(self, n=30):
        self._ring = [0.0] * n
        self._n = n
        self._count = 0
        self._pos = 0
        self._sum = 0.0

    def reset(self):
        self._count = 0
        self._pos = 0
        self._sum = 0.0

    def add(self, x):
        if self._count == self._n:
            self._sum -= self._ring[self._pos]
        else:
            self._count += 1
        self._ring[self._pos] = x
        self._sum += x
        self._pos = (self._pos + 1) % self._n
        return self._sum / self._count

    @property
    def count(self):
        return self._count


class Debounce:
    """A digital input accepted only after it held a new level for stable_ms (AC opto inputs ripple
    at 100 Hz before their RC filter settles; door contacts bounce for a few ms)."""

    def __init__(self, stable_ms, initial=None):
        self._stable_ms = stable_ms
        self.value = initial
        self._cand = initial
        self._since = 0
        self.changes = 0  # accepted changes, for a flapping-input check

    def update(self, level, now_ms):
        if self.value is None:
            self.value = self._cand = level
            self._since = now_ms
            return level
        if level != self._cand:
            self._cand = level
            self._since = now_ms
        elif level != self.value and ticks_diff(now_ms, self._since) >= self._stable_ms:
            self.value = level
            self.changes += 1
        return self.value


def interpolate(table, x):
    """Piecewise-linear lookup in [(x, y), ...] sorted by x; extrapolates from the end segments."""
    n = len(table)
    i = 1
    while i < n - 1 and x > table[i][0]:
        i += 1
    x0, y0 = table[i - 1]
    x1, y1 = table[i]
    return y0 + (y1 - y0) * (x - x0) / (x1 - x0)
