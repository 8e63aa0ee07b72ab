"""Rules: microseconds to evaluate every rule for one poll cycle.

A site of 50 nodes, each with all three roles (the worst case: every condition has a subject
on every node), values moving a little every cycle; cycles 2 s apart on a ManualClock. Measured
for the rule set alone (observations + evaluator) and for the whole engine (plus the alert
store and readiness on a real SQLite file), and for a normal 3-node site.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from edge_server.clock import ManualClock
from edge_server.rules.component import RulesEngine
from edge_server.rules.ruleset import RuleSet
from edge_server.rules.settings import FuelSettings, RulesSettings
from edge_server.state import NodeStatus, Quality, Reading, SiteState
from edge_server.storage.db import open_db

CYCLES = 300
WARMUP = 30


def make_state(n_nodes: int) -> SiteState:
    state = SiteState("bench")
    for i in range(n_nodes):
        state.add_node(NodeStatus(f"n{i}", i + 1, "bus0", ("power", "fridge", "entrance"),
                                  online=True))
    return state


def fill(state: SiteState, clock: ManualClock, k: int) -> None:
    now = clock.now()
    wobble = (k % 7) * 0.01
    for i, node in enumerate(state.nodes.values()):
        node.last_ok = now
        values = {
            "mains_present": True, "gen_running": False, "gen_state": 0, "gen_run_reason": 0,
            "power_faults": 0, "fuel_l": 900.0 - wobble, "starter_battery_v": 12.7,
            "starter_battery_min_v": 10.5, "battery_v": 13.0, "battery_soc_pct": 90.0,
            "fridge_temp_c": 5.0 + wobble + i * 0.01, "fridge_faults": 0, "door_open": False,
            "door_open_s": 0, "occupancy": 3, "uptime_s": 1000 + 2 * k, "boot_count": 4,
        }
        for name, value in values.items():
            state.put(Reading(node.name, name, value, "", now, Quality.GOOD))


def measure_ruleset(n_nodes: int) -> float:
    clock = ManualClock()
    state = make_state(n_nodes)
    rules = RuleSet(RulesSettings(), FuelSettings(tank_capacity_l=1000), capacity=15)
    times: list[float] = []
    for k in range(CYCLES + WARMUP):
        fill(state, clock, k)
        t0 = time.perf_counter()
        rules.evaluate(state, clock.now())
        if k >= WARMUP:
            times.append(time.perf_counter() - t0)
        clock.advance(2)
    return statistics.median(times) * 1e6


def measure_engine(n_nodes: int) -> float:
    clock = ManualClock()
    state = make_state(n_nodes)
    with tempfile.TemporaryDirectory() as tmp:
        conn = open_db(Path(tmp) / "site.db")
        try:
            engine = RulesEngine(RulesSettings(), FuelSettings(tank_capacity_l=1000), conn=conn,
                                 uplink_up=lambda: True)
            times: list[float] = []
            for k in range(CYCLES + WARMUP):
                fill(state, clock, k)
                t0 = time.perf_counter()
                engine.evaluate(state, clock.now())
                if k >= WARMUP:
                    times.append(time.perf_counter() - t0)
                clock.advance(2)
        finally:
            conn.close()
    return statistics.median(times) * 1e6


def main() -> list[tuple[str, str]]:
    n_conditions = len(RuleSet(RulesSettings(), FuelSettings()).evaluator.conditions)
    return [
        ("conditions in the rule set", f"{n_conditions}"),
        ("rule set, 50 nodes x 3 roles, one cycle (median)", f"{measure_ruleset(50):.0f} µs"),
        ("rule set, 3-node site, one cycle (median)", f"{measure_ruleset(3):.0f} µs"),
        ("engine incl. SQLite alerts + readiness, 50 nodes, one cycle (median)",
         f"{measure_engine(50):.0f} µs"),
    ]


if __name__ == "__main__":
    for figure, value in main():
        print(f"{figure}: {value}")
