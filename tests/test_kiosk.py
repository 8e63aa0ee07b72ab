"""The site's side of bulletins: the real uplink client against the real hub (uvicorn, SQLite),
the crisis store, and the kiosk page and its data over HTTP.

A bulletin written by an operator reaches the site in its next exchange, is verified and kept,
confirmed with a receipt (the hub stops repeating it), and shown on /kiosk newest first; it is
still shown after the site's store is reopened (a restart) and while the hub is gone.
"""

from __future__ import annotations

import re
import tomllib
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from fastapi import FastAPI

from edge_server.api.app import create_app
from edge_server.clock import ManualClock
from edge_server.config import SiteConfig
from edge_server.crisis.inbox import CrisisInbox
from edge_server.crisis.kiosk import KioskSource, router
from edge_server.crisis.store import CrisisStore
from edge_server.hub.testing import RunningHub, sample_status
from edge_server.service import Part, Service
from edge_server.uplink.client import Uplink
from edge_server.uplink.notices import sign_notice
from edge_server.uplink.protocol import iso
from tests import test_uplink_e2e
from tests.conftest import ROOT
from tests.test_uplink_component import until
from tests.test_uplink_e2e import make_uplink

T0 = datetime(2026, 3, 1, 6, 0, tzinfo=UTC)  # the clock fixture's start
STATIC = Path(__file__).resolve().parent.parent / "edge_server" / "static"

# The fixtures of tests/test_uplink_e2e.py (a hub on localhost with a ManualClock at T0).
clock = test_uplink_e2e.clock
hub = test_uplink_e2e.hub


