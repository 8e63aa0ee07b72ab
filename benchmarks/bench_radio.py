"""Radio: frames per hour the EU868 1 % duty cycle allows at SF7/SF9/SF12, and the queue.

Figures, not tests: airtime from Semtech's formula for the packets the edge really sends (a
24-byte status and a 35-byte alert with a 7-letter subject, site id "nsp-a", SLIP framing),
125 kHz, 4/5, preamble 8; frames counted by sending back to back through DutyCycleBudget for
one hour. Also the time one RadioQueue decision takes with 100 items waiting.
"""

from __future__ import annotations

import time

from edge_server.radio.airtime import LoRaParams, airtime_s
from edge_server.radio.budget import DutyCycleBudget
from edge_server.radio.queue import Pending, Priority, RadioQueue
from edge_server.radio.transport import on_air_bytes


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
    return rows
