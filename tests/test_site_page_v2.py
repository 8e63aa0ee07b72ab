"""The crisis site page in real headless Chromium against a real running edge service.

The edge runs for real (uvicorn, the poller on the system clock, the SQLite store, the rules):
one pymodbus server serves a power+fridge+entrance node in a mains outage carried by the
generator, with the fridge door open long enough for an alert. 24 h of fridge readings (with a
gap) and 7 days of fuel levels are written through the storage API before the page loads.
Screenshots go to tmp_path (or to $SITE_PAGE_SHOTS when set, to look at them).
"""

from __future__ import annotations

import math
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import uvicorn

from edge_server.api.app import create_app, serving
from edge_server.auth import Role, UserStore
from edge_server.clock import SystemClock
from edge_server.config import parse_config
from edge_server.service import Part, Service
from edge_server.storage.component import site_db_path
from edge_server.storage.sqlite import Row, to_ms
from tests.conftest import free_port, need_tool
from tests.shots import shot_path
from tests.test_poller import Peer, image, site
from tests.test_site_page import CHROMIUM_ARGS

DESKTOP = {"width": 1024, "height": 768}
PHONE = {"width": 390, "height": 844}


@dataclass
class Edge:
    url: str
    server: uvicorn.Server
    service: Service
    operator_token: str
    viewer_token: str


def fridge_rows(now_ms: int) -> list[Row]:
    """24 h, one reading a minute, 4-6 °C with a 2-hour gap (node offline) 10-8 h ago and a
    warm spell to 9.5 °C 4 h ago; the lowest reading 3.0 °C."""
    rows = []
    for minute in range(24 * 60, 0, -1):
        t = now_ms - minute * 60_000
        if 8 * 60 < minute <= 10 * 60:
            value: float | None = None
        elif 4 * 60 - 20 < minute <= 4 * 60:
            value = 9.5
        elif minute == 20 * 60:
            value = 3.0
        else:
            value = round(5 + math.sin(minute / 90), 2)
        rows.append(Row("n1.fridge_temp_c", "°C", t, value))
    return rows


def fuel_rows(now_ms: int) -> list[Row]:
    """7 days of tank levels: 480 L falling to ~300 L over the last 2 days (the outage)."""
    rows = []
    for hour in range(7 * 24, 0, -1):
        t = now_ms - hour * 3_600_000
        value = 480.0 if hour > 48 else 300.0 + 180.0 * hour / 48
        rows.append(Row("n1.fuel_l", "L", t, value))
    return rows


@pytest.fixture
async def edge(tmp_path: Path) -> AsyncIterator[Edge]:
    words = image(("power", "fridge", "entrance"), mains_present=0, gen_running=1,
                  fuel_l=3000, fridge_temp_c=500, ambient_temp_c=2150, door_open=1,
                  door_open_s=420, occupancy=9, fridge_faults=0, power_faults=0)
    peer = Peer(free_port(), words)
    await peer.start()
    data_dir = tmp_path / "data"
    text = site({"n1": peer.port}, {"n1": '"power", "fridge", "entrance"'}).replace(
        "interval_s = 2", "interval_s = 0.3"
    ).replace("[poll]", f'[storage]\ndata_dir = "{data_dir}"\n\n[poll]')
    clock = SystemClock()
    service = Service(parse_config(text), clock, parts=Part.STORAGE | Part.RULES)
    port = free_port()
    try:
        async with serving(create_app(service), "127.0.0.1", port) as server:
            storage = service.storage.require()
            now_ms = to_ms(clock.now())
            assert storage.write_rows(fridge_rows(now_ms) + fuel_rows(now_ms))
            users = UserStore(site_db_path(data_dir))
            yield Edge(
                url=f"http://127.0.0.1:{port}",
                server=server,
                service=service,
                operator_token=users.add("kees", Role.OPERATOR, clock.now()),
                viewer_token=users.add("vera", Role.VIEWER, clock.now()),
            )
    finally:
        await peer.stop()


@pytest.fixture
async def browser() -> AsyncIterator[Any]:
    need_tool("chromium", "apt-get install -y chromium")
    from playwright.async_api import async_playwright

    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            await b.close()


