"""Bulletins from the C-NSP hub to the sites, over real HTTP (uvicorn on localhost, real SQLite).

An operator writes a bulletin on the hub; the next ingest reply to each target site carries it
signed with that site's key; the edge (edge_server/uplink/notices.py) verifies it and refuses an
unsigned, altered or foreign-signed one; the site's receipt stops the repetition.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge_server.clock import ManualClock
from edge_server.hub.testing import RunningHub, sample_status
from edge_server.uplink.notices import (
    TEXT_MAX,
    TITLE_MAX,
    NoticeRefused,
    open_notice,
    read_bulletin,
    read_report_ack,
    sign_notice,
)
from edge_server.uplink.outbox import Outbox
from edge_server.uplink.protocol import encode_batch, iso, sign_headers
from tests import test_hub_api
from tests.test_hub_api import schema_validator

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)  # the clock fixture's start

# The fixtures of tests/test_hub_api.py (a hub on localhost with a ManualClock at T0).
clock = test_hub_api.clock
hub = test_hub_api.hub


@pytest.fixture
def keys(hub: RunningHub, clock: ManualClock) -> dict[str, bytes]:
    return {
        "nsp-a": hub.store.add_site("nsp-a", clock.now(), region="Noord").encode(),
        "nsp-b": hub.store.add_site("nsp-b", clock.now(), region="Noord").encode(),
        "nsp-c": hub.store.add_site("nsp-c", clock.now(), region="Zuid").encode(),
    }


def auth(hub: RunningHub, role: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {hub.store.add_user(role + '-user', role)}"}


def write(hub: RunningHub, headers: dict[str, str], **doc: Any) -> httpx.Response:
    body = {"title_nl": "Drinkwater", "text_nl": "Water halen bij de sporthal, 10-16 uur."} | doc
    return httpx.post(hub.url + "/api/v1/bulletins", json=body, headers=headers, timeout=10)


def exchange(hub: RunningHub, clock: ManualClock, site_id: str, key: bytes,
             extra: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """One batch of the site (its status plus `extra`), as the edge sends it; the 200 reply."""
    messages = [{"id": str(uuid.uuid4()), "kind": "status", "at": iso(clock.now()),
                 "body": sample_status(at=clock.now())}, *(extra or [])]
    body = encode_batch(site_id, str(uuid.uuid4()), clock.now(), messages)
    schema_validator("batch.json").validate(json.loads(body))
    r = httpx.post(hub.url + "/api/v1/ingest", content=body, timeout=10,
                   headers=sign_headers(site_id, key, body, int(clock.now().timestamp())))
    assert r.status_code == 200, r.text
    reply: dict[str, Any] = r.json()
    schema_validator("ingest-reply.json").validate(reply)
    return reply


def receipt(notice_id: str, clock: ManualClock, of: str = "bulletin") -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "kind": "receipt", "at": iso(clock.now()),
            "body": {"of": of, "id": notice_id, "received_at": iso(clock.now())}}


def test_only_an_operator_writes_a_bulletin(hub, keys) -> None:
    r = write(hub, {})
    assert r.status_code == 401 and r.json()["code"] == "no_token"
    r = write(hub, auth(hub, "viewer"))
    assert r.status_code == 403, r.text
    assert "operator role" in r.json()["error"]
    assert httpx.get(hub.url + "/api/v1/bulletins", headers=auth(hub, "viewer"),
                     timeout=10).json()["bulletins"] == []
    r = write(hub, auth(hub, "operator"))
    assert r.status_code == 201, r.text
    assert r.json()["issued_by"] == "operator-user"
    assert sorted(r.json()["sites"]) == ["nsp-a", "nsp-b", "nsp-c"]
    entries = httpx.get(hub.url + "/api/v1/audit", headers=auth(hub, "viewer"),
                        timeout=10).json()["entries"]
    assert [(e["who"], e["action"], e["subject"]) for e in entries] == [
        ("operator-user", "bulletin_written", r.json()["id"])]


def test_the_next_reply_carries_it_signed_with_the_sites_key_until_the_receipt(
    hub, keys, clock
) -> None:
    op = auth(hub, "operator")
    html = "<script>alert(1)</script> & <b>vet</b>"
    r = write(hub, op, title_nl="Stroom", text_nl=html, title_en="Power", text_en="Back at 18:00",
              target="region", region="noord", valid_hours=6)
    assert r.status_code == 201, r.text
    written = r.json()
    assert sorted(written["sites"]) == ["nsp-a", "nsp-b"]

    reply = exchange(hub, clock, "nsp-a", keys["nsp-a"])
    assert reply["report_acks"] == []
    [item] = reply["bulletins"]
    bulletin = read_bulletin(open_notice(keys["nsp-a"], "nsp-a", item))
    assert (bulletin.id, bulletin.title_nl, bulletin.text_nl) == (written["id"], "Stroom", html)
    assert (bulletin.title_en, bulletin.text_en, bulletin.issued_by) == (
        "Power", "Back at 18:00", "operator-user")
    assert bulletin.valid_until == iso(T0 + timedelta(hours=6))
    # Signed for nsp-a with nsp-a's key: neither nsp-b's key nor nsp-b's id opens it.
    with pytest.raises(NoticeRefused, match="signature does not match"):
        open_notice(keys["nsp-b"], "nsp-b", item)
    # Outside the region: nothing.
    assert exchange(hub, clock, "nsp-c", keys["nsp-c"])["bulletins"] == []

    # Repeated until the receipt; then not again.
    clock.advance(60)
    assert [i["payload"] for i in exchange(hub, clock, "nsp-a", keys["nsp-a"])["bulletins"]] == [
        item["payload"]]
    clock.advance(60)
    assert exchange(hub, clock, "nsp-a", keys["nsp-a"],
                    [receipt(written["id"], clock)])["bulletins"] == []
    clock.advance(60)
    assert exchange(hub, clock, "nsp-a", keys["nsp-a"])["bulletins"] == []
    # nsp-b has not confirmed: it still gets it; the list shows who has it.
    assert len(exchange(hub, clock, "nsp-b", keys["nsp-b"])["bulletins"]) == 1
    [listed] = httpx.get(hub.url + "/api/v1/bulletins", headers=op, timeout=10).json()[
        "bulletins"]
    confirmed = {d["site_id"]: d["confirmed_at"] for d in listed["deliveries"]}
    assert confirmed == {"nsp-a": iso(T0 + timedelta(seconds=120)), "nsp-b": None}


def test_an_expired_bulletin_is_not_sent(hub, keys, clock) -> None:
    assert write(hub, auth(hub, "operator"), valid_hours=1).status_code == 201
    clock.advance(3600)
    assert exchange(hub, clock, "nsp-a", keys["nsp-a"])["bulletins"] == []


def test_the_edge_refuses_unsigned_altered_and_foreign_notices(keys) -> None:
    key_a = keys_a = keys["nsp-a"]
    doc = {"type": "bulletin", "site_id": "nsp-a", "id": str(uuid.uuid4()), "title_nl": "Vals",
           "text_nl": "Ga naar huis.", "valid_from": iso(T0),
           "valid_until": iso(T0 + timedelta(hours=1)), "issued_at": iso(T0), "issued_by": "x"}
    good = sign_notice(key_a, "nsp-a", doc)
    assert read_bulletin(open_notice(keys_a, "nsp-a", good)).title_nl == "Vals"
    cases: list[tuple[Any, str]] = [
        ({"payload": good["payload"]}, "unsigned"),
        ({"payload": good["payload"], "sig": ""}, "unsigned"),
        ("just text", "not a signed notice"),
        # Signed by another site's hub key, or by nsp-b's key for nsp-b and copied here.
        (sign_notice(keys["nsp-b"], "nsp-a", doc), "signature does not match"),
        (sign_notice(keys["nsp-b"], "nsp-b", doc | {"site_id": "nsp-b"}),
         "signature does not match"),
        ({"payload": good["payload"].replace("Vals", "Echt"), "sig": good["sig"]},
         "signature does not match"),
        # Signed with the right key, but naming another site inside.
        (sign_notice(key_a, "nsp-a", doc | {"site_id": "nsp-b"}), "names another site"),
    ]
    for item, why in cases:
        with pytest.raises(NoticeRefused, match=why):
            open_notice(key_a, "nsp-a", item)
    # Signed and ours, but not a well-formed bulletin.
    with pytest.raises(NoticeRefused, match="title_nl"):
        read_bulletin(open_notice(key_a, "nsp-a", sign_notice(
            key_a, "nsp-a", doc | {"title_nl": "x" * (TITLE_MAX + 1)})))
    with pytest.raises(NoticeRefused, match="valid_until"):
        read_bulletin(json.loads(good["payload"]) | {"valid_until": iso(T0)})


@pytest.mark.parametrize(("field", "doc", "words"), [
    ("title_nl", {"title_nl": "T" * (TITLE_MAX + 1)}, f"at most {TITLE_MAX}"),
    ("text_nl", {"text_nl": "é" * (TEXT_MAX + 1)}, f"at most {TEXT_MAX}"),
    ("text_en", {"title_en": "Water", "text_en": "x" * (TEXT_MAX + 1)}, f"at most {TEXT_MAX}"),
    ("title_nl", {"title_nl": "   "}, "needs a Dutch title"),
    ("text_en", {"title_en": "Water"}, "both English fields or neither"),
    ("valid_hours", {"valid_hours": 0}, "more than 0"),
    ("valid_until", {"valid_until": "morgen"}, "ISO 8601"),
    ("region", {"target": "region", "region": "Oost"}, "known: Noord, Zuid"),
    ("sites", {"target": "sites", "sites": ["nsp-x"]}, "not registered: nsp-x"),
    ("extra", {"colour": "red"}, "colour"),
])
def test_bad_bulletins_are_refused_with_a_clear_message(
    hub, keys, clock, field: str, doc: dict[str, Any], words: str
) -> None:
    r = write(hub, auth(hub, "operator"), **doc)
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid"
    assert words in r.json()["error"]
    schema_validator("error.json").validate(r.json())
    assert exchange(hub, clock, "nsp-a", keys["nsp-a"])["bulletins"] == []


def test_a_body_that_is_not_json_is_400_not_500(hub, keys) -> None:
    r = httpx.post(hub.url + "/api/v1/bulletins", content=b"{nope", timeout=10,
                   headers=auth(hub, "operator") | {"content-type": "application/json"})
    assert r.status_code == 400, r.text
    r = httpx.post(hub.url + "/api/v1/bulletins", json=["a"], timeout=10,
                   headers=auth(hub, "operator"))
    assert r.status_code == 422, r.text


def test_an_emergency_report_is_listed_and_its_acknowledgement_comes_back_signed(
    hub, keys, clock
) -> None:
    report_id = str(uuid.uuid4())
    report = {"id": str(uuid.uuid4()), "kind": "report", "at": iso(clock.now()), "body": {
        "report_id": report_id, "kind": "medical", "urgency": "immediate",
        "location": "Sporthal, ingang noord", "people": 1, "text": "<i>Val</i>, bewusteloos",
        "reported_by": "piet", "reported_at": iso(clock.now())}}
    assert exchange(hub, clock, "nsp-a", keys["nsp-a"], [report])["report_acks"] == []
    viewer, op = auth(hub, "viewer"), auth(hub, "operator")
    listed = httpx.get(hub.url + "/api/v1/reports", headers=viewer, timeout=10).json()
    assert listed["open"] == 1
    assert [(r["site_id"], r["report_id"], r["body"]["text"], r["ack"])
            for r in listed["reports"]] == [("nsp-a", report_id, "<i>Val</i>, bewusteloos", None)]
    url = f"{hub.url}/api/v1/reports/nsp-a/{report_id}/ack"
    assert httpx.post(url, headers=viewer, timeout=10).status_code == 403
    other = f"{hub.url}/api/v1/reports/nsp-b/{report_id}/ack"
    r = httpx.post(other, headers=op, timeout=10)
    assert r.status_code == 404 and r.json()["code"] == "unknown_report"
    clock.advance(30)
    r = httpx.post(url, headers=op, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["ack"]["by"] == "operator-user"

    [item] = exchange(hub, clock, "nsp-a", keys["nsp-a"])["report_acks"]
    ack = read_report_ack(open_notice(keys["nsp-a"], "nsp-a", item))
    assert (ack.report_id, ack.by, ack.at) == (report_id, "operator-user", iso(clock.now()))
    assert exchange(hub, clock, "nsp-b", keys["nsp-b"])["report_acks"] == []
    assert exchange(hub, clock, "nsp-a", keys["nsp-a"],
                    [receipt(report_id, clock, "report_ack")])["report_acks"] == []
    assert exchange(hub, clock, "nsp-a", keys["nsp-a"])["report_acks"] == []
    listed = httpx.get(hub.url + "/api/v1/reports", headers=viewer, timeout=10).json()
    assert listed["open"] == 0


def test_the_outbox_sends_emergency_reports_before_a_backlog(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "outbox.sqlite")
    try:
        alerts = [box.enqueue("alert", {"n": i}, T0) for i in range(5)]
        box.enqueue("status", {"n": 0}, T0)
        report = box.enqueue("report", {"report_id": str(uuid.uuid4())}, T0 + timedelta(hours=1))
        batch = box.next_batch(3)
        assert [m.id for m in batch] == [report, *alerts[:2]]
        box.ack([report, *alerts[:2]])
        assert [m.kind for m in box.next_batch(10)] == ["alert", "alert", "alert", "status"]
    finally:
        box.close()
