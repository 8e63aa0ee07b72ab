"""The kiosk page (/kiosk) in real headless Chromium: a bulletin written on the real hub reaches
the site through the real uplink and shows in large type with the site's state in plain words
and the time in Europe/Amsterdam, while Chromium itself runs in America/New_York. The page's
picture is docs/img/kiosk.png (`make screenshots`, tests/shots.py). A whole edge service whose
[site] timezone is Europe/Lisbon shows Lisbon's time: the page takes the zone from the API."""

from __future__ import annotations

import os
from contextlib import AsyncExitStack
from pathlib import Path

from fastapi.staticfiles import StaticFiles

from edge_server.api.app import STATIC_DIR, serving
from edge_server.clock import ManualClock
from edge_server.hub.testing import RunningHub
from tests import test_uplink_e2e
from tests.conftest import free_port, need_tool
from tests.shots import shot_path
from tests.test_bulletin_browser_e2e import edge_config, start_edge
from tests.test_kiosk import Site, deliveries, write
from tests.test_site_page import CHROMIUM_ARGS
from tests.test_uplink_component import until

clock = test_uplink_e2e.clock  # the hub's fixtures: a hub on localhost, ManualClock at T0
hub = test_uplink_e2e.hub


async def test_the_kiosk_shows_a_bulletin_in_large_type_and_amsterdams_time(
    hub: RunningHub, tmp_path: Path, clock: ManualClock
) -> None:
    need_tool("chromium", "apt-get install -y chromium")
    from playwright.async_api import async_playwright, expect

    site = Site(hub, tmp_path, clock, "nsp-de-linde")
    try:
        token = hub.store.add_user("olga", "operator")
        write(hub, token, "Drinkwater", text_nl="Water halen bij de sporthal, 10-16 uur.",
              title_en="Drinking water", text_en="Collect water at the sports hall, 10-16 h.")
        await site.exchange()
        site.app.state.kiosk.site_name = "Buurthuis De Linde"  # [site] name
        # the edge's web app serves the page's script and style (edge_server/api/app.py)
        site.app.mount("/static", StaticFiles(directory=str(STATIC_DIR)), name="static")
        port = free_port()
        async with serving(site.app, "127.0.0.1", port), async_playwright() as p:
            browser = await p.chromium.launch(executable_path="/usr/bin/chromium",
                                              args=CHROMIUM_ARGS,
                                              env={**os.environ, "TZ": "America/New_York"})
            try:
                page = await browser.new_page(viewport={"width": 1280, "height": 800})
                await page.goto(f"http://127.0.0.1:{port}/kiosk")
                item = page.locator("#bulletins li.bulletin")
                await expect(item.locator("h3.title").first).to_have_text("Drinkwater")
                await expect(page.locator("#site")).to_have_text("Buurthuis De Linde")
                assert await page.evaluate(
                    "Intl.DateTimeFormat().resolvedOptions().timeZone") == "America/New_York"
                body = await page.locator("body").inner_text()
                assert "noodaggregaat" in body and "werkt" in body, body  # state in words
                # T0 is 06:00 UTC on 1 March: 07:00 in Amsterdam (CET), 01:00 in New York
                assert "1 mrt, 07:00" in body and "01:00" not in body, body
                size = await item.locator("h3.title").first.evaluate(
                    "e => parseFloat(getComputedStyle(e).fontSize)")
                assert size >= 28, size  # readable from a few metres
                await page.screenshot(path=str(shot_path(tmp_path, "kiosk.png")), full_page=True)
            finally:
                await browser.close()
    finally:
        await site.close()


async def test_the_kiosk_shows_times_in_the_sites_configured_zone(
    hub: RunningHub, tmp_path: Path, clock: ManualClock
) -> None:
    """[site] timezone = "Europe/Lisbon" on a whole edge service: the kiosk shows Lisbon's time,
    neither Amsterdam's (the default) nor the browser's (America/New_York)."""
    need_tool("chromium", "apt-get install -y chromium")
    from playwright.async_api import async_playwright, expect

    config = edge_config(hub, tmp_path, clock, "nsp-lisboa")
    config.site.timezone = "Europe/Lisbon"
    token = hub.store.add_user("olga", "operator")
    write(hub, token, "Drinkwater", text_nl="Water halen bij de sporthal, 10-16 uur.")
    port = free_port()
    async with AsyncExitStack() as stack, async_playwright() as p:
        service = await start_edge(stack, config, clock, port)
        assert service.uplink is not None and service.uplink.uplink is not None
        service.uplink.uplink.notify()
        await until(lambda: deliveries(hub, token)["Drinkwater"]["nsp-lisboa"] is not None,
                    "the site's receipt at the hub")
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium",
                                          args=CHROMIUM_ARGS,
                                          env={**os.environ, "TZ": "America/New_York"})
        try:
            page = await browser.new_page()
            await page.goto(f"http://127.0.0.1:{port}/kiosk")
            await expect(page.locator("#bulletins li.bulletin h3.title").first) \
                .to_have_text("Drinkwater")
            body = await page.locator("body").inner_text()
            # T0 is 06:00 UTC on 1 March: 06:00 in Lisbon (WET), 07:00 in Amsterdam, 01:00 in NY
            assert "1 mrt, 06:00" in body, body
            assert "07:00" not in body and "01:00" not in body, body
        finally:
            await browser.close()
