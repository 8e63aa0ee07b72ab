"""The generator test commanded through the site's generator controller (gentest/runner.py,
"controller" path): the real Service (storage, genset monitor, generator tests) with a pymodbus
power node and the virtual DSE controller on real Modbus TCP (GenComm's control key and its
complement), on a ManualClock. The controller's own mode and its list of carried-out commands
show what reached it; the power node's peer records every write (none on this path)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge_server.clock import ManualClock
from edge_server.config import parse_config
from edge_server.genset.control import MAINS_PRESENT_V
from edge_server.genset.engine import EngineModel
from edge_server.genset.profile import load_profile
from edge_server.genset.sim import VirtualController
from edge_server.gentest.record import End, GenTestRecord, Outcome
from edge_server.gentest.report import render_pdf
from edge_server.gentest.runner import GenTestRunner, Refused
from edge_server.gentest.settings import GenTestSettings
from edge_server.gentest.store import GenTestStore
from edge_server.service import Part, Service
from edge_server.storage.db import open_db
from tests.conftest import need_tool
from tests.pdf import read_pdf
from tests.test_genset_service import site
from tests.test_gentest_api import IDLE, RUNNING
from tests.test_poller import Peer, image, make_peer, peers  # noqa: F401  (fixture)

NOW = datetime(2026, 5, 4, 10, tzinfo=UTC)
PARTS = Part.STORAGE | Part.GENSET | Part.GENTEST


@pytest.fixture
async def ctrl() -> AsyncIterator[VirtualController]:
    c = VirtualController(load_profile("dse-gencomm"), EngineModel(mode="auto", rated_kw=32.0,
                                                                   load_kw=lambda _t: 16.0),
                          unit=10)
    await c.start_tcp("127.0.0.1", 0)
    try:
        yield c
    finally:
        await c.stop()


class Bench:
    """The service with the node and the controller; `cycle(dt)` moves the engine, the clock
    and one poll cycle, then waits for the test's tick."""

    def __init__(self, service: Service, node: Peer, ctrl: VirtualController,
                 clock: ManualClock) -> None:
        self.service, self.node, self.ctrl, self.clock = service, node, ctrl, clock

    @property
    def runner(self) -> GenTestRunner:
        assert self.service.gentest is not None
        return self.service.gentest.require()

    def power(self, **raw: int) -> None:
        self.node.words = image(("power",), **raw)

    async def cycle(self, dt_s: float = 2.0) -> None:
        whole = int(dt_s)
        for _ in range(whole):
            self.ctrl.step(1.0)
        self.clock.advance(dt_s)
        await self.service.poller.poll_once()
        assert self.service.gentest is not None
        await self.service.gentest.idle()

    def events(self, code: str) -> list[dict[str, Any]]:
        assert self.service.storage is not None
        return [e["data"] for e in self.service.storage.require().events(
            NOW - timedelta(hours=1), self.clock.now() + timedelta(hours=1)) if e["code"] == code]


@pytest.fixture
async def b(tmp_path: Path, ctrl: VirtualController,
            peers: list[Peer]) -> AsyncIterator[Bench]:  # noqa: F811
    node = await make_peer(peers, image(("power",), **IDLE))
    text = site(ctrl.port, tmp_path / "data").replace(
        'name = "nodes"\nkind = "tcp"\nhost = "127.0.0.1"\nport = 1',
        f'name = "nodes"\nkind = "tcp"\nhost = "127.0.0.1"\nport = {node.port}')
    text += "[gentest]\nduration_min = 30\nload_warmup_s = 60\nsample_every_s = 60\n"
    async for bench in _bench(text, node, ctrl):
        yield bench


async def _bench(text: str, node: Peer, ctrl: VirtualController) -> AsyncIterator[Bench]:
    clock = ManualClock(NOW)
    service = Service(parse_config(text), clock, parts=PARTS)
    await service.start(run_poller=False)
    try:
        bench = Bench(service, node, ctrl, clock)
        await bench.cycle(0.5)
        yield bench
    finally:
        await service.stop()


