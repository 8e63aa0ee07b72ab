"""Generator tests and commissioning records at the hub: the due state per site (the edge's own
NFPA 110 schedule), the municipality's register (JSON and CSV), the board's column and filter in
real headless Chromium, and the hub's check of commissioning bodies. Time is a ManualClock."""

from __future__ import annotations

import csv
import io
import json
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from edge_server.clock import ManualClock
from edge_server.hub.store import HubStore, sortable
from edge_server.hub.testing import (
    RunningHub,
    running_hub,
    sample_event,
    sample_gentest,
    sample_status,
)
from edge_server.uplink.protocol import encode_batch, iso, sign_headers
from tests.conftest import ROOT, need_tool
from tests.shots import shot_path
from tests.test_hub_api import schema_validator
from tests.test_hub_board import board_page

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def hub(tmp_path: Path) -> Iterator[RunningHub]:
    with running_hub(tmp_path / "hub", clock=ManualClock(NOW)) as h:
        yield h


def post(hub: RunningHub, site_id: str, key: bytes, messages: list[tuple[str, dict[str, Any]]],
         ) -> httpx.Response:
    now = hub.clock.now()
    wire = [{"id": str(uuid.uuid4()), "kind": k, "at": iso(now), "body": b} for k, b in messages]
    body = encode_batch(site_id, str(uuid.uuid4()), now, wire)
    return httpx.post(hub.url + "/api/v1/ingest", content=body,
                      headers=sign_headers(site_id, key, body, int(now.timestamp())))


def gentest(site_id: str, test_id: int, days_ago: float, outcome: str = "PASSED",
            by: str = "jan") -> tuple[str, dict[str, Any]]:
    body = sample_gentest(test_id, NOW - timedelta(days=days_ago), outcome, by, site_id=site_id)
    schema_validator("gentest-body.json").validate(body)
    return "gentest", body


def commissioning(site_id: str, result: str = "PASS", **changes: Any) -> dict[str, Any]:
    body = {"site_id": site_id, "commissioned_at": iso(NOW - timedelta(days=3)), "by": "piet",
            "result": result, "tool_version": "0.1.0", "site_problems": [],
            "nodes": [{"name": "power", "unit": 1, "roles": ["power"], "answered": True,
                       "result": result, "firmware": "0.1.0", "map_version": 1,
                       "problems": [] if result == "PASS" else [{"level": result,
                                                                 "code": "crc_errors"}]}]}
    body.update(changes)
    return body


@pytest.fixture
def region(hub: RunningHub) -> dict[str, bytes]:
    """nsp-fresh passed 10 days ago, nsp-late 45, nsp-due 25, nsp-none never; nsp-fresh's
    newest test failed 2 days ago (the window counts from the last PASSED test)."""
    keys = {s: hub.store.add_site(s, NOW).encode()
            for s in ("nsp-fresh", "nsp-late", "nsp-due", "nsp-none")}
    for site_id, key in keys.items():
        messages = [("status", sample_status(at=NOW))]
        if site_id == "nsp-fresh":
            messages += [gentest(site_id, 1, 40), gentest(site_id, 2, 10, by="anna"),
                         gentest(site_id, 3, 2, "FAILED_TO_START", by="anna")]
        elif site_id == "nsp-late":
            messages += [gentest(site_id, 7, 45, by="kees")]
        elif site_id == "nsp-due":
            messages += [gentest(site_id, 4, 25)]
        r = post(hub, site_id, key, messages)
        assert r.status_code == 200, r.text
    return keys


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


# ---------------------------------------------------------------- due state
def test_due_state_per_site_uses_the_edge_schedule(hub: RunningHub, region: dict[str, bytes],
                                                   ) -> None:
    token = hub.store.add_user("olga", "operator")
    sites = httpx.get(hub.url + "/api/v1/sites", headers=auth(token)).json()["sites"]
    by_id = {s["site_id"]: s["gentest"] for s in sites}
    assert {k: v["state"] for k, v in by_id.items()} == {
        "nsp-fresh": "failed", "nsp-late": "overdue", "nsp-due": "due", "nsp-none": "never"}
    fresh = by_id["nsp-fresh"]
    assert fresh["last"]["outcome"] == "FAILED"  # the newest test, shown as it is
    assert fresh["last"]["end"] == "FAILED_TO_START"
    assert fresh["due"]["last_test"] == iso(NOW - timedelta(days=10)).replace("Z", "+00:00")
    assert fresh["due"]["status"] != "overdue"  # failed although the window is still fine
    late = by_id["nsp-late"]
    assert late["last"]["started_by"] == "kees" and late["last"]["ran_min"] == 30.0
    assert late["due"]["latest"].startswith("2026-02-24")  # 45 - 40 days: 5 days overdue
    assert by_id["nsp-none"]["last"] is None
    # The clock moves: 31 more days and nsp-fresh (passed 41 days ago) is overdue too.
    assert isinstance(hub.clock, ManualClock)
    hub.clock.advance(31 * 86400)
    one = httpx.get(hub.url + "/api/v1/sites/nsp-fresh", headers=auth(token)).json()
    assert one["gentest"]["state"] == "failed" and one["gentest"]["due"]["overdue"]
    due = httpx.get(hub.url + "/api/v1/sites/nsp-due", headers=auth(token)).json()
    assert due["gentest"]["state"] == "overdue"  # 25 + 31 days after its passed test


