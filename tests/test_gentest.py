"""Generator tests: the runner (a state machine on a ManualClock) against a REAL virtual node
(the firmware on MicroPython with --virtual-clock), the real poller over Modbus TCP and a real
site.db. Each step moves the node's clock and the edge's clock by the same dt, then one poll
cycle, then one tick of the runner: no sleeps."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge_server.clock import ManualClock
from edge_server.config import parse_config
from edge_server.gentest.record import End, GenTestRecord, Outcome
from edge_server.gentest.runner import GenTestRunner, Refused
from edge_server.gentest.settings import GenTestSettings
from edge_server.gentest.store import GenTestStore
from edge_server.poller import CommandRejected
from edge_server.rules.readiness import last_gentest
from edge_server.service import Part, Service
from edge_server.storage.db import open_db
from edge_server.vnode import VirtualNode
from tests.vnode_fixtures import vnode_factory  # noqa: F401  (fixture)

START = datetime(2026, 4, 6, 9, 0, tzinfo=UTC)


def site_toml(port: int, data: Path, extra: str = "") -> str:
    return f"""
[site]
id = "nsp-test"
name = "Buurthuis De Linde"
[storage]
data_dir = "{data}"
[poll]
interval_s = 2
timeout_s = 0.5
retries = 0
[[buses]]
name = "tcp"
kind = "tcp"
host = "127.0.0.1"
port = {port}
[[nodes]]
name = "power"
bus = "tcp"
unit = 1
roles = ["power"]
{extra}
"""


class Bench:
    """One virtual power node + the edge's poller + the runner, all on injected time."""

    def __init__(self, node: VirtualNode, service: Service, clock: ManualClock,
                 runner: GenTestRunner, conn: sqlite3.Connection) -> None:
        self.node, self.service, self.clock, self.runner, self.conn = (
            node, service, clock, runner, conn)
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.finished: list[GenTestRecord] = []
        self.writes: list[tuple[str, bool, str]] = []
        # % of rated kW a generator controller would report (None: not measured)
        self.load: float | None = 45.0
        self.electrical: tuple[float | None, float | None] = (231.0, 50.0)  # L1-N V, Hz

    def world(self, key: str, value: object) -> None:
        reply = self.node.control({"op": "set", "key": key, "value": value})
        assert reply["ok"], reply

    def snapshot(self) -> dict[str, Any]:
        reply = self.node.control({"op": "get"})
        world: dict[str, Any] = reply["world"]
        return world

    async def step(self, seconds: float, tick_ms: int = 500) -> GenTestRecord | None:
        self.node.control({"op": "advance", "ms": int(seconds * 1000), "step_ms": tick_ms})
        self.clock.advance(seconds)
        await self.service.poller.poll_once()
        return await self.runner.tick()

    async def run(self, seconds: float, step_s: float) -> GenTestRecord | None:
        done = None
        t = 0.0
        while t < seconds - 1e-9 and done is None:
            done = await self.step(step_s)
            t += step_s
        return done

    def value(self, name: str) -> Any:
        r = self.service.state.get(f"power.{name}")
        return None if r is None or not r.ok else r.value


class RecordingPoller:
    """The real poller, with every coil write it was asked for noted (it still writes)."""

    def __init__(self, bench: Callable[[], Bench], service: Service) -> None:
        self._bench, self._service = bench, service

    async def write_coil(self, node: str, coil_name: str, value: bool, who: str) -> None:
        self._bench().writes.append((coil_name, value, who))
        await self._service.poller.write_coil(node, coil_name, value, who)


@pytest.fixture
async def bench(tmp_path: Path,
                vnode_factory: Callable[..., VirtualNode]) -> AsyncIterator[Bench]:  # noqa: F811
    node = vnode_factory(unit=1, roles=("power",), control=True, virtual_clock=True)
    assert node.tcp_port is not None
    clock = ManualClock(START)
    config = parse_config(site_toml(node.tcp_port, tmp_path / "data"))
    service = Service(config, clock, parts=Part.NONE)
    await service.start(run_poller=False)
    conn = open_db(tmp_path / "data" / "site.db")
    holder: list[Bench] = []
    runner = GenTestRunner(RecordingPoller(lambda: holder[0], service), service.state, clock,
                           GenTestStore(conn), GenTestSettings(), config.site.id,
                           load_pct=lambda: holder[0].load,
                           electrical=lambda: holder[0].electrical)
    b = Bench(node, service, clock, runner, conn)
    holder.append(b)
    runner.on_event = lambda at, code, sev, en, nl, data: b.events.append((code, data))
    runner.on_finished = b.finished.append
    try:
        await b.step(2)  # first poll: the node is online, mains present
        yield b
    finally:
        await service.stop()
        conn.close()


