# The fridge's local excursion alarm: outside [low, high] for longer than delay_ms (consecutive), so a
# door opening does not sound it; clears once back inside by a 0.2 degC margin. A missing reading
# (None) neither starts nor clears the timer: the alarm never depends on a sensor fault. Pure logic,
# temperatures in centi-degrees (ints).
from time import ticks_diff

HYSTERESIS_CENTI = 20


class ExcursionAlarm:
    def __init__(self):
        self.active = False
        self._outside_since = None

    def update(self, temp_centi, low_centi, high_centi, delay_ms, now_ms):
        if temp_centi is None:
            return self.active
        outside = temp_centi < low_centi or temp_centi > high_centi
        if outside:
            if self._outside_since is None:
                self._outside_since = now_ms
            if ticks_diff(now_ms, self._outside_since) >= delay_ms:
                self.active = True
        else:
            self._outside_since = None
            if low_centi + HYSTERESIS_CENTI <= temp_centi <= high_centi - HYSTERESIS_CENTI:
                self.active = False
        return self.active