async def new_page(browser: Any, viewport: dict[str, int]) -> Any:
    context = await browser.new_context(viewport=viewport, timezone_id="Europe/Amsterdam",
                                        locale="nl-NL")
    return await context.new_page()


async def test_banner_tiles_plots_details_and_language(
    edge: Edge, browser: Any, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    page = await new_page(browser, DESKTOP)
    requests: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    await page.goto(edge.url + "/")

    # The banner: state in words and colour (class), reasons in Dutch.
    banner = page.locator("#banner")
    await expect(banner).to_have_attribute("data-state", "DEGRADED", timeout=10_000)
    await expect(banner).to_have_class(re.compile(r"\bDEGRADED\b"))
    await expect(page.locator("#ready-text")).to_have_text("BEPERKT GEREED")
    await expect(page.locator('#reasons li[data-code="GENTEST_NONE"]')).to_have_text(
        "Geen test van het aggregaat geregistreerd")
    assert await banner.evaluate("e => getComputedStyle(e).backgroundColor") == "rgb(242, 183, 5)"

    # Tiles: autonomy (300 L - 10 unusable at the chart's 6.8 l/h = 42.6 h), refuel before
    # (the generator runs), mains failed, generator running, 9 of 15 people.
    await expect(page.locator("#autonomy")).to_have_text(re.compile(r"^4[0-9] uur$"))
    await expect(page.locator("#refuel")).to_have_text(re.compile(r"\d{2}:\d{2}"))
    await expect(page.locator("#mains")).to_have_text("NETSTROOM UITGEVALLEN")
    await expect(page.locator("#gen")).to_have_text("Aggregaat draait")
    await expect(page.locator("#occupancy")).to_have_text("9 / 15")

    # The fridge plot: a line with a gap (two pen-downs), the 2-8 °C band, min/max.
    fridge = page.locator("#fridge-chart")
    await expect(fridge.locator("path.line")).to_have_count(1)
    d = await fridge.locator("path.line").get_attribute("d") or ""
    assert d.count("M") >= 2, d[:200]
    # ~1,300 minutes of data, asked as at most 720 min/mean/max buckets (points=720)
    assert 300 < d.count("L") < 720
    band = fridge.locator("rect.band")
    await expect(band).to_have_count(1)
    assert float(await band.get_attribute("height") or 0) > 20
    await expect(page.locator("#fridge-minmax")).to_have_text("min 3 °C · max 9,5 °C")
    await expect(page.locator("#fridge-minmax")).to_have_class(re.compile(r"\bout\b"))
    fuel = page.locator("#fuel-chart")
    await expect(fuel.locator("path.line")).to_have_count(1)
    assert await fuel.locator("rect.band").count() == 0
    await expect(page.locator("#fuel-now")).to_have_text("nu 300 L")

    # Alerts: the worst first (the API sends newest first; the info alert is as new).
    await expect(page.locator('#alerts li[data-code="GEN_RUNNING_ON_OUTAGE"]')).to_have_count(1)
    await expect(page.locator("#alerts li").first).to_have_class(re.compile(r"\bwarning\b"))
    await page.screenshot(path=str(shot_path(tmp_path, "site-page.png")))

    # Technical details: collapsed, the per-node table, online state and counters inside.
    details = page.locator("#tech")
    assert await details.get_attribute("open") is None
    await expect(page.locator("#node-n1 tr[data-channel='n1.fridge_temp_c']")).to_be_hidden()
    await page.click("#tech summary")
    await expect(page.locator("#node-n1 tr[data-channel='n1.fridge_temp_c'] td.value")) \
        .to_have_text("5 °C")
    await expect(page.locator("#node-n1 .badge")).to_have_text("bereikbaar")
    await expect(page.locator("#uplink")).to_have_text("Verbinding met het C-NSP: niet ingesteld")
    await expect(page.locator("#node-n1 tr[data-counter='crc_errors']")).to_contain_text(
        "CRC-fouten7")
    await page.screenshot(path=str(shot_path(tmp_path, "site-desktop-nl.png")), full_page=True)

    # English: every text switches, numbers with a decimal point.
    await page.click("#lang")
    await expect(page.locator("#ready-text")).to_have_text("DEGRADED")
    await expect(page.locator('#reasons li[data-code="GENTEST_NONE"]')).to_have_text(
        "No generator test on record")
    await expect(page.locator("#mains")).to_have_text("MAINS FAILED")
    await expect(page.locator("#autonomy")).to_have_text(re.compile(r"^4[0-9] hours$"))
    await expect(page.locator("#fridge-minmax")).to_have_text("min 3 °C · max 9.5 °C")
    await expect(page.locator("#tech summary")).to_have_text("Technical details")
    await expect(page.locator("#alerts-box h2")).to_have_text("Open alerts")
    await expect(page.locator("#node-n1 .badge")).to_have_text("online")
    await expect(page.locator('#alerts li[data-code="FRIDGE_DOOR_OPEN"] .what')).to_contain_text(
        "Fridge door open too long")
    assert await page.evaluate("document.documentElement.lang") == "en"
    await page.screenshot(path=str(shot_path(tmp_path, "site-desktop-en.png")), full_page=True)

    # Phone width: one column, nothing wider than the screen.
    await page.set_viewport_size(PHONE)
    await page.click("#lang")
    await expect(page.locator("#ready-text")).to_have_text("BEPERKT GEREED")
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], width
    await page.screenshot(path=str(shot_path(tmp_path, "site-phone-nl.png")), full_page=True)

    # Offline-safe: nothing was asked of any host but the edge itself.
    assert requests
    own = urlsplit(edge.url).netloc
    foreign = [u for u in requests if not u.startswith("data:") and urlsplit(u).netloc != own]
    assert foreign == [], foreign


