"""The C-NSP's fuel round against a real hub (HTTP, signed ingest, SQLite): 150 sites of one
region post statuses with their tank figures; the round's litres and order are checked against
values computed here from those statuses; CSV and PDF (pdftotext) for the driver; "delivered N
litres" by an operator, seen afterwards in the site's own FUEL_REFUELLED event."""

from __future__ import annotations

import csv
import io
import random
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge_server.clock import ManualClock
from edge_server.hub.testing import RunningHub, running_hub, sample_status
from edge_server.uplink.protocol import iso
from tests.conftest import need_tool
from tests.pdf import read_pdf
from tests.test_hub_board import send

NOW = datetime(2026, 1, 20, 6, 0, tzinfo=UTC)  # 07:00 in Amsterdam


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[RunningHub]:
    with running_hub(tmp_path / "hub", clock=ManualClock(NOW)) as h:
        yield h


def status(rng: random.Random) -> dict[str, Any]:
    tank = rng.choice([400.0, 500.0, 1000.0, 2000.0])
    usable = round(rng.uniform(0, tank), 1)
    burn = round(rng.uniform(3, 12), 2)
    body = sample_status(fuel_autonomy_h=round(usable / burn, 1), at=NOW)
    body.update(fuel_l=usable + 10, fuel_usable_l=usable, tank_usable_l=tank, burn_lph=burn)
    return body


def expected(statuses: dict[str, dict[str, Any]], target_h: float) -> list[tuple[str, float]]:
    """(site, litres) in visiting order, computed from the statuses themselves."""
    need, unknown, enough = [], [], []
    for site, b in statuses.items():
        if b.get("fuel_usable_l") is None:
            unknown.append((site, None))
            continue
        litres = min(b["tank_usable_l"] - b["fuel_usable_l"],
                     max(0.0, target_h * b["burn_lph"] - b["fuel_usable_l"]))
        if round(litres, 1) > 0:
            need.append((NOW + timedelta(hours=b["fuel_autonomy_h"]), site, round(litres, 1)))
        else:
            enough.append((site, 0.0))
    return [(s, x) for _, s, x in sorted(need)] + sorted(unknown) + sorted(enough)


def register(hub: RunningHub, n: int, region: str, rng: random.Random,
             statuses: dict[str, dict[str, Any]]) -> dict[str, bytes]:
    keys = {}
    for i in range(n):
        site = f"nsp-{region.lower()[:3]}-{i:03d}"
        keys[site] = hub.store.add_site(site, NOW, name=f"Locatie {i}", municipality="Zwolle",
                                        region=region).encode()
        body = status(rng)
        if i % 25 == 7:  # a site whose level sensor is out: level unknown
            body.update(fuel_l=None, fuel_usable_l=None, fuel_autonomy_h=None,
                        refuel_before=None)
        statuses[site] = body
        send(hub, site, keys[site], [("status", body)])
    return keys


def test_round_of_a_region_of_150_sites(hub: RunningHub) -> None:
    rng = random.Random(20260120)
    statuses: dict[str, dict[str, Any]] = {}
    register(hub, 150, "IJsselland", rng, statuses)
    register(hub, 10, "Twente", rng, {})  # another region: not in this round
    token = hub.store.add_user("olga", "operator")
    auth = {"Authorization": f"Bearer {token}"}
    assert httpx.get(hub.url + "/api/v1/fuel-round").status_code == 401
    for target in (72.0, 24.0):
        r = httpx.get(hub.url + "/api/v1/fuel-round",
                      params={"region": "IJsselland", "target_h": target}, headers=auth)
        assert r.status_code == 200, r.text
        doc = r.json()
        got = [(s["site_id"], s["to_target_l"]) for s in doc["stops"]]
        assert got == expected(statuses, target)
        assert doc["total_l"] == pytest.approx(sum(x for _, x in got if x), abs=0.05)
        first = doc["stops"][0]
        assert first["refuel_before"] == iso(
            NOW + timedelta(hours=statuses[first["site_id"]]["fuel_autonomy_h"]))
        full = {s["site_id"]: s["to_full_l"] for s in doc["stops"]}
        for site, b in statuses.items():
            if b["fuel_usable_l"] is not None:
                assert full[site] == pytest.approx(b["tank_usable_l"] - b["fuel_usable_l"],
                                                   abs=0.05)
    # the CSV in Dutch for Excel: BOM, semicolons, the same order, times in Amsterdam
    r = httpx.get(hub.url + "/api/v1/fuel-round", headers=auth,
                  params={"region": "IJsselland", "format": "csv", "sep": "semicolon"})
    assert r.status_code == 200 and r.text.startswith("\ufeff")
    rows = list(csv.DictReader(io.StringIO(r.text.lstrip("\ufeff")), delimiter=";"))
    assert [row["site_id"] for row in rows] == [s for s, _ in expected(statuses, 72.0)]
    assert rows[0]["refuel_before_local"].endswith("CET (UTC+01:00)")


