"""LoRa airtime (Semtech's formula), the EU868 1 % duty cycle and the radio's priority queue.

Reference figures, computed by others with the AN1200.13 formula:
- Semtech AN1200.13-based calculator sheet (Avbentem, "LoRaAirtimeCalculator"): SF9, 125 kHz,
  4/5, preamble 8, explicit header, CRC on, 13 bytes -> 28 payload symbols, 164.864 ms.
- The Things Network airtime calculator (LoRaWAN: 13 bytes of header + application payload):
  SF7 / SF12 at 125 kHz, 4/5: 13 bytes -> 46.3 ms / 1155.1 ms; 64 bytes (51 + 13) -> 118.0 ms /
  2793.5 ms (SF12 with low data rate optimisation).
- d-central.tech LoRa airtime calculator (Meshtastic LongFast): SF11, 250 kHz, 4/5, preamble 16,
  16 bytes -> 23 payload symbols, 354.304 ms.
"""

from __future__ import annotations

import math
from typing import Any

import pytest

from edge_server.radio.airtime import LoRaParams, airtime_s, payload_symbols
from edge_server.radio.budget import DutyCycleBudget, max_in_any_window
from edge_server.radio.queue import Pending, Priority, RadioQueue

SF7 = LoRaParams(sf=7)
SF9 = LoRaParams(sf=9)
SF12 = LoRaParams(sf=12)


@pytest.mark.parametrize(
    ("params", "payload", "ms", "symbols"),
    [
        (SF9, 13, 164.864, 28),
        (SF7, 13, 46.336, 33),
        (SF12, 13, 1155.072, 23),
        (SF7, 64, 118.016, 103),
        (SF12, 64, 2793.472, 73),
        (LoRaParams(sf=11, bw_hz=250_000, preamble=16), 16, 354.304, 23),
    ],
)
def test_airtime_matches_published_calculators(
    params: LoRaParams, payload: int, ms: float, symbols: int
) -> None:
    assert payload_symbols(params, payload) == symbols
    assert airtime_s(params, payload) * 1000 == pytest.approx(ms, abs=0.001)


def test_low_data_rate_optimisation_follows_the_16_ms_rule() -> None:
    assert not LoRaParams(sf=10).ldro  # 8.192 ms symbols
    assert LoRaParams(sf=11).ldro  # 16.384 ms
    assert not LoRaParams(sf=11, bw_hz=250_000).ldro
    forced_off = LoRaParams(sf=12, low_data_rate_optimize=False)
    assert airtime_s(forced_off, 64) < airtime_s(SF12, 64)  # 13 bytes: the same either way


@pytest.mark.parametrize(
    ("bad", "named"),
    [
        (dict(sf=4), "spreading factor"),
        (dict(sf=13), "spreading factor"),
        (dict(bw_hz=100_000), "bandwidth"),
        (dict(cr=0), "coding rate"),
        (dict(cr=5), "coding rate"),
        (dict(preamble=2), "preamble"),
    ],
)
def test_impossible_modem_settings_are_refused_by_name(bad: dict[str, Any], named: str) -> None:
    with pytest.raises(ValueError, match=named):
        LoRaParams(**bad)


def test_eu868_budget_is_36_seconds_an_hour() -> None:
    assert DutyCycleBudget().limit_s == pytest.approx(36.0)


@pytest.mark.parametrize(("payload", "ms"), [(13, 1155.072), (24, 1482.752), (64, 2793.472)])
def test_duty_cycle_limiter_at_sf12_for_three_payload_sizes(payload: int, ms: float) -> None:
    """Send as fast as the budget allows for three hours: never more than 36 s in any hour, and
    the number of frames in the first hour is floor(36 s / airtime)."""
    airtime = airtime_s(SF12, payload)
    assert airtime * 1000 == pytest.approx(ms, abs=0.001)
    budget = DutyCycleBudget()
    log: list[tuple[float, float]] = []
    t = 0.0
    while t < 3 * 3600:
        t = budget.next_allowed(t, airtime)
        budget.record(t, airtime)
        log.append((t, airtime))
        t += airtime  # one radio: the next packet starts after this one ends
    first_hour = [s for s, _a in log if s < 3600]
    assert len(first_hour) == math.floor(36.0 / airtime)
    assert max_in_any_window(log) <= 36.0 + 1e-9
    # The budget is used, not wasted: the busiest hour is within one packet of the limit.
    assert max_in_any_window(log) > 36.0 - airtime


def test_budget_refuses_to_record_past_the_limit_and_says_how_much_was_used() -> None:
    budget = DutyCycleBudget()
    budget.record(0.0, 35.5)
    assert budget.remaining_s(10.0) == pytest.approx(0.5)
    assert not budget.allows(10.0, 1.0)
    with pytest.raises(ValueError, match="35.500 s of 36.0 s"):
        budget.record(10.0, 1.0)
    # The 35.5 s packet leaves the sliding window when its end is an hour old.
    assert budget.next_allowed(10.0, 1.0) == pytest.approx(3635.5)
    assert budget.allows(3635.5, 1.0)
    with pytest.raises(ValueError, match="never fits"):
        budget.next_allowed(0.0, 40.0)


def test_max_in_any_window_finds_a_window_that_straddles_the_hour() -> None:
    log = [(3000.0, 20.0), (3700.0, 20.0)]  # 40 s within 700 s, across the clock hour
    assert max_in_any_window(log) == pytest.approx(40.0)
    assert max_in_any_window([(0.0, 20.0), (3600.0, 20.0)]) == pytest.approx(20.0)


def _air(p: Pending) -> float:
    return airtime_s(SF12, 28 if p.kind == "alert" else 24)


def test_queue_sends_critical_alerts_then_readiness_then_periodic() -> None:
    q = RadioQueue()
    budget = DutyCycleBudget()
    q.push(Priority.PERIODIC_STATUS, "status", {"n": 1}, 0.0)
    q.push(Priority.CRITICAL_ALERT, "alert", {"id": "a"}, 1.0)
    q.push(Priority.CRITICAL_ALERT, "alert", {"id": "b"}, 2.0)
    sent = []
    t = 10.0
    while len(q):
        item, _when = q.next_due(t, budget, _air)
        assert item is not None
        q.remove(item)
        budget.record(t, _air(item))
        sent.append(item.payload)
        t += 5
    assert sent == [{"id": "a"}, {"id": "b"}, {"n": 1}]


def test_a_newer_status_replaces_a_waiting_one_and_keeps_its_priority() -> None:
    q = RadioQueue()
    q.push(Priority.READINESS_CHANGE, "status", {"readiness": "DEGRADED"}, 0.0)
    q.push(Priority.PERIODIC_STATUS, "status", {"readiness": "DEGRADED", "n": 2}, 60.0)
    q.push(Priority.CRITICAL_ALERT, "alert", {"id": "a"}, 61.0)
    items = q.items()
    assert [(p.kind, p.priority) for p in items] == [
        ("alert", Priority.CRITICAL_ALERT),
        ("status", Priority.READINESS_CHANGE),
    ]
    assert items[1].payload["n"] == 2


def test_queue_waits_for_budget_in_strict_priority() -> None:
    budget = DutyCycleBudget()
    budget.record(0.0, 35.0)
    q = RadioQueue()
    q.push(Priority.CRITICAL_ALERT, "alert", {"id": "a"}, 1.0)
    item, when = q.next_due(1.0, budget, _air)
    assert item is None and when == pytest.approx(3635.0)
    assert q.next_due(when or 0.0, budget, _air)[0] is not None
    assert RadioQueue().next_due(0.0, budget, _air) == (None, None)