async def test_acknowledge_asks_for_a_token_viewer_is_refused_operator_acks(
    edge: Edge, browser: Any, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    page = await new_page(browser, PHONE)
    await page.goto(edge.url + "/")
    alert = page.locator('#alerts li[data-code="FRIDGE_DOOR_OPEN"]')
    await expect(alert).to_contain_text("Koelkastdeur te lang open", timeout=10_000)
    await expect(alert.locator(".sev")).to_have_text("waarschuwing")
    await expect(alert.locator(".since")).to_have_text(re.compile(r"^sinds .*\d{2}:\d{2}$"))

    # No token yet: the page asks for one; a viewer's token is refused in plain words.
    await expect(page.locator("#token-form")).to_be_hidden()
    await alert.locator("button.ack").click()
    await expect(page.locator("#token-form")).to_be_visible()
    await page.fill("#token", edge.viewer_token)
    await page.click("#token-form button[type=submit]")
    msg = page.locator("#alert-msg")
    await expect(msg).to_have_attribute("data-code", "e403")
    await expect(msg).to_contain_text("mag geen meldingen bevestigen")
    assert await page.evaluate("localStorage.getItem('nsp-token')") == edge.viewer_token
    await page.screenshot(path=str(shot_path(tmp_path, "site-phone-403.png")))

    # The form is offered again: the operator's token acknowledges.
    await expect(page.locator("#token-form")).to_be_visible()
    await page.fill("#token", edge.operator_token)
    await page.click("#token-form button[type=submit]")
    await expect(alert.locator(".acked")).to_contain_text("Bevestigd door kees")
    await expect(alert.locator("button.ack")).to_have_count(0)
    await expect(msg).to_have_attribute("data-code", "acked_ok")
    assert await page.evaluate("localStorage.getItem('nsp-token')") == edge.operator_token

    async with httpx.AsyncClient(base_url=edge.url, timeout=5) as http:
        body = (await http.get("/api/v1/alerts", params={"state": "open"})).json()
    door = [a for a in body["alerts"] if a["code"] == "FRIDGE_DOOR_OPEN"]
    assert door and door[0]["acknowledged_by"] == "kees" and door[0]["state"] == "acknowledged"

    # A token that is not (or no longer) valid: 401 in plain words, the token is forgotten.
    await page.evaluate("localStorage.setItem('nsp-token', 'not-a-token')")
    other = page.locator("#alerts li:not([data-code='FRIDGE_DOOR_OPEN']) button.ack").first
    await expect(other).to_be_visible(timeout=10_000)
    await other.click()
    await expect(msg).to_have_attribute("data-code", "e401")
    await expect(msg).to_contain_text("onbekend of verlopen")
    assert await page.evaluate("localStorage.getItem('nsp-token')") is None


async def test_no_connection_message_when_the_service_stops(
    edge: Edge, browser: Any, tmp_path: Path
) -> None:
    from playwright.async_api import expect

    page = await new_page(browser, PHONE)
    await page.goto(edge.url + "/")
    await expect(page.locator("#banner")).to_have_attribute("data-state", "DEGRADED",
                                                            timeout=10_000)
    updated = await page.locator("#updated").text_content()
    assert updated and updated != "-"
    conn = page.locator("#conn")
    await expect(conn).to_be_hidden()

    edge.server.should_exit = True  # the edge service stops (power cut on the edge box)
    await expect(conn).to_be_visible(timeout=15_000)
    await expect(conn).to_contain_text("Geen verbinding met de site-service")
    await expect(conn).to_contain_text("Laatst bijgewerkt")
    # The last known state stays readable (greyed), not blanked.
    await expect(page.locator("#ready-text")).to_have_text("BEPERKT GEREED")
    assert await page.evaluate("document.body.classList.contains('stale')")
    await page.click("#lang")
    await expect(conn).to_contain_text("No connection to the site service")
    await page.screenshot(path=str(shot_path(tmp_path, "site-phone-noconn.png")), full_page=True)


async def test_history_window_the_page_asks_for_is_24h_and_7d(edge: Edge) -> None:
    """The same queries the page makes, over HTTP: the plots get the points they should."""
    now = edge.service.clock.now()
    async with httpx.AsyncClient(base_url=edge.url, timeout=5) as http:
        r = await http.get("/api/v1/history", params={
            "channel": "n1.fridge_temp_c", "from": (now - timedelta(hours=24)).isoformat(),
            "to": now.isoformat(), "step": "1m"})
        points = r.json()["points"]
        assert sum(1 for p in points if p[2] is None) >= 1  # the gap is in the answer
        assert max(p[3] for p in points if p[3] is not None) == 9.5
        r = await http.get("/api/v1/history", params={
            "channel": "n1.fuel_l", "from": (now - timedelta(days=7)).isoformat(),
            "to": now.isoformat(), "step": "1h"})
        assert 160 <= len(r.json()["points"]) <= 170
        site_body = (await http.get("/api/v1/site")).json()
        assert site_body["capacity"] == 15


async def test_site_that_requires_a_token_to_read_asks_for_one(
    tmp_path: Path, browser: Any
) -> None:
    """api.require_auth_for_read = true: the page asks for a token in plain words, and shows
    the site once a viewer's token is entered (kept for the next visit)."""
    from playwright.async_api import expect

    peer = Peer(free_port(), image(("fridge",), fridge_temp_c=455))
    await peer.start()
    data_dir = tmp_path / "data"
    text = site({"n1": peer.port}, {"n1": '"fridge"'}).replace(
        "interval_s = 2", "interval_s = 0.3"
    ).replace("[poll]", f'[api]\nrequire_auth_for_read = true\n\n[storage]\n'
                        f'data_dir = "{data_dir}"\n\n[poll]')
    service = Service(parse_config(text), SystemClock(), parts=Part.STORAGE)
    port = free_port()
    try:
        async with serving(create_app(service), "127.0.0.1", port):
            token = UserStore(site_db_path(data_dir)).add("vera", Role.VIEWER,
                                                          service.clock.now())
            page = await new_page(browser, DESKTOP)
            await page.goto(f"http://127.0.0.1:{port}/")
            form = page.locator("#token-form")
            await expect(form).to_be_visible(timeout=10_000)
            await expect(page.locator("#alert-msg")).to_contain_text("vraagt een toegangscode")
            await page.fill("#token", token)
            await page.click("#token-form button[type=submit]")
            row = page.locator('[data-channel="n1.fridge_temp_c"] td.value')
            await expect(row).to_have_text("4,55 °C", timeout=10_000)
            await expect(form).to_be_hidden()
            await expect(page.locator("#alert-msg")).to_be_hidden()
            assert await page.evaluate("localStorage.getItem('nsp-token')") == token
    finally:
        await peer.stop()