async def test_monthly_test_passes_and_records_every_log_field(bench: Bench) -> None:
    rh0 = bench.value("run_hours_h")
    fuel0 = bench.value("fuel_l")
    true0 = bench.snapshot()["fuel_l"]
    rec = await bench.runner.start("anna", notes="maandtest")
    assert rec.outcome is Outcome.RUNNING and rec.id > 0
    assert bench.writes == [("gen_test_run", True, "anna")]
    # The set cranks ~3 s (world) + 0.5 s debounce: seen running at the 2 s-poll after that.
    done = await bench.run(20, 2)
    assert done is None and bench.runner.active is not None
    assert bench.runner.active.phase == "RUNNING"
    assert bench.snapshot()["gen_state"] == "running"
    done = await bench.run(31 * 60, 30)
    assert done is not None, "the test did not end after its 30 minutes"
    assert done.outcome is Outcome.PASSED, done.reasons
    assert bench.writes[-1] == ("gen_test_run", False, "gentest-runner")
    assert done.start_time_s is not None and 3.5 <= done.start_time_s <= 6.0
    assert done.ran_s is not None and 30 * 60 <= done.ran_s < 31 * 60
    assert done.crank_min_v == pytest.approx(9.8, abs=0.15)  # the world's healthy crank sag
    assert done.starter_v_before == pytest.approx(12.7, abs=0.15)
    assert done.fuel_start_l == pytest.approx(fuel0) and done.fuel_end_l is not None
    # the world burns 3.4 l/h: ~1.7 L; the 4-20 mA sender on a 1570 L tank reads it coarsely
    true_used = true0 - bench.snapshot()["fuel_l"]
    assert 1.5 < true_used < 2.0
    assert done.fuel_used_l is not None and 0 < done.fuel_used_l < true_used + 2.0
    assert done.run_hours_start_h == pytest.approx(rh0)
    assert done.run_hours_end_h is not None and done.run_hours_end_h - rh0 >= 0.45
    verdicts = {c.code: c.ok for c in done.criteria}
    assert verdicts == {"START_TIME": True, "CRANK_VOLTAGE": True, "RUN_DURATION": True,
                        "FUEL_SENSOR": True, "RUN_HOURS": True, "LOAD": True,
                        "VOLTAGE": True, "FREQUENCY": True}
    assert done.kind == "monthly" and done.end is End.COMPLETED and done.counts_as_monthly
    assert len(done.samples) > 20
    # stored, readable back, and readiness sees a pass at its end time
    stored = bench.runner.store.get(done.id)
    assert stored.to_json(samples=True) == done.to_json(samples=True)
    last = last_gentest(bench.conn)
    assert last is not None and last.passed and last.at == done.ended_at
    codes = [c for c, _ in bench.events]
    assert codes == ["GENTEST_START_COMMAND", "GENTEST_STOP_COMMAND", "GENTEST_FINISHED"]
    assert bench.events[0][1]["who"] == "anna" and bench.finished == [done]
    # after the stop the set cools down and stops by itself (the node's cool-down)
    await bench.run(60, 10)
    assert bench.snapshot()["gen_state"] == "off"


async def test_without_a_measured_load_a_full_test_is_not_verified(bench: Bench) -> None:
    """No controller reading of the load: the set ran 30 min, but the test is NOT_VERIFIED,
    never PASSED; readiness and the schedule do not count it."""
    bench.load = None
    await bench.runner.start("anna")
    assert await bench.run(20, 2) is None  # the crank, at the poll interval
    done = await bench.run(32 * 60, 30)
    assert done is not None and done.outcome is Outcome.NOT_VERIFIED, done.reasons
    assert done.passed is None and not done.counts_as_monthly
    assert {c.code: c.ok for c in done.criteria}["LOAD"] is None
    assert last_gentest(bench.conn) is None and bench.runner.store.last_passed_at() is None


async def test_load_below_30_percent_of_rated_kw_fails(bench: Bench) -> None:
    bench.load = 22.0
    await bench.runner.start("anna")
    assert await bench.run(20, 2) is None
    done = await bench.run(32 * 60, 60)
    assert done is not None and done.outcome is Outcome.FAILED
    load = next(c for c in done.criteria if c.code == "LOAD")
    assert load.ok is False and load.value == 22.0


