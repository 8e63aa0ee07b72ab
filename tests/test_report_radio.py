"""An emergency report over the backup radio while the primary link is down, then the full
report once it is back: the hub holds one report, the board shows the full text.

1. The frame (version 3): what it keeps, what it cuts (at a character boundary), refusals.
2. The edge's radio fallback on an injected clock with a real crisis store and a real hub
   (uvicorn, SQLite; its compact ingest as `nsp-edge hub radio` uses it): the report goes before
   a critical alert and a status, twice, held once; the full report by the primary link then
   replaces it on the board (GET /api/v1/reports).
3. Real processes end to end: `nsp-edge run` with [radio] on a pty -> socat -> the simulated air
   (`python -m edge_server.radio.sim`) -> socat -> `nsp-edge hub radio` -> the hub's SQLite; the
   report posted on the site's API appears at the hub by radio; then `nsp-edge hub` starts and
   the edge's uplink delivers the full report.
4. The board in Chromium: the radio's short report ("…" where cut), then the full text.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge_server.auth import Role
from edge_server.clock import ManualClock
from edge_server.crisis.component import CrisisComponent
from edge_server.hub.compact_ingest import CompactRefused, ingest_compact_frame
from edge_server.hub.store import HubStore
from edge_server.hub.testing import free_port, running_hub, sample_status, start_hub_process
from edge_server.radio.airtime import LoRaParams
from edge_server.radio.budget import max_in_any_window
from edge_server.radio.fallback import REPORT_REPEAT_S, REPORT_SENDS, RadioFallback
from edge_server.radio.hubair import HubAir
from edge_server.radio.queue import Priority
from edge_server.radio.settings import RadioSettings
from edge_server.radio.transport import frame_airtime_s, on_air_bytes
from edge_server.uplink.compact import (
    REPORT_FRAME_MAX,
    REPORT_FRAME_MIN,
    REPORT_LOCATION_SHARE,
    REPORT_ROOM,
    CompactError,
    CompactReport,
    decode_frame,
    decode_report,
    encode_report,
)
from edge_server.uplink.protocol import ReportBody
from tests import test_board_reports, test_hub_board, test_radio_e2e
from tests.conftest import need_tool
from tests.edge_process import SITE_ID, EdgeProcess, add_user, site_toml

# The fixture of tests/test_radio_e2e.py (two socat pty pairs) and its deadline poll.
radio_link = test_radio_e2e.radio_link
_wait = test_radio_e2e._wait
board_page = test_board_reports.board_page
send = test_hub_board.send

T0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
KEY = b"k" * 32
LOCATION = "Sporthal De Brug, ingang noord, kleedkamer 3 achter de kantine (sleutel bij de balie)"
TEXT = ("Rook uit de kleedkamer, twee kinderen nog binnen, brandweer niet bereikbaar via 112. "
        "Wij ontruimen de hal; graag direct een blusploeg en een ambulance sturen. " * 3)
REPORT = {"kind": "fire", "urgency": "immediate", "location": LOCATION, "people": 7,
          "text": TEXT}


def _body(**over: Any) -> dict[str, Any]:
    return {"report_id": str(uuid.uuid4()), "reported_by": "anna",
            "reported_at": T0.isoformat(), **REPORT, **over}


# -- 1. the frame -----------------------------------------------------------------------------
def test_the_frame_keeps_kind_urgency_people_and_the_start_of_place_and_text() -> None:
    body = _body()
    frame = encode_report("nsp-a", KEY, body, T0 + timedelta(seconds=5))
    assert len(frame) == REPORT_FRAME_MAX == 96
    got = decode_frame("nsp-a", KEY, frame)
    assert isinstance(got, CompactReport)
    assert (got.report_id, got.kind, got.urgency, got.people) == (
        body["report_id"], "fire", "immediate", 7)
    assert got.reported_at == T0 and got.sent_at == T0 + timedelta(seconds=5)
    # The place first (where help is needed), the text gets the rest of the 58 bytes.
    assert len(got.location.encode()) == REPORT_LOCATION_SHARE
    assert len(got.text.encode()) == REPORT_ROOM - REPORT_LOCATION_SHARE
    assert LOCATION.startswith(got.location) and TEXT.startswith(got.text)
    assert got.cut == ("location", "text")
    radio_body = got.to_report_body()
    ReportBody.model_validate(radio_body)  # what the board reads of any report
    assert radio_body["reported_by"] is None and radio_body["cut"] == ["location", "text"]


def test_a_short_report_fits_whole_and_a_long_place_takes_what_the_text_leaves() -> None:
    short = _body(location="Hal", text="Val van trap", people=None)
    got = decode_report("nsp-a", KEY, encode_report("nsp-a", KEY, short, T0))
    assert (got.location, got.text, got.people, got.cut) == ("Hal", "Val van trap", None, ())
    assert len(encode_report("nsp-a", KEY, short, T0)) == REPORT_FRAME_MIN + 3 + 12
    no_text = decode_report("nsp-a", KEY, encode_report("nsp-a", KEY, _body(text=""), T0))
    assert len(no_text.location.encode()) == REPORT_ROOM and no_text.cut == ("location",)
    # Cut at a character boundary: 'é' is 2 bytes, the hub must still decode the text.
    wide = decode_report("nsp-a", KEY, encode_report(
        "nsp-a", KEY, _body(location="é" * 30, text="ë" * 30), T0))
    assert wide.location == "é" * 16 and wide.text == "ë" * 13  # 32 + 26 of 58 bytes
    big = decode_report("nsp-a", KEY, encode_report("nsp-a", KEY, _body(people=100_000), T0))
    assert big.people == 65534  # "that many or more"


def test_a_tampered_foreign_or_cut_frame_is_refused() -> None:
    frame = encode_report("nsp-a", KEY, _body(), T0)
    bad = bytearray(frame)
    bad[40] ^= 0x01  # a letter of the place
    with pytest.raises(CompactError, match="tag"):
        decode_report("nsp-a", KEY, bytes(bad))
    with pytest.raises(CompactError, match="tag"):
        decode_report("nsp-b", KEY, frame)  # another site's name in the MAC
    with pytest.raises(CompactError, match="does not hold"):
        decode_report("nsp-a", KEY, frame[:-1])
    with pytest.raises(CompactError, match="kind"):
        encode_report("nsp-a", KEY, _body(kind="flood"), T0)


def test_the_report_frames_airtime_fits_the_budget_beside_the_statuses() -> None:
    """The numbers docs/radio.md gives: a full frame at SF9 and SF12, site id of 14 letters."""
    frame = encode_report("nsp-gemeente-1", KEY, _body(), T0)
    on_air = on_air_bytes("nsp-gemeente-1", frame)
    assert 112 <= on_air <= 116  # 96 + 1 + 14 + 2 SLIP ENDs (+ an escape or two)
    sf9 = frame_airtime_s(LoRaParams(sf=9), "nsp-gemeente-1", frame)
    sf12 = frame_airtime_s(LoRaParams(sf=12), "nsp-gemeente-1", frame)
    assert 0.6 < sf9 < 0.7 and 4.4 < sf12 < 4.7
    # SF12, a status every 5 min: 2/3 of 36 s at most (settings.py); both sends of a report fit
    # the third left over in the same hour.
    status = RadioSettings(sf=12, status_every_min=5)
    status_h = frame_airtime_s(status.params(), "nsp-gemeente-1", bytes(24)) * 12
    assert status_h + REPORT_SENDS * sf12 <= 36.0


# -- 2. the fallback on an injected clock, a real hub -----------------------------------------
def test_report_goes_first_by_radio_twice_held_once_then_the_full_text_replaces_it(
    tmp_path: Path,
) -> None:
    clock = ManualClock(T0)
    with running_hub(tmp_path / "hub", clock=clock) as hub:
        key = hub.store.add_site("nsp-a", T0).encode()
        token = hub.store.add_user("olga", "operator")
        crisis = CrisisComponent("nsp-a", "NSP A", tmp_path / "edge", clock)  # no uplink: queued
        asyncio.run(crisis.start())
        try:
            report = crisis.report(dict(REPORT), "anna")
            assert crisis.store is not None
            [(msg_id, full, _created)] = crisis.store.not_handed_off()
            settings = RadioSettings(sf=12, fallback_after_min=10, status_every_min=5)
            air = HubAir(hub.store, clock, settings.params())
            world = {"up": False}
            alert = {"alert_id": "5", "code": "FRIDGE_HIGH", "severity": "critical",
                     "state": "raised", "raised_at": T0.isoformat(), "value": 9.1,
                     "subject": "fridge1", "kind": "alert"}
            fb = RadioFallback("nsp-a", key, settings, clock, air, lambda: world["up"],
                               lambda now: sample_status("DEGRADED", at=now),
                               lambda: [alert], crisis.store.undelivered)
            t = 0.0
            while t < 40 * 60:
                fb.tick(clock.now())
                clock.advance(5.0)
                t += 5.0
            kinds = [s.kind for s in fb.sent]
            # All three waited at the takeover (10 min): the report first, then the alert.
            assert kinds[:3] == ["report", "alert", "status"], kinds
            assert fb.sent[0].priority is Priority.REPORT
            assert 600 <= (fb.sent[0].at - T0).total_seconds() < 610
            sends = [s for s in fb.sent if s.kind == "report"]
            assert len(sends) == REPORT_SENDS
            assert (sends[1].at - sends[0].at).total_seconds() >= REPORT_REPEAT_S
            assert air.refused == [] and air.duplicates == 1  # the second send: held once
            assert max_in_any_window(air.log) <= 36.0 + 1e-6
            [by_radio] = hub.store.messages("nsp-a", "report")
            assert by_radio["body"]["via"] == "radio"
            assert by_radio["body"]["report_id"] == report["report_id"]
            headers = {"Authorization": f"Bearer {token}"}
            [shown] = httpx.get(hub.url + "/api/v1/reports", headers=headers).json()["reports"]
            assert shown["complete"] is False and shown["first_via"] == "radio"
            b = shown["body"]
            assert (b["kind"], b["urgency"], b["people"]) == ("fire", "immediate", 7)
            assert LOCATION.startswith(b["location"]) and TEXT.startswith(b["text"]) and b["text"]

            # The primary link is back: the radio stops; the outbox's full report arrives
            # (twice here: a reply lost on the way back makes the edge send it again).
            world["up"] = True
            sent_before = len(fb.sent)
            for _ in range(3):
                fb.tick(clock.now())
                clock.advance(5.0)
            assert len(fb.sent) == sent_before
            message = {"id": msg_id, "kind": "report", "at": full["reported_at"], "body": full}
            for _ in range(2):
                assert hub.store.ingest("nsp-a", [message], clock.now()) == [msg_id]
            crisis.store.delivered([msg_id], clock.now())
            assert crisis.store.undelivered() == []
            held = hub.store.messages("nsp-a", "report")
            assert [m["id"] for m in held if m["body"].get("via") != "radio"] == [msg_id]
            assert len(held) == 2  # the radio's short copy stays, marked, in the messages
            [shown] = httpx.get(hub.url + "/api/v1/reports", headers=headers).json()["reports"]
            assert shown["complete"] is True and shown["first_via"] == "radio"
            assert shown["body"]["text"] == TEXT and shown["body"]["location"] == LOCATION
            assert shown["body"]["reported_by"] == "anna"
        finally:
            asyncio.run(crisis.stop())


def test_a_report_frame_for_an_unknown_site_or_too_long_is_refused(tmp_path: Path) -> None:
    store = HubStore(tmp_path / "hub")
    try:
        key = store.add_site("nsp-a", T0).encode()
        frame = encode_report("nsp-a", key, _body(), T0)
        with pytest.raises(CompactRefused) as exc:
            ingest_compact_frame(store, T0, "nsp-a", frame + b"x", 300, "radio")
        assert exc.value.code == "bad_frame" and "38..96 (report)" in exc.value.message
        with pytest.raises(CompactRefused) as exc:
            ingest_compact_frame(store, T0, "nsp-x", frame, 300, "radio")
        assert exc.value.code == "unknown_site"
        assert store.messages("nsp-a") == []
    finally:
        store.close()


# -- 3. real processes ------------------------------------------------------------------------
def test_report_by_radio_at_the_hub_then_the_full_report_once_when_the_link_is_back(
    radio_link: tuple[Path, list[subprocess.Popen[bytes]]],
) -> None:
    d, procs = radio_link
    hub_dir, key_file = d / "hubdata", d / "site.key"
    hub_port = free_port()  # nothing listens here until the hub is started below
    store = HubStore(hub_dir)
    key_file.write_text(store.add_site(SITE_ID, datetime.now(UTC)))
    hub_token = store.add_user("olga", "operator")
    store.close()
    test_radio_e2e.start_air_and_receiver(d, procs, hub_dir, speed=10)
    config = d / "site.toml"
    config.write_text(site_toml(d / "edgedata", f"http://127.0.0.1:{hub_port}", key_file, radio={
        "port": str(d / "edge"), "sf": 7, "fallback_after_min": 0, "status_every_min": 0.25}))
    token = add_user(d / "edgedata", "anna", Role.OPERATOR)
    edge = EdgeProcess(config, d / "edge.log")

    def held(via_radio: bool) -> list[dict[str, Any]]:
        s = HubStore(hub_dir)
        try:
            return [m for m in s.messages(SITE_ID)
                    if (m["body"].get("via") == "radio") == via_radio]
        finally:
            s.close()

    try:
        edge.start(token)
        # The air and the hub's receiver work: a status by radio arrives first.
        _wait("a status by radio at the hub", lambda: held(True), procs)
        reply = edge.post("/api/v1/reports", token, REPORT)
        assert reply.status_code == 201, reply.text
        report_id = reply.json()["report"]["report_id"]
        [radio] = _wait("the report by radio at the hub", lambda: [
            m for m in held(True) if m["kind"] == "report"], procs)
        b = radio["body"]
        assert b["report_id"] == report_id
        assert (b["kind"], b["urgency"], b["people"]) == ("fire", "immediate", 7)
        assert LOCATION.startswith(b["location"]) and TEXT.startswith(b["text"])
        assert b["cut"] == ["location", "text"] and held(False) == []
        assert edge.get("/api/v1/reports", token).json()["reports"][0]["delivered_at"] is None

        # The primary link comes back: the hub's HTTP server on the port the edge points at.
        hub = start_hub_process(hub_dir, hub_port)
        procs.append(hub)

        def delivered() -> bool:
            [mine] = edge.get("/api/v1/reports", token).json()["reports"]
            return bool(mine["delivered_at"])

        _wait("the edge seeing the hub hold the full report", delivered, procs)
        full = [m for m in held(False) if m["kind"] == "report"]
        assert len(full) == 1, full
        assert full[0]["body"]["text"] == TEXT and full[0]["body"]["location"] == LOCATION
        assert len([m for m in held(True) if m["kind"] == "report"]) == 1
        got = httpx.get(f"http://127.0.0.1:{hub_port}/api/v1/reports",
                        headers={"Authorization": f"Bearer {hub_token}"}, timeout=5).json()
        [shown] = [r for r in got["reports"] if r["report_id"] == report_id]
        assert len(got["reports"]) == 1
        assert shown["complete"] is True and shown["first_via"] == "radio"
        assert shown["body"]["text"] == TEXT and shown["body"]["reported_by"] == "anna"
    finally:
        edge.stop()
    air = json.loads((d / "air.json").read_text())
    assert air["over_duty_cycle"] == 0


# -- the board in Chromium ----------------------------------------------------------------------
def test_the_board_shows_the_radio_report_cut_then_the_full_text(tmp_path: Path) -> None:
    need_tool("chromium", "apt-get install -y chromium")
    from playwright.sync_api import expect

    clock = ManualClock(T0)
    with running_hub(tmp_path / "hub", clock=clock) as hub:
        key = hub.store.add_site("nsp-a", T0, name="Buurthuis De Linde").encode()
        token = hub.store.add_user("olga", "operator")
        body = _body()
        frame = encode_report("nsp-a", key, body, T0)
        ingest_compact_frame(hub.store, clock.now(), "nsp-a", frame, 300, "radio")
        short = decode_report("nsp-a", key, frame)
        with board_page(hub, token) as page:
            row = page.locator(f"tr[data-report='nsp-a/{body['report_id']}']")
            expect(row.locator(".kind")).to_have_text("brand")
            expect(row.locator(".urgency")).to_have_text("direct")
            expect(row.locator(".people")).to_have_text("7")
            expect(row.locator(".where")).to_have_text(short.location + "…")
            expect(row.locator(".report-text")).to_have_text(
                short.text + "… (via radio; volledige tekst volgt)")
            expect(page.locator("#reports-alarm")).to_have_text(
                "⚠ Onbevestigde noodhulpmeldingen: 1")
            send(hub, "nsp-a", key, [("report", body)])  # the primary link is back
            page.reload()
            expect(page.locator("#reports-table tbody tr")).to_have_count(1)
            expect(row.locator(".where")).to_have_text(LOCATION)
            expect(row.locator(".report-text")).to_have_text(TEXT)
