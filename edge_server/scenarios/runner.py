"""Run one scenario: real virtual nodes + the real poller + the rules, on injected time.

Each step: advance the nodes' virtual clocks by dt (world physics and the firmware's role
ticks), advance the edge's ManualClock by dt, one poll cycle (`Poller.poll_once`, which notifies
the rules engine), record readiness changes. The result holds the alerts raised and cleared,
the events, and the readiness timeline, plus which expected codes were missing and which
codes were not expected.

In scenarios the link to the C-NSP counts as up and a passed generator test 10 days before the
start is on record, so the site starts READY and every change of readiness comes from the
scenario itself.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from edge_server.clock import ManualClock
from edge_server.config import parse_config
from edge_server.rules.component import RulesEngine
from edge_server.scenarios.library import Action, Scenario
from edge_server.scenarios.world import VirtualNodeWorld, WorldDriver
from edge_server.service import Part, Service
from edge_server.storage.db import open_db

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

# The simulated world's site: 1570.8 L horizontal tank, a 20 kW set burning 3.4 l/h (50 % load).
# The site expects 75 % load, so the chart prior (4.9 l/h) differs from the truth and a
# scenario shows the learned rate taking over.
FUEL_TOML = """
[fuel]
tank_capacity_l = 1570
unusable_l = 20
expected_load_pct = 75
consumption_chart_lph = { "25" = 2.5, "50" = 3.4, "75" = 4.9, "100" = 6.1 }
"""


def site_toml(scenario: Scenario, world: WorldDriver, data_dir: Path) -> str:
    lines = [
        f'[site]\nid = "scenario-{scenario.name}"\nname = "Scenario {scenario.name}"\n',
        f'[storage]\ndata_dir = "{data_dir}"\n',
        # Short timeouts: an unplugged node must not slow every step down.
        "[poll]\ninterval_s = 60\ntimeout_s = 0.2\nretries = 0\nbackoff_max_s = 30\n",
        FUEL_TOML,
    ]
    for spec in scenario.nodes:
        host, port = world.endpoint(spec.name)
        lines.append(f'[[buses]]\nname = "{spec.name}-tcp"\nkind = "tcp"\nhost = "{host}"\n'
                     f"port = {port}\n")
    for spec in scenario.nodes:
        roles = ", ".join(f'"{r}"' for r in spec.roles)
        lines.append(f'[[nodes]]\nname = "{spec.name}"\nbus = "{spec.name}-tcp"\n'
                     f"unit = {spec.unit}\nroles = [{roles}]\n")
    return "\n".join(lines)


def _apply(world: WorldDriver, action: Action) -> None:
    if action.op == "offline":
        world.offline(action.node, bool(action.value))
    else:
        world.set(action.node, action.key, action.value)


def _seed_gentest(conn: Any, at: datetime) -> None:
    with conn:
        conn.execute("CREATE TABLE IF NOT EXISTS gentests (started_at TEXT, passed INTEGER)")
        conn.execute("INSERT INTO gentests(started_at, passed) VALUES (?, 1)", (at.isoformat(),))


async def run_scenario(
    scenario: Scenario,
    workdir: Path,
    *,
    world: WorldDriver | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run `scenario` with its files under workdir; the result dict (see module docstring)."""
    wall_start = time.monotonic()
    say = progress or (lambda _text: None)
    world = world or VirtualNodeWorld(scenario.nodes)
    world.start()
    conn = None
    service: Service | None = None
    try:
        clock = ManualClock(START)
        config = parse_config(site_toml(scenario, world, workdir / "edge-data"))
        service = Service(config, clock, parts=Part.NONE)
        await service.start(run_poller=False)
        conn = open_db(workdir / "edge-data" / "site.db")
        _seed_gentest(conn, START - timedelta(days=10))
        engine = RulesEngine(config.rules, config.fuel, conn=conn,
                             capacity=config.site.capacity, uplink_up=lambda: True)
        service.state.subscribe(engine.on_cycle)
        timeline: list[dict[str, Any]] = []
        phases: list[dict[str, Any]] = []

        def note_readiness() -> None:
            r = engine.readiness
            if r is None:
                return
            entry = {"at": r.at.isoformat(), "state": r.state.value,
                     "reasons": [x.code for x in r.reasons]}
            if not timeline or (timeline[-1]["state"], timeline[-1]["reasons"]) != (
                entry["state"], entry["reasons"]
            ):
                timeline.append(entry)

        await service.poller.poll_once()
        for phase in scenario.phases:
            say(f"{clock.now().isoformat()}  {phase.label}")
            phases.append({"at": clock.now().isoformat(), "label": phase.label,
                           "actions": [a.describe() for a in phase.actions]})
            for action in phase.actions:
                _apply(world, action)
            for _ in range(math.ceil(phase.duration_s / phase.step_s - 1e-9)):
                world.advance(int(phase.step_s * 1000), phase.tick_ms)
                clock.advance(phase.step_s)
                await service.poller.poll_once()
                note_readiness()
            estimate = engine.autonomy(clock.now())
            phases[-1]["autonomy_at_end"] = None if estimate is None else estimate.to_json()

        records = engine.store.query(open_only=False, limit=100000)
        records.reverse()  # oldest first
        alerts = [
            {"code": a.code, "subject": a.subject, "severity": a.severity,
             "raised_at": a.raised_at.isoformat(),
             "cleared_at": a.cleared_at.isoformat() if a.cleared_at else None,
             "text_en": a.text_en, "text_nl": a.text_nl}
            for a in records if a.kind == "alert"
        ]
        events = [{"code": a.code, "subject": a.subject, "at": a.raised_at.isoformat(),
                   "text_en": a.text_en, "text_nl": a.text_nl}
                  for a in records if a.kind == "event"]
        raised = {a.code for a in records}
        missing = sorted(scenario.expected - raised)
        unexpected = sorted(raised - scenario.expected - scenario.allowed)
        autonomy = engine.autonomy(clock.now())
        return {
            "scenario": scenario.name,
            "title_en": scenario.title_en,
            "title_nl": scenario.title_nl,
            "started_at": START.isoformat(),
            "ended_at": clock.now().isoformat(),
            "virtual_duration_h": round(scenario.duration_s / 3600, 3),
            "wall_s": round(time.monotonic() - wall_start, 2),
            "phases": phases,
            "alerts": alerts,
            "events": events,
            "readiness": timeline,
            "autonomy": None if autonomy is None else autonomy.to_json(),
            "expected": sorted(scenario.expected),
            "missing": missing,
            "unexpected": unexpected,
            "passed": not missing and not unexpected,
        }
    finally:
        if service is not None:
            await service.stop()
        if conn is not None:
            conn.close()
        world.stop()
