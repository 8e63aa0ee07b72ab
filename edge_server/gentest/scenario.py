"""Run the scenario `generator-monthly-test` (edge_server/scenarios/library.py): a real virtual
power node (the firmware on MicroPython, virtual clock), the real poller, storage, the
generator-test component and the rules' readiness, on injected time.

Each step, as in edge_server.scenarios.runner: advance the node's clock and the edge's
ManualClock by the same dt, one poll cycle; then the runner's tick. The test is started by
"technician" at the start of the phase named in `scenario.extra["gentest_start_phase"]`.
Variants: `world={"gen_will_start": False}` (set before the test) and `cut_mains_after_s`
(mains cut that long after the start command).

A passed test 31 days before is on record (the next one is due) and the uplink counts as up,
so the site starts READY.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

from edge_server.clock import ManualClock
from edge_server.config import parse_config
from edge_server.gentest.component import GenTestComponent
from edge_server.gentest.record import End, GenTestRecord, Outcome
from edge_server.rules.component import RulesEngine
from edge_server.scenarios.library import Scenario
from edge_server.scenarios.runner import START, site_toml
from edge_server.scenarios.world import VirtualNodeWorld, WorldDriver
from edge_server.service import Part, Service
from edge_server.storage.db import open_db

WHO = "technician"


def _seed_passed_test(component: GenTestComponent, days_before: float) -> None:
    runner = component.require()
    at = START - timedelta(days=days_before)
    runner.store.insert(GenTestRecord(
        runner.site_id, "power", "seed", at, 1800.0, outcome=Outcome.PASSED, end=End.COMPLETED,
        ended_at=at + timedelta(minutes=31), reasons=["seeded by the scenario"]))


async def run_gentest_scenario(
    scenario: Scenario,
    workdir: Path,
    *,
    world: dict[str, object] | None = None,
    cut_mains_after_s: float | None = None,
    duration_min: float | None = None,
    driver: WorldDriver | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    wall_start = time.monotonic()
    say = progress or (lambda _text: None)
    nodes = driver or VirtualNodeWorld(scenario.nodes)
    nodes.start()
    service: Service | None = None
    conn = None
    try:
        clock = ManualClock(START)
        config = parse_config(site_toml(scenario, nodes, workdir / "edge-data"))
        short = False
        if duration_min is not None:
            # a run shorter than the site minimum is started as a marked short exercise (as the
            # API needs it marked): recorded so, never PASSED
            config.gentest.duration_min = duration_min
            short = duration_min < config.gentest.min_duration_min
        service = Service(config, clock, parts=Part.STORAGE | Part.GENTEST)
        await service.start(run_poller=False)
        gentest = service.gentest
        assert gentest is not None
        _seed_passed_test(gentest, 31)
        conn = open_db(workdir / "edge-data" / "site.db")
        engine = RulesEngine(config.rules, config.fuel, conn=conn,
                             capacity=config.site.capacity, uplink_up=lambda: True)
        service.state.subscribe(engine.on_cycle)
        readiness: list[dict[str, Any]] = []
        record: GenTestRecord | None = None
        mains_cut_at: str | None = None
        start_phase = int(str(scenario.extra.get("gentest_start_phase", 1)))

        def note() -> None:
            r = engine.readiness
            if r is None:
                return
            entry = {"at": r.at.isoformat(), "state": r.state.value,
                     "reasons": [x.code for x in r.reasons]}
            if not readiness or (readiness[-1]["state"], readiness[-1]["reasons"]) != (
                    entry["state"], entry["reasons"]):
                readiness.append(entry)

        await service.poller.poll_once()
        for index, phase in enumerate(scenario.phases):
            say(f"{clock.now().isoformat()}  {phase.label}")
            for action in phase.actions:
                nodes.set(action.node, action.key, action.value)
            if index == start_phase:
                for key, value in (world or {}).items():
                    nodes.set("power", key, value)
                record = await gentest.require().start(WHO, notes=f"scenario {scenario.name}",
                                                       short_exercise=short)
            for _ in range(math.ceil(phase.duration_s / phase.step_s - 1e-9)):
                if (record is not None and cut_mains_after_s is not None and mains_cut_at is None
                        and (clock.now() - record.started_at).total_seconds()
                        >= cut_mains_after_s):
                    nodes.set("power", "mains_present", False)
                    mains_cut_at = clock.now().isoformat()
                    say(f"{mains_cut_at}  mains cut during the test")
                nodes.advance(int(phase.step_s * 1000), phase.tick_ms)
                clock.advance(phase.step_s)
                await service.poller.poll_once()
                await gentest.idle()
                note()
        assert record is not None
        final = gentest.require().store.get(record.id)
        gen = service.state.get("power.gen_running")
        assert service.storage is not None
        storage = service.storage.require()
        events = [{"at": e["at"], "code": e["code"], "who": e["data"].get("who")}
                  for e in storage.events(START, clock.now() + timedelta(seconds=1))
                  if str(e["code"]).startswith("GENTEST")]
        return {
            "scenario": scenario.name,
            "world": dict(world or {}),
            "mains_cut_at": mains_cut_at,
            "duration_min": config.gentest.duration_min,
            "outcome": final.outcome.value,
            "started_at": START.isoformat(),
            "ended_at": clock.now().isoformat(),
            "test": final.to_json(),
            "events": events,
            "gen_running_at_end": None if gen is None or not gen.ok else gen.value,
            "readiness": readiness,
            "wall_s": round(time.monotonic() - wall_start, 2),
        }
    finally:
        if service is not None:
            await service.stop()
        if conn is not None:
            conn.close()
        nodes.stop()