@pytest.mark.sqlite_only("empties the index inside hub.sqlite with sqlite3")
def test_index_is_rebuilt_from_stored_messages_of_an_older_hub(
        hub: RunningHub, region: dict[str, bytes], tmp_path: Path) -> None:
    hub.stop()
    hub.store.close()
    db = sqlite3.connect(tmp_path / "hub" / "hub.sqlite")
    db.execute("DELETE FROM gentests")
    db.execute("DELETE FROM hub_meta WHERE name LIKE 'derived_%'")
    db.commit()
    db.close()
    store = HubStore(tmp_path / "hub")
    try:
        states = {s["site_id"]: s["last_passed_gentest_at"] is not None for s in store.sites()}
        assert states == {"nsp-due": True, "nsp-fresh": True, "nsp-late": True, "nsp-none": False}
    finally:
        store.close()


# ---------------------------------------------------------------- the register
def test_register_filters_by_day_and_site_json_and_csv_and_needs_a_token(
        hub: RunningHub, region: dict[str, bytes]) -> None:
    url = hub.url + "/api/v1/gentests"
    window = {"from": "2026-01-10", "to": "2026-02-20"}  # 45, 40, 25 and 10 days before NOW
    assert httpx.get(url, params=window).status_code == 401
    bad = httpx.get(url, params=window, headers=auth("nope"))
    assert bad.status_code == 401 and bad.json()["code"] == "bad_token"
    for role in ("operator", "admin"):
        token = hub.store.add_user(f"user-{role}", role)
        r = httpx.get(url, params=window, headers=auth(token))
        assert r.status_code == 200, r.text
    tests = r.json()["tests"]
    assert [(t["site_id"], t["test_id"]) for t in tests] == [
        ("nsp-late", 7), ("nsp-fresh", 1), ("nsp-due", 4), ("nsp-fresh", 2)]  # oldest first
    only = httpx.get(url, params={**window, "site": "nsp-fresh"}, headers=auth(token)).json()
    assert [t["test_id"] for t in only["tests"]] == [1, 2]
    everything = httpx.get(url, params={"from": "2026-01-01", "to": "2026-03-01"},
                           headers=auth(token)).json()["tests"]
    assert len(everything) == 5
    # to is inclusive, in Dutch calendar days: the test that ended on 2026-02-27 13:00 CET
    edge = httpx.get(url, params={"from": "2026-02-27", "to": "2026-02-27"},
                     headers=auth(token)).json()["tests"]
    assert [t["test_id"] for t in edge] == [3]
    r = httpx.get(url, params={**window, "format": "csv"}, headers=auth(token))
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert 'filename="generatortests_2026-01-10_2026-02-20.csv"' in \
        r.headers["content-disposition"]
    rows = list(csv.DictReader(io.StringIO(r.text)))
    assert [row["site_id"] for row in rows] == ["nsp-late", "nsp-fresh", "nsp-due", "nsp-fresh"]
    assert rows[0]["outcome"] == "PASSED" and rows[0]["passed"] == "yes"
    assert rows[0]["started_by"] == "kees" and rows[0]["ran_min"] == "30.0"
    assert rows[0]["notes"] == "monthly test" and rows[0]["load"] == ""
    nl = httpx.get(url, params={**window, "format": "csv", "sep": "semicolon"},
                   headers=auth(token))
    assert nl.content.startswith(b"\xef\xbb\xbf")  # UTF-8 BOM: Excel reads UTF-8
    assert list(csv.DictReader(io.StringIO(nl.content.decode("utf-8-sig")), delimiter=";")) \
        == rows
    assert httpx.get(url, params={**window, "format": "csv"}).status_code == 401
    for params in ({"from": "1 jan"}, {"from": "2026-03-01", "to": "2026-02-01"},
                   {"format": "xlsx"}, {"format": "csv", "sep": "tab"}):
        bad = httpx.get(url, params=params, headers=auth(token))
        assert bad.status_code == 422 and bad.json()["code"] == "invalid", params
        schema_validator("error.json").validate(bad.json())


