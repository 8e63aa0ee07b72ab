"""Radio: frames per hour the EU868 1 % duty cycle allows at SF7/SF9/SF12, the queue, and the
time from a critical alert to the end of its radio packet over 72 h down (RadioFallback on a
ManualClock, 5 s ticks, a status every 5 min, 24 critical alerts at random times, seed 1).

Figures, not tests: airtime from Semtech's formula for the packets the edge really sends (a
24-byte status and a 35-byte alert with a 7-letter subject, site id "nsp-a", SLIP framing),
125 kHz, 4/5, preamble 8; frames counted by sending back to back through DutyCycleBudget for
one hour. Also the time one RadioQueue decision takes with 100 items waiting.
"""

from __future__ import annotations

import random
import statistics
import time
from datetime import UTC, datetime
from typing import Any

from edge_server.clock import ManualClock
from edge_server.radio.airtime import LoRaParams, airtime_s
from edge_server.radio.budget import DutyCycleBudget
from edge_server.radio.fallback import RadioFallback
from edge_server.radio.queue import Pending, Priority, RadioQueue
from edge_server.radio.settings import RadioSettings
from edge_server.radio.transport import frame_airtime_s, on_air_bytes


class _Air:
    def __init__(self, params: LoRaParams) -> None:
        self.params = params

    def send(self, site_id: str, frame: bytes) -> float:
        return frame_airtime_s(self.params, site_id, frame)

    def receive(self, timeout_s: float) -> tuple[str, bytes] | None:
        return None

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass


def alert_latency(sf: int) -> tuple[float, float, int]:
    """(median s, max s, frames sent) from an alert being raised to its packet's end."""
    clock = ManualClock(datetime(2026, 3, 1, tzinfo=UTC))
    settings = RadioSettings(sf=sf, fallback_after_min=0, status_every_min=5)
    alerts: list[dict[str, Any]] = []
    readiness = ["DEGRADED"]

    def status(now: datetime) -> dict[str, Any]:
        return {"readiness": readiness[0], "reasons": [], "open_alerts": len(alerts)}

    fb = RadioFallback("nsp-a", b"k" * 32, settings, clock, _Air(settings.params()),
                       lambda: False, status, lambda: list(alerts))
    rng = random.Random(1)
    due = sorted(rng.uniform(0, 72 * 3600) for _ in range(24))
    raised_at: dict[str, float] = {}
    latencies: list[float] = []
    t = 0.0
    while t < 72 * 3600:
        while due and due[0] <= t:
            due.pop(0)
            aid = str(len(raised_at) + 1)
            raised_at[aid] = t
            alerts.append({"alert_id": aid, "code": "FRIDGE_HIGH", "severity": "critical",
                           "state": "raised", "raised_at": clock.now().isoformat(),
                           "value": 9.0, "subject": "fridge1"})
            readiness[0] = "NOT_READY" if readiness[0] == "DEGRADED" else "DEGRADED"
        sent = fb.tick(clock.now())
        if sent is not None and sent.kind == "alert":
            latencies.append(t + sent.airtime_s - raised_at[str(sent.payload["alert_id"])])
        clock.advance(5.0)
        t += 5.0
    return statistics.median(latencies), max(latencies), len(fb.sent)


def _per_hour(airtime: float) -> int:
    budget = DutyCycleBudget()
    t, n = 0.0, 0
    while True:
        t = budget.next_allowed(t, airtime)
        if t >= 3600:
            return n
        budget.record(t, airtime)
        n += 1
        t += airtime


def main() -> list[tuple[str, str]]:
    rows: list[tuple[str, str]] = []
    status_b = on_air_bytes("nsp-a", bytes(24))
    alert_b = on_air_bytes("nsp-a", bytes(35))
    for sf in (7, 9, 12):
        p = LoRaParams(sf=sf)
        st, al = airtime_s(p, status_b), airtime_s(p, alert_b)
        rows.append((f"SF{sf} status airtime ({status_b} B on air)", f"{st * 1000:.1f} ms"))
        rows.append((f"SF{sf} status frames per hour (36 s)", f"{_per_hour(st)}"))
        rows.append((f"SF{sf} alert frames per hour ({alert_b} B on air)", f"{_per_hour(al)}"))
    q = RadioQueue()
    for i in range(100):
        q.push(Priority.CRITICAL_ALERT if i % 3 else Priority.PERIODIC_STATUS,
               "alert" if i % 3 else "status", {"i": i}, float(i))
    budget = DutyCycleBudget()
    p12 = LoRaParams(sf=12)

    def air(item: Pending) -> float:
        return airtime_s(p12, alert_b)

    n = 2000
    t0 = time.perf_counter()
    for _ in range(n):
        q.next_due(0.0, budget, air)
    rows.append(("queue decision, 100 waiting", f"{(time.perf_counter() - t0) / n * 1e6:.1f} µs"))
    for sf in (9, 12):
        med, worst, frames = alert_latency(sf)
        rows.append((f"SF{sf} alert raised -> packet end, 72 h down (median / max)",
                     f"{med:.1f} s / {worst:.1f} s ({frames} frames in 72 h)"))
    return rows
