"""The run-sense witness: the power node's gen_running bit and the controller's own running
state disagreeing for longer than `gen_witness_delay_s` raise GENSET_WITNESS_DISAGREES, which
clears when they agree again; an unknown witness neither raises nor clears. The controller's
side comes from the virtual DSE controller over real TCP through GensetMonitor; time is a
ManualClock, the engine moves only when stepped."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge_server.clock import ManualClock
from edge_server.config import parse_config
from edge_server.genset.engine import EngineModel
from edge_server.genset.monitor import GensetMonitor
from edge_server.genset.profile import load_profile
from edge_server.genset.sim import VirtualController
from edge_server.genset.witness import GensetWitnessDisagrees, controller_running
from edge_server.poller import Poller
from edge_server.rules.engine import Transition
from edge_server.rules.ruleset import RuleSet
from edge_server.rules.settings import FuelSettings, RulesSettings
from edge_server.state import NodeStatus, Quality, Reading, SiteState, Value
from tests.test_genset_service import site

CODE = "GENSET_WITNESS_DISAGREES"
T0 = datetime(2026, 5, 4, 10, tzinfo=UTC)
FUEL = FuelSettings(tank_capacity_l=1000)


def put(state: SiteState, channel: str, value: Value, now: datetime) -> None:
    node, name = channel.split(".")
    quality = Quality.UNAVAILABLE if value is None else Quality.GOOD
    state.put(Reading(node, name, value, "", now, quality))


class Bench:
    """A power node and a controller whose two run witnesses the test sets each cycle."""

    def __init__(self, rules: RulesSettings | None = None) -> None:
        self.clock = ManualClock(T0)
        self.state = SiteState("nsp-test")
        self.state.add_node(NodeStatus("power", 1, "nodes", ("power",), online=True))
        self.rules = RuleSet(rules or RulesSettings(), FUEL)
        self.transitions: list[Transition] = []

    def run(self, node: bool | None, ctrl: bool | None, seconds: float, step_s: float = 10) -> None:
        for _ in range(int(seconds // step_s)):
            now = self.clock.now()
            for channel, value in (("power.mains_present", True), ("power.power_faults", 0),
                                   ("power.gen_run_reason", 2), ("power.gen_state", 0),
                                   ("power.gen_running", node), ("gen.controller_running", ctrl)):
                put(self.state, channel, value, now)
            self.transitions += [t for t in self.rules.evaluate(self.state, now)
                                 if t.code == CODE]
            self.clock.advance(step_s)

    def kinds(self) -> list[str]:
        return [t.kind for t in self.transitions]

    def open(self) -> bool:
        return any(tr.active for (code, _), tr in self.rules.evaluator.tracks.items()
                   if code == CODE)


def test_agreeing_witnesses_raise_nothing() -> None:
    bench = Bench()
    bench.run(True, True, 600)
    bench.run(False, False, 600)
    assert bench.transitions == []


@pytest.mark.parametrize(("node", "ctrl"), [(False, True), (True, False)])
def test_disagreement_longer_than_the_delay_raises_and_agreement_clears(node: bool,
                                                                        ctrl: bool) -> None:
    bench = Bench()
    bench.run(False, False, 60)
    bench.run(node, ctrl, 60)  # samples at 0..50 s of the disagreement: not yet 60 s
    assert bench.transitions == []
    bench.run(node, ctrl, 20)
    assert bench.kinds() == ["raise"] and bench.open()
    raised = bench.transitions[0]
    assert raised.subject == "gen.controller_running"
    en, nl = raised.text_en, raised.text_nl
    assert "(gen)" in en and "disagree" in en and "oneens" in nl, (en, nl)
    bench.run(True, True, 10)
    assert bench.kinds() == ["raise", "clear"] and not bench.open()


def test_the_delay_is_a_setting() -> None:
    bench = Bench(RulesSettings(gen_witness_delay_s=300))
    bench.run(True, False, 290)
    assert bench.transitions == []
    bench.run(True, False, 30)
    assert bench.kinds() == ["raise"]


def test_an_unknown_witness_never_raises_nor_clears() -> None:
    bench = Bench()
    bench.run(True, None, 600)  # controller off the bus
    bench.run(None, False, 600)  # node offline
    assert bench.transitions == []
    bench.run(True, False, 120)
    assert bench.kinds() == ["raise"]
    bench.run(True, None, 600)
    assert bench.kinds() == ["raise"] and bench.open()  # unknown does not clear it


def test_a_site_without_a_controller_has_no_witness_subject() -> None:
    bench = Bench()
    cond = GensetWitnessDisagrees(RulesSettings())
    put(bench.state, "power.gen_running", True, T0)
    assert list(cond.samples(bench.state, T0)) == []
    assert cond.history_channels(bench.state) == []
    put(bench.state, "gen.controller_running", False, T0)
    assert cond.history_channels(bench.state) == ["gen.controller_running", "power.gen_running"]


def test_controller_running_from_speed_else_frequency() -> None:
    assert controller_running({"engine_speed_rpm": 1500.0, "gen_frequency_hz": 0.0}) is True
    assert controller_running({"engine_speed_rpm": 200.0}) is False  # cranking
    assert controller_running({"gen_frequency_hz": 50.0}) is True
    assert controller_running({"gen_frequency_hz": 0.0}) is False
    assert controller_running({}) is None  # speed faulted, no frequency: unknown


@pytest.fixture
async def ctrl() -> AsyncIterator[VirtualController]:
    c = VirtualController(load_profile("dse-gencomm"), EngineModel(mode="auto"), unit=10)
    await c.start_tcp("127.0.0.1", 0)
    try:
        yield c
    finally:
        await c.stop()


async def test_the_virtual_controller_over_tcp_is_the_second_witness(
        tmp_path: Path, ctrl: VirtualController) -> None:
    """The set starts on an outage; the node's run-sense wire is broken (reads "not running"):
    the alert rises after the delay and clears when the wire is mended."""
    config = parse_config(site(ctrl.port, tmp_path))
    clock = ManualClock(T0)
    state = SiteState("nsp-test")
    poller = Poller(config, state, clock)
    GensetMonitor(config.generators, poller, state, clock)
    rules = RuleSet(RulesSettings(), FUEL)
    seen: list[Transition] = []

    async def cycle(node_running: bool) -> None:
        ctrl.step(5.0)
        await poller.poll_once()
        now = clock.now()
        # the power node's own bits (its bus is dead here: set as the node would report them)
        for channel, value in (("power.mains_present", False), ("power.power_faults", 0),
                               ("power.gen_running", node_running)):
            put(state, channel, value, now)
        seen.extend(t for t in rules.evaluate(state, now) if t.code == CODE)
        clock.advance(5.0)

    await cycle(False)
    assert state.get("gen.controller_running").value is False  # type: ignore[union-attr]
    ctrl.engine.mains_present = False  # outage: the controller in AUTO starts the set
    for _ in range(4):
        await cycle(False)
    assert state.get("gen.controller_running").value is True  # type: ignore[union-attr]
    for _ in range(10):
        await cycle(False)
    assert [t.kind for t in seen] == ["raise"]
    await cycle(True)
    assert [t.kind for t in seen] == ["raise", "clear"]
    ctrl.fail_reads = True  # off the bus: unknown, never a disagreement
    for _ in range(20):
        await cycle(False)
    r = state.get("gen.controller_running")
    assert r is not None and not r.ok
    assert [t.kind for t in seen] == ["raise", "clear"]
