"""The emergency report form on the site page in real headless Chromium, end to end.

A real edge service (storage, rules, uplink, crisis; its web app served by uvicorn) with its
uplink to a real hub on localhost. Staff type a report in the browser with an operator's token;
it reaches the hub over the signed link; an operator acknowledges it on the hub's board; the
acknowledgement comes back over the link and the site page shows "ontvangen door de C-NSP om
HH:MM" (the site's zone). A viewer's token is refused and what was typed is kept.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path

import httpx

from edge_server.api.app import create_app, serving
from edge_server.auth import Role, UserStore
from edge_server.clock import ManualClock
from edge_server.hub.testing import RunningHub
from edge_server.service import Service
from edge_server.storage.component import site_db_path
from tests import test_uplink_e2e
from tests.conftest import free_port, need_tool
from tests.test_edge_reports import PARTS, site_config
from tests.test_site_page import CHROMIUM_ARGS
from tests.test_uplink_component import until

clock = test_uplink_e2e.clock
hub = test_uplink_e2e.hub


async def test_a_report_typed_on_the_site_page_is_acknowledged_by_the_hub(
    hub: RunningHub, tmp_path: Path, clock: ManualClock
) -> None:
    need_tool("chromium", "apt-get install -y chromium")
    from playwright.async_api import async_playwright, expect

    config = site_config(hub, tmp_path, clock)
    site_id = config.site.id
    service = Service(config, clock, parts=PARTS)
    await service.start(run_poller=False)
    port = free_port()
    try:
        users = UserStore(site_db_path(Path(config.storage.data_dir)))
        staff = users.add("piet", Role.OPERATOR, clock.now())
        viewer = users.add("vera", Role.VIEWER, clock.now())
        async with serving(create_app(service, manage_service=False), "127.0.0.1", port), \
                async_playwright() as p:
            browser = await p.chromium.launch(executable_path="/usr/bin/chromium",
                                              args=CHROMIUM_ARGS)
            try:
                context = await browser.new_context(timezone_id="UTC", locale="nl-NL")
                page = await context.new_page()
                await page.goto(f"http://127.0.0.1:{port}/")
                await expect(page.locator("body[data-loaded='1']")).to_have_count(1)
                await expect(page.locator("#rp-title")).to_have_text(
                    "Noodhulpmelding aan het C-NSP")
                await page.select_option("#rp-kind", "medical")
                await page.select_option("#rp-urgency", "immediate")
                await page.fill("#rp-location", "Wachtruimte")
                await page.fill("#rp-people", "2")
                await page.fill("#rp-text", "<b>Onwel</b>, ademt")
                # No token kept: the token form is asked for; a viewer's token is refused and
                # the typed report stays in the form.
                await page.click("#rp-send")
                await expect(page.locator("#rp-msg")).to_have_attribute("data-code",
                                                                        "rp_need_token")
                await page.fill("#token", viewer)
                await page.click("#token-form button[type=submit]")
                await expect(page.locator("#rp-msg")).to_have_attribute("data-code", "rp_e403")
                await expect(page.locator("#rp-location")).to_have_value("Wachtruimte")
                assert hub.store.messages(site_id, "report") == []
                await page.fill("#token", staff)
                await page.click("#token-form button[type=submit]")
                await expect(page.locator("#rp-msg")).to_have_attribute("data-code", "rp_sent")
                await expect(page.locator("#rp-location")).to_have_value("")

                await until(lambda: len(hub.store.messages(site_id, "report")) == 1,
                            "report at hub")
                [held] = hub.store.messages(site_id, "report")
                body = held["body"]
                assert (body["kind"], body["urgency"], body["location"], body["people"],
                        body["text"], body["reported_by"]) == (
                    "medical", "immediate", "Wachtruimte", 2, "<b>Onwel</b>, ademt", "piet")
                item = page.locator(f"#rp-list li[data-report='{body['report_id']}']")
                await expect(item).to_contain_text("Medisch · Direct · Wachtruimte · 2 personen")
                await expect(item.locator(".rp-text")).to_have_text("<b>Onwel</b>, ademt")
                assert await item.locator("b").count() == 0  # the text as text
                await expect(item.locator(".rp-state")).to_have_text(
                    re.compile("afgeleverd, nog niet bevestigd|in de wachtrij naar het C-NSP"))

                # 06:17 UTC is 07:17 in Amsterdam (CET): the site's zone, not the browser's.
                clock.advance(timedelta(minutes=17).total_seconds())
                # On the hub's board (its own page): at the top, unacknowledged; acknowledged.
                token = hub.store.add_user("olga", "operator")
                board = await context.new_page()
                await board.goto(hub.url + "/")
                await board.fill("#token", token)
                await board.click("#login button[type=submit]")
                row = board.locator(f"#reports-table tr[data-report='{site_id}/"
                                    f"{body['report_id']}']")
                await expect(row.locator(".report-text")).to_have_text("<b>Onwel</b>, ademt")
                await expect(board.locator("#reports-alarm")).to_be_visible()
                await row.locator("button.report-ack").click()
                await expect(row.locator(".state")).to_contain_text("bevestigd door olga")
                await expect(board.locator("#reports-alarm")).to_be_hidden()
                r = httpx.get(f"{hub.url}/api/v1/reports",
                              headers={"Authorization": f"Bearer {token}"}, timeout=10)
                assert r.json()["reports"][0]["ack"]["by"] == "olga"
                assert service.uplink is not None and service.uplink.uplink is not None
                clock.advance(1)
                service.uplink.uplink.notify()
                await expect(item.locator(".rp-state")).to_have_text(
                    "ontvangen door de C-NSP om 07:17", timeout=15_000)
                await expect(item).to_have_class("acked")
                await page.click("#lang")
                await expect(item.locator(".rp-state")).to_have_text(
                    "received by the C-NSP at 07:17")
            finally:
                await browser.close()
    finally:
        await service.stop()