def test_cli_prints_the_register(hub: RunningHub, region: dict[str, bytes],
                                 tmp_path: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "edge_server.cli", "hub", "gentests", "--data",
             str(tmp_path / "hub"), *args], cwd=ROOT, capture_output=True, text=True, timeout=60)

    out = cli("--from", "2026-01-10", "--to", "2026-02-20", "--csv")  # while the hub runs (WAL)
    assert out.returncode == 0, out.stderr
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert [(r["site_id"], r["test_id"]) for r in rows] == [
        ("nsp-late", "7"), ("nsp-fresh", "1"), ("nsp-due", "4"), ("nsp-fresh", "2")]
    out = cli("--from", "2026-01-01", "--to", "2026-03-01", "--site", "nsp-fresh", "--json")
    assert [(t["outcome"], t["end"]) for t in json.loads(out.stdout)["tests"]] == [
        ("PASSED", None), ("PASSED", None), ("FAILED", "FAILED_TO_START")]
    out = cli("--from", "2026-01-01", "--to", "2026-03-01")
    assert "nsp-late" in out.stdout and "5 test(s) ended 2026-01-01 .. 2026-03-01" in out.stdout
    bad = cli("--from", "2026-03-02", "--to", "2026-03-01")
    assert bad.returncode == 2 and "is after" in bad.stderr
    assert cli("--from", "gisteren").returncode == 2


# ---------------------------------------------------------------- commissioning at the hub
def test_commissioning_is_shown_and_an_invalid_body_is_refused(hub: RunningHub) -> None:
    key = hub.store.add_site("nsp-c", NOW).encode()
    token = hub.store.add_user("olga", "operator")
    good = commissioning("nsp-c", "WARN")
    schema_validator("commissioning-body.json").validate(good)
    no_unit = commissioning("nsp-c")
    no_unit["nodes"][0]["unit"] = 0
    invalid = [commissioning("nsp-c", result="OK"), no_unit,
               {k: v for k, v in commissioning("nsp-c").items() if k != "by"},
               commissioning("nsp-c", commissioned_at="yesterday")]
    for body in invalid:
        if body["commissioned_at"] != "yesterday":  # format needs an extra package to check
            with pytest.raises(jsonschema.ValidationError):
                schema_validator("commissioning-body.json").validate(body)
        r = post(hub, "nsp-c", key, [("event", sample_event("door")), ("commissioning", body)])
        assert r.status_code == 422, r.text
        assert r.json()["code"] == "invalid"
        assert r.json()["error"].startswith("messages.1.body.")  # the edge isolates by this
    assert hub.store.count_messages() == 0
    assert post(hub, "nsp-c", key, [("commissioning", good)]).status_code == 200
    site = httpx.get(hub.url + "/api/v1/sites/nsp-c", headers=auth(token)).json()
    assert site["commissioning"]["result"] == "WARN"
    assert site["commissioning"]["by"] == "piet"
    assert site["commissioning"]["nodes"][0]["problems"] == [{"level": "WARN",
                                                             "code": "crc_errors"}]