async def test_a_test_runs_through_the_controller_and_leaves_it_in_auto(
        b: Bench, ctrl: VirtualController, tmp_path: Path) -> None:
    assert b.runner.via == "controller" and b.runner.controller is not None
    assert b.runner.controller.start_command == "test_on_load"
    rec = await b.runner.start("anna")
    assert rec.commanded_via == "controller"
    assert ctrl.commands == ["test_on_load"] and ctrl.engine.mode == "test"
    assert b.runner.progress()["commanded_via"] == "controller"  # type: ignore[index]
    for _ in range(3):  # the controller's set cranks 3 s and runs
        await b.cycle()
    assert ctrl.engine.state == "running" and ctrl.engine.kw == 16.0
    b.power(**RUNNING)  # the node's run-sense sees it
    done: GenTestRecord | None = None
    for i in range(31 * 30):
        # the node's run-hour meter (0.01 h) advances with the set
        b.power(**{**RUNNING, "run_hours_h": IDLE["run_hours_h"] + i * 2 // 36})
        await b.cycle()
        done = b.runner.store.get(rec.id)
        if done.outcome is not Outcome.RUNNING:
            break
    assert done is not None and done.end is End.COMPLETED
    assert done.outcome is Outcome.PASSED, done.reasons  # 50 % load measured by it
    assert ctrl.commands == ["test_on_load", "auto"] and ctrl.engine.mode == "auto"
    assert b.node.writes == []  # the relay was never touched
    for _ in range(35):  # in AUTO with mains present: cool-down, then the set stops
        await b.cycle()
    assert ctrl.engine.state == "off"
    # the audit: the runner's events and the controller's, with who and who started it
    starts = b.events("GENTEST_START_COMMAND")
    autos = b.events("GENTEST_AUTO_COMMAND")
    assert [(d["command"], d["who"], d["via"]) for d in starts] == [
        ("test_on_load", "anna", "controller")]
    assert [(d["command"], d["who"], d["started_by"]) for d in autos] == [
        ("auto", "gentest-runner", "anna")]
    gensets = [(d["command"], d["who"], d["test_id"], d["started_by"])
               for d in b.events("GENSET_COMMAND")]
    assert gensets == [("test_on_load", "anna", rec.id, "anna"),
                       ("auto", "gentest-runner", rec.id, "anna")]
    assert "GENTEST_STOP_COMMAND" not in str(b.events("GENTEST_FINISHED"))
    stored = b.runner.store.get(rec.id)
    assert stored.to_json()["commanded_via"] == "controller"
    # the report says which path commanded the test, on one page (no fill-in rows for what
    # the controller measured)
    need_tool("pdftotext", "apt-get install poppler-utils")
    text, pages = read_pdf(tmp_path / "r.pdf", render_pdf(stored, "De Linde", GenTestSettings()))
    assert "Spanning / Voltage (V)" not in text and "Naam en handtekening" in text
    assert pages == 1
    assert "Bediend via / Commanded via regelaar, daarna AUTO / controller, then AUTO" in " ".join(
        text.split())


async def test_an_outage_during_the_test_leaves_the_set_running_in_auto(
        b: Bench, ctrl: VirtualController) -> None:
    rec = await b.runner.start("piet")
    for _ in range(3):
        await b.cycle()
    b.power(**RUNNING)
    for _ in range(30):
        await b.cycle()
    assert ctrl.engine.state == "running"
    # mains fails: the node says so, the controller's mains side too
    ctrl.engine.mains_present = False
    b.power(**{**RUNNING, "mains_present": 0, "gen_run_reason": 1})
    await b.cycle()
    done = b.runner.store.get(rec.id)
    assert (done.outcome, done.end) == (Outcome.ABORTED, End.MAINS_LOST)
    assert any("NOT stopped" in r for r in done.reasons)
    assert ctrl.commands == ["test_on_load", "auto"]  # AUTO, no stop
    assert ctrl.engine.mode == "auto"
    for _ in range(120):  # 4 min without mains: the set carries the site
        await b.cycle()
        assert ctrl.engine.state == "running" and ctrl.engine.kw == 16.0
    assert ctrl.commands == ["test_on_load", "auto"]  # nothing more was sent
    assert b.node.writes == [] and not b.runner.busy
    # mains back: AUTO stops the set by itself after its cool-down
    ctrl.engine.mains_present = True
    b.power(**RUNNING)
    for _ in range(35):
        await b.cycle()
    assert ctrl.engine.state == "off" and ctrl.commands == ["test_on_load", "auto"]
    assert [d["who"] for d in b.events("GENSET_COMMAND")] == ["piet", "gentest-runner"]


async def test_an_operator_abort_puts_the_controller_in_auto(
        b: Bench, ctrl: VirtualController) -> None:
    rec = await b.runner.start("anna")
    await b.cycle()
    done = await b.runner.abort(rec.id, "piet")
    assert (done.outcome, done.end, done.ended_by) == (Outcome.ABORTED, End.BY_OPERATOR,
                                                       "piet")
    assert ctrl.commands == ["test_on_load", "auto"] and ctrl.engine.mode == "auto"
    autos = b.events("GENSET_COMMAND")[-1]
    assert (autos["who"], autos["started_by"]) == ("piet", "anna")


async def test_no_start_while_mains_is_down_or_the_controller_has_a_shutdown(
        b: Bench, ctrl: VirtualController) -> None:
    b.power(**{**IDLE, "mains_present": 0})
    await b.cycle()
    with pytest.raises(Refused) as exc:
        await b.runner.start("anna")
    assert exc.value.code == "MAINS_ABSENT"
    # the power node silent, the controller's own mains side at 0 V: still refused
    await b.node.stop()
    ctrl.engine.mains_present = False
    await b.cycle()
    with pytest.raises(Refused) as exc:
        await b.runner.start("anna")
    assert exc.value.code in ("NODE_OFFLINE", "MAINS_ABSENT")
    await b.node.start()
    ctrl.engine.mains_present = True
    b.power(**IDLE)
    ctrl.engine.alarms["low_oil_pressure"] = "shutdown"  # latched from an earlier run
    for _ in range(10):  # the node back online after its back-off
        await b.cycle()
    with pytest.raises(Refused) as exc:
        await b.runner.start("anna")
    assert exc.value.code == "CONTROLLER_ALARM" and "reset" in exc.value.text_en
    assert ctrl.commands == [] and ctrl.engine.mode == "auto"  # nothing reached it
    assert b.runner.store.list() == []
    ctrl.engine.reset_alarms()
    await b.cycle()
    rec = await b.runner.start("anna")  # the same bench starts once all is clear
    assert rec.commanded_via == "controller" and ctrl.commands == ["test_on_load"]


async def test_a_failed_auto_is_sent_again_until_the_controller_takes_it(
        b: Bench, ctrl: VirtualController) -> None:
    rec = await b.runner.start("anna")
    await b.cycle()
    port = ctrl.port
    await ctrl.stop()  # the controller falls off the bus
    done = await b.runner.abort(rec.id, "anna")
    assert any("AUTO command to the controller failed" in r for r in done.reasons)
    assert b.runner.busy and ctrl.engine.mode == "test"
    for _ in range(3):
        await b.cycle()  # tried again, still nobody there
    assert b.runner.busy
    await ctrl.start_tcp("127.0.0.1", port)
    for _ in range(20):  # the bus hub's back-off, then AUTO goes through
        await b.cycle()
        if not b.runner.busy:
            break
    assert not b.runner.busy
    assert ctrl.commands == ["test_on_load", "auto"] and ctrl.engine.mode == "auto"
    failed = b.events("GENSET_COMMAND_FAILED")
    assert failed and all(d["command"] == "auto" and d["started_by"] == "anna"
                          for d in failed)


async def test_a_controller_without_commands_leaves_the_relay_path(
        tmp_path: Path, ctrl: VirtualController, peers: list[Peer]) -> None:  # noqa: F811
    """A Smartgen profile without [control]: the test goes through the node's relay."""
    node = await make_peer(peers, image(("power",), **IDLE))
    text = site(ctrl.port, tmp_path / "data",
                '[[generators]]\nname = "gen"\nbus = "genbus"\nunit = 10\nrated_kw = 32\n'
                'profile = "smartgen-hgm6100n"\n').replace(
        'port = 1', f"port = {node.port}")
    service = Service(parse_config(text), ManualClock(NOW), parts=PARTS)
    await service.start(run_poller=False)
    try:
        assert service.gentest is not None
        runner = service.gentest.require()
        assert runner.controller is None and runner.via == "relay"
        await service.poller.poll_once()
        rec = await runner.start("anna")
        assert rec.commanded_via == "relay"
        assert [w[2] for w in node.writes] == [[True]]  # the coil
        assert ctrl.commands == []
    finally:
        await service.stop()


def test_older_rows_read_as_relay_and_credits_as_no_command(tmp_path: Path) -> None:
    """Migration 3: every commanded test before it went through the relay."""
    from edge_server.gentest.store import SCHEMA
    from edge_server.storage.db import migrate

    conn = open_db(tmp_path / "site.db")
    try:
        migrate(conn, "gentests", SCHEMA[:2])  # a site.db of the version before
        with conn:
            for kind in ("monthly", "outage_credit"):
                conn.execute(
                    "INSERT INTO gentests(site_id, node, started_by, started_at, outcome, "
                    "planned_s, kind) VALUES ('s', 'power', 'anna', ?, 'PASSED', 1800, ?)",
                    (NOW.isoformat(), kind))
        store = GenTestStore(conn)
        got = {r.kind: r.commanded_via for r in store.list()}
        assert got == {"monthly": "relay", "outage_credit": None}
    finally:
        conn.close()


def _no_power_node(ctrl: VirtualController, node: Peer, data: Path,
                   generators: str | None = None) -> str:
    """The site of `b` with a fridge node instead of the power node: the controller is the only
    witness of mains and of the set."""
    text = site(ctrl.port, data, generators).replace("port = 1", f"port = {node.port}")
    text = text.replace('name = "power"', 'name = "fridge"').replace('roles = ["power"]',
                                                                     'roles = ["fridge"]')
    assert '"power"' not in text
    return text + "[gentest]\nduration_min = 30\nload_warmup_s = 60\nsample_every_s = 60\n"


@pytest.fixture
async def nb(tmp_path: Path, ctrl: VirtualController,
             peers: list[Peer]) -> AsyncIterator[Bench]:  # noqa: F811
    node = await make_peer(peers, image(("fridge",)))
    async for bench in _bench(_no_power_node(ctrl, node, tmp_path / "data"), node, ctrl):
        yield bench


async def test_without_a_power_node_the_controller_is_the_mains_witness(
        nb: Bench, ctrl: VirtualController, tmp_path: Path) -> None:
    """[[generators]] and no node with the power role: mains present is the controller's own
    mains voltage above GensetControl's threshold; running, battery, fuel and run hours come
    from it; the crank dip it cannot see is "not measured", so the test is NOT VERIFIED."""
    r = nb.runner
    assert r.via == "controller" and r.check_start() == "gen"
    # the interlock on the controller's mains voltage: a grid below the threshold is absent,
    # an unreadable one unknown; neither starts a test and nothing reaches the controller
    ctrl.engine.mains_v = MAINS_PRESENT_V - 10
    await nb.cycle()
    with pytest.raises(Refused) as exc:
        await r.start("anna")
    assert exc.value.code == "MAINS_ABSENT" and "absent" in exc.value.text_en
    ctrl.engine.mains_v = MAINS_PRESENT_V + 10  # a sagging grid is still a grid
    ctrl.unplug.add("mains_l1n_v")
    await nb.cycle()
    with pytest.raises(Refused) as exc:
        await r.start("anna")
    assert exc.value.code == "MAINS_ABSENT" and "unknown" in exc.value.text_en
    assert ctrl.commands == [] and r.store.list() == []
    ctrl.unplug.clear()
    await nb.cycle()
    rec = await r.start("anna")
    assert (rec.node, rec.commanded_via) == ("gen", "controller")
    assert ctrl.commands == ["test_on_load"]
    assert rec.starter_v_before == 12.7  # the controller's battery reading, set at rest
    assert rec.run_hours_start_h == 0.0 and rec.fuel_start_l is None  # it gives %, not litres
    done: GenTestRecord | None = None
    for _ in range(31 * 30):
        await nb.cycle()
        done = r.store.get(rec.id)
        if done.outcome is not Outcome.RUNNING:
            break
    assert done is not None
    assert done.end is End.COMPLETED, done.reasons
    crit = {c.code: c for c in done.criteria}
    assert crit["START_TIME"].ok is True and crit["START_TIME"].value is not None
    assert (crit["LOAD"].ok, crit["LOAD"].value) == (True, 50.0)
    assert crit["VOLTAGE"].ok is True and crit["FREQUENCY"].ok is True
    assert crit["RUN_HOURS"].ok is True and crit["RUN_HOURS"].value == pytest.approx(0.5, abs=0.01)
    assert crit["FUEL_SENSOR"].ok is True and crit["FUEL_SENSOR"].value == "80 -> 80 %"
    assert crit["CRANK_VOLTAGE"].ok is None and "not measured" in crit["CRANK_VOLTAGE"].text_en
    assert done.outcome is Outcome.NOT_VERIFIED  # never PASSED on a criterion it did not see
    assert any(x.startswith("not measured: CRANK_VOLTAGE") for x in done.reasons)
    assert 13.6 in {s.starter_battery_v for s in done.samples}  # the battery while running
    assert {s.gen_running for s in done.samples} == {False, True}
    assert ctrl.commands == ["test_on_load", "auto"] and ctrl.engine.mode == "auto"
    assert [(d["command"], d["who"]) for d in nb.events("GENSET_COMMAND")] == [
        ("test_on_load", "anna"), ("auto", "gentest-runner")]
    # the report: one page, the crank dip left to the technician, fuel as the controller's %
    need_tool("pdftotext", "apt-get install poppler-utils")
    text, pages = read_pdf(tmp_path / "r.pdf", render_pdf(done, "De Linde", GenTestSettings()))
    words = " ".join(text.split())
    assert pages == 1 and "Knooppunt / Node: gen" in words
    assert "Starter battery min while cranking (V; >= " in words and "80 -> 80 %" in words
    assert "Spanning / Voltage (V)" not in words  # the controller measured it


async def test_without_a_power_node_mains_lost_leaves_the_set_carrying_the_site(
        nb: Bench, ctrl: VirtualController) -> None:
    rec = await nb.runner.start("piet")
    for _ in range(20):
        await nb.cycle()
    assert ctrl.engine.state == "running"
    ctrl.engine.mains_present = False  # the controller reads 0 V on its mains side
    await nb.cycle()
    done = nb.runner.store.get(rec.id)
    assert (done.outcome, done.end) == (Outcome.ABORTED, End.MAINS_LOST)
    assert ctrl.commands == ["test_on_load", "auto"]  # AUTO, never a stop
    for _ in range(60):
        await nb.cycle()
        assert ctrl.engine.state == "running" and ctrl.engine.kw == 16.0
    assert ctrl.commands == ["test_on_load", "auto"] and not nb.runner.busy
    with pytest.raises(Refused) as exc:  # no new test while the set carries the site
        await nb.runner.start("piet")
    assert exc.value.code == "MAINS_ABSENT"


async def test_without_a_power_node_mains_below_the_threshold_ends_the_test(
        nb: Bench, ctrl: VirtualController) -> None:
    """The runner's own reading of the witness, not only GensetControl's check at the start:
    the grid sagging below MAINS_PRESENT_V during the test counts as mains lost."""
    rec = await nb.runner.start("anna")
    for _ in range(10):
        await nb.cycle()
    ctrl.engine.mains_v = MAINS_PRESENT_V + 1
    await nb.cycle()
    assert nb.runner.store.get(rec.id).outcome is Outcome.RUNNING
    ctrl.engine.mains_v = MAINS_PRESENT_V - 1
    await nb.cycle()
    done = nb.runner.store.get(rec.id)
    assert (done.outcome, done.end) == (Outcome.ABORTED, End.MAINS_LOST)
    assert ctrl.commands == ["test_on_load", "auto"]


async def test_without_a_power_node_a_lost_mains_reading_ends_the_test_in_auto(
        nb: Bench, ctrl: VirtualController) -> None:
    """The controller answers but its mains sensor faults: no witness for offline_abort_s
    (120 s), then ABORTED (NODE_OFFLINE) with AUTO; a reading back in time keeps the test."""
    rec = await nb.runner.start("anna")
    for _ in range(10):
        await nb.cycle()
    ctrl.unplug.add("mains_l1n_v")
    for _ in range(50):  # 100 s
        await nb.cycle()
    ctrl.unplug.clear()
    await nb.cycle()
    assert nb.runner.store.get(rec.id).outcome is Outcome.RUNNING
    ctrl.unplug.add("mains_l1n_v")
    for _ in range(59):
        await nb.cycle()
    assert nb.runner.store.get(rec.id).outcome is Outcome.RUNNING
    await nb.cycle(4)
    done = nb.runner.store.get(rec.id)
    assert (done.outcome, done.end) == (Outcome.ABORTED, End.NODE_OFFLINE)
    assert any("mains reading lost" in r for r in done.reasons)
    assert ctrl.commands == ["test_on_load", "auto"] and ctrl.engine.mode == "auto"


async def test_without_a_power_node_a_silent_controller_is_named(
        nb: Bench, ctrl: VirtualController) -> None:
    await ctrl.stop()
    await nb.cycle()
    with pytest.raises(Refused) as exc:
        await nb.runner.start("anna")
    assert exc.value.code == "NODE_OFFLINE"
    assert "Generator controller gen (the mains witness" in exc.value.text_en
    assert "Aggregaatregelaar gen" in exc.value.text_nl


def _without_mains(tmp_path: Path) -> Path:
    """The DSE profile without its mains voltage channels: a controller that does not see
    mains."""
    from edge_server.genset.profile import PROFILES_DIR

    text = (PROFILES_DIR / "dse-gencomm.toml").read_text(encoding="utf-8")
    blocks = text.split("[[channels]]\n")
    kept = [b for b in blocks if not b.startswith(('name = "mains_l1n_v"', 'name = "mains_l2n_v"',
                                                   'name = "mains_l3n_v"'))]
    assert len(kept) == len(blocks) - 3
    path = tmp_path / "dse-no-mains.toml"
    path.write_text("[[channels]]\n".join(kept).replace('name = "dse-gencomm"',
                                                        'name = "dse-no-mains"', 1))
    return path


@pytest.mark.parametrize("profile, needles", [
    ("smartgen-hgm6100n",  # no [control]: no command path, no witness
     ["No power node and no generator controller that can command a test",
      'roles = ["power"]', "[control]"]),
    (None,  # commandable, but it does not measure mains
     ["generator controller gen does not measure mains", "mains_l1n_v", 'roles = ["power"]']),
])
async def test_without_a_power_node_or_a_witness_the_refusal_names_the_fix(
        tmp_path: Path, ctrl: VirtualController, peers: list[Peer],  # noqa: F811
        profile: str | None, needles: list[str]) -> None:
    node = await make_peer(peers, image(("fridge",)))
    name = profile or str(_without_mains(tmp_path))
    gens = (f'[[generators]]\nname = "gen"\nbus = "genbus"\nunit = 10\nrated_kw = 32\n'
            f'profile = "{name}"\n')
    service = Service(parse_config(_no_power_node(ctrl, node, tmp_path / "data", gens)),
                      ManualClock(NOW), parts=PARTS)
    await service.start(run_poller=False)
    try:
        await service.poller.poll_once()
        assert service.gentest is not None
        runner = service.gentest.require()
        with pytest.raises(Refused) as exc:
            await runner.start("anna")
        assert exc.value.code == "NO_POWER_NODE"
        for needle in needles:
            assert needle in exc.value.text_en
        assert 'roles = ["power"]' in exc.value.text_nl and "geen" in exc.value.text_nl.lower()
        assert ctrl.commands == [] and runner.store.list() == []
        assert runner.reading("mains_present") is None  # no witness: the outage watch sees none
    finally:
        await service.stop()


async def test_without_a_power_node_an_outage_run_by_the_set_credits_the_test(
        nb: Bench, ctrl: VirtualController) -> None:
    """The outage credit watches the same witness: the controller's mains voltage and its
    running state (no command is given: AUTO starts the set)."""
    ctrl.engine.mains_present = False
    for _ in range(16 * 60):  # 32 min without mains; the set starts in AUTO and carries it
        await nb.cycle()
    assert ctrl.engine.state == "running" and nb.runner.store.list() == []
    ctrl.engine.mains_present = True
    await nb.cycle()
    [rec] = nb.runner.store.list()
    assert (rec.kind, rec.outcome, rec.node) == ("outage_credit", Outcome.PASSED, "gen")
    assert rec.ran_s is not None and rec.ran_s >= 30 * 60
    assert ctrl.commands == []
