"""Run the scenario `generator-monthly-test` (edge_server/scenarios/library.py): a real virtual
power node (the firmware on MicroPython, virtual clock), the real poller, storage, the
generator-test component and the rules' readiness, on injected time.

Each step, as in edge_server.scenarios.runner: advance the node's clock and the edge's
ManualClock by the same dt, one poll cycle; then the runner's tick. The test is started by
"technician" at the start of the phase named in `scenario.extra["gentest_start_phase"]`.
Variants: `world={"gen_will_start": False}` (set before the test) and `cut_mains_after_s`
(mains cut that long after the start command).

A scenario with `extra["genset"]` runs the virtual DSE controller beside the node
(edge_server/scenarios/genset.py), configured as the site's `[[generators]]`: the runner
commands the controller over Modbus TCP (GenComm's control key: test on load at the start, AUTO
at the end; `commanded_via` "controller"), the controller measures the load, voltage and
frequency, and a shutdown of the controller stops the set the node's run-sense watches (its
world's gen_shutdown). The node's world models its own copy of the set, so after every step the
scenario drives the node's relay to follow the controller's test mode (GensetRehearsal.
node_relay: the physics of one set seen by two witnesses, written as `world_relay` in the
result, never as the test's commands). `extra["gentest_outcome"]` is the outcome the scenario
expects; the result's `checks` hold it and the safety rules: no stop command while mains is
absent, and the set runs in every step mains is absent once it has run. `commands` lists what
the runner commanded (`via` "relay" or "controller"), `controller.commands` what the virtual
controller carried out.

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
from edge_server.gentest.runner import CommandPort, ControllerPort
from edge_server.poller import CommandFailed, CommandRejected
from edge_server.rules.component import RulesEngine
from edge_server.scenarios.genset import GensetRehearsal
from edge_server.scenarios.library import Scenario
from edge_server.scenarios.runner import START, MissedPolls, site_toml
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


class _Relay:
    """The runner's command port: the poller's coil write, mirrored onto the controller's
    remote start input, each command noted with whether mains was present."""

    def __init__(self, port: CommandPort, gens: GensetRehearsal | None,
                 mains: Callable[[], bool], clock: ManualClock) -> None:
        self.port, self.gens, self.mains, self.clock = port, gens, mains, clock
        self.log: list[dict[str, Any]] = []

    async def write_coil(self, node: str, coil_name: str, value: bool, who: str) -> None:
        self.log.append({"at": self.clock.now().isoformat(), "via": "relay",
                         "command": "start" if value else "stop", "value": value, "who": who,
                         "mains_present": self.mains()})
        await self.port.write_coil(node, coil_name, value, who)
        if self.gens is not None:
            self.gens.test_relay(value)


class _Controller:
    """The runner's controller port, each command noted (in the relay's log: one list of the
    test's commands in order) with whether mains was present."""

    def __init__(self, port: ControllerPort, log: list[dict[str, Any]],
                 mains: Callable[[], bool], clock: ManualClock) -> None:
        self.port, self.log, self.mains, self.clock = port, log, mains, clock
        self.name, self.start_command = port.name, port.start_command
        self.channels = port.channels

    def check(self, command: str) -> None:
        self.port.check(command)

    async def command(self, command: str, who: str, context: dict[str, Any]) -> None:
        self.log.append({"at": self.clock.now().isoformat(), "via": "controller",
                         "command": command, "who": who, "mains_present": self.mains(),
                         **context})
        await self.port.command(command, who, context)

    def running(self) -> bool | None:
        return self.port.running()

    def shutdown_alarm(self) -> bool | None:
        return self.port.shutdown_alarm()

    def reading(self, channel: str) -> Any:
        return self.port.reading(channel)


class _NodeRelay:
    """Keeps the power node's simulated set in step with the controller's (scenario physics,
    not a command of the test): its relay follows GensetRehearsal.node_relay(), written again
    after every step until the node reads it back; dropped only with mains present (before
    that the set carries the site, and the node would refuse it)."""

    def __init__(self, service: Service, gens: GensetRehearsal, clock: ManualClock) -> None:
        self.service, self.gens, self.clock = service, gens, clock
        self.log: list[dict[str, Any]] = []

    async def follow(self) -> None:
        want = self.gens.node_relay()
        r = self.service.state.get("power.relay_on")
        if r is not None and r.ok and bool(r.value) == want:
            return
        mains = self.service.state.get("power.mains_present")
        if not want and (mains is None or not mains.ok or mains.value is not True):
            return  # the node keeps its set running without mains anyway (and refuses the drop)
        try:
            await self.service.poller.write_coil("power", "gen_test_run", want,
                                                 "scenario-world")
            done = True
        except (CommandRejected, CommandFailed):
            done = False  # the edge's interlock (the set carries the site): again next step
        if not self.log or (self.log[-1]["value"], self.log[-1]["done"]) != (want, done):
            self.log.append({"at": self.clock.now().isoformat(), "value": want, "done": done})