class Site:
    def __init__(self, hub: RunningHub, tmp: Path, clock: ManualClock, site_id: str) -> None:
        self.uplink: Uplink = make_uplink(hub, site_id, tmp, clock)
        keys = hub.store.site_keys(site_id, clock.now())
        assert keys is not None and keys.current is not None
        self.key = keys.current
        self.path = tmp / f"{site_id}-crisis.sqlite"
        self.store = CrisisStore(self.path)
        self.inbox = CrisisInbox(self.store, site_id, self.key, self.uplink.enqueue, clock)
        self.uplink.on_reply = self.inbox.take
        self.status: dict[str, Any] | None = {"readiness": "READY", "mains_present": False,
                                              "gen_running": True}
        app = FastAPI()
        app.include_router(router)
        app.state.kiosk = KioskSource(self.store, clock, f"NSP {site_id}",
                                      lambda _now: self.status, self.uplink.link_up)
        self.app = app

    async def exchange(self) -> None:
        """One batch with a status (any message would do: the reply is what matters here)."""
        self.uplink.enqueue("status", sample_status(at=self.uplink.clock.now()))
        assert await self.uplink.attempt()

    async def kiosk(self) -> dict[str, Any]:
        transport = httpx.ASGITransport(app=self.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://site") as c:
            r = await c.get("/api/v1/kiosk")
            assert r.status_code == 200, r.text
            data: dict[str, Any] = r.json()
            return data

    async def close(self) -> None:
        await self.uplink.aclose()
        self.uplink.outbox.close()
        self.store.close()


def write(hub: RunningHub, token: str, title: str, **doc: Any) -> dict[str, Any]:
    r = httpx.post(hub.url + "/api/v1/bulletins", timeout=10,
                   headers={"Authorization": f"Bearer {token}"},
                   json={"title_nl": title, "text_nl": f"Tekst van {title}"} | doc)
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def deliveries(hub: RunningHub, token: str) -> dict[str, dict[str, Any]]:
    r = httpx.get(hub.url + "/api/v1/bulletins", timeout=10,
                  headers={"Authorization": f"Bearer {token}"})
    return {b["title_nl"]: {d["site_id"]: d["confirmed_at"] for d in b["deliveries"]}
            for b in r.json()["bulletins"]}


async def test_a_bulletin_reaches_the_kiosk_is_confirmed_and_survives_a_restart(
    hub, tmp_path, clock
) -> None:
    a, b = Site(hub, tmp_path, clock, "nsp-a"), Site(hub, tmp_path, clock, "nsp-b")
    try:
        token = hub.store.add_user("olga", "operator")
        first = write(hub, token, "Drinkwater", text_nl="<img src=x onerror=alert(1)> bij de kerk")
        clock.advance(60)
        write(hub, token, "Stroom", title_en="Power", text_en="Back at 18:00", valid_hours=2)
        for site in (a, b):
            await site.exchange()  # the reply carries both; the receipts go in the outbox
        shown = await a.kiosk()
        assert [x["title_nl"] for x in shown["bulletins"]] == ["Stroom", "Drinkwater"]
        assert shown["bulletins"][1]["text_nl"] == "<img src=x onerror=alert(1)> bij de kerk"
        assert shown["bulletins"][1]["id"] == first["id"]
        assert shown["readiness"]["nl"].startswith("Dit noodsteunpunt is open")
        assert "noodaggregaat" in shown["power"]["nl"]
        assert "werkt" in shown["link"]["nl"]
        assert not re.search(r"READY|[A-Z]{3,}_[A-Z]", str(shown["readiness"]))  # no codes
        # The same attempt sent the receipts on (the outbox was not empty): both confirmed.
        assert deliveries(hub, token) == {
            "Stroom": {"nsp-a": iso(clock.now()), "nsp-b": iso(clock.now())},
            "Drinkwater": {"nsp-a": iso(clock.now()), "nsp-b": iso(clock.now())}}
        assert a.uplink.outbox.pending() == 0
        assert len(hub.store.messages("nsp-a", "receipt")) == 2
        clock.advance(30)
        await a.exchange()  # nothing comes again, so no receipt again
        assert len(a.store.bulletins()) == 2
        assert len(hub.store.messages("nsp-a", "receipt")) == 2

        # Restart: the store reopened; the hub gone; the kiosk still shows both, with the link down.
        a.store.close()
        a.store = a.inbox.store = CrisisStore(a.path)
        a.app.state.kiosk.store = a.store
        hub.stop()
        clock.advance(90)
        a.uplink.enqueue("status", sample_status(at=clock.now()))
        assert not await a.uplink.attempt()
        shown = await a.kiosk()
        assert [x["title_nl"] for x in shown["bulletins"]] == ["Stroom", "Drinkwater"]
        assert "onderbroken" in shown["link"]["nl"]
        assert shown["last_bulletin_at"] == iso(T0 + timedelta(seconds=60))
        # Expired bulletins leave the page.
        clock.advance(2 * 3600)
        assert [x["title_nl"] for x in (await a.kiosk())["bulletins"]] == ["Drinkwater"]
    finally:
        await a.close()
        await b.close()


async def test_foreign_and_unsigned_bulletins_are_refused_and_not_shown(
    hub, tmp_path, clock
) -> None:
    a, b = Site(hub, tmp_path, clock, "nsp-a"), Site(hub, tmp_path, clock, "nsp-b")
    try:
        doc = {"type": "bulletin", "site_id": "nsp-a", "id": str(uuid.uuid4()),
               "title_nl": "Vals", "text_nl": "Ga naar huis.", "valid_from": iso(T0),
               "valid_until": iso(T0 + timedelta(hours=1)), "issued_at": iso(T0),
               "issued_by": "x"}
        reply = {"held": [], "acks": [], "bulletins": [
            {"payload": sign_notice(a.key, "nsp-a", doc)["payload"]},  # unsigned
            sign_notice(b.key, "nsp-a", doc),  # another site's key
            sign_notice(b.key, "nsp-b", doc | {"site_id": "nsp-b"}),  # nsp-b's, copied
            "junk",
        ], "report_acks": [{"payload": "{}", "sig": "sha256=00"}]}
        taken = a.inbox.take(reply)
        assert (taken.refused, taken.bulletins_new) == (5, 0)
        assert (await a.kiosk())["bulletins"] == []
        assert a.uplink.outbox.pending() == 0  # no receipt for what was refused
        assert a.inbox.take({"bulletins": [sign_notice(a.key, "nsp-a", doc)]}).bulletins_new == 1
        assert [x["title_nl"] for x in (await a.kiosk())["bulletins"]] == ["Vals"]
    finally:
        await a.close()
        await b.close()


def test_the_kiosk_page_is_offline_large_and_sets_texts_as_text() -> None:
    html = (STATIC / "kiosk.html").read_text()
    js = (STATIC / "kiosk.js").read_text()
    css = (STATIC / "kiosk.css").read_text()
    for text in (html, js, css):
        assert not re.search(r"(src|href)=\"(https?:)?//", text)  # nothing from another host
        assert "http://" not in text.replace("http://site", "") and "https://" not in text
    assert "innerHTML" not in js and "insertAdjacentHTML" not in js
    assert "textContent" in js
    size = re.search(r"html \{[^}]*font-size: (\d+)px", css)
    assert size is not None and int(size.group(1)) >= 24
    assert 'src="/static/kiosk.js"' in html


async def test_the_kiosk_page_is_served() -> None:
    app = FastAPI()
    app.include_router(router)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                 base_url="http://site") as c:
        r = await c.get("/kiosk")
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
        assert "kiosk.js" in r.text
        r = await c.get("/api/v1/kiosk")  # no kiosk in this app: 404, not 500
        assert r.status_code == 404


