"""Writing a bulletin on the hub's board in real headless Chromium, and its delivery receipts.

Three sites in two regions. The operator writes a bulletin for region Noord in the browser (HTML
in its text); a refused one (an unknown site) shows the hub's reason and keeps what was typed;
the list shows the bulletin as text with "0 of 2" arrived, and "1 of 2" once a site's receipt came
in over the signed ingest (as the edge sends it).
"""

from __future__ import annotations

from typing import Any

import httpx

from edge_server.clock import ManualClock
from edge_server.hub.testing import RunningHub
from tests import test_hub_api
from tests.conftest import need_tool
from tests.test_bulletins import exchange, receipt
from tests.test_hub_board import board_page

clock = test_hub_api.clock
hub = test_hub_api.hub


def test_a_bulletin_written_on_the_board_and_its_receipts(hub: RunningHub,
                                                          clock: ManualClock) -> None:
    need_tool("chromium", "apt-get install -y chromium")
    from playwright.sync_api import expect

    keys = {s: hub.store.add_site(s, clock.now(), region=r).encode()
            for s, r in (("nsp-a", "Noord"), ("nsp-b", "Noord"), ("nsp-c", "Zuid"))}
    token = hub.store.add_user("olga", "operator")
    html = "<img src=x onerror=\"window.pwned=1\"> Water bij de sporthal"

    with board_page(hub, token) as page:
        expect(page.locator("#bl-table tbody")).to_have_text("Nog geen berichten")
        page.fill("#bl-title-nl", "Drinkwater")
        page.fill("#bl-text-nl", html)
        page.select_option("#bl-target", "sites")
        page.fill("#bl-site-ids", "nsp-a, nsp-zz")
        page.click("#bl-send")
        expect(page.locator("#bl-msg")).to_contain_text("Niet verstuurd: sites: not "
                                                        "registered: nsp-zz")
        expect(page.locator("#bl-title-nl")).to_have_value("Drinkwater")
        page.select_option("#bl-target", "region")
        page.select_option("#bl-region", "Noord")
        page.fill("#bl-hours", "6")
        page.click("#bl-send")
        expect(page.locator("#bl-msg")).to_contain_text("Bericht opgeslagen")
        row = page.locator("#bl-table tbody tr[data-bulletin]")
        expect(row).to_have_count(1)
        expect(row.locator(".bl-text")).to_contain_text(html)
        assert row.locator("img").count() == 0
        assert page.evaluate("() => window.pwned") is None
        expect(row.locator(".issued")).to_contain_text("olga")
        expect(row.locator(".valid")).to_have_text("01-03-2026, 19:00")  # 6 h, Amsterdam
        expect(row.locator(".delivered")).to_contain_text("0 van 2")
        expect(row.locator(".bl-missing")).to_have_text("nog niet bij: nsp-a, nsp-b")

        bulletin_id = row.get_attribute("data-bulletin")
        assert bulletin_id
        reply: dict[str, Any] = exchange(hub, clock, "nsp-a", keys["nsp-a"])
        assert reply["bulletins"], reply
        exchange(hub, clock, "nsp-a", keys["nsp-a"], [receipt(bulletin_id, clock)])
        page.click("#lang")  # re-renders from the last data; then a fresh load
        page.reload()
        expect(page.locator("body[data-loaded='1']")).to_have_count(1)
        expect(row.locator(".delivered")).to_contain_text("1 of 2")
        expect(row.locator(".bl-missing")).to_have_text("not yet at: nsp-b")
        expect(page.locator("#bl-heading")).to_have_text("Bulletins for residents")
    [b] = httpx.get(hub.url + "/api/v1/bulletins",
                    headers={"Authorization": f"Bearer {token}"}).json()["bulletins"]
    assert b["target"] == {"region": "Noord"} and b["text_nl"] == html.strip()
