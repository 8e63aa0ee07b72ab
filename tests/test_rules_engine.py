"""The shared evaluator: instant / consecutive / cumulative timing, hysteresis, delays, lost data.

Time comes from a ManualClock; a test condition reads one value that the test sets.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import pytest

from edge_server.clock import ManualClock
from edge_server.rules.engine import Condition, Evaluator, Limit, Sample, Severity, Timing
from edge_server.state import SiteState


class Probe(Condition):
    code = "TEST_HIGH"
    severity = Severity.WARNING
    text_en = "high {subject} {value}"
    text_nl = "hoog {subject} {value}"

    def __init__(self, limit: Limit) -> None:
        self.limit = limit
        self.value: float | None = None

    def samples(self, state: SiteState, now: datetime) -> Iterable[Sample]:
        return [Sample("x", self.value, "n.x")]


class Rig:
    def __init__(self, limit: Limit, max_gap_s: float = 900.0) -> None:
        self.clock = ManualClock()
        self.cond = Probe(limit)
        self.ev = Evaluator([self.cond], max_gap_s=max_gap_s)
        self.state = SiteState("t")
        self.log: list[tuple[float, str]] = []
        self.t = 0.0

    def run(self, value: float | None, seconds: float, step_s: float = 60.0) -> None:
        """Hold value for `seconds`, evaluating every step_s (first evaluation at once)."""
        self.cond.value = value
        end = self.t + seconds
        while self.t < end - 1e-9:
            self._eval()
            self.clock.advance(step_s)
            self.t += step_s

    def _eval(self) -> None:
        for tr in self.ev.evaluate(self.state, self.clock.now()):
            self.log.append((self.t, tr.kind))

    @property
    def active(self) -> bool:
        return self.ev.is_active("TEST_HIGH", "x")


def test_instant_raises_at_first_sample_beyond_and_clears_with_hysteresis() -> None:
    rig = Rig(Limit(8.0, hysteresis=0.5, timing=Timing.INSTANT, delay_s=3600))
    rig.run(7.9, 120)
    assert rig.log == []
    rig.run(8.1, 60)
    assert rig.log == [(120.0, "raise")]
    rig.run(7.8, 600)  # inside the hysteresis band: stays raised
    assert rig.active
    rig.run(7.5, 60)  # threshold - hysteresis: clear
    assert rig.log[-1] == (780.0, "clear")
    assert not rig.active


def test_consecutive_needs_an_unbroken_run() -> None:
    rig = Rig(Limit(8.0, timing=Timing.CONSECUTIVE, delay_s=3600))
    rig.run(9.0, 3000)
    rig.run(7.0, 60)  # a known value back in range breaks the run
    rig.run(9.0, 3000)
    assert rig.log == []
    rig.run(9.0, 1200)
    assert [k for _, k in rig.log] == ["raise"]
    # raised once the run reached 3600 s: first beyond sample at t=3060 -> raise at t=6660
    assert rig.log[0][0] == pytest.approx(3060 + 3600)


def test_cumulative_adds_up_broken_runs_within_the_window() -> None:
    rig = Rig(Limit(8.0, timing=Timing.CUMULATIVE, delay_s=3 * 3600, window_s=24 * 3600,
                    hysteresis=0.5))
    for _ in range(3):  # 1 h 10 min warm, 50 min fine: 3 x 70 = 210 min > 180 min
        rig.run(9.0, 70 * 60)
        rig.run(5.0, 50 * 60)
    kinds = [k for _, k in rig.log]
    assert kinds == ["raise"]
    # raise when the 3rd warm spell brought the total to 180 min: 2*70 + 40 into the third
    assert rig.log[0][0] == pytest.approx(2 * 120 * 60 + 40 * 60)
    # the value is fine, but the window still holds >= 3 h: not cleared until it slides out
    rig.run(5.0, 18 * 3600)
    assert rig.active
    rig.run(5.0, 6 * 3600)
    assert rig.log[-1][1] == "clear"


def test_cumulative_does_not_raise_when_spread_beyond_the_window() -> None:
    rig = Rig(Limit(8.0, timing=Timing.CUMULATIVE, delay_s=3 * 3600, window_s=6 * 3600))
    for _ in range(4):  # 1 h warm every 7 h: never 3 h within any 6 h
        rig.run(9.0, 3600)
        rig.run(5.0, 6 * 3600)
    assert rig.log == []


def test_clear_delay_needs_known_good_data_for_that_long() -> None:
    rig = Rig(Limit(8.0, timing=Timing.INSTANT, clear_delay_s=600))
    rig.run(9.0, 60)
    rig.run(5.0, 300)
    rig.run(None, 120)  # unknown resets a pending clear
    rig.run(5.0, 540)
    assert rig.active
    rig.run(5.0, 180)
    assert rig.log[-1][1] == "clear"


def test_unknown_never_raises_and_never_clears() -> None:
    rig = Rig(Limit(8.0, timing=Timing.INSTANT))
    rig.run(None, 3600)
    assert rig.log == []
    rig.run(20.0, 60)
    assert rig.active
    rig.run(None, 10 * 3600)  # data lost for 10 h: the alarm stays
    assert rig.active and [k for _, k in rig.log] == ["raise"]


def test_unknown_pauses_a_consecutive_run_but_does_not_count() -> None:
    rig = Rig(Limit(8.0, timing=Timing.CONSECUTIVE, delay_s=3600))
    rig.run(9.0, 1800)
    rig.run(None, 5 * 3600)  # a flaky probe must neither hide nor fake the excursion
    assert rig.log == []
    rig.run(9.0, 1860)  # 30 min before + 31 min after the gap (60 s counted from the last hold)
    assert [k for _, k in rig.log] == ["raise"]


def test_a_gap_longer_than_max_gap_is_unknown_time() -> None:
    rig = Rig(Limit(8.0, timing=Timing.CONSECUTIVE, delay_s=3600), max_gap_s=300)
    rig.run(9.0, 2 * 3600, step_s=1800)  # samples 30 min apart: never a held interval
    assert rig.log == []
    rig.run(9.0, 3720, step_s=60)
    assert [k for _, k in rig.log] == ["raise"]


def test_below_limit_with_inclusive_threshold() -> None:
    rig = Rig(Limit(-0.5, above=False, inclusive=True, hysteresis=0.5, delay_s=3600))
    rig.run(-0.5, 3660)
    assert [k for _, k in rig.log] == ["raise"]
    rig.run(-0.2, 600)  # band
    assert rig.active
    rig.run(0.0, 60)
    assert rig.log[-1][1] == "clear"


def test_resume_does_not_raise_twice() -> None:
    rig = Rig(Limit(8.0, timing=Timing.INSTANT))
    rig.ev.resume("TEST_HIGH", "x", rig.clock.now())
    rig.run(9.0, 600)
    assert rig.log == []
    rig.run(5.0, 60)
    assert [k for _, k in rig.log] == ["clear"]


def test_bad_limit_is_refused() -> None:
    with pytest.raises(ValueError, match="window_s"):
        Limit(8.0, timing=Timing.CUMULATIVE, delay_s=3600, window_s=60)
    with pytest.raises(ValueError, match="hysteresis"):
        Limit(8.0, hysteresis=-1)


def test_alert_sentences_name_the_node_and_say_durations_in_words() -> None:
    from edge_server.rules.engine import duration, for_people, shown

    assert for_people("fridge1.door_open_s") == "fridge1" and for_people("power1") == "power1"
    assert [duration(s, "en") for s in (45, 301, 3600, 4800, 7260, 3 * 86400 + 4 * 3600)] == [
        "45 s", "5 min", "1 h", "1 h 20 min", "2 h 1 min", "3 d 4 h"]
    assert duration(4800, "nl") == "1 u 20 min"
    assert shown(301, " s", "nl") == "5 min" and shown(9.14, " °C", "en") == "9.14 °C"
    assert shown(7, " months", "nl") == "7 maanden" and shown(None, " V", "en") == "?"
