"""The site page shows every time in the site's zone ([site] timezone, Europe/Amsterdam by
default), whatever zone the browser is set to: here the browser runs in UTC, and an alert's
"since" time and the node's "last answer" time must read as Amsterdam's wall clock.

In winter (CET, +01:00) and in summer (CEST, +02:00) on an injected clock, with Chromium itself
started in America/New_York (TZ), at 04:30 UTC: Amsterdam's 05:30 (06:30 in summer) is still the
evening before in New York, so a page that used the browser's zone would show another day and
hour.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge_server.localtime import local
from tests.conftest import need_tool
from tests.test_site_page_v2 import DESKTOP, Edge, browser, edge  # noqa: F401 (fixtures)


async def test_times_are_the_sites_not_the_browsers(edge: Edge, browser: Any) -> None:  # noqa: F811
    from playwright.async_api import expect

    context = await browser.new_context(viewport=DESKTOP, timezone_id="UTC", locale="nl-NL")
    page = await context.new_page()
    await page.goto(edge.url + "/")
    first = page.locator("#alerts .since").first
    await expect(first).to_be_visible(timeout=10_000)
    assert await page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == "UTC"

    async with httpx.AsyncClient() as http:
        alerts = (await http.get(f"{edge.url}/api/v1/alerts")).json()["alerts"]
        site = (await http.get(f"{edge.url}/api/v1/site")).json()
    assert site["timezone"] == "Europe/Amsterdam"
    newest = datetime.fromisoformat(alerts[0]["raised_at"])
    shown = await first.text_content() or ""
    wall = local(newest).strftime("%H:%M")
    utc = newest.strftime("%H:%M")
    assert wall in shown and wall != utc, (shown, wall, utc)  # CET/CEST is never UTC
    await context.close()


async def test_no_channel_name_in_any_alert_shown_to_people(edge: Edge, browser: Any) -> None:  # noqa: F811
    """Alert sentences name the node and say values in words (`n1`, not `n1.door_open_s`)."""
    import re

    from playwright.async_api import expect

    context = await browser.new_context(viewport=DESKTOP, locale="nl-NL")
    page = await context.new_page()
    await page.goto(edge.url + "/")
    await expect(page.locator("#alerts li").first).to_be_visible(timeout=10_000)
    texts = await page.locator("#alerts li").all_text_contents()
    channel = re.compile(r"\b[a-z0-9_-]+\.[a-z0-9]+_[a-z0-9_]+\b")  # node.register
    assert texts and not [t for t in texts if channel.search(t)], texts
    await context.close()


async def test_a_young_sites_plots_say_since_when_they_collect(
        tmp_path: Path, browser: Any) -> None:  # noqa: F811
    """Minutes after the first start: a few fridge readings are dots and the plot says
    "gegevens sinds HH:MM" (the site's zone) instead of an empty frame."""
    from datetime import timedelta

    from playwright.async_api import expect

    from edge_server.api.app import create_app, serving
    from edge_server.clock import SystemClock
    from edge_server.config import parse_config
    from edge_server.service import Part, Service
    from edge_server.storage.sqlite import Row, to_ms
    from tests.conftest import free_port
    from tests.test_poller import Peer, image, site

    peer = Peer(free_port(), image(("fridge",), fridge_temp_c=500, fridge_faults=0))
    await peer.start()
    text = site({"n1": peer.port}, {"n1": '"fridge"'}).replace(
        "[poll]", f'[storage]\ndata_dir = "{tmp_path / "data"}"\n\n[poll]')
    clock = SystemClock()
    service = Service(parse_config(text), clock, parts=Part.STORAGE)
    try:
        async with serving(create_app(service), "127.0.0.1", free_port()) as server:
            assert service.storage is not None
            # on a 3-minute boundary: the page's 24 h plot asks 720 buckets of 3 min, and the
            # text names the first bucket's start
            now_ms = to_ms(clock.now()) - 6 * 60_000
            first = datetime.fromtimestamp(now_ms // 180_000 * 180, tz=clock.now().tzinfo)
            rows = [Row("n1.fridge_temp_c", "°C", to_ms(first + timedelta(minutes=m)), 5.0)
                    for m in (0, 1)]
            assert service.storage.require().write_rows(rows)
            port = server.servers[0].sockets[0].getsockname()[1]
            context = await browser.new_context(viewport=DESKTOP, timezone_id="UTC",
                                                locale="nl-NL")
            page = await context.new_page()
            await page.goto(f"http://127.0.0.1:{port}/")
            chart = page.locator("#fridge-chart")
            await expect(chart.locator("text.nodata")).to_have_text(
                f"gegevens sinds {local(first).strftime('%H:%M')}", timeout=10_000)
            assert await chart.locator("circle.dot").count() >= 1
            await context.close()
    finally:
        await peer.stop()


@pytest.mark.parametrize("now, wall, day, browser_wall", [
    (datetime(2026, 1, 15, 4, 30, tzinfo=UTC), "05:30", "15 jan", "23:30"),  # CET
    (datetime(2026, 7, 15, 4, 30, tzinfo=UTC), "06:30", "15 jul", "00:30"),  # CEST
])
async def test_winter_and_summer_times_are_amsterdams_with_the_browser_in_new_york(
        tmp_path: Path, now: datetime, wall: str, day: str, browser_wall: str) -> None:
    need_tool("chromium", "apt-get install -y chromium")
    from playwright.async_api import async_playwright, expect

    from edge_server.api.app import create_app, serving
    from edge_server.clock import ManualClock
    from edge_server.config import parse_config
    from edge_server.service import Part, Service
    from tests.conftest import free_port
    from tests.test_poller import Peer, image, site
    from tests.test_site_page import CHROMIUM_ARGS

    assert local(now).strftime("%H:%M") == wall  # the expectation itself, from tzdata
    words = image(("power", "fridge"), mains_present=1, gen_running=0, fuel_l=3000,
                  fridge_temp_c=500, ambient_temp_c=2150, door_open=1, door_open_s=420,
                  fridge_faults=0, power_faults=0)
    peer = Peer(free_port(), words)
    await peer.start()
    text = site({"n1": peer.port}, {"n1": '"power", "fridge"'}).replace(
        "[poll]", f'[storage]\ndata_dir = "{tmp_path / "data"}"\n\n[poll]')
    service = Service(parse_config(text), ManualClock(now), parts=Part.STORAGE | Part.RULES)
    try:
        async with serving(create_app(service), "127.0.0.1", free_port()) as server:
            await service.poller.poll_once()  # the service polls at `now`: the door alert
            port = server.servers[0].sockets[0].getsockname()[1]
            async with async_playwright() as p:
                browser = await p.chromium.launch(
                    executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS,
                    env={**os.environ, "TZ": "America/New_York"})
                try:
                    context = await browser.new_context(viewport={"width": 1024, "height": 768},
                                                        locale="nl-NL")
                    page = await context.new_page()
                    await page.goto(f"http://127.0.0.1:{port}/")
                    assert await page.evaluate(
                        "Intl.DateTimeFormat().resolvedOptions().timeZone") == "America/New_York"
                    since = page.locator("#alerts .since").first
                    await expect(since).to_contain_text(wall, timeout=10_000)
                    last_ok = page.locator("div.small", has_text="laatst gelezen").first
                    for shown in (await since.text_content() or "",
                                  await last_ok.text_content() or ""):
                        assert day in shown and wall in shown, (shown, day, wall)
                        assert browser_wall not in shown and "04:30" not in shown, shown
                finally:
                    await browser.close()
    finally:
        await service.stop()
        await peer.stop()