def _checks(expected: object, outcome: str, relay: _Relay, absent: int, unattended: int
            ) -> list[dict[str, Any]]:
    stops = [c for c in relay.log if c["command"] == "stop"]
    checks = [{"check": "no_stop_while_mains_absent",
               "passed": not [c for c in stops if not c["mains_present"]],
               "measured": sum(1 for c in stops if not c["mains_present"]),
               "limit": "0 stop commands while mains is absent"},
              {"check": "set_runs_while_mains_absent", "passed": unattended == 0,
               "measured": {"steps_mains_absent": absent, "set_not_running": unattended},
               "limit": "0 steps without the set running while mains is absent"}]
    if expected is not None:
        checks.insert(0, {"check": "outcome", "passed": outcome == expected,
                          "measured": outcome, "limit": str(expected)})
    return checks


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
    gens = GensetRehearsal.of(scenario.extra)
    service: Service | None = None
    conn = None
    try:
        clock = ManualClock(START)
        toml = site_toml(scenario, nodes, workdir / "edge-data")
        if gens is not None:
            await gens.start()
            toml += gens.toml()
        config = parse_config(toml)
        short = False
        if duration_min is None and "gentest_duration_min" in scenario.extra:
            duration_min = float(str(scenario.extra["gentest_duration_min"]))
        if duration_min is not None:
            # a run shorter than the site minimum is started as a marked short exercise (as the
            # API needs it marked): recorded so, never PASSED
            config.gentest.duration_min = duration_min
            short = duration_min < config.gentest.min_duration_min
        window = scenario.extra.get("gentest_auto")
        if isinstance(window, tuple):
            # the scheduled test on, every day in this window (site's zone): an outage credit
            # before it must keep it from starting (gentest/auto.py)
            config.gentest.auto_start = True
            config.gentest.auto_days = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
            config.gentest.auto_from, config.gentest.auto_until = window
        parts = Part.STORAGE | Part.GENTEST | (Part.NONE if gens is None else Part.GENSET)
        service = Service(config, clock, parts=parts)
        await service.start(run_poller=False)
        gentest = service.gentest
        assert gentest is not None
        mains = [True]
        runner = gentest.require()
        relay = _Relay(runner.commands, gens, lambda: mains[0], clock)
        runner.commands = relay
        follow: _NodeRelay | None = None
        if runner.controller is not None and gens is not None:
            runner.controller = _Controller(runner.controller, relay.log, lambda: mains[0],
                                            clock)
            follow = _NodeRelay(service, gens, clock)
        absent = unattended = 0  # steps with mains absent; of those, the set not running
        ran = shut = False
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

        missed = MissedPolls(service.poller)
        await service.poller.poll_once()
        missed.note(clock.now())
        for index, phase in enumerate(scenario.phases):
            say(f"{clock.now().isoformat()}  {phase.label}")
            for action in phase.actions:
                if action.key == "mains_present":
                    mains[0] = bool(action.value)
                if gens is None or not gens.apply(action):
                    nodes.set(action.node, action.key, action.value)
            if index == start_phase:
                for key, value in (world or {}).items():
                    nodes.set("power", key, value)
                record = await gentest.require().start(WHO, notes=f"scenario {scenario.name}",
                                                       short_exercise=short)
                if follow is not None:
                    await follow.follow()
            for _ in range(math.ceil(phase.duration_s / phase.step_s - 1e-9)):
                if (record is not None and cut_mains_after_s is not None and mains_cut_at is None
                        and (clock.now() - record.started_at).total_seconds()
                        >= cut_mains_after_s):
                    nodes.set("power", "mains_present", False)
                    mains[0] = False
                    if gens is not None:
                        gens.engine.mains_present = False
                    mains_cut_at = clock.now().isoformat()
                    say(f"{mains_cut_at}  mains cut during the test")
                nodes.advance(int(phase.step_s * 1000), phase.tick_ms)
                if gens is not None:
                    gens.advance(phase.step_s)
                    if gens.shut_down() and not shut:
                        nodes.set("power", "gen_shutdown", True)
                        shut = True
                    ran = ran or gens.engine.running
                    absent += int(not mains[0])
                    unattended += int(ran and not mains[0] and not gens.engine.running)
                clock.advance(phase.step_s)
                await service.poller.poll_once()
                missed.note(clock.now())
                await gentest.idle()
                if follow is not None:
                    await follow.follow()
                note()
        if record is None:  # no test was started: the outage's credit is the record
            record = next(iter(gentest.require().store.list(1)), None)
        if record is None or record.reasons == ["seeded by the scenario"]:
            raise RuntimeError(f"scenario {scenario.name}: no generator test was recorded")
        final = gentest.require().store.get(record.id)
        gen = service.state.get("power.gen_running")
        assert service.storage is not None
        storage = service.storage.require()
        events = [{"at": e["at"], "code": e["code"], "who": e["data"].get("who")}
                  for e in storage.events(START, clock.now() + timedelta(seconds=1))
                  if str(e["code"]).startswith("GENTEST")]
        expected = scenario.extra.get("gentest_outcome")
        checks = _checks(expected, final.outcome.value, relay, absent, unattended)
        if scenario.extra.get("gentest_auto"):
            checks.append({"check": "no_scheduled_start_after_the_credit",
                           "passed": relay.log == [] and final.kind == "outage_credit",
                           "measured": {"commands": len(relay.log), "kind": final.kind},
                           "limit": "0 commands; the record is the outage credit"})
        model = None if gens is None else gens.engine
        return {
            "scenario": scenario.name,
            "expected_outcome": expected,
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
            "commanded_via": final.commanded_via,
            "commands": relay.log,
            "world_relay": [] if follow is None else follow.log,
            "controller": None if model is None or gens is None else {
                "state_at_end": model.state, "mode_at_end": model.mode,
                "alarms": dict(model.alarms), "starts": model.starts,
                "commands": list(gens.ctrl.commands)},
            "checks": checks,
            "missed_polls": missed.runs,
            "passed": all(c["passed"] for c in checks),
            "wall_s": round(time.monotonic() - wall_start, 2),
        }
    finally:
        if service is not None:
            await service.stop()
        if conn is not None:
            conn.close()
        if gens is not None:
            await gens.stop()
        nodes.stop()