async def test_frequency_outside_the_band_while_loaded_fails(bench: Bench) -> None:
    """EN 50160's island band (49-51 Hz by default): a governor holding 47.5 Hz fails the test;
    a voltage reading missing for a cycle leaves VOLTAGE not measured (not verified)."""
    bench.electrical = (231.0, 47.5)
    await bench.runner.start("anna")
    assert await bench.run(20, 2) is None
    bench.electrical = (None, 47.5)
    done = await bench.run(32 * 60, 60)
    assert done is not None and done.outcome is Outcome.FAILED
    crit = {c.code: c for c in done.criteria}
    assert crit["FREQUENCY"].ok is False and crit["FREQUENCY"].value == "47.5-47.5"
    assert crit["FREQUENCY"].limit == "49-51 Hz" and crit["VOLTAGE"].ok is None


async def test_a_short_run_is_refused_unless_marked_and_never_passes(bench: Bench) -> None:
    """duration_min = 2 (below the site minimum of 30): refused unless marked a short
    exercise; marked, it runs, is recorded as such, is NOT_VERIFIED and moves no schedule."""
    bench.runner.settings = GenTestSettings(duration_min=2)
    with pytest.raises(Refused) as refused:
        await bench.runner.start("anna")
    assert refused.value.code == "TOO_SHORT" and "min_duration_min" in refused.value.text_en
    assert bench.writes == [] and bench.runner.active is None
    rec = await bench.runner.start("anna", short_exercise=True)
    assert rec.kind == "short_exercise"
    assert await bench.run(20, 2) is None
    done = await bench.run(4 * 60, 10)
    assert done is not None and done.outcome is Outcome.NOT_VERIFIED, done.reasons
    assert done.end is End.COMPLETED and done.passed is None and not done.counts_as_monthly
    assert any("short exercise" in r for r in done.reasons)
    stored = bench.runner.store.get(done.id)
    assert stored.kind == "short_exercise" and stored.outcome is Outcome.NOT_VERIFIED
    assert bench.runner.store.last_passed_at() is None and last_gentest(bench.conn) is None


async def test_generator_that_will_not_start_is_failed_to_start(bench: Bench) -> None:
    bench.world("gen_will_start", False)
    rec = await bench.runner.start("anna")
    done = await bench.run(120, 2)
    assert done is not None and done.outcome is Outcome.FAILED and done.end is End.FAILED_TO_START
    assert done.passed is False and done.start_time_s is None
    # the crank's sag is recorded even though the set never ran (healthy battery: ~9.8 V)
    assert done.crank_min_v == pytest.approx(9.8, abs=0.15)
    assert any("start_failed" in r or "not running" in r for r in done.reasons), done.reasons
    # within the node's 30 s deadline (it reports start_failed), well before our 60 s
    assert done.ended_at is not None and (done.ended_at - rec.started_at).total_seconds() <= 40
    last = last_gentest(bench.conn)
    assert last is not None and not last.passed
    assert bench.runner.store.get(rec.id).end is End.FAILED_TO_START


async def test_weak_starter_battery_fails_the_crank_voltage_criterion(bench: Bench) -> None:
    bench.world("starter_battery_weak", True)
    bench.runner.settings = GenTestSettings(duration_min=2, min_duration_min=2)
    await bench.runner.start("anna")
    done = await bench.run(5 * 60, 5)
    assert done is not None and done.outcome is Outcome.FAILED
    verdicts = {c.code: c.ok for c in done.criteria}
    assert verdicts["CRANK_VOLTAGE"] is False and verdicts["START_TIME"] is True
    assert done.crank_min_v is not None and done.crank_min_v < 9.6
    assert any(r.startswith("CRANK_VOLTAGE") for r in done.reasons)


async def test_fuel_sensor_fault_fails_the_test(bench: Bench) -> None:
    bench.world("fuel_sender_open", True)
    await bench.step(5)
    bench.runner.settings = GenTestSettings(duration_min=1, min_duration_min=1)
    await bench.runner.start("anna")
    done = await bench.run(3 * 60, 5)
    assert done is not None and done.outcome is Outcome.FAILED
    assert {c.code: c.ok for c in done.criteria}["FUEL_SENSOR"] is False


