"""Fuel autonomy: the rate learned from a noisy level trace, refuels, the chart prior, leaks."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from edge_server.clock import ManualClock
from edge_server.rules.autonomy import FuelTracker, theil_sen_slope
from edge_server.rules.settings import FuelSettings

SETTINGS = FuelSettings(
    tank_capacity_l=500, unusable_l=10, consumption_chart_lph={25: 4.9, 50: 6.8, 75: 9.1, 100: 11},
    expected_load_pct=50, learn_window_h=6, learn_min_span_h=0.5, learn_full_weight_h=2,
)


def feed(tracker: FuelTracker, clock: ManualClock, level_l: float, hours: float, *,
         running: bool, rate_lph: float, slosh_l: float, rng: random.Random,
         step_s: float = 30.0) -> float:
    """Burn rate_lph for `hours` (when running), sampling every step_s with slosh noise."""
    for _ in range(int(hours * 3600 / step_s)):
        tracker.update(clock.now(), level_l + rng.uniform(-slosh_l, slosh_l), running)
        clock.advance(step_s)
        if running:
            level_l -= rate_lph * step_s / 3600
    return level_l


def test_prior_when_the_generator_has_not_run() -> None:
    clock = ManualClock()
    tracker = FuelTracker(SETTINGS)
    feed(tracker, clock, 400, 3, running=False, rate_lph=0, slosh_l=0.5, rng=random.Random(1))
    est = tracker.estimate(clock.now())
    assert est.learned_lph is None and est.learned_weight == 0
    assert est.rate_lph == pytest.approx(6.8)
    assert est.hours == pytest.approx((400 - 10) / 6.8, rel=0.01)
    assert est.refuel_before is None  # nothing is burnt while stopped


def test_learns_the_rate_through_slosh_and_a_refuel() -> None:
    rng = random.Random(42)
    clock = ManualClock()
    tracker = FuelTracker(SETTINGS)
    level = feed(tracker, clock, 300, 1.5, running=True, rate_lph=9.0, slosh_l=3.0, rng=rng)
    level += 150  # refuel while running: an upward jump must not look like negative burn
    level = feed(tracker, clock, level, 3.0, running=True, rate_lph=9.0, slosh_l=3.0, rng=rng)
    est = tracker.estimate(clock.now())
    assert est.learned_lph == pytest.approx(9.0, rel=0.08)
    assert est.learned_weight == 1.0
    assert est.rate_lph == pytest.approx(9.0, rel=0.08)
    assert tracker.last_refuel_at is not None
    assert est.hours == pytest.approx((level - 10) / 9.0, rel=0.1)
    assert est.refuel_before is not None and est.hours is not None
    expected = clock.now() + timedelta(hours=est.hours - SETTINGS.refuel_lead_time_h)
    assert abs((est.refuel_before - expected).total_seconds()) < 1


def test_stops_do_not_dilute_the_rate_and_the_rate_is_kept_after_stopping() -> None:
    rng = random.Random(7)
    clock = ManualClock()
    tracker = FuelTracker(SETTINGS)
    level = feed(tracker, clock, 400, 1.0, running=True, rate_lph=5.0, slosh_l=1.0, rng=rng)
    level = feed(tracker, clock, level, 5.0, running=False, rate_lph=5.0, slosh_l=1.0, rng=rng)
    level = feed(tracker, clock, level, 1.0, running=True, rate_lph=5.0, slosh_l=1.0, rng=rng)
    feed(tracker, clock, level, 2.0, running=False, rate_lph=5.0, slosh_l=1.0, rng=rng)
    est = tracker.estimate(clock.now())
    assert est.learned_lph == pytest.approx(5.0, rel=0.08)
    assert est.rate_lph == pytest.approx(5.0, rel=0.08)


def test_short_run_blends_with_the_prior() -> None:
    rng = random.Random(3)
    clock = ManualClock()
    tracker = FuelTracker(SETTINGS)
    feed(tracker, clock, 400, 1.0, running=True, rate_lph=10.0, slosh_l=0.5, rng=rng)
    est = tracker.estimate(clock.now())
    assert est.learned_lph is not None
    assert 0.4 < est.learned_weight < 0.55  # ~1 h of a 2 h full weight
    w = est.learned_weight
    assert est.rate_lph == pytest.approx(w * est.learned_lph + (1 - w) * 6.8)


def test_leak_while_stopped_and_no_leak_from_slosh() -> None:
    rng = random.Random(5)
    clock = ManualClock()
    tracker = FuelTracker(SETTINGS)
    feed(tracker, clock, 400, 1.5, running=False, rate_lph=0, slosh_l=2.0, rng=rng)
    drop = tracker.leak_drop_l()
    assert drop is not None and drop < 2.0
    level = 400.0
    for _ in range(120):  # 8 l/h leak for an hour
        tracker.update(clock.now(), level + rng.uniform(-2, 2), False)
        clock.advance(30)
        level -= 8 * 30 / 3600
    drop = tracker.leak_drop_l()
    assert drop is not None and drop > SETTINGS.leak_l
    tracker.update(clock.now(), level, True)
    assert tracker.leak_drop_l() is None  # running: burning is not leaking


def test_theil_sen_ignores_outliers() -> None:
    pts = [(float(x), 100 - 2.0 * x) for x in range(20)]
    pts[5] = (5.0, 300.0)
    pts[12] = (12.0, -50.0)
    assert theil_sen_slope(pts) == pytest.approx(-2.0)
    assert theil_sen_slope([(1.0, 1.0)]) is None


def test_fuel_age_from_settings_and_from_a_detected_refuel() -> None:
    from datetime import date

    clock = ManualClock()
    s = SETTINGS.model_copy(update={"last_refuel_date": date(2025, 1, 1)})
    tracker = FuelTracker(s)
    age = tracker.fuel_age_months(clock.now())
    assert age == pytest.approx(12.0, abs=0.1)  # ManualClock starts 2026-01-01
    for level in (100.0, 100.0, 160.0, 100.0):  # one spike is not a refuel
        tracker.update(clock.now(), level, False)
        clock.advance(60)
    assert tracker.last_refuel_at is None
    for _ in range(3):
        tracker.update(clock.now(), 400.0, False)
        clock.advance(60)
    assert tracker.fuel_age_months(clock.now()) == pytest.approx(0.0, abs=0.01)


def test_chart_interpolates_and_settings_refuse_nonsense() -> None:
    assert SETTINGS.chart_lph(62.5) == pytest.approx((6.8 + 9.1) / 2)
    assert SETTINGS.chart_lph(10) == 4.9
    with pytest.raises(ValueError, match="consumption_chart_lph"):
        FuelSettings(consumption_chart_lph={50: -1.0})
    with pytest.raises(ValueError, match="unusable_l"):
        FuelSettings(tank_capacity_l=100, unusable_l=200)


def test_unknown_time_while_running_counts_for_nothing() -> None:
    """3 h without samples (edge down, poller stalled) while 3.4 l/h burns: the 10.2 l lost
    then is neither a drop in no running time (the fit across the gap read 5.4 l/h) nor 3 h
    of a flat level: the fit compares samples within the stretches on either side only."""
    rng = random.Random(11)
    clock = ManualClock()
    tracker = FuelTracker(SETTINGS)
    level = feed(tracker, clock, 400, 3.0, running=True, rate_lph=3.4, slosh_l=1.0, rng=rng)
    clock.advance(3 * 3600)
    level -= 3 * 3.4
    feed(tracker, clock, level, 3.0, running=True, rate_lph=3.4, slosh_l=1.0, rng=rng)
    est = tracker.estimate(clock.now())
    assert est.learned_lph == pytest.approx(3.4, rel=0.05)
    assert tracker.learned_lph()[1] == pytest.approx(6.0, abs=0.05)  # the gap is not hours