async def test_a_report_acknowledgement_reaches_the_sites_report_log(
    hub, tmp_path, clock
) -> None:
    a = Site(hub, tmp_path, clock, "nsp-a")
    try:
        report_id = str(uuid.uuid4())
        body = {"report_id": report_id, "kind": "fire", "urgency": "urgent",
                "location": "Keuken", "people": None, "text": "", "reported_by": "piet",
                "reported_at": iso(clock.now())}
        a.store.add_report(body, str(uuid.uuid4()), clock.now())
        assert [r["ack"] for r in a.store.reports()] == [None]
        assert [b["report_id"] for b in a.store.undelivered()] == [report_id]
        ack = {"type": "report_ack", "site_id": "nsp-a", "report_id": report_id,
               "by": "olga", "at": iso(clock.now())}
        taken = a.inbox.take({"report_acks": [sign_notice(a.key, "nsp-a", ack)]})
        assert (taken.acks, taken.refused) == (1, 0)
        [report] = a.store.reports()
        assert report["ack"] == {"by": "olga", "at": iso(clock.now())}
        assert a.store.undelivered() == []  # acknowledged means the hub has it
        [receipt] = a.uplink.outbox.next_batch(10)
        assert (receipt.kind, receipt.body["of"], receipt.body["id"]) == (
            "receipt", "report_ack", report_id)
        # An acknowledgement of a report this site never sent: kept nowhere, still confirmed.
        other = ack | {"report_id": str(uuid.uuid4())}
        assert a.inbox.take({"report_acks": [sign_notice(a.key, "nsp-a", other)]}).acks == 0
    finally:
        await a.close()


async def test_the_edge_service_keeps_a_bulletin_and_serves_it_on_its_kiosk(
    hub, tmp_path, clock
) -> None:
    """The whole edge: Service (rules, uplink, crisis parts) and its web app, the hub's bulletin
    through the running uplink task to /api/v1/kiosk; kept over a restart of the service."""
    raw = tomllib.loads((ROOT / "examples" / "site.toml").read_text())
    site_id = raw["site"]["id"]
    key_file = tmp_path / "site.key"
    key_file.write_text(hub.store.add_site(site_id, clock.now()))
    raw["storage"] = {"data_dir": str(tmp_path / "edge")}
    raw["uplink"] = {"enabled": True, "hub_url": hub.url, "key_file": str(key_file)}
    config = SiteConfig.model_validate(raw)
    token = hub.store.add_user("olga", "operator")
    written = write(hub, token, "Opvang", text_nl="Opvang in de school tot 20:00.")

    async def kiosk(service: Service) -> dict[str, Any]:
        app = create_app(service, manage_service=False)
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app),
                                     base_url="http://site") as c:
            r = await c.get("/api/v1/kiosk")
            assert r.status_code == 200, r.text
            data: dict[str, Any] = r.json()
            return data

    parts = Part.RULES | Part.UPLINK | Part.CRISIS
    service = Service(config, clock, parts=parts)
    await service.start(run_poller=False)
    try:
        assert service.uplink is not None and service.uplink.uplink is not None
        service.uplink.uplink.notify()
        await until(lambda: deliveries(hub, token)["Opvang"][site_id] is not None,
                    "the site's receipt at the hub")
        shown = await kiosk(service)
        assert [(b["id"], b["text_nl"]) for b in shown["bulletins"]] == [
            (written["id"], "Opvang in de school tot 20:00.")]
        assert shown["site_name"] and shown["readiness"]["nl"]
    finally:
        await service.stop()
    hub.stop()
    service = Service(config, clock, parts=parts)
    await service.start(run_poller=False)
    try:
        assert [b["title_nl"] for b in (await kiosk(service))["bulletins"]] == ["Opvang"]
    finally:
        await service.stop()