async def test_never_starts_while_mains_is_absent(bench: Bench) -> None:
    bench.world("mains_present", False)
    await bench.step(2)
    assert bench.value("mains_present") is False
    with pytest.raises(Refused) as refused:
        await bench.runner.start("anna")
    assert refused.value.code == "MAINS_ABSENT"
    assert "afwezig" in refused.value.text_nl and "absent" in refused.value.text_en
    assert bench.writes == [] and bench.runner.store.list() == []
    # the edge interlock in the poller refuses it too, even if someone skipped the runner
    with pytest.raises(CommandRejected):
        await bench.service.poller.write_coil("power", "gen_test_run", True, "mallory")


async def test_mains_unknown_node_offline_and_running_test_are_refused(bench: Bench) -> None:
    await bench.runner.start("anna")
    with pytest.raises(Refused) as twice:
        await bench.runner.start("bert")
    assert twice.value.code == "TEST_RUNNING"
    await bench.runner.abort(bench.runner.store.list()[0].id, "bert")
    bench.node.control({"op": "offline", "value": True})
    await bench.step(2)
    with pytest.raises(Refused) as offline:
        await bench.runner.start("anna")
    assert offline.value.code == "NODE_OFFLINE"


async def test_mains_lost_during_the_test_aborts_without_stopping_the_generator(
    bench: Bench,
) -> None:
    rec = await bench.runner.start("anna")
    await bench.run(60, 5)
    assert bench.runner.active is not None and bench.runner.active.phase == "RUNNING"
    bench.world("mains_present", False)
    done = await bench.run(30, 2)
    assert done is not None and done.outcome is Outcome.ABORTED and done.end is End.MAINS_LOST
    assert done.passed is None
    # no stop command was given: only the start
    assert bench.writes == [("gen_test_run", True, "anna")]
    # and the set keeps carrying the site
    await bench.run(10 * 60, 30)
    assert bench.snapshot()["gen_state"] == "running"
    assert bench.value("gen_running") is True
    # an aborted test says nothing about the set: readiness does not count it
    assert last_gentest(bench.conn) is None
    assert bench.runner.store.get(rec.id).end is End.MAINS_LOST
    # an operator cannot stop it either while mains is absent
    with pytest.raises(CommandRejected):
        await bench.service.poller.write_coil("power", "gen_test_run", False, "mallory")
    # mains back: the test request left on the node is released only after 300 s of mains
    bench.world("mains_present", True)
    await bench.run(240, 30)
    assert bench.writes == [("gen_test_run", True, "anna")]
    assert bench.snapshot()["gen_state"] == "running"
    await bench.run(120, 30)
    assert bench.writes == [("gen_test_run", True, "anna"), ("gen_test_run", False,
                                                              "gentest-runner")]
    assert bench.runner.release is None
    await bench.run(60, 10)
    assert bench.snapshot()["gen_state"] == "off"  # cooled down and stopped


async def test_a_flapping_mains_return_delays_the_release(bench: Bench) -> None:
    await bench.runner.start("anna")
    await bench.run(60, 5)
    bench.world("mains_present", False)
    done = await bench.run(30, 2)
    assert done is not None and done.outcome is Outcome.ABORTED and done.end is End.MAINS_LOST
    for _ in range(3):  # back for 4 min, gone again: never 300 s in a row
        bench.world("mains_present", True)
        await bench.run(240, 30)
        bench.world("mains_present", False)
        await bench.run(60, 30)
    assert bench.writes == [("gen_test_run", True, "anna")]
    assert bench.snapshot()["gen_state"] == "running"
    assert bench.runner.release is not None


async def test_operator_abort_stops_the_generator_while_mains_is_present(bench: Bench) -> None:
    rec = await bench.runner.start("anna")
    await bench.run(60, 5)
    done = await bench.runner.abort(rec.id, "piet")
    assert done.outcome is Outcome.ABORTED and done.end is End.BY_OPERATOR
    assert done.ended_by == "piet"
    assert bench.writes[-1] == ("gen_test_run", False, "piet")
    await bench.run(60, 10)
    assert bench.snapshot()["gen_state"] == "off"
    assert ("GENTEST_ABORT", {"test_id": rec.id, "who": "piet"}) in bench.events
    with pytest.raises(Refused):
        await bench.runner.abort(rec.id, "piet")


async def test_store_keeps_ten_years(tmp_path: Path) -> None:
    conn = open_db(tmp_path / "site.db")
    try:
        store = GenTestStore(conn)
        for years in (11, 9):
            at = START - timedelta(days=365 * years)
            rec = GenTestRecord("s", "power", "anna", at, 1800, outcome=Outcome.PASSED,
                                ended_at=at + timedelta(minutes=31))
            store.insert(rec)
        assert store.purge(START) == 1
        left = store.list()
        assert len(left) == 1 and left[0].started_at.year == START.year - 9
        GenTestStore(conn)  # migrating again is a no-op
        assert conn.execute("SELECT version FROM schema_versions WHERE component = 'gentests'"
                            ).fetchone() == (3,)
    finally:
        conn.close()


