"""The board's map in real headless Chromium: the Netherlands' outline shipped with the hub
(no network), a dot per site where its registration puts it, in its readiness colour and mark,
the sites without coordinates counted below it; the readiness filter narrows map and table."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from edge_server.clock import ManualClock
from edge_server.hub.testing import RunningHub, running_hub, sample_status
from tests.conftest import need_tool
from tests.shots import shot_path
from tests.test_hub_board import CHROMIUM_ARGS, send

OUTLINE = Path(__file__).resolve().parents[1] / "edge_server/hub/static/nl-outline.json"
# (id, name, municipality, lat, lon, readiness)
SITES = [
    ("nsp-ut-001", "Buurthuis De Linde", "Utrecht", 52.0907, 5.1214, "READY"),
    ("nsp-gr-002", "Sporthal Noord", "Groningen", 53.2194, 6.5665, "NOT_READY"),
    ("nsp-ma-003", "Kerk Sint-Servaas", "Maastricht", 50.8514, 5.6910, "DEGRADED"),
]


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[RunningHub]:
    with running_hub(tmp_path / "hub",
                     clock=ManualClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))) as h:
        yield h


def test_outline_is_the_european_netherlands() -> None:
    doc = json.loads(OUTLINE.read_text())
    points = [p for ring in doc["rings"] for p in ring]
    lons, lats = [p[0] for p in points], [p[1] for p in points]
    # Cadzand to Bad Nieuweschans, Eijsden to Rottumerplaat
    assert 3.3 < min(lons) < 3.5 and 7.1 < max(lons) < 7.3
    assert 50.7 < min(lats) < 50.8 and 53.4 < max(lats) < 53.7
    assert "Natural Earth" in doc["source"] and len(points) > 500


def test_map_draws_each_site_where_registered_in_its_readiness(
        hub: RunningHub, tmp_path: Path) -> None:
    need_tool("chromium", "apt-get install -y chromium")
    from playwright.sync_api import expect, sync_playwright

    now = hub.clock.now()
    for site_id, name, town, lat, lon, ready in SITES:
        key = hub.store.add_site(site_id, now, name=name, municipality=town).encode()
        hub.store.set_site_location(site_id, lat, lon)
        send(hub, site_id, key, [("status", sample_status(readiness=ready, at=now))])
    key = hub.store.add_site("nsp-xx-004", now, name="Zonder plek").encode()
    send(hub, "nsp-xx-004", key, [("status", sample_status(at=now))])
    assert httpx.get(hub.url + "/static/nl-outline.json").json()["rings"]
    token = hub.store.add_user("olga", "operator")

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.route("http*://**", lambda route: route.abort()
                       if not route.request.url.startswith(hub.url) else route.continue_())
            page.goto(hub.url + "/")
            page.fill("#token", token)
            page.click("#login button[type=submit]")
            expect(page.locator("body[data-loaded='1']")).to_have_count(1)
            expect(page.locator("#map path.land").first).to_be_attached()
            dots = page.locator("#map .site-dot")
            expect(dots).to_have_count(3)
            pos = {}
            for site_id, name, town, _lat, _lon, ready in SITES:
                dot = page.locator(f"#map .site-dot[data-site='{site_id}']")
                expect(dot).to_have_class(f"site-dot {ready}")
                expect(dot.locator("title")).to_have_text(
                    f"{name} ({town}): " + {"READY": "Gereed", "NOT_READY": "Niet gereed",
                                            "DEGRADED": "Beperkt"}[ready])
                box = dot.locator("circle").bounding_box()
                assert box is not None
                pos[site_id] = (box["x"], box["y"])
            # north is up, east is right: Groningen above and right of Utrecht, Maastricht below
            assert pos["nsp-gr-002"][1] < pos["nsp-ut-001"][1] < pos["nsp-ma-003"][1]
            assert pos["nsp-gr-002"][0] > pos["nsp-ut-001"][0]
            # every dot inside the drawn map
            svg = page.locator("#map").bounding_box()
            assert svg is not None
            for x, y in pos.values():
                assert svg["x"] <= x <= svg["x"] + svg["width"]
                assert svg["y"] <= y <= svg["y"] + svg["height"]
            expect(page.locator("#map-note")).to_contain_text("1 zonder coördinaten")
            page.locator("figure.map").screenshot(path=str(shot_path(tmp_path, "hub-map.png")))
            page.select_option("#ready-filter", "NOT_READY")
            expect(dots).to_have_count(1)
            expect(page.locator("#sites tbody tr")).to_have_count(1)
            expect(page.locator("#sites tbody tr")).to_have_attribute("data-site", "nsp-gr-002")
            page.click("#lang")
            page.select_option("#ready-filter", "")
            expect(page.locator("#map-note")).to_contain_text("1 without coordinates")
        finally:
            browser.close()


def test_cli_takes_a_location_and_catches_swapped_numbers(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from edge_server import cli
    from edge_server.hub.store import HubStore

    data = str(tmp_path / "hub")
    assert cli.main(["hub", "add-site", "nsp-z-01", "--data", data, "--at", "52.5168,6.0830"]) == 0
    with pytest.raises(SystemExit):
        cli.main(["hub", "set-site", "nsp-z-01", "--data", data, "--at", "6.0830,52.5168"])
    assert "swapped" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["hub", "set-site", "nsp-z-01", "--data", data, "--at", "52,5;6,08"])
    assert "decimal degrees with a point" in capsys.readouterr().err
    store = HubStore(Path(data))
    try:
        site = store.site("nsp-z-01")
        assert site is not None and (site["lat"], site["lon"]) == (52.5168, 6.083)
    finally:
        store.close()
    assert cli.main(["hub", "set-site", "nsp-z-01", "--data", data, "--at", "none"]) == 0
    store = HubStore(Path(data))
    try:
        site = store.site("nsp-z-01")
        assert site is not None and site["lat"] is None and site["lon"] is None
    finally:
        store.close()
