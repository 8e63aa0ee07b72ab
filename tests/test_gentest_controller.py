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
