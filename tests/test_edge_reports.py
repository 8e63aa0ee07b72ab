"""Emergency reports typed at the site: the edge service's API -> crisis store -> outbox (first)
-> the real hub (uvicorn, SQLite) -> an operator's acknowledgement -> back at the site.

Real parts: the edge Service (storage, rules, uplink, crisis) with its own uplink task, its web
app over httpx (ASGI), a real hub on localhost. The test waits for effects with short deadlines.
"""

from __future__ import annotations

import tomllib
import uuid
from pathlib import Path
from typing import Any

import httpx

from edge_server.api.app import create_app
from edge_server.auth import Role, UserStore
from edge_server.clock import ManualClock
from edge_server.config import SiteConfig
from edge_server.crisis.store import FILE_NAME, CrisisStore
from edge_server.hub.testing import RunningHub
from edge_server.service import Part, Service
from edge_server.storage.component import site_db_path
from edge_server.uplink.protocol import iso
from tests import test_uplink_e2e
from tests.conftest import ROOT
from tests.test_uplink_component import until

# The fixtures of tests/test_uplink_e2e.py (a hub on localhost with a ManualClock).
clock = test_uplink_e2e.clock
hub = test_uplink_e2e.hub

PARTS = Part.STORAGE | Part.RULES | Part.UPLINK | Part.CRISIS


def site_config(hub: RunningHub, tmp: Path, clock: ManualClock) -> SiteConfig:
    raw = tomllib.loads((ROOT / "examples" / "site.toml").read_text())
    key_file = tmp / "site.key"
    key_file.write_text(hub.store.add_site(raw["site"]["id"], clock.now()))
    raw["storage"] = {"data_dir": str(tmp / "edge")}
    raw["uplink"] = {"enabled": True, "hub_url": hub.url, "key_file": str(key_file)}
    return SiteConfig.model_validate(raw)


async def call(service: Service, method: str, path: str, token: str | None = None,
               **kw: Any) -> httpx.Response:
    app = create_app(service, manage_service=False)
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://site") as c:
        return await c.request(method, path, headers=headers, **kw)


REPORT = {"kind": "medical", "urgency": "immediate", "location": "Wachtruimte",
          "people": 1, "text": "<b>Onwel</b>, ademt"}


async def test_a_report_reaches_the_hub_and_its_acknowledgement_comes_back(
    hub, tmp_path, clock
) -> None:
    config = site_config(hub, tmp_path, clock)
    site_id = config.site.id
    service = Service(config, clock, parts=PARTS)
    await service.start(run_poller=False)
    try:
        data = Path(config.storage.data_dir)
        users = UserStore(site_db_path(data))
        staff = users.add("piet", Role.OPERATOR, clock.now())
        viewer = users.add("vera", Role.VIEWER, clock.now())
        assert (await call(service, "POST", "/api/v1/reports", json=REPORT)).status_code == 401
        assert (await call(service, "POST", "/api/v1/reports", viewer,
                           json=REPORT)).status_code == 403
        for bad in ({"kind": "flood"}, {"location": "x" * 201}, {"people": -1},
                    {"text": "x" * 2001}, {"colour": "red"}, {"location": "  "}):
            r = await call(service, "POST", "/api/v1/reports", staff, json=REPORT | bad)
            assert r.status_code == 422, (bad, r.text)
        r = await call(service, "POST", "/api/v1/reports", staff, json=REPORT)
        assert r.status_code == 201, r.text
        report = r.json()["report"]
        assert (report["reported_by"], report["text"]) == ("piet", "<b>Onwel</b>, ademt")

        await until(lambda: len(hub.store.messages(site_id, "report")) == 1, "report at hub")
        [held] = hub.store.messages(site_id, "report")
        assert held["body"]["report_id"] == report["report_id"]
        await until(lambda: service.crisis is not None and service.crisis.store is not None
                    and service.crisis.store.reports()[0]["delivered_at"] is not None,
                    "delivered at the site")

        token = hub.store.add_user("olga", "operator")
        ack_at = iso(clock.now())
        url = f"{hub.url}/api/v1/reports/{site_id}/{report['report_id']}/ack"
        assert httpx.post(url, headers={"Authorization": f"Bearer {token}"},
                          timeout=10).status_code == 200
        assert service.uplink is not None and service.uplink.uplink is not None
        clock.advance(1)
        service.uplink.uplink.notify()  # the next exchange carries the acknowledgement back
        crisis = service.crisis
        assert crisis is not None and crisis.store is not None
        await until(lambda: crisis.store is not None
                    and crisis.store.reports()[0]["ack"] is not None, "ack at the site")
        r = await call(service, "GET", "/api/v1/reports", staff)
        assert r.status_code == 200, r.text
        assert r.json()["reports"][0]["ack"] == {"by": "olga", "at": ack_at}
        # The site confirmed it: the hub stops repeating the acknowledgement.
        await until(lambda: len(hub.store.messages(site_id, "receipt")) == 1, "receipt at hub")
        assert (await call(service, "GET", "/api/v1/reports", viewer)).status_code == 403
    finally:
        await service.stop()


async def test_a_report_committed_before_a_crash_is_sent_at_the_next_start_once(
    hub, tmp_path, clock
) -> None:
    config = site_config(hub, tmp_path, clock)
    site_id = config.site.id
    # What a kill -9 between the two commits leaves: the report in crisis.sqlite, not in the
    # outbox (handed_off = 0).
    store = CrisisStore(Path(config.storage.data_dir) / FILE_NAME)
    body = REPORT | {"report_id": str(uuid.uuid4()), "reported_by": "piet",
                     "reported_at": iso(clock.now())}
    store.add_report(body, str(uuid.uuid4()), clock.now())
    store.close()
    for _ in range(2):  # and a second start sends nothing again
        service = Service(config, clock, parts=PARTS)
        await service.start(run_poller=False)
        try:
            await until(lambda: len(hub.store.messages(site_id, "report")) == 1, "report at hub")
            assert service.uplink is not None and service.uplink.uplink is not None
            outbox = service.uplink.uplink.outbox
            await until(lambda box=outbox: box.pending() == 0, "outbox drained")  # type: ignore[misc]
        finally:
            await service.stop()
    assert [m["body"]["report_id"] for m in hub.store.messages(site_id, "report")] == [
        body["report_id"]]