def test_pdf_for_the_driver_and_deliveries(hub: RunningHub, tmp_path: Path) -> None:
    need_tool("pdftotext", "apt-get install -y poppler-utils")
    rng = random.Random(7)
    statuses: dict[str, dict[str, Any]] = {}
    keys = register(hub, 12, "Twente", rng, statuses)
    token = hub.store.add_user("olga", "operator")
    auth = {"Authorization": f"Bearer {token}"}
    r = httpx.get(hub.url + "/api/v1/fuel-round", headers=auth,
                  params={"region": "Twente", "format": "pdf"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/pdf"
    text, pages = read_pdf(tmp_path / "round.pdf", r.content)
    assert pages == 1
    order = [s for s, _ in expected(statuses, 72.0)]
    assert "Tankronde / Fuel round – Twente" in text and "2026-01-20 07:00 CET" in text
    assert text.index(f"Locatie {int(order[0][-3:])} ") < text.index(
        f"Locatie {int(order[1][-3:])} ")
    assert "niveau onbekend / level unknown" in text

    site = order[0]
    bad = [({"site_id": site, "litres": 0}, 422), ({"site_id": site, "litres": 1e9}, 422),
           ({"site_id": "nsp-nope", "litres": 100}, 404),
           ({"site_id": site, "litres": 100, "note": "x" * 501}, 422),
           ({"site_id": site, "litres": 100, "extra": 1}, 422)]
    for body, code in bad:
        assert httpx.post(hub.url + "/api/v1/fuel-round/deliveries", json=body,
                          headers=auth).status_code == code, body
    assert httpx.post(hub.url + "/api/v1/fuel-round/deliveries",
                      json={"site_id": site, "litres": 100}).status_code == 401
    r = httpx.post(hub.url + "/api/v1/fuel-round/deliveries", headers=auth,
                   json={"site_id": site, "litres": 850, "note": "tankwagen 2"})
    assert r.status_code == 201 and r.json()["by"] == "olga"
    log = httpx.get(hub.url + "/api/v1/fuel-round/deliveries", headers=auth).json()
    assert [(d["site_id"], d["litres"], d["seen_at_site"]) for d in log["deliveries"]] == [
        (site, 850.0, None)]
    # the site's level jumps: its edge reports FUEL_REFUELLED, the log shows it was seen
    hub.clock.advance(1800)  # type: ignore[attr-defined]
    event = {"code": "FUEL_REFUELLED", "text_en": "Tank refuelled: +846 L (power)",
             "text_nl": "Tank bijgevuld: +846 L (power)", "subject": "power", "value": 846,
             "at": iso(hub.clock.now())}
    send(hub, site, keys[site], [("event", event)])
    log = httpx.get(hub.url + "/api/v1/fuel-round/deliveries", headers=auth,
                    params={"site": site}).json()
    assert log["deliveries"][0]["seen_at_site"] is not None


def test_board_downloads_the_round_of_the_region_shown(hub: RunningHub, tmp_path: Path) -> None:
    need_tool("chromium", "apt-get install -y chromium")
    need_tool("pdftotext", "apt-get install -y poppler-utils")

    from tests.test_hub_board import board_page

    rng = random.Random(3)
    register(hub, 4, "Twente", rng, {})
    register(hub, 3, "IJsselland", rng, {})
    token = hub.store.add_user("olga", "operator")
    with board_page(hub, token, accept_downloads=True) as page:
        page.select_option("#region-filter", "Twente")
        with page.expect_download() as info:
            page.click("#round-pdf")
        download = info.value
        assert download.suggested_filename == "tankronde_Twente.pdf"
        target = tmp_path / "board-round.pdf"
        download.save_as(target)
        text, _pages = read_pdf(tmp_path / "copy.pdf", target.read_bytes())
        assert "Fuel round – Twente" in text
        stops = [ln for ln in text.splitlines() if ln.strip()[:1].isdigit()]
        assert len(stops) == 4, text  # Twente's four, not IJsselland's three
        with page.expect_download() as info:
            page.click("#round-csv")
        saved = tmp_path / "round.csv"
        info.value.save_as(saved)
        assert saved.read_text(encoding="utf-8-sig").startswith("order;site_id")


def test_a_viewer_reads_the_round_but_records_nothing(hub: RunningHub, tmp_path: Path,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    from edge_server import cli

    register(hub, 2, "Twente", random.Random(1), {})
    data = str(hub.data_dir)  # the hub's own data (and database, SQLite or PostgreSQL)
    assert cli.main(["hub", "add-user", "vera", "--role", "viewer", "--data", data]) == 0
    assert capsys.readouterr().out.split()[-1]  # the token, printed once
    token = hub.store.add_user("vera", "viewer")
    auth = {"Authorization": f"Bearer {token}"}
    assert httpx.get(hub.url + "/api/v1/fuel-round", headers=auth).status_code == 200
    r = httpx.post(hub.url + "/api/v1/fuel-round/deliveries", headers=auth,
                   json={"site_id": "nsp-twe-000", "litres": 100})
    assert r.status_code == 403 and "operator" in r.text, r.text
