"""The regional readiness board (GET / on the hub) in real headless Chromium.

Three sites: one ready with fuel for long, one needing fuel soon, one silent (UNKNOWN). The board
must sort by refuel-before, show UNKNOWN with "no contact since", list open alerts, switch NL/EN,
keep the token across a reload, and acknowledge an alert at the hub.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge_server.clock import ManualClock
from edge_server.hub.testing import RunningHub, running_hub, sample_alert, sample_status
from edge_server.uplink.protocol import encode_batch, iso, sign_headers
from tests.conftest import need_tool

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@contextmanager
def board_page(hub: RunningHub, token: str, **page_options: Any) -> Iterator[Any]:
    """The board in headless Chromium (a page made with `page_options`), logged in with
    `token` and loaded."""
    from playwright.sync_api import expect, sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(**page_options)
            page.goto(hub.url + "/")
            page.fill("#token", token)
            page.click("#login button[type=submit]")
            expect(page.locator("body[data-loaded='1']")).to_have_count(1)
            yield page
        finally:
            browser.close()


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[RunningHub]:
    clock = ManualClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    with running_hub(tmp_path / "hub", clock=clock) as h:
        yield h


def send(
    hub: RunningHub, site_id: str, key: bytes, messages: list[tuple[str, dict[str, Any]]]
) -> None:
    now = hub.clock.now()
    wire = [{"id": str(uuid.uuid4()), "kind": k, "at": iso(now), "body": b} for k, b in messages]
    body = encode_batch(site_id, str(uuid.uuid4()), now, wire)
    r = httpx.post(
        hub.url + "/api/v1/ingest",
        content=body,
        headers=sign_headers(site_id, key, body, int(now.timestamp())),
    )
    assert r.status_code == 200, r.text


def test_board_sorts_by_refuel_shows_unknown_alerts_language_and_ack(hub: RunningHub) -> None:
    need_tool("chromium", "apt-get install -y chromium")
    from playwright.sync_api import expect, sync_playwright

    clock = hub.clock
    assert isinstance(clock, ManualClock)
    keys = {
        s: hub.store.add_site(s, clock.now()).encode()
        for s in ("nsp-silent", "nsp-long", "nsp-soon")
    }
    send(
        hub,
        "nsp-silent",
        keys["nsp-silent"],
        [("status", sample_status(fuel_autonomy_h=2, at=clock.now()))],
    )
    clock.advance(20 * 60)  # nsp-silent has now been silent for 20 min (> 15)
    send(
        hub,
        "nsp-long",
        keys["nsp-long"],
        [("status", sample_status(fuel_autonomy_h=60, at=clock.now()))],
    )
    send(
        hub,
        "nsp-soon",
        keys["nsp-soon"],
        [
            (
                "status",
                sample_status(
                    "NOT_READY", fuel_autonomy_h=5, at=clock.now(), reasons=["FUEL_CRITICAL"]
                ),
            ),
            ("alert", sample_alert("41", clock.now())),
        ],
    )
    token = hub.store.add_user("olga", "operator")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page()
            page.goto(hub.url + "/")
            expect(page.locator("#login")).to_be_visible()
            page.fill("#token", "wrong")
            page.click("#login button[type=submit]")
            expect(page.locator("#login-error")).to_have_text("Onbekende toegangscode")
            page.fill("#token", token)
            page.click("#login button[type=submit]")
            expect(page.locator("body[data-loaded='1']")).to_have_count(1)
            rows = page.locator("#sites tbody tr")
            expect(rows).to_have_count(3)
            # Sorted by refuel-before: the silent one's estimate (2 h, 20 min ago) is soonest.
            assert [rows.nth(i).get_attribute("data-site") for i in range(3)] == [
                "nsp-silent",
                "nsp-soon",
                "nsp-long",
            ]
            silent = page.locator("tr[data-site='nsp-silent']")
            expect(silent.locator(".readiness")).to_have_text("Onbekend")
            expect(silent.locator(".contact")).to_contain_text("geen contact sinds")
            expect(page.locator("tr[data-site='nsp-soon'] .readiness")).to_contain_text(
                "Niet gereed"
            )
            expect(page.locator("tr[data-site='nsp-soon'] .readiness")).to_contain_text(
                "Brandstofautonomie onder het kritieke minimum"
            )
            expect(page.locator("#alerts tbody tr[data-alert='nsp-soon/41']")).to_contain_text(
                "Medicijnkoelkast boven 8 °C"
            )
            long_row = page.locator("tr[data-site='nsp-long']")
            expect(long_row).to_contain_text("60,0 u")  # Dutch decimal comma
            page.click("#lang")
            expect(long_row).to_contain_text("60.0 h")
            expect(page.locator("h1")).to_have_text("C-NSP readiness board")
            expect(silent.locator(".contact")).to_contain_text("no contact since")
            expect(page.locator("#alerts tbody tr[data-alert='nsp-soon/41']")).to_contain_text(
                "Medicine fridge above 8 °C"
            )
            page.reload()  # the token and the language are remembered
            expect(page.locator("body[data-loaded='1']")).to_have_count(1)
            expect(page.locator("#login")).to_be_hidden()
            expect(page.locator("h1")).to_have_text("C-NSP readiness board")
            page.click("tr[data-alert='nsp-soon/41'] button.ack")
            expect(page.locator("tr[data-alert='nsp-soon/41'] .state")).to_contain_text(
                "acknowledged by olga"
            )
        finally:
            browser.close()
    acked = hub.store.alerts(True, 10)
    assert acked[0]["hub_ack"]["by"] == "olga"
    assert hub.store.pending_acks("nsp-soon")[0]["alert_id"] == "41"


def test_board_assets_are_local_only(hub: RunningHub) -> None:
    html = httpx.get(hub.url + "/").text
    js = httpx.get(hub.url + "/static/board.js")
    assert js.status_code == 200 and "localStorage" in js.text
    assert httpx.get(hub.url + "/static/board.css").status_code == 200
    assert httpx.get(hub.url + "/static/..%2Fapp.py").status_code == 404
    for text in (html, js.text):
        assert "http://" not in text and "https://" not in text  # no CDN, works offline


def test_board_names_sites_as_registered_and_filters_by_region(hub: RunningHub,
                                                               capsys: pytest.CaptureFixture[str]
                                                               ) -> None:
    """Sites by name, municipality and region (from `hub add-site` / `set-site`), the id under
    them; a region filter; and the registration is editable."""
    need_tool("chromium", "apt-get install -y chromium")
    from playwright.sync_api import expect

    clock = hub.clock
    key_a = hub.store.add_site("nsp-ut-001", clock.now(), name="Buurthuis De Linde",
                               municipality="Utrecht", region="Utrecht").encode()
    key_b = hub.store.add_site("nsp-asd-007", clock.now(), municipality="Amsterdam",
                               region="Amsterdam-Amstelland").encode()
    for site_id, key in (("nsp-ut-001", key_a), ("nsp-asd-007", key_b)):
        send(hub, site_id, key, [("status", sample_status(fuel_autonomy_h=30, at=clock.now()))])
    assert hub.store.set_site_info("nsp-asd-007", name="Sporthal Noord")["name"] == \
        "Sporthal Noord"
    with pytest.raises(LookupError):
        hub.store.set_site_info("nsp-nope", name="x")
    api = httpx.get(hub.url + "/api/v1/sites",
                    headers={"Authorization": f"Bearer {hub.store.add_user('olga', 'operator')}"})
    by_id = {s["site_id"]: s for s in api.json()["sites"]}
    assert by_id["nsp-ut-001"]["region"] == "Utrecht"
    assert by_id["nsp-asd-007"]["municipality"] == "Amsterdam"
    token = hub.store.add_user("piet", "operator")

    with board_page(hub, token) as page:
        ut = page.locator("tr[data-site='nsp-ut-001'] td.site")
        expect(ut.locator(".site-name")).to_have_text("Buurthuis De Linde")
        expect(ut.locator("small")).to_have_text("Utrecht · Utrecht · nsp-ut-001")
        expect(page.locator("tr[data-site='nsp-asd-007'] .site-name")).to_have_text(
            "Sporthal Noord")
        expect(page.locator("#sites tbody tr")).to_have_count(2)
        page.select_option("#region-filter", "Amsterdam-Amstelland")
        expect(page.locator("#sites tbody tr")).to_have_count(1)
        expect(page.locator("#sites tbody tr")).to_have_attribute("data-site", "nsp-asd-007")
        page.select_option("#region-filter", "")
        expect(page.locator("#sites tbody tr")).to_have_count(2)


def test_hub_cli_registers_and_edits_what_the_board_shows(tmp_path: Path,
                                                         capsys: pytest.CaptureFixture[str]
                                                         ) -> None:
    from edge_server import cli
    from edge_server.hub.store import HubStore

    data = str(tmp_path / "hub")
    assert cli.main(["hub", "add-site", "nsp-x-01", "--data", data, "--name", "Kerk Oost",
                     "--municipality", "Zwolle", "--region", "IJsselland"]) == 0
    assert cli.main(["hub", "add-site", "nsp-x-02", "nsp-x-03", "--data", data,
                     "--name", "Twee"]) == 2  # one name for two sites: refused
    assert "--name and --at name one site" in capsys.readouterr().err
    assert cli.main(["hub", "set-site", "nsp-x-01", "--data", data, "--name", "Kerk West"]) == 0
    assert "name 'Kerk West', municipality 'Zwolle', region 'IJsselland'" in \
        capsys.readouterr().out
    assert cli.main(["hub", "set-site", "nsp-x-09", "--data", data, "--name", "x"]) == 1
    store = HubStore(Path(data))
    try:
        site = store.site("nsp-x-01")
        assert site is not None and (site["name"], site["region"]) == ("Kerk West", "IJsselland")
    finally:
        store.close()
