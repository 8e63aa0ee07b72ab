"""Emergency reports on the hub's board (GET /) in real headless Chromium.

Two sites send reports over the signed ingest (as a site's uplink does). The board shows them in a
section at the top with a red alarm while one is unacknowledged, the most urgent first; HTML typed
in a report is shown as text; the operator's "Acknowledge" makes it acknowledged (at the hub, and
queued for the site), and the alarm goes when none is open.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge_server.clock import ManualClock
from edge_server.hub.testing import RunningHub, running_hub
from edge_server.uplink.protocol import iso
from tests.conftest import need_tool
from tests.test_hub_board import board_page, send


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[RunningHub]:
    clock = ManualClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    with running_hub(tmp_path / "hub", clock=clock) as h:
        yield h


def report(kind: str, urgency: str, text: str, people: int | None, at: datetime) -> dict[str, Any]:
    return {"report_id": str(uuid.uuid4()), "kind": kind, "urgency": urgency,
            "location": "Wachtruimte <i>west</i>", "people": people, "text": text,
            "reported_by": "piet", "reported_at": iso(at)}


def test_reports_at_the_top_with_alarm_text_as_text_and_acknowledge(hub: RunningHub) -> None:
    need_tool("chromium", "apt-get install -y chromium")
    from playwright.sync_api import expect

    clock = hub.clock
    assert isinstance(clock, ManualClock)
    key_a = hub.store.add_site("nsp-ut-001", clock.now(), name="Buurthuis De Linde",
                               municipality="Utrecht", region="Utrecht").encode()
    key_b = hub.store.add_site("nsp-asd-007", clock.now()).encode()
    normal = report("other", "normal", "Deken nodig", None, clock.now())
    send(hub, "nsp-asd-007", key_b, [("report", normal)])
    clock.advance(60)
    urgent = report("medical", "immediate", "<img src=x onerror=\"window.pwned=1\"><b>Onwel</b>",
                    2, clock.now())
    send(hub, "nsp-ut-001", key_a, [("report", urgent)])
    token = hub.store.add_user("olga", "operator")

    with board_page(hub, token) as page:
        # The section comes before the sites' table, the alarm is on.
        assert page.evaluate("""() => {
            const r = document.getElementById('reports'), s = document.getElementById('sites');
            return !!(r.compareDocumentPosition(s) & Node.DOCUMENT_POSITION_FOLLOWING); }""")
        expect(page.locator("#reports")).to_have_class("reports alarm")
        expect(page.locator("#reports-alarm")).to_be_visible()
        expect(page.locator("#reports-alarm")).to_have_text(
            "⚠ Onbevestigde noodhulpmeldingen: 2")
        rows = page.locator("#reports-table tbody tr")
        expect(rows).to_have_count(2)
        assert rows.nth(0).get_attribute("data-report") == \
            f"nsp-ut-001/{urgent['report_id']}"  # immediate before normal
        top = rows.nth(0)
        expect(top.locator(".site-name")).to_have_text("Buurthuis De Linde")
        expect(top.locator(".kind")).to_have_text("medisch")
        expect(top.locator(".urgency")).to_have_text("direct")
        expect(top.locator(".people")).to_have_text("2")
        expect(top.locator(".where")).to_have_text("Wachtruimte <i>west</i>")
        expect(top.locator(".report-text")).to_have_text(urgent["text"])
        expect(top.locator(".received")).to_have_text("01-03-2026, 13:01")  # Amsterdam, CET
        assert top.locator("img, b, i").count() == 0  # HTML shown, never made
        assert page.evaluate("() => window.pwned") is None
        expect(rows.nth(1).locator(".people")).to_have_text("onbekend")
        page.click("#lang")
        expect(page.locator("#reports-heading")).to_have_text("Emergency reports")
        expect(top.locator(".kind")).to_have_text("medical")
        expect(top.locator(".received")).to_have_text("01/03/2026, 13:01")

        page.click(f"tr[data-report='nsp-ut-001/{urgent['report_id']}'] button.report-ack")
        acked = page.locator(f"tr[data-report='nsp-ut-001/{urgent['report_id']}']")
        expect(acked.locator(".state")).to_contain_text("receipt acknowledged by olga")
        expect(acked.locator("button")).to_have_count(0)
        expect(page.locator("#reports-alarm")).to_have_text(
            "⚠ Unacknowledged emergency reports: 1")
        # The open one moves to the top.
        expect(rows.nth(0)).to_have_attribute("data-report",
                                              f"nsp-asd-007/{normal['report_id']}")
        page.click(f"tr[data-report='nsp-asd-007/{normal['report_id']}'] button.report-ack")
        expect(page.locator("#reports-alarm")).to_be_hidden()
        expect(page.locator("#reports")).to_have_class("reports")
    listed = httpx.get(hub.url + "/api/v1/reports",
                       headers={"Authorization": f"Bearer {token}"}).json()
    assert listed["open"] == 0
    by_id = {r["report_id"]: r for r in listed["reports"]}
    assert by_id[urgent["report_id"]]["ack"]["by"] == "olga"
