"""The board shows times in Europe/Amsterdam whatever zone the operator's browser is in: here
the browser runs in UTC, in winter (CET, UTC+1) and in summer (CEST, UTC+2), and the site's
refuel-before time and the board's "updated" time must read as Amsterdam's wall clock."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge_server.clock import ManualClock
from edge_server.hub.testing import running_hub, sample_status
from tests.conftest import need_tool
from tests.test_hub_board import CHROMIUM_ARGS, send


@pytest.mark.parametrize("now, refuel, updated", [
    (datetime(2026, 1, 15, 12, 0, tzinfo=UTC), "15-01-2026, 18:00", "13:00"),  # CET
    (datetime(2026, 7, 15, 12, 0, tzinfo=UTC), "15-07-2026, 19:00", "14:00"),  # CEST
])
def test_board_times_are_amsterdams_not_the_browsers(tmp_path: Path, now: datetime, refuel: str,
                                                     updated: str) -> None:
    need_tool("chromium", "apt-get install -y chromium")
    from playwright.sync_api import expect, sync_playwright

    with running_hub(tmp_path / "hub", clock=ManualClock(now)) as hub:
        key = hub.store.add_site("nsp-ut-001", now, name="Buurthuis De Linde").encode()
        # 5 h of fuel at 12:00 UTC: refuel before 17:00 UTC
        send(hub, "nsp-ut-001", key, [("status", sample_status(fuel_autonomy_h=5, at=now))])
        token = hub.store.add_user("olga", "operator")
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            try:
                context = browser.new_context(timezone_id="UTC", locale="nl-NL")
                page = context.new_page()
                page.goto(hub.url + "/")
                assert page.evaluate("Intl.DateTimeFormat().resolvedOptions().timeZone") == "UTC"
                page.fill("#token", token)
                page.click("#login button[type=submit]")
                expect(page.locator("body[data-loaded='1']")).to_have_count(1)
                cell = page.locator("tr[data-site='nsp-ut-001'] td.refuel")
                expect(cell).to_have_text(refuel)
                expect(page.locator("#updated")).to_contain_text(updated)
                assert "17:00" not in (cell.text_content() or "")  # not the browser's UTC
            finally:
                browser.close()
