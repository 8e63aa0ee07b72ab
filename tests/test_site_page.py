"""The site page in real headless Chromium: it shows a value from the API and switches NL/EN.

The edge service runs for real (uvicorn, the poller with the system clock) against a pymodbus
server serving a regmap-shaped image.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from edge_server.api.app import create_app, serving
from edge_server.auth import Role, UserStore
from edge_server.clock import SystemClock
from edge_server.config import parse_config
from edge_server.service import Part, Service
from edge_server.storage.component import site_db_path
from tests.conftest import free_port, need_tool
from tests.test_poller import Peer, image, site

CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]


@pytest.fixture
async def edge_url() -> AsyncIterator[str]:
    peer = Peer(free_port(), image(("fridge",), fridge_temp_c=455, ambient_temp_c=2150))
    await peer.start()
    text = site({"fridge1": peer.port}, {"fridge1": '"fridge"'}).replace(
        "interval_s = 2", "interval_s = 0.3"
    )
    service = Service(parse_config(text), SystemClock(), parts=Part.NONE)
    port = free_port()
    try:
        async with serving(create_app(service), "127.0.0.1", port):
            yield f"http://127.0.0.1:{port}"
    finally:
        await peer.stop()


async def test_api_site_lists_values_with_unit_time_and_quality(edge_url: str) -> None:
    async with httpx.AsyncClient(base_url=edge_url, timeout=5) as client:
        body: dict[str, object] = {}
        for _ in range(100):  # the first poll cycle runs right after startup
            body = (await client.get("/api/v1/site")).json()
            if body["nodes"]["fridge1"]["online"]:  # type: ignore[index]
                break
        assert body["site_id"] == "test-site"
        value = body["values"]["fridge1.fridge_temp_c"]  # type: ignore[index]
        assert value["value"] == 4.55 and value["unit"] == "°C" and value["quality"] == "good"
        assert value["at"].endswith("+00:00")
        missing = body["values"]["fridge1.fridge_min_c"]  # type: ignore[index]
        assert missing["value"] is None and missing["quality"] == "unavailable"
        node = body["nodes"]["fridge1"]  # type: ignore[index]
        assert node["counters"]["reads_ok"] >= 2 and node["identity"]["map_version"] == 1
        page = await client.get("/")
        assert page.status_code == 200 and "/static/site.js" in page.text


async def test_site_page_shows_values_and_switches_language(edge_url: str) -> None:
    need_tool("chromium", "apt-get install -y chromium")
    from playwright.async_api import async_playwright, expect

    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = await browser.new_page()
            await page.goto(edge_url + "/")
            row = page.locator('[data-channel="fridge1.fridge_temp_c"]')
            # Dutch first: Dutch label and decimal comma
            await expect(row).to_contain_text("Temperatuur medicijnkoelkast", timeout=10_000)
            await expect(row.locator("td.value")).to_have_text("4,55 °C")
            await expect(page.locator('[data-channel="fridge1.fridge_min_c"] td.value')) \
                .to_have_text("niet beschikbaar")
            await expect(page.locator("#node-fridge1 .badge")).to_have_text("bereikbaar")
            # This service runs without rules and storage: the page says so instead of guessing.
            await expect(page.locator("#banner")).to_have_attribute("data-state", "UNKNOWN")
            await expect(page.locator("#ready-text")).to_have_text("ONBEKEND")
            await expect(page.locator("#reasons")).to_contain_text("Gereedheid niet beschikbaar")
            await expect(page.locator("#alerts")).to_contain_text("Meldingen niet beschikbaar")
            await expect(page.locator("#fridge-chart .nodata")).to_have_text("Geen gegevens")
            await page.click("#lang")
            await expect(row).to_contain_text("Medicine fridge temperature")
            await expect(row.locator("td.value")).to_have_text("4.55 °C")
            await expect(page.locator("#node-fridge1 .badge")).to_have_text("online")
            assert await page.evaluate("document.documentElement.lang") == "en"
        finally:
            await browser.close()


def test_nsp_edge_run_serves_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    """`nsp-edge run` as a person starts it: the API answers (the node is offline: nothing
    listens on its port), Ctrl-C stops it cleanly."""
    text = site({"n1": free_port()}, {"n1": '"fridge"'}).replace(
        "[poll]", f'[storage]\ndata_dir = "{tmp_path / "data"}"\n\n[poll]'
    )
    cfg = tmp_path / "site.toml"
    cfg.write_text(text, encoding="utf-8")
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "edge_server.cli", "run", "--config", str(cfg),
         "--listen", f"127.0.0.1:{port}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
    )
    try:
        body = None
        deadline = time.monotonic() + 30
        while body is None and time.monotonic() < deadline and proc.poll() is None:
            try:
                body = httpx.get(f"http://127.0.0.1:{port}/api/v1/site", timeout=1).json()
            except httpx.HTTPError:
                time.sleep(0.1)  # the process is still starting
        assert body is not None, proc.stderr.read() if proc.stderr else ""
        assert body["site_id"] == "test-site" and "n1" in body["nodes"]
        assert body["values"]["n1.fridge_temp_c"]["quality"] == "unavailable"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "Traceback" not in err
    assert f"http://127.0.0.1:{port}/" in out


async def test_site_needs_a_token_when_the_site_says_so(tmp_path: Path) -> None:
    text = site({"n1": free_port()}, {"n1": '"fridge"'}).replace(
        "[poll]",
        f'[api]\nrequire_auth_for_read = true\n\n[storage]\ndata_dir = "{tmp_path}"\n\n[poll]',
    )
    service = Service(parse_config(text), SystemClock(), parts=Part.NONE)
    app = create_app(service, manage_service=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://edge") as client:
        assert (await client.get("/api/v1/site")).status_code == 401
        bad = await client.get("/api/v1/site", headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401
        users = UserStore(site_db_path(tmp_path))
        token = users.add("kees", Role.VIEWER, SystemClock().now())
        good = await client.get("/api/v1/site", headers={"Authorization": f"Bearer {token}"})
        assert good.status_code == 200 and good.json()["site_id"] == "test-site"
