"""The site page's generator-test section in real headless Chromium against a real edge.

The edge is the one tests/test_gentest_api.py drives (the real Service with storage, rules,
uplink and gentest components, a pymodbus server playing the power node, real tokens), served
over HTTP by uvicorn. Time is its ManualClock: the test moves it one poll cycle at a time
(`site.cycle`) and waits for what the page shows (Playwright's expect / wait_for_function),
never for a fixed time. The page reads the section from GET /api/v1/gentests/status.
Screenshots go to tmp_path (or to $SITE_PAGE_SHOTS when set, to look at them).
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge_server.api.app import serving
from tests.conftest import free_port
from tests.test_gentest_api import IDLE, RUNNING, Site, run_passing_test, start_site
from tests.test_poller import Peer, peers  # noqa: F401  (fixture)
from tests.test_site_page_v2 import DESKTOP, PHONE, browser, new_page, shot_path  # noqa: F401

WAIT = 15_000  # ms; the page reads the edge every 2 s (poll interval_s = 2)


class Served:
    def __init__(self, site: Site, url: str) -> None:
        self.site, self.url = site, url

    def http(self) -> httpx.AsyncClient:
        """The real HTTP server, as curl would reach it."""
        return httpx.AsyncClient(base_url=self.url, timeout=5)

    async def status(self) -> dict[str, Any]:
        async with self.http() as c:
            body: dict[str, Any] = (await c.get("/api/v1/gentests/status")).json()
            return body


@pytest.fixture
async def edge(tmp_path: Path, peers: list[Peer]) -> AsyncIterator[Served]:  # noqa: F811
    async for site in start_site(tmp_path, peers):
        port = free_port()
        async with serving(site.app, "127.0.0.1", port):
            yield Served(site, f"http://127.0.0.1:{port}")


async def open_page(browser: Any, edge: Served, viewport: dict[str, int]) -> Any:  # noqa: F811
    from playwright.async_api import expect

    page = await new_page(browser, viewport)
    await page.goto(edge.url + "/")
    await expect(page.locator("#gentest")).to_be_visible(timeout=WAIT)
    return page


async def test_section_shows_the_last_and_the_next_test(
    edge: Served, browser: Any, tmp_path: Path  # noqa: F811
) -> None:
    from playwright.async_api import expect

    async with edge.site.client() as c:
        test_id = await run_passing_test(edge.site, c)
    page = await open_page(browser, edge, DESKTOP)
    # Right after the test the set still cools down: a new start is refused in words.
    await expect(page.locator("#gt-blocked")).to_have_attribute("data-code", "GEN_RUNNING",
                                                               timeout=WAIT)
    await expect(page.locator("#gt-blocked")).to_have_text("Het aggregaat draait al")
    await expect(page.locator("#gt-start")).to_be_disabled()
    edge.site.node(**IDLE)  # stopped
    await edge.site.cycle(60)
    last = page.locator("#gt-last")
    # no generator controller measures the load here: the test is NOT_VERIFIED, never PASSED
    await expect(last).to_have_attribute("data-outcome", "NOT_VERIFIED", timeout=WAIT)
    # ended 4 May 2026 10:31 UTC = 12:31 in Amsterdam (summer time)
    await expect(last).to_have_text(re.compile(
        r"^ma 4 mei.*12:3\d: Niet geverifieerd: telt niet als maandelijkse test$"))
    nxt = page.locator("#gt-next")
    # a test not verified moves no schedule: still due now
    await expect(nxt).to_have_attribute("data-status", "never_tested")
    report = page.locator("#gt-report")
    await expect(report).to_have_text("Rapport (PDF)")
    href = await report.get_attribute("href")
    assert href == f"/api/v1/gentests/{test_id}/report.pdf"
    async with edge.http() as c:
        pdf = await c.get(href)
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
    await expect(page.locator("#gt-start")).to_be_enabled(timeout=WAIT)
    await expect(page.locator("#gt-blocked")).to_be_hidden()
    await expect(page.locator("#gt-run")).to_be_hidden()
    await page.locator("#gentest").screenshot(path=str(shot_path(tmp_path, "gentest-last.png")))


async def test_language_switch_shows_the_english_texts(
    edge: Served, browser: Any, tmp_path: Path  # noqa: F811
) -> None:
    from playwright.async_api import expect

    page = await open_page(browser, edge, DESKTOP)
    await expect(page.locator("#gt-title")).to_have_text("Generatortest")
    await expect(page.locator("#gt-last")).to_have_text("Nog geen test geregistreerd")
    await page.click("#lang")
    await expect(page.locator("#gt-title")).to_have_text("Generator test")
    await expect(page.locator("#gt-last")).to_have_text("No test on record yet")
    await expect(page.locator("#gt-next")).to_have_text(
        "No passed generator test on record: test now")
    await expect(page.locator("#gt-start")).to_have_text("Start test")
    await page.click("#gt-start")
    await expect(page.locator("#gt-confirm-text")).to_have_text(
        "The generator will start and run for 30 minutes under load. Mains must be present. "
        "Start the test now?")
    await expect(page.locator("#gt-token-label")).to_have_text("A technician's access token")
    await expect(page.locator("#gt-confirm-ok")).to_have_text("Yes, start the test")
    await expect(page.locator("#gt-confirm-cancel")).to_have_text("Cancel")
    await page.click("#gt-confirm-cancel")
    await expect(page.locator("#gt-confirm")).to_be_hidden()
    assert edge.site.coil_writes() == []
    # and back: the Dutch texts return
    await page.click("#lang")
    await expect(page.locator("#gt-start")).to_have_text("Test starten")


async def test_technician_starts_the_test_and_follows_its_progress_to_the_result(
    edge: Served, browser: Any, tmp_path: Path  # noqa: F811
) -> None:
    from playwright.async_api import expect

    site = edge.site
    page = await open_page(browser, edge, PHONE)
    await expect(page.locator("#gt-next")).to_have_attribute("data-status", "never_tested")
    await page.click("#gt-start")
    confirm = page.locator("#gt-confirm")
    await expect(confirm).to_be_visible()
    await expect(page.locator("#gt-confirm-text")).to_have_text(
        "Het aggregaat start en draait 30 minuten onder last. Netstroom moet aanwezig zijn. "
        "De test nu starten?")
    assert site.coil_writes() == []  # nothing before the confirmation
    await page.fill("#gt-token", site.tokens["technician"])
    await page.click("#gt-confirm-ok")
    msg = page.locator("#gt-msg")
    await expect(msg).to_have_attribute("data-code", "gt_started", timeout=WAIT)
    await expect(msg).to_have_text("De test is gestart.")
    await expect(confirm).to_be_hidden()
    # the edge says running: the runner has the test, the start command went to the node
    status = await edge.status()
    assert status["active"]["phase"] == "STARTING"
    assert status["active"]["started_by"] == "technician"
    assert site.coil_writes() == [True]
    assert await page.evaluate("localStorage.getItem('nsp-token')") == site.tokens["technician"]
    section = page.locator("#gentest")
    await expect(section).to_have_attribute("data-phase", "STARTING", timeout=WAIT)
    await expect(page.locator("#gt-phase")).to_contain_text("Het aggregaat start…")
    await expect(page.locator("#gt-start")).to_be_hidden()
    await expect(page.locator("#gt-abort")).to_be_visible()

    # The set cranks and runs (6 s after the command), then 10 minutes under load.
    await site.cycle(2)
    site.node(**{**IDLE, "gen_state": 1, "starter_battery_v": 985, "last_command": 1})
    await site.cycle(2)
    site.node(**RUNNING)
    await site.cycle(2)
    await expect(section).to_have_attribute("data-phase", "RUNNING", timeout=WAIT)

    def minute_of_run(minute: int) -> dict[str, int]:
        return {**RUNNING, "run_hours_h": IDLE["run_hours_h"] + minute * 100 // 60,
                "fuel_l": IDLE["fuel_l"] - minute * 30 // 10}

    for minute in range(10):
        site.node(**minute_of_run(minute))
        await site.cycle(60)
    await expect(page.locator("#gt-remaining")).to_have_text("20 min 00 s", timeout=WAIT)
    await expect(page.locator("#gt-elapsed")).to_have_text("10 min 06 s")
    await expect(page.locator("#gt-phase")).to_have_text(
        "Het aggregaat draait onder last. Nog te gaan: 20 min")
    bar = page.locator("#gt-progress")
    assert float(await bar.evaluate("e => e.value")) == pytest.approx(1 / 3, abs=0.001)
    await expect(bar).to_have_attribute("aria-valuetext", "33 %")
    await page.locator("#gentest").screenshot(
        path=str(shot_path(tmp_path, "site-page-gentest.png")))
    await page.screenshot(path=str(shot_path(tmp_path, "gentest-progress-phone.png")),
                          full_page=True)
    width = await page.evaluate("document.documentElement.scrollWidth")
    assert width <= PHONE["width"], width

    # The progress moves with the edge's clock.
    for minute in range(10, 20):
        site.node(**minute_of_run(minute))
        await site.cycle(60)
    await expect(page.locator("#gt-remaining")).to_have_text("10 min 00 s", timeout=WAIT)
    await page.wait_for_function(
        "() => document.querySelector('#gt-progress').value > 0.66", timeout=WAIT)

    # To the end: the result in words, the report link of this test.
    for minute in range(20, 31):
        site.node(**minute_of_run(minute))
        await site.cycle(60)
    assert (await edge.status())["active"] is None
    await expect(msg).to_have_attribute("data-code", "NOT_VERIFIED", timeout=WAIT)
    await expect(msg).to_have_text(
        "De test is afgelopen: Niet geverifieerd: telt niet als maandelijkse test")
    await expect(page.locator("#gt-last")).to_have_attribute("data-outcome", "NOT_VERIFIED")
    await expect(page.locator("#gt-run")).to_be_hidden()
    await expect(page.locator("#gt-abort")).to_be_hidden()
    test_id = (await edge.status())["last"]["id"]
    await expect(page.locator("#gt-report")).to_have_attribute(
        "href", f"/api/v1/gentests/{test_id}/report.pdf")
    assert site.coil_writes() == [True, False]
    await page.locator("#gentest").screenshot(path=str(shot_path(tmp_path, "gentest-done.png")))


async def test_without_a_token_or_with_a_lower_role_nothing_starts(
    edge: Served, browser: Any, tmp_path: Path  # noqa: F811
) -> None:
    from playwright.async_api import expect

    site = edge.site
    page = await open_page(browser, edge, DESKTOP)
    msg = page.locator("#gt-msg")
    # No token: the edge answers 401; the page says what is needed.
    await page.click("#gt-start")
    await page.click("#gt-confirm-ok")
    await expect(msg).to_have_attribute("data-code", "no_token", timeout=WAIT)
    await expect(msg).to_have_text("Een test starten vraagt een toegangscode van een technicus. "
                                   "Er is niets gestart.")
    # The confirmation is offered again with the token field; a viewer's and an operator's
    # token are refused in plain words.
    for role in ("viewer", "operator"):
        await expect(page.locator("#gt-token")).to_be_visible()
        await page.fill("#gt-token", site.tokens[role])
        await page.click("#gt-confirm-ok")
        await expect(msg).to_have_attribute("data-code", "e403", timeout=WAIT)
        await expect(msg).to_contain_text("Deze toegangscode mag geen test starten")
        await page.evaluate("document.querySelector('#gt-msg').dataset.code = ''")
    text = await msg.text_content() or ""
    assert "{" not in text and "detail" not in text  # words, never JSON
    await page.screenshot(path=str(shot_path(tmp_path, "gentest-403.png")))
    # A token that is not valid: 401 in words, the token forgotten.
    await page.fill("#gt-token", "not-a-token")
    await page.click("#gt-confirm-ok")
    await expect(msg).to_have_attribute("data-code", "e401", timeout=WAIT)
    await expect(msg).to_contain_text("onbekend of verlopen")
    assert await page.evaluate("localStorage.getItem('nsp-token')") is None
    # nothing started
    assert site.coil_writes() == []
    status = await edge.status()
    assert status["active"] is None and status["last"] is None
    async with site.client() as c:
        assert (await c.get("/api/v1/gentests")).json()["tests"] == []


async def test_mains_absent_disables_start_and_the_edge_still_refuses(
    edge: Served, browser: Any, tmp_path: Path  # noqa: F811
) -> None:
    from playwright.async_api import expect

    site = edge.site
    # A real outage: mains gone, the set carries the site.
    site.node(**{**RUNNING, "mains_present": 0, "gen_run_reason": 1})
    await site.cycle(2)
    page = await open_page(browser, edge, PHONE)
    start = page.locator("#gt-start")
    await expect(start).to_be_disabled(timeout=WAIT)
    why = page.locator("#gt-blocked")
    await expect(why).to_have_attribute("data-code", "MAINS_ABSENT")
    await expect(why).to_have_text("Netstroom is afwezig: een test start nooit als de locatie "
                                   "het aggregaat nodig kan hebben")
    await expect(page.locator("#mains")).to_have_text("NETSTROOM UITGEVALLEN")
    await page.locator("#gentest").screenshot(
        path=str(shot_path(tmp_path, "gentest-mains-absent.png")))
    await page.click("#lang")
    await expect(why).to_have_text("Mains is absent: a test never starts while the site may "
                                   "need the generator")
    await page.click("#lang")

    # A forced click (the button enabled by hand) reaches the edge, and the edge refuses.
    await page.evaluate("document.querySelector('#gt-start').disabled = false")
    await start.click()
    await page.fill("#gt-token", site.tokens["technician"])
    await page.click("#gt-confirm-ok")
    msg = page.locator("#gt-msg")
    await expect(msg).to_have_attribute("data-code", "MAINS_ABSENT", timeout=WAIT)
    await expect(msg).to_have_text("Netstroom is afwezig: een test start nooit als de locatie "
                                   "het aggregaat nodig kan hebben")
    await expect(start).to_be_disabled(timeout=WAIT)  # the next refresh disables it again

    # A direct POST, as curl would: 409 with the reason; no command reached the node.
    async with edge.http() as c:
        r = await c.post("/api/v1/gentests",
                          headers={"Authorization": f"Bearer {site.tokens['admin']}"})
    assert r.status_code == 409 and r.json()["error"] == "MAINS_ABSENT"
    assert site.coil_writes() == []
    assert (await edge.status())["active"] is None


async def test_operator_aborts_a_running_test_from_the_page(
    edge: Served, browser: Any, tmp_path: Path  # noqa: F811
) -> None:
    from playwright.async_api import expect

    site = edge.site
    async with site.client() as c:
        r = await c.post("/api/v1/gentests", headers=site.auth("technician"))
        assert r.status_code == 201, r.text
    page = await open_page(browser, edge, DESKTOP)
    abort = page.locator("#gt-abort")
    await expect(abort).to_be_visible(timeout=WAIT)
    await abort.click()
    await expect(page.locator("#gt-confirm-text")).to_contain_text(
        "De test wordt afgebroken en het aggregaat gestopt")
    await expect(page.locator("#gt-confirm-ok")).to_have_text("Ja, test afbreken")
    await page.fill("#gt-token", site.tokens["operator"])
    await page.click("#gt-confirm-ok")
    msg = page.locator("#gt-msg")
    await expect(msg).to_have_attribute("data-code", "gt_aborted", timeout=WAIT)
    status = await edge.status()
    assert status["active"] is None
    assert status["last"]["outcome"] == "ABORTED" and status["last"]["end"] == "BY_OPERATOR"
    assert status["last"]["ended_by"] == "operator"
    assert site.coil_writes() == [True, False]
    await expect(page.locator("#gt-last")).to_have_attribute("data-outcome", "ABORTED")
    await expect(abort).to_be_hidden()
    await expect(page.locator("#gt-start")).to_be_visible()
