"""The site page shows every time in the site's zone ([site] timezone, Europe/Amsterdam by
default), whatever zone the browser is set to: here the browser runs in UTC, and an alert's
"since" time and the node's "last answer" time must read as Amsterdam's wall clock.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import httpx

from edge_server.localtime import local
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
