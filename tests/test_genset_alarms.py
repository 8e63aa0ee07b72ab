"""The controller's alarm pages as our alerts: the virtual DSE controller over real TCP, polled
by GensetMonitor on a ManualClock, the RuleSet judging: one alert per open alarm (shutdown and
electrical trip critical, warning a warning), its words in NL and EN, cleared in the cycle the
controller no longer reports it; a controller off the bus neither raises nor clears."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge_server.clock import ManualClock
from edge_server.config import parse_config
from edge_server.genset.alarms import alarm_words
from edge_server.genset.engine import EngineModel
from edge_server.genset.monitor import GensetMonitor
from edge_server.genset.profile import load_profile
from edge_server.genset.sim import VirtualController
from edge_server.poller import Poller
from edge_server.rules.engine import Severity, Transition
from edge_server.rules.readiness import GenTest, ReadinessInputs, ReadinessState, assess
from edge_server.rules.ruleset import RuleSet
from edge_server.rules.settings import FuelSettings, RulesSettings
from edge_server.state import SiteState
from tests.test_genset_service import site

T0 = datetime(2026, 5, 4, 10, tzinfo=UTC)
CODES = {"GENSET_SHUTDOWN", "GENSET_ELECTRICAL_TRIP", "GENSET_WARNING"}


@dataclass
class Bench:
    ctrl: VirtualController
    poller: Poller
    clock: ManualClock
    state: SiteState
    rules: RuleSet
    seen: list[Transition] = field(default_factory=list)

    async def cycle(self, n: int = 1, step_s: float = 2.0) -> None:
        for _ in range(n):
            self.ctrl.step(step_s)
            await self.poller.poll_once()
            now = self.clock.now()
            self.seen += [t for t in self.rules.evaluate(self.state, now) if t.code in CODES]
            self.clock.advance(step_s)

    def open(self) -> set[tuple[str, str]]:
        ev = self.rules.evaluator
        return {key for key, track in ev.tracks.items() if track.active and key[0] in CODES}


@pytest.fixture
async def bench(tmp_path: Path) -> AsyncIterator[Bench]:
    ctrl = VirtualController(load_profile("dse-gencomm"), EngineModel(mode="test"), unit=10)
    await ctrl.start_tcp("127.0.0.1", 0)
    config = parse_config(site(ctrl.port, tmp_path))
    clock = ManualClock(T0)
    state = SiteState("nsp-test")
    poller = Poller(config, state, clock)
    GensetMonitor(config.generators, poller, state, clock)
    try:
        yield Bench(ctrl, poller, clock, state,
                    RuleSet(RulesSettings(), FuelSettings(tank_capacity_l=1000)))
    finally:
        await ctrl.stop()


@pytest.mark.parametrize(("fault", "alarm"), [
    ("low_oil_pressure", "low_oil_pressure"), ("high_coolant_temp", "high_coolant_temp"),
    ("over_speed", "over_speed"), ("crank", "fail_to_start"),
])
async def test_each_shutdown_alarm_is_one_critical_alert_until_reset(
        bench: Bench, fault: str, alarm: str) -> None:
    await bench.cycle(3)
    assert bench.open() == set() and bench.seen == []
    if fault == "crank":
        bench.ctrl.engine.crank_fails = True
        bench.ctrl.engine.mode, bench.ctrl.engine.state = "test", "off"
    else:
        bench.ctrl.engine.fault = fault
        if fault == "high_coolant_temp":
            bench.ctrl.engine.coolant_c = 104.0  # hot already: the model's 8 min constant
    for _ in range(150):  # at most 5 min of engine time, 2 s a cycle
        await bench.cycle()
        if bench.seen:
            break
    subject = f"gen.alarm_{alarm}"
    assert [(t.kind, t.code, t.subject) for t in bench.seen] == [
        ("raise", "GENSET_SHUTDOWN", subject)]
    raised = bench.seen[0]
    assert raised.severity is Severity.CRITICAL
    en, nl = alarm_words(alarm)
    assert en in raised.text_en and nl in raised.text_nl and "gen" in raised.text_en
    await bench.cycle(5)  # stays one alert while the alarm stays open
    assert len(bench.seen) == 1 and bench.open() == {("GENSET_SHUTDOWN", subject)}
    bench.ctrl.engine.fault, bench.ctrl.engine.crank_fails = None, False
    bench.ctrl.engine.coolant_c = 40.0
    bench.ctrl.engine.reset_alarms()  # reset on the controller's panel
    await bench.cycle()
    assert [t.kind for t in bench.seen] == ["raise", "clear"] and bench.open() == set()


async def test_warning_and_electrical_trip_have_their_own_severity_and_alerts(
        bench: Bench) -> None:
    await bench.cycle(2)
    bench.ctrl.engine.alarms["battery_low_voltage"] = "warning"
    bench.ctrl.engine.alarms["gen_high_voltage"] = "electrical_trip"
    await bench.cycle()
    got = {(t.kind, t.code, t.subject, t.severity) for t in bench.seen}
    assert got == {
        ("raise", "GENSET_WARNING", "gen.alarm_battery_low_voltage", Severity.WARNING),
        ("raise", "GENSET_ELECTRICAL_TRIP", "gen.alarm_gen_high_voltage", Severity.CRITICAL)}
    warning = next(t for t in bench.seen if t.code == "GENSET_WARNING")
    assert "Battery low voltage" in warning.text_en and "Accuspanning laag" in warning.text_nl
    # the warning becomes a shutdown: the warning clears, the shutdown is raised
    bench.seen.clear()
    bench.ctrl.engine.alarms["battery_low_voltage"] = "shutdown"
    await bench.cycle()
    assert {(t.kind, t.code) for t in bench.seen} == {("clear", "GENSET_WARNING"),
                                                      ("raise", "GENSET_SHUTDOWN")}
    # off the bus: unknown, nothing raised or cleared
    bench.seen.clear()
    bench.ctrl.fail_reads = True
    bench.ctrl.engine.alarms.clear()
    await bench.cycle(5)
    assert bench.seen == [] and len(bench.open()) == 2
    bench.ctrl.fail_reads = False
    await bench.cycle()
    assert {(t.kind, t.code) for t in bench.seen} == {("clear", "GENSET_ELECTRICAL_TRIP"),
                                                      ("clear", "GENSET_SHUTDOWN")}
    assert bench.open() == set()


def test_words_of_a_site_profile_and_of_an_unknown_alarm() -> None:
    assert alarm_words("low_oil_pressure") == ("Low oil pressure", "Lage oliedruk")
    assert alarm_words("coolant_level_low") == ("coolant level low", "coolant level low")


@pytest.mark.parametrize(("code", "state"), [
    ("GENSET_SHUTDOWN", ReadinessState.NOT_READY),
    ("GENSET_ELECTRICAL_TRIP", ReadinessState.NOT_READY),
    ("GENSET_WARNING", ReadinessState.DEGRADED),
])
def test_an_open_controller_alarm_sets_readiness(code: str, state: ReadinessState) -> None:
    got = assess(ReadinessInputs(now=T0, power_data_known=True, open_alert_codes={code},
                                 last_gentest=GenTest(at=T0, passed=True), autonomy_h=200.0,
                                 uplink_up=True),
                 RulesSettings(), FuelSettings(tank_capacity_l=1000))
    assert got.state is state and code in [r.code for r in got.reasons]