async def test_rows_of_earlier_versions_read_as_the_four_outcome_words(tmp_path: Path) -> None:
    """A row written before the four words (outcome FAILED_TO_START, ABORTED_...) reads as
    FAILED / ABORTED with how it ended; a stored PASSED stays as it was judged."""
    conn = open_db(tmp_path / "site.db")
    try:
        store = GenTestStore(conn)
        for word in ("FAILED_TO_START", "ABORTED_MAINS_LOST", "PASSED"):
            rec = GenTestRecord("s", "power", "anna", START, 1800, ended_at=START)
            store.insert(rec)
            with conn:
                conn.execute("UPDATE gentests SET outcome = ?, end_reason = NULL WHERE id = ?",
                             (word, rec.id))
        got = [(r.outcome, r.end) for r in reversed(store.list())]
        assert got == [(Outcome.FAILED, End.FAILED_TO_START), (Outcome.ABORTED, End.MAINS_LOST),
                       (Outcome.PASSED, None)]
    finally:
        conn.close()


def test_report_plots_the_controller_readings_on_one_page(tmp_path: Path) -> None:
    """With a controller's load, voltage and frequency in the samples the PDF plots them too and
    stays one page; a record without them (older, or no controller) reads back unchanged."""
    import re
    import subprocess

    from edge_server.gentest.record import Criterion, Sample
    from edge_server.gentest.report import render_pdf
    from tests.conftest import need_tool

    need_tool("pdfinfo", "apt-get install -y poppler-utils")
    codes = ("START_TIME", "CRANK_VOLTAGE", "RUN_DURATION", "FUEL_SENSOR", "RUN_HOURS", "LOAD",
             "VOLTAGE", "FREQUENCY")
    rec = GenTestRecord("nsp-a", "power", "anna", START, 1800.0, id=7, outcome=Outcome.PASSED,
                        end=End.COMPLETED, ended_at=START + timedelta(minutes=31),
                        criteria=[Criterion(c, True, 1.0, "-", c, c) for c in codes],
                        samples=[Sample(i * 10.0, 13.6, True, "running", 45.0, 231.0, 50.0)
                                 for i in range(180)])
    pdf = tmp_path / "r.pdf"
    pdf.write_bytes(render_pdf(rec, "Buurthuis De Linde", GenTestSettings()))
    info = subprocess.run(["pdfinfo", str(pdf)], capture_output=True, text=True, check=True)
    assert re.search(r"^Pages:\s+1$", info.stdout, re.M), info.stdout
    text = subprocess.run(["pdftotext", str(pdf), "-"], capture_output=True, text=True,
                          check=True).stdout
    assert "Belasting / load" in text and "GESLAAGD / PASSED" in text
    assert Sample.from_json([1.0, 12.0, True, "running"]).load_pct is None
    assert Sample.from_json(rec.samples[0].to_json()) == rec.samples[0]


def test_the_report_gives_official_times_in_the_sites_zone_with_the_offset(tmp_path) -> None:
    """The municipality's record: the site's wall clock with CET/CEST and the offset, winter and
    summer; never bare UTC (it was an hour off in winter and two in summer)."""
    import subprocess

    from edge_server.gentest.report import render_pdf
    from tests.conftest import need_tool

    need_tool("pdftotext", "apt-get install -y poppler-utils")
    cases = ((datetime(2026, 1, 12, 9, 0, tzinfo=UTC), "2026-01-12 10:00:00 CET (UTC+01:00)"),
             (datetime(2026, 7, 6, 9, 0, tzinfo=UTC), "2026-07-06 11:00:00 CEST (UTC+02:00)"))
    for start, want in cases:
        rec = GenTestRecord("nsp-a", "power", "anna", start, 1800.0, id=1,
                            outcome=Outcome.ABORTED, ended_at=start + timedelta(minutes=3))
        pdf = tmp_path / "r.pdf"
        pdf.write_bytes(render_pdf(rec, "Buurthuis De Linde", GenTestSettings(),
                                   "Europe/Amsterdam"))
        text = subprocess.run(["pdftotext", "-layout", str(pdf), "-"], capture_output=True,
                              text=True, check=True).stdout
        assert want in text and "UTC " not in text.replace("(UTC+", "("), text
