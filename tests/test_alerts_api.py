"""Alerts and readiness over the real API: the real Service with storage + rules components,
a real SQLite file, real tokens. Values are put into the site state and the state's listeners
are notified, exactly as the poller does after a cycle."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge_server.api.app import create_app
from edge_server.auth import Role, UserStore
from edge_server.clock import ManualClock
from edge_server.config import parse_config
from edge_server.rules.component import RulesEngine
from edge_server.service import Part, Service
from edge_server.state import Quality, Reading

TOML = """
[site]
id = "test-site"
[storage]
data_dir = "{data}"
[[buses]]
name = "b"
kind = "tcp"
host = "127.0.0.1"
port = 1
[[nodes]]
name = "power1"
bus = "b"
unit = 1
roles = ["power"]
[[nodes]]
name = "fridge1"
bus = "b"
unit = 2
roles = ["fridge"]
[fuel]
tank_capacity_l = 1000
"""

POWER = {"mains_present": True, "gen_running": False, "gen_state": 0, "gen_run_reason": 0,
         "power_faults": 0, "fuel_l": 900.0, "starter_battery_v": 12.7, "battery_v": 13.0,
         "battery_soc_pct": 90.0, "boot_count": 3}


class Site:
    def __init__(self, service: Service, clock: ManualClock) -> None:
        self.service, self.clock = service, clock
        self.app = create_app(service, manage_service=False)
        self.messages: list[dict[str, Any]] = []
        self.engine.add_sink(self.messages.append)

    @property
    def engine(self) -> RulesEngine:
        engine = self.service.rules.engine
        assert engine is not None
        return engine

    def cycle(self, fridge_temp_c: float, seconds: float = 60) -> None:
        """One poll cycle's worth of values, then advance the clock."""
        now = self.clock.now()
        state = self.service.state
        for node in state.nodes.values():
            node.online, node.last_ok = True, now
        for name, value in POWER.items():
            state.put(Reading("power1", name, value, "", now, Quality.GOOD))
        for name, value in (("fridge_temp_c", fridge_temp_c), ("fridge_faults", 0),
                            ("door_open", False), ("door_open_s", 0), ("boot_count", 1)):
            state.put(Reading("fridge1", name, value, "", now, Quality.GOOD))
        state.notify(now)
        self.clock.advance(seconds)

    def client(self) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=("10.0.0.9", 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://edge")


async def start_site(data: Path, clock: ManualClock) -> AsyncIterator[Site]:
    config = parse_config(TOML.format(data=data))
    service = Service(config, clock, parts=Part.STORAGE | Part.RULES)
    await service.start(run_poller=False)
    try:
        yield Site(service, clock)
    finally:
        await service.stop()


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


def tokens(site: Site) -> dict[str, str]:
    users = UserStore(site.service.storage.require().connection)
    return {role.label: users.add(role.label, role, site.clock.now()) for role in Role}


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_ack_needs_operator(tmp_path: Path, clock: ManualClock) -> None:
    async for site in start_site(tmp_path / "data", clock):
        tok = tokens(site)
        for _ in range(3):
            site.cycle(5.0)
        site.cycle(16.0)
        async with site.client() as c:
            r = await c.get("/api/v1/alerts", params={"state": "open"})
            assert r.status_code == 200
            alerts = r.json()["alerts"]
            assert [a["code"] for a in alerts] == ["FRIDGE_HIGH_INSTANT"]
            alert = alerts[0]
            assert alert["state"] == "raised" and alert["severity"] == "critical"
            assert "koelkast" in alert["text_nl"] and "fridge" in alert["text_en"]
            url = f"/api/v1/alerts/{alert['id']}/ack"
            assert (await c.post(url)).status_code == 401
            assert (await c.post(url, headers=bearer("not-a-token"))).status_code == 401
            r = await c.post(url, headers=bearer(tok["viewer"]))
            assert r.status_code == 403
            r = await c.post(url, headers=bearer(tok["operator"]))
            assert r.status_code == 200, r.text
            assert r.json()["state"] == "acknowledged"
            assert r.json()["acknowledged_by"] == "operator"
            assert r.json()["acknowledged_at"] == clock.now().isoformat()
            r = await c.post(url, headers=bearer(tok["admin"]))
            assert r.status_code == 409 and "already acknowledged by operator" in r.json()["detail"]
            r = await c.post("/api/v1/alerts/9999/ack", headers=bearer(tok["operator"]))
            assert r.status_code == 404
            r = await c.get("/api/v1/alerts", params={"state": "bogus"})
            assert r.status_code == 422
        sent = [m for m in site.messages if m["kind"] == "alert"]
        assert [m["body"]["state"] for m in sent] == ["raised", "acknowledged"]
        assert sent[0]["body"]["alert_id"] == str(alert["id"])


async def test_alerts_survive_restart_and_are_not_raised_twice(
    tmp_path: Path, clock: ManualClock
) -> None:
    data = tmp_path / "data"
    async for site in start_site(data, clock):
        tok = tokens(site)
        site.cycle(5.0)
        site.cycle(16.0)
        async with site.client() as c:
            alert = (await c.get("/api/v1/alerts")).json()["alerts"][0]
            r = await c.post(f"/api/v1/alerts/{alert['id']}/ack", headers=bearer(tok["operator"]))
            assert r.status_code == 200
    assert (data / "site.db").exists()

    async for site in start_site(data, clock):  # a new process would see the same file
        for _ in range(5):
            site.cycle(16.5)  # still too warm: the open alert is resumed, not raised again
        async with site.client() as c:
            after = (await c.get("/api/v1/alerts")).json()["alerts"]
            assert [(a["id"], a["code"], a["state"], a["acknowledged_by"]) for a in after] == [
                (alert["id"], "FRIDGE_HIGH_INSTANT", "acknowledged", "operator")
            ]
            assert not [m for m in site.messages if m["kind"] == "alert"]
            site.cycle(5.0)
            assert (await c.get("/api/v1/alerts")).json()["alerts"] == []
            history = (await c.get("/api/v1/alerts", params={"state": "all"})).json()["alerts"]
            cleared = [a for a in history if a["id"] == alert["id"]][0]
            assert cleared["state"] == "cleared" and cleared["acknowledged_by"] == "operator"
        cleared_msgs = [m["body"] for m in site.messages if m["kind"] == "alert"]
        assert [b["state"] for b in cleared_msgs] == ["cleared"]


async def test_readiness_endpoint(tmp_path: Path, clock: ManualClock) -> None:
    async for site in start_site(tmp_path / "data", clock):
        async with site.client() as c:
            r = await c.get("/api/v1/readiness")
            assert r.status_code == 200
            assert r.json()["state"] == "UNKNOWN"  # no cycle yet: nothing known about power
            site.cycle(5.0)
            body = (await c.get("/api/v1/readiness")).json()
            codes = [x["code"] for x in body["reasons"]]
            # no generator test on record and no uplink configured: DEGRADED, with both reasons
            assert body["state"] == "DEGRADED"
            assert set(codes) == {"GENTEST_NONE", "UPLINK_UNKNOWN"}
            assert all(x["text_nl"] and x["text_en"] for x in body["reasons"])
            assert body["autonomy"]["hours"] == pytest.approx((900 - 10) / 6.8, rel=0.01)
            assert body["status"]["fridge_temp_c"] == 5.0
            status_msgs = [m for m in site.messages if m["kind"] == "status"]
            assert status_msgs and status_msgs[-1]["body"]["readiness"] == "DEGRADED"


def test_a_failing_rule_does_not_stop_the_other_listeners(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    from collections.abc import Iterable
    from datetime import datetime

    from edge_server.rules.engine import Condition, Limit, Sample, Severity
    from edge_server.rules.settings import FuelSettings, RulesSettings
    from edge_server.state import SiteState
    from edge_server.storage.db import open_db

    class Broken(Condition):
        code = "BROKEN"
        severity = Severity.INFO
        text_en = text_nl = "x"
        limit = Limit(1.0)

        def samples(self, state: SiteState, now: datetime) -> Iterable[Sample]:
            raise ZeroDivisionError("a bug in a rule")

    conn = open_db(tmp_path / "site.db")
    try:
        engine = RulesEngine(RulesSettings(), FuelSettings(), conn=conn)
        engine.ruleset.evaluator.conditions.append(Broken())
        state = SiteState("s")
        after: list[datetime] = []
        state.subscribe(engine.on_cycle)
        state.subscribe(lambda _s, now: after.append(now))
        now = ManualClock().now()
        state.notify(now)
        assert after == [now]
        assert "rules evaluation failed" in caplog.text and "ZeroDivisionError" in caplog.text
    finally:
        conn.close()


def test_a_refuel_is_an_event_and_survives_a_restart(tmp_path: Path) -> None:
    """FUEL_REFUELLED is stored; after a restart the fuel age counts from it, not from the
    (old) configured last_refuel_date, so FUEL_OLD is not raised."""
    from datetime import date

    from edge_server.rules.settings import FuelSettings, RulesSettings
    from edge_server.state import NodeStatus, SiteState
    from edge_server.storage.db import open_db

    clock = ManualClock()
    fuel = FuelSettings(tank_capacity_l=1000, last_refuel_date=date(2024, 1, 1))
    state = SiteState("s")
    state.add_node(NodeStatus("power1", 1, "b", ("power",), online=True))

    def cycle(engine: RulesEngine, fuel_l: float) -> list[str]:
        now = clock.now()
        for name, value in {**POWER, "fuel_l": fuel_l}.items():
            state.put(Reading("power1", name, value, "", now, Quality.GOOD))
        state.nodes["power1"].last_ok = now
        changed = engine.evaluate(state, now)
        clock.advance(60)
        return [a.code for a in changed]

    conn = open_db(tmp_path / "site.db")
    engine = RulesEngine(RulesSettings(), fuel, conn=conn)
    codes = [c for _ in range(5) for c in cycle(engine, 700.0)]
    assert codes == ["FUEL_OLD"]  # the configured delivery is more than 12 months old
    codes = [c for _ in range(5) for c in cycle(engine, 950.0)]
    assert sorted(codes) == ["FUEL_OLD", "FUEL_REFUELLED"]  # the event; FUEL_OLD clears
    assert engine.store.open_alerts() == []
    event = [a for a in engine.store.query(open_only=False) if a.code == "FUEL_REFUELLED"][0]
    assert event.kind == "event" and event.value == pytest.approx(250.0)
    assert "+250 L" in event.text_en and "bijgevuld" in event.text_nl
    conn.close()

    conn = open_db(tmp_path / "site.db")
    try:
        restarted = RulesEngine(RulesSettings(), fuel, conn=conn)
        codes = [c for _ in range(5) for c in cycle(restarted, 950.0)]
        assert codes == []  # no second refuel event, no FUEL_OLD from the configured date
    finally:
        conn.close()


async def test_stalled_poller_raises_data_stale(tmp_path: Path, clock: ManualClock) -> None:
    """No poll cycle at all (the poller hangs): the rules component's watchdog check evaluates
    on its own and DATA_STALE comes up for the nodes that still claim to be online."""
    async for site in start_site(tmp_path / "data", clock):
        site.cycle(5.0)
        component = site.service.rules
        assert component.check_stale(clock.now()) is False  # a cycle just came
        clock.advance(200)
        assert component.check_stale(clock.now()) is True
        open_codes = {(a.code, a.subject) for a in site.engine.store.open_alerts()}
        assert open_codes == {("DATA_STALE", "power1"), ("DATA_STALE", "fridge1")}


async def test_ids_past_sqlite_integers_are_refused_at_the_door(tmp_path: Path,
                                                                clock: ManualClock) -> None:
    """An id past 2^63 - 1 overflowed SQLite's INTEGER inside the query: a 500. Now 422 naming
    the id; the largest id SQLite takes is an ordinary 'not found'."""
    async for site in start_site(tmp_path / "data", clock):
        tok = tokens(site)
        async with site.client() as http:
            for alert_id in (2**63, 10**30, 0, -1):
                r = await http.post(f"/api/v1/alerts/{alert_id}/ack",
                                    headers=bearer(tok["operator"]))
                assert r.status_code == 422, (alert_id, r.status_code, r.text)
                assert r.json()["detail"][0]["loc"] == ["path", "alert_id"]
            r = await http.post(f"/api/v1/alerts/{2**63 - 1}/ack", headers=bearer(tok["operator"]))
            assert r.status_code == 404
            r = await http.post(f"/api/v1/alerts/{2**63}/ack")  # no token: still 401 first
            assert r.status_code == 401
