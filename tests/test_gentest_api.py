"""Generator tests over the API: the real Service (storage, rules, uplink, gentest components),
a real pymodbus server playing the power node (its image changed by the test as the set
starts), real SQLite, real tokens, the PDF read back with pdftotext, the uplink to a real hub.
Time is a ManualClock; each cycle = clock step + one poll + the runner's tick."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
import tomllib
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge_server.api.app import create_app
from edge_server.auth import Role, UserStore
from edge_server.clock import ManualClock
from edge_server.config import SiteConfig
from edge_server.gentest.component import GenTestComponent
from edge_server.gentest.schedule import DueStatus, next_due
from edge_server.gentest.settings import GenTestSettings
from edge_server.hub.testing import running_hub
from edge_server.rules.settings import RulesSettings
from edge_server.service import Service
from tests.conftest import ROOT, need_tool
from tests.pdf import read_pdf
from tests.shots import shot_path
from tests.test_hub_api import schema_validator
from tests.test_poller import RMAP, Peer, image, make_peer, peers  # noqa: F401  (fixture)

START = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
IDLE = {"mains_present": 1, "gen_running": 0, "gen_state": 0, "gen_run_reason": 0,
        "run_hours_h": 12345, "fuel_l": 9000, "starter_battery_v": 1270,
        "starter_battery_min_v": 1010, "power_faults": 0, "last_command": 0}
RUNNING = {**IDLE, "gen_running": 1, "gen_state": 2, "gen_run_reason": 2,
           "starter_battery_v": 1390, "starter_battery_min_v": 985, "last_command": 1}


class Site:
    def __init__(self, service: Service, clock: ManualClock, peer: Peer) -> None:
        self.service, self.clock, self.peer = service, clock, peer
        self.app = create_app(service, manage_service=False)
        users = UserStore(service.storage.require().connection)
        self.tokens = {r.label: users.add(r.label, r, clock.now()) for r in Role}

    @property
    def gentest(self) -> GenTestComponent:
        return self.service.gentest

    def node(self, **raw: int) -> None:
        self.peer.words = image(("power",), **raw)

    async def cycle(self, seconds: float) -> None:
        self.clock.advance(seconds)
        await self.service.poller.poll_once()
        await self.gentest.idle()

    def client(self) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=("10.0.0.7", 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://edge")

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[role]}"}

    def coil_writes(self) -> list[bool]:
        coil = RMAP.coils[0].address
        return [bool(v[0]) for fc, addr, v in self.peer.writes if fc == 5 and addr == coil]

    def events(self, code: str) -> list[dict[str, Any]]:
        storage = self.service.storage.require()
        return [e for e in storage.events(START - timedelta(days=1), START + timedelta(days=9))
                if e["code"] == code]


def site_config(data: Path, port: int, uplink: dict[str, Any] | None = None,
                read_auth: bool = False) -> SiteConfig:
    raw: dict[str, Any] = {
        "site": {"id": "nsp-linde", "name": "Buurthuis De Linde"},
        "api": {"require_auth_for_read": read_auth},
        "storage": {"data_dir": str(data)},
        "poll": {"interval_s": 2, "timeout_s": 0.2, "retries": 0},
        "buses": [{"name": "tcp", "kind": "tcp", "host": "127.0.0.1", "port": port}],
        "nodes": [{"name": "power", "bus": "tcp", "unit": 1, "roles": ["power"]}],
    }
    if uplink is not None:
        raw["uplink"] = uplink
    return SiteConfig.model_validate(raw)


async def start_site(tmp_path: Path, peers: list[Peer],  # noqa: F811
                     uplink: Callable[[], dict[str, Any]] | None = None,
                     clock: ManualClock | None = None,
                     read_auth: bool = False,
                     gentest: GenTestSettings | None = None) -> AsyncIterator[Site]:
    peer = await make_peer(peers, image(("power",), **IDLE))
    clock = clock or ManualClock(START)
    config = site_config(tmp_path / "edge", peer.port, uplink() if uplink else None, read_auth)
    if gentest is not None:
        config = config.model_copy(update={"gentest": gentest})
    service = Service(config, clock)
    await service.start(run_poller=False)
    try:
        site = Site(service, clock, peer)
        await site.cycle(2)
        yield site
    finally:
        await service.stop()


async def test_roles_and_refusals(tmp_path: Path, peers: list[Peer]) -> None:  # noqa: F811
    async for site in start_site(tmp_path, peers):
        async with site.client() as c:
            r = await c.get("/api/v1/gentests")
            assert r.status_code == 200 and r.json()["tests"] == []
            r = await c.get("/api/v1/gentests/next")
            assert r.status_code == 200 and r.json()["status"] == "never_tested"
            assert (await c.post("/api/v1/gentests")).status_code == 401
            bad = {"Authorization": "Bearer nope"}
            assert (await c.post("/api/v1/gentests", headers=bad)).status_code == 401
            for role in ("viewer", "operator"):
                r = await c.post("/api/v1/gentests", headers=site.auth(role))
                assert r.status_code == 403, role
            assert site.coil_writes() == []
            r = await c.post("/api/v1/gentests", headers=site.auth("technician"),
                             json={"notes": "maandelijkse test"})
            assert r.status_code == 201, r.text
            test_id = r.json()["id"]
            assert r.json()["started_by"] == "technician" and r.json()["outcome"] == "RUNNING"
            assert site.coil_writes() == [True]
            r = await c.post("/api/v1/gentests", headers=site.auth("admin"))
            assert r.status_code == 409
            assert r.json()["error"] == "TEST_RUNNING"
            assert "loopt al" in r.json()["text_nl"] and "already" in r.json()["text_en"]
            url = f"/api/v1/gentests/{test_id}/abort"
            assert (await c.post(url)).status_code == 401
            assert (await c.post(url, headers=site.auth("viewer"))).status_code == 403
            r = await c.post(url, headers=site.auth("operator"))
            assert r.status_code == 200 and r.json()["outcome"] == "ABORTED"
            assert r.json()["end"] == "BY_OPERATOR"
            assert r.json()["ended_by"] == "operator"
            assert site.coil_writes() == [True, False]
            r = await c.post(url, headers=site.auth("operator"))
            assert r.status_code == 409 and r.json()["error"] == "NOT_RUNNING"
            assert (await c.post("/api/v1/gentests/999/abort",
                                 headers=site.auth("operator"))).status_code == 404
            # every command in the event log with who gave it
            starts = site.events("GENTEST_START_COMMAND")
            stops = site.events("GENTEST_STOP_COMMAND")
            assert [e["data"]["who"] for e in starts] == ["technician"]
            assert [e["data"]["who"] for e in stops] == ["operator"]

            # mains absent: 409, and nothing is written to the node
            site.node(**{**IDLE, "mains_present": 0})
            await site.cycle(2)
            r = await c.post("/api/v1/gentests", headers=site.auth("technician"))
            assert r.status_code == 409 and r.json()["error"] == "MAINS_ABSENT"
            assert "Netstroom" in r.json()["text_nl"]
            # the node stops answering: 409 node offline
            site.node(**IDLE)
            await site.peer.stop()
            await site.cycle(2)
            r = await c.post("/api/v1/gentests", headers=site.auth("technician"))
            assert r.status_code == 409 and r.json()["error"] == "NODE_OFFLINE"
            assert site.coil_writes() == [True, False]


async def run_passing_test(site: Site, c: httpx.AsyncClient) -> int:
    r = await c.post("/api/v1/gentests", headers=site.auth("technician"),
                     json={"notes": "Maandtest, geen bijzonderheden"})
    assert r.status_code == 201, r.text
    test_id: int = r.json()["id"]
    await site.cycle(2)  # cranking
    site.node(**{**IDLE, "gen_state": 1, "starter_battery_v": 985, "last_command": 1})
    await site.cycle(2)
    site.node(**RUNNING)
    await site.cycle(2)  # seen running 6 s after the command
    for minute in range(31):
        site.node(**{**RUNNING, "run_hours_h": IDLE["run_hours_h"] + minute * 100 // 60,
                     "fuel_l": IDLE["fuel_l"] - minute * 30 // 10})
        await site.cycle(60)
    return test_id


async def test_an_unverified_test_report_pdf_and_readiness(tmp_path: Path,
                                                      peers: list[Peer]) -> None:  # noqa: F811
    need_tool("pdftotext", "apt-get install -y poppler-utils")
    async for site in start_site(tmp_path, peers):
        async with site.client() as c:
            test_id = await run_passing_test(site, c)
            r = await c.get(f"/api/v1/gentests/{test_id}")
            rec = r.json()
            # the power node measures no load (no generator controller on this site): the run
            # is complete and every measured criterion met, but the test is NOT_VERIFIED
            assert rec["outcome"] == "NOT_VERIFIED", rec["reasons"]
            assert rec["passed"] is None and rec["end"] == "COMPLETED"
            assert rec["start_time_s"] == 6.0 and rec["crank_min_v"] == pytest.approx(9.85)
            assert rec["fuel_start_l"] == 900.0 and rec["fuel_used_l"] == pytest.approx(8.7)
            # ended by the cycle that set minute 29's values: 30 cycles of 60 s after running
            assert rec["run_hours_start_h"] == pytest.approx(123.45)
            assert rec["run_hours_end_h"] == pytest.approx(123.93)
            assert site.coil_writes() == [True, False]
            assert len(rec["samples"]) > 10
            r = await c.get("/api/v1/gentests/next")
            due = r.json()
            assert due["status"] == "never_tested"  # a test not verified moves no schedule
            r = await c.get(f"/api/v1/gentests/{test_id}/report.pdf")
            assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
            pdf = tmp_path / "report.pdf"
            text, pages = read_pdf(pdf, r.content)
            assert pages == 1
            for needle in ("Buurthuis De Linde", "nsp-linde", "NIET GEVERIFIEERD / NOT VERIFIED",
                           "2026-05-04 12:00:02 CEST (UTC+02:00)",  # the site's zone
                           "technician", "123.45 h", "123.93 h",
                           "900.0 L", "891.3 L", "9.85 V", "12.70 V", "6.0 s",
                           "Starttijd", "Start time", "Startaccu tijdens starten",
                           "Brandstofniveausensor", "Urenteller", "VOLDAAN / PASS",
                           "NIET GEMETEN / NOT MEASURED", "Spanning / Voltage",
                           "Frequentie / Frequency",
                           "Maandtest, geen bijzonderheden", "NFPA 110", "10 jaar",
                           "Verloop / Course of the test"):
                assert needle in text, f"{needle!r} not in the report:\n{text}"
            assert "NIET VOLDAAN" not in text and "PASSED" not in text
            # the report as a picture for docs/ (`make screenshots`); pdftoppm is poppler's too
            png = shot_path(tmp_path, "gentest-report")
            subprocess.run(["pdftoppm", "-png", "-r", "70", "-singlefile", str(pdf), str(png)],
                           check=True, capture_output=True)
            assert png.with_suffix(".png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
            assert (await c.get("/api/v1/gentests/77/report.pdf")).status_code == 404
        # the same report from the command line, reading site.db while the service runs
        toml = tmp_path / "site.toml"
        toml.write_text(f'[site]\nid = "nsp-linde"\nname = "Buurthuis De Linde"\n'
                        f'[storage]\ndata_dir = "{tmp_path / "edge"}"\n'
                        '[[buses]]\nname = "tcp"\nkind = "tcp"\nhost = "127.0.0.1"\n'
                        'port = 1\n[[nodes]]\nname = "power"\nbus = "tcp"\nunit = 1\n'
                        'roles = ["power"]\n')
        cli = [sys.executable, "-m", "edge_server.cli", "gentest"]
        out = tmp_path / "cli.pdf"
        done = subprocess.run([*cli, "report", str(test_id), "--config", str(toml), "--out",
                               str(out)], capture_output=True, text=True, cwd=ROOT, timeout=60)
        assert done.returncode == 0, done.stderr
        cli_text = subprocess.run(["pdftotext", "-layout", str(out), "-"], check=True,
                                  capture_output=True, text=True).stdout
        assert "Buurthuis De Linde" in cli_text and "NOT VERIFIED" in cli_text
        assert "9.85 V" in cli_text
        listed = subprocess.run([*cli, "list", "--config", str(toml)], capture_output=True,
                                text=True, cwd=ROOT, timeout=60)
        assert listed.returncode == 0 and "Niet geverifieerd" in listed.stdout
        assert "technician" in listed.stdout
        missing = subprocess.run([*cli, "report", "999", "--config", str(toml), "--out",
                                  str(tmp_path / "x.pdf")], capture_output=True, text=True,
                                 cwd=ROOT, timeout=60)
        assert missing.returncode == 2 and "999" in missing.stderr
        # readiness reads the same table: a test not verified is no pass (and no failure)
        engine = site.service.rules.engine
        assert engine is not None
        codes = {r.code for r in engine.assess(site.clock.now()).reasons}
        assert "GENTEST_NONE" in codes and "GENTEST_FAILED" not in codes, codes


async def test_finished_test_goes_to_the_hub_as_kind_gentest(tmp_path: Path,
                                                             peers: list[Peer]) -> None:  # noqa: F811
    clock = ManualClock(START)  # one clock for the site and the hub (signed timestamps)
    with running_hub(tmp_path / "hub", clock=clock) as hub:
        key_file = tmp_path / "site.key"
        key_file.write_text(hub.store.add_site("nsp-linde", START))

        def uplink() -> dict[str, Any]:
            return {"enabled": True, "hub_url": hub.url, "key_file": str(key_file)}

        async for site in start_site(tmp_path, peers, uplink, clock):
            async with site.client() as c:
                test_id = await run_passing_test(site, c)
            deadline = time.monotonic() + 10
            while not hub.store.messages("nsp-linde", "gentest"):
                assert time.monotonic() < deadline, "no gentest message at the hub"
                await asyncio.sleep(0.02)
            (msg,) = hub.store.messages("nsp-linde", "gentest")
            assert msg["body"]["id"] == test_id and msg["body"]["outcome"] == "NOT_VERIFIED"
            assert msg["body"]["kind"] == "monthly" and msg["body"]["end"] == "COMPLETED"
            schema_validator("gentest-body.json").validate(msg["body"])


@pytest.mark.parametrize(
    ("days_since", "status"),
    [(None, DueStatus.NEVER_TESTED), (0, DueStatus.TOO_EARLY), (19.9, DueStatus.TOO_EARLY),
     (20, DueStatus.DUE), (30, DueStatus.DUE), (40, DueStatus.DUE),
     (40.01, DueStatus.OVERDUE), (400, DueStatus.OVERDUE)],
)
def test_next_due_window(days_since: float | None, status: DueStatus) -> None:
    now = START
    last = None if days_since is None else now - timedelta(days=days_since)
    due = next_due(now, RulesSettings(), last)
    assert due.status is status
    assert due.overdue is (status is DueStatus.OVERDUE)
    if last is not None:
        assert due.earliest == last + timedelta(days=20)
        assert due.target == last + timedelta(days=30)
        assert due.latest == last + timedelta(days=40)
    else:
        assert due.latest == now
    assert due.to_json()["text_nl"] and due.to_json()["text_en"]


def test_next_due_follows_the_settings() -> None:
    rules = RulesSettings.model_validate({"gentest_min_days": 7, "gentest_max_days": 14})
    due = next_due(START, rules, START - timedelta(days=10))
    assert due.status is DueStatus.DUE and due.latest == START + timedelta(days=4)
    assert next_due(START, rules, START - timedelta(days=15)).overdue


def test_example_site_toml_accepts_a_gentest_section() -> None:
    raw = tomllib.loads((ROOT / "examples" / "site.toml").read_text())
    raw["gentest"] = {"duration_min": 45, "max_start_s": 15, "crank_min_v": 9.0}
    cfg = SiteConfig.model_validate(raw)
    assert cfg.gentest.duration_min == 45 and cfg.gentest.crank_min_v == 9.0
    with pytest.raises(ValueError, match="gentest"):
        SiteConfig.model_validate({**raw, "gentest": {"duration_mins": 30}})


async def test_reads_need_a_token_when_the_site_says_so(tmp_path: Path,
                                                       peers: list[Peer]) -> None:  # noqa: F811
    async for site in start_site(tmp_path, peers, read_auth=True):
        async with site.client() as c:
            for url in ("/api/v1/gentests", "/api/v1/gentests/next", "/api/v1/gentests/status"):
                assert (await c.get(url)).status_code == 401, url
                r = await c.get(url, headers=site.auth("viewer"))
                assert r.status_code == 200, url


async def test_status_for_the_site_page(tmp_path: Path, peers: list[Peer]) -> None:  # noqa: F811
    """GET /gentests/status: why a start would be refused now, the running test's progress on
    the edge's clock, the last finished test and the next due date; POST still decides."""
    async for site in start_site(tmp_path, peers):
        async with site.client() as c:
            st = (await c.get("/api/v1/gentests/status")).json()
            assert st["active"] is None and st["last"] is None and st["blocked"] is None
            assert st["next"]["status"] == "never_tested" and st["duration_min"] == 30
            assert st["now"] == START.replace(second=2).isoformat()

            site.node(**{**IDLE, "mains_present": 0})
            await site.cycle(2)
            st = (await c.get("/api/v1/gentests/status")).json()
            blocked = st["blocked"]
            assert blocked["error"] == "MAINS_ABSENT" and "afwezig" in blocked["text_nl"]
            site.node(**IDLE)
            await site.cycle(2)

            r = await c.post("/api/v1/gentests", headers=site.auth("technician"))
            test_id = r.json()["id"]
            st = (await c.get("/api/v1/gentests/status")).json()
            assert st["blocked"]["error"] == "TEST_RUNNING"
            act = st["active"]
            assert act["id"] == test_id and act["phase"] == "STARTING"
            assert act["progress"] == 0 and act["remaining_s"] == 1800 and act["running_at"] is None
            await site.cycle(2)
            site.node(**RUNNING)
            await site.cycle(2)  # seen running 4 s after the command
            await site.cycle(600)
            act = (await c.get("/api/v1/gentests/status")).json()["active"]
            assert act["phase"] == "RUNNING" and act["elapsed_s"] == 604
            assert act["ran_s"] == 600 and act["remaining_s"] == 1200
            assert act["progress"] == pytest.approx(1 / 3, abs=1e-4)

            await c.post(f"/api/v1/gentests/{test_id}/abort", headers=site.auth("operator"))
            st = (await c.get("/api/v1/gentests/status")).json()
            assert st["active"] is None
            assert st["last"]["id"] == test_id and st["last"]["outcome"] == "ABORTED"


async def test_test_ids_past_sqlite_integers_are_422(tmp_path: Path,
                                                     peers: list[Peer]) -> None:  # noqa: F811
    async for site in start_site(tmp_path, peers):
        async with site.client() as c:
            for path in (f"/api/v1/gentests/{2**63}", f"/api/v1/gentests/{2**63}/report.pdf"):
                r = await c.get(path)
                assert r.status_code == 422 and r.json()["detail"][0]["loc"] == \
                    ["path", "test_id"], (path, r.text)
            r = await c.post(f"/api/v1/gentests/{2**64}/abort", headers=site.auth("operator"))
            assert r.status_code == 422, r.text
            assert (await c.get(f"/api/v1/gentests/{2**63 - 1}")).status_code == 404
