"""A bulletin typed on the hub's board reaches two sites' kiosk pages, in real headless Chromium.

Real parts: a hub on localhost (uvicorn, SQLite), two whole edge services (rules, uplink, crisis)
each serving its web app with uvicorn, and Chromium for the board and both kiosk pages. After the
sites confirmed it, the board shows "2 van 2"; then the hub goes away and one edge is restarted:
its kiosk still shows the bulletin, and says the link to the C-NSP is interrupted.
"""

from __future__ import annotations

import tomllib
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from edge_server.api.app import create_app, serving
from edge_server.clock import ManualClock
from edge_server.config import SiteConfig
from edge_server.hub.testing import RunningHub
from edge_server.service import Part, Service
from tests import test_uplink_e2e
from tests.conftest import ROOT, free_port, need_tool
from tests.test_hub_board import CHROMIUM_ARGS
from tests.test_kiosk import deliveries
from tests.test_uplink_component import until

clock = test_uplink_e2e.clock
hub = test_uplink_e2e.hub

PARTS = Part.RULES | Part.UPLINK | Part.CRISIS


def edge_config(hub: RunningHub, tmp: Path, clock: ManualClock, site_id: str) -> SiteConfig:
    raw = tomllib.loads((ROOT / "examples" / "site.toml").read_text())
    raw["site"]["id"] = site_id
    key_file = tmp / f"{site_id}.key"
    key_file.write_text(hub.store.add_site(site_id, clock.now(), region="Noord"))
    raw["storage"] = {"data_dir": str(tmp / site_id)}
    raw["uplink"] = {"enabled": True, "hub_url": hub.url, "key_file": str(key_file)}
    return SiteConfig.model_validate(raw)


async def start_edge(stack: AsyncExitStack, config: SiteConfig, clock: ManualClock,
                     port: int) -> Service:
    service = Service(config, clock, parts=PARTS)
    await service.start(run_poller=False)
    stack.push_async_callback(service.stop)
    await stack.enter_async_context(
        serving(create_app(service, manage_service=False), "127.0.0.1", port))
    return service


async def test_a_bulletin_from_the_board_reaches_two_kiosks_and_stays_offline(
    hub: RunningHub, tmp_path: Path, clock: ManualClock
) -> None:
    need_tool("chromium", "apt-get install -y chromium")
    from playwright.async_api import async_playwright, expect

    configs = {s: edge_config(hub, tmp_path, clock, s) for s in ("nsp-noord-1", "nsp-noord-2")}
    ports = {s: free_port() for s in configs}
    token = hub.store.add_user("olga", "operator")
    text = "<script>window.pwned=1</script>Water halen bij de sporthal, 10-16 uur."
    async with async_playwright() as p:
        browser = await p.chromium.launch(executable_path="/usr/bin/chromium",
                                          args=CHROMIUM_ARGS)
        try:
            board = await browser.new_page()
            await board.goto(hub.url + "/")
            await board.fill("#token", token)
            await board.click("#login button[type=submit]")
            await expect(board.locator("body[data-loaded='1']")).to_have_count(1)
            await board.fill("#bl-title-nl", "Drinkwater")
            await board.fill("#bl-text-nl", text)
            await board.fill("#bl-title-en", "Drinking water")
            await board.fill("#bl-text-en", "Collect water at the sports hall, 10-16 h.")
            await board.select_option("#bl-target", "region")
            await board.select_option("#bl-region", "Noord")
            await board.click("#bl-send")
            await expect(board.locator("#bl-msg")).to_contain_text("Bericht opgeslagen")

            async with AsyncExitStack() as stack:
                services: dict[str, Any] = {}
                for s, config in configs.items():
                    services[s] = await start_edge(stack, config, clock, ports[s])
                    assert services[s].uplink is not None
                    services[s].uplink.uplink.notify()
                await until(lambda: all(deliveries(hub, token)["Drinkwater"][s] is not None
                                        for s in configs), "both sites' receipts at the hub")
                for s in configs:
                    kiosk = await browser.new_page()
                    await kiosk.goto(f"http://127.0.0.1:{ports[s]}/kiosk")
                    item = kiosk.locator("#bulletins li.bulletin")
                    await expect(item).to_have_count(1)
                    await expect(item.locator("p.text").first).to_have_text(text)
                    await expect(item.locator("h3.title.en")).to_have_text("Drinking water")
                    assert await kiosk.evaluate("() => window.pwned") is None
                    await kiosk.close()
                await board.reload()
                await expect(board.locator("#bl-table .delivered")).to_contain_text("2 van 2")

            # The hub goes away; the first edge is restarted: its kiosk keeps the bulletin, its age.
            hub.stop()
            clock.advance(3 * 3600)  # the bulletin is 3 h old, still valid (24 h)
            async with AsyncExitStack() as stack:
                first = next(iter(configs))
                await start_edge(stack, configs[first], clock, ports[first])
                kiosk = await browser.new_page()
                await kiosk.goto(f"http://127.0.0.1:{ports[first]}/kiosk")
                await expect(kiosk.locator("#bulletins li.bulletin h3.title").first) \
                    .to_have_text("Drinkwater")
                await expect(kiosk.locator("#link")).to_contain_text(
                    "Verbinding met het coördinatiepunt (C-NSP): onderbroken.")
                await expect(kiosk.locator("#bulletins .small")).to_contain_text(
                    "(3 uur geleden / hours ago)")
                await kiosk.close()
        finally:
            await browser.close()