# ---------------------------------------------------------------- the board
def test_board_shows_gentest_column_nl_en_and_the_overdue_filter(
        hub: RunningHub, region: dict[str, bytes], tmp_path: Path) -> None:
    need_tool("chromium", "apt-get install -y chromium")
    from playwright.sync_api import expect

    assert post(hub, "nsp-late", region["nsp-late"],
                [("commissioning", commissioning("nsp-late"))]).status_code == 200
    token = hub.store.add_user("olga", "operator")
    with board_page(hub, token, viewport={"width": 1600, "height": 700}) as page:
        rows = page.locator("#sites tbody tr")
        expect(rows).to_have_count(4)
        late = page.locator("tr[data-site='nsp-late'] .gentest")
        expect(late).to_contain_text("⚠ Te laat (sinds 24-02-2026)")
        expect(late).to_contain_text("laatste 15-01-2026: geslaagd, door kees, 30 min")
        expect(late).to_contain_text("last niet gemeten")
        expect(page.locator("tr[data-site='nsp-none'] .gentest")).to_have_text(
            "✖ Nooit getest")
        expect(page.locator("tr[data-site='nsp-due'] .gentest")).to_contain_text(
            "◔ Binnenkort nodig (uiterlijk")
        expect(page.locator("tr[data-site='nsp-fresh'] .gentest")).to_contain_text(
            "✖ Laatste test mislukt")
        expect(page.locator("tr[data-site='nsp-fresh'] .gentest")).to_contain_text(
            "startte niet")
        expect(page.locator("tr[data-site='nsp-late'] .commission")).to_have_text(
            "✔ in bedrijf gesteld op 26-02-2026: PASS")
        expect(page.locator("tr[data-site='nsp-none'] .commission")).to_have_text(
            "niet vastgelegd")
        expect(page.locator(".count-gentest-late")).to_have_text(
            "⚠ Aggregaattest mislukt, te laat of nooit: 3")
        expect(page.locator("#register")).to_have_text("Register generatortests (CSV)")
        page.screenshot(path=str(shot_path(tmp_path, "hub-board.png")), full_page=True)
        page.check("#gt-filter")  # "who is overdue" this morning
        expect(rows).to_have_count(3)
        assert [rows.nth(i).get_attribute("data-site") for i in range(3)] == [
            "nsp-fresh", "nsp-late", "nsp-none"]
        page.click("#lang")
        expect(late).to_contain_text("⚠ Overdue (since 24/02/2026)")
        expect(late).to_contain_text("last 15/01/2026: passed, by kees, 30 min")
        expect(page.locator("tr[data-site='nsp-none'] .gentest")).to_have_text(
            "✖ Never tested")
        expect(page.locator("#register")).to_have_text("Generator test register (CSV)")
        expect(page.locator("th[data-t='col_gentest']")).to_have_text("Generator test")
        page.reload()  # the filter is remembered
        expect(page.locator("body[data-loaded='1']")).to_have_count(1)
        expect(rows).to_have_count(3)
        page.uncheck("#gt-filter")
        expect(rows).to_have_count(4)
        expect(page.locator("#reg-to")).to_have_value("2026-03-01")  # the hub's clock
        expect(page.locator("#reg-from")).to_have_value("2025-03-01")
        page.fill("#reg-from", "2026-01-01")
        with page.expect_download() as download:
            page.click("#register")
        text = Path(download.value.path()).read_text()
        assert download.value.suggested_filename == "generatortests_2026-01-01_2026-03-01.csv"
        assert len(list(csv.DictReader(io.StringIO(text)))) == 5
        page.click("#lang")  # back to Dutch: the file is for Excel with Dutch settings
        with page.expect_download() as download:
            page.click("#register")
        raw = Path(download.value.path()).read_bytes()
        assert raw.startswith(b"\xef\xbb\xbf") and b"site_id;test_id;" in raw
        assert len(list(csv.DictReader(io.StringIO(raw.decode("utf-8-sig")),
                                       delimiter=";"))) == 5


# ---------------------------------------------------------------- size
@pytest.mark.slow
def test_register_and_board_for_a_whole_region_are_fast(tmp_path: Path) -> None:
    """3,600 sites x 12 monthly tests: the year's register and the board's site list."""
    store = HubStore(tmp_path / "hub")
    try:
        start = NOW - timedelta(days=365)
        for n in range(3600):
            site_id = f"nsp-{n:04d}"
            store.add_site(site_id, NOW)
            messages = []
            for i in range(12):
                ended = start + timedelta(days=30 * i + n % 20, minutes=n)
                body = sample_gentest(i + 1, ended, site_id=site_id)
                messages.append({"id": str(uuid.uuid4()), "kind": "gentest", "at": iso(ended),
                                 "body": body})
            store.ingest(site_id, messages, NOW)
        t0 = time.perf_counter()
        rows, _total = store.gentests(sortable(start), sortable(NOW + timedelta(days=1)))
        register_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        sites = store.sites()
        sites_s = time.perf_counter() - t0
        assert len(rows) == 3600 * 12 and len(sites) == 3600
        assert all(s["last_passed_gentest_at"] for s in sites)
        print(f"register {len(rows)} rows: {register_s:.3f} s; sites(): {sites_s:.3f} s")
        assert register_s < 5 and sites_s < 5
        json.dumps(rows)
    finally:
        store.close()
