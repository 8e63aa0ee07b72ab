"""The hub under attack and faults: bodies checked at the door, pages that survive bad rows,
headers and bodies that cannot be parsed, the catch-all 500 (real uvicorn, real SQLite).

Each test here failed on the hub before these checks: a signed body of the wrong type was
stored and broke /api/v1/sites for the whole region, a huge timestamp header was a 500, ...
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge_server.clock import ManualClock
from edge_server.hub.app import HubSettings
from edge_server.hub.store import HubStore
from edge_server.hub.testing import (
    RunningHub,
    running_hub,
    sample_alert,
    sample_event,
    sample_gentest,
    sample_status,
)
from edge_server.uplink.protocol import body_model, encode_batch, iso, sign_headers
from tests.test_hub_api import SCHEMAS, schema_validator

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(T0)


@pytest.fixture
def hub(tmp_path: Path, clock: ManualClock) -> Iterator[RunningHub]:
    with running_hub(tmp_path / "hub", clock=clock, settings=HubSettings()) as h:
        yield h


@pytest.fixture
def key(hub: RunningHub, clock: ManualClock) -> bytes:
    return hub.store.add_site("nsp-a", clock.now()).encode()


@pytest.fixture
def token(hub: RunningHub) -> str:
    return hub.store.add_user("olga", "operator")


def message(kind: str, body: dict[str, Any]) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "kind": kind, "at": iso(T0), "body": body}


def post_raw(hub: RunningHub, key: bytes, body: bytes) -> httpx.Response:
    headers = sign_headers("nsp-a", key, body, int(T0.timestamp()))
    return httpx.post(hub.url + "/api/v1/ingest", content=body, headers=headers, timeout=10)


def post(hub: RunningHub, key: bytes, messages: list[dict[str, Any]]) -> httpx.Response:
    return post_raw(hub, key, encode_batch("nsp-a", str(uuid.uuid4()), T0, messages))


def get(hub: RunningHub, token: str, path: str) -> httpx.Response:
    return httpx.get(hub.url + path, headers={"Authorization": f"Bearer {token}"}, timeout=10)


# -- 1. every body of every kind checked before anything is stored ------------------------------
def _bad_bodies() -> list[tuple[str, str, dict[str, Any], str]]:
    """(case, kind, body, the field the 422 must name)."""
    gt = sample_gentest(1, T0)
    return [
        ("gentest_planned_s_text", "gentest", gt | {"planned_s": "1800"}, "planned_s"),
        ("gentest_passed_as_number", "gentest", gt | {"passed": 1}, "passed"),
        ("gentest_unknown_outcome", "gentest", gt | {"outcome": "GREAT"}, "outcome"),
        ("alert_severity_object", "alert", sample_alert("a1", T0) | {"severity": {"x": 1}},
         "severity"),
        ("alert_code_list", "alert", sample_alert("a1", T0) | {"code": ["x"]}, "code"),
        ("alert_empty", "alert", {}, "alert_id"),
        ("status_unknown_readiness", "status", sample_status() | {"readiness": "FINE"},
         "readiness"),
        ("status_open_alerts_negative", "status", sample_status() | {"open_alerts": -1},
         "open_alerts"),
        ("event_without_code", "event", {"text_en": "x"}, "code"),
    ]


@pytest.mark.parametrize(("case", "kind", "body", "field"), _bad_bodies(),
                         ids=[c[0] for c in _bad_bodies()])
def test_a_body_its_schema_refuses_is_422_naming_message_and_field(
    hub, key, token, case, kind, body, field
) -> None:
    good = message("status", sample_status())
    r = post(hub, key, [good, message(kind, body)])
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid"
    assert r.json()["error"].startswith(f"messages.1.body.{field}"), r.json()["error"]
    assert hub.store.count_messages() == 0  # the whole batch refused: the edge isolates it
    # the published schema refuses it too: the model and the schema say the same
    assert not schema_validator(f"{kind}-body.json").is_valid(body)
    assert get(hub, token, "/api/v1/sites").status_code == 200


@pytest.mark.parametrize("literal", ["NaN", "Infinity", "-Infinity", "1e999"])
def test_non_finite_numbers_are_refused_with_the_field(hub, key, token, literal) -> None:
    body = encode_batch("nsp-a", str(uuid.uuid4()), T0, [message("gentest", sample_gentest(1, T0))])
    body = body.replace(b'"fuel_used_l":1.7', b'"fuel_used_l":' + literal.encode())
    assert literal.encode() in body
    r = post_raw(hub, key, body)
    assert r.status_code == 422, r.text
    assert r.json()["error"].startswith("messages.0.body.fuel_used_l")
    assert hub.store.count_messages() == 0
    assert get(hub, token, "/api/v1/gentests").status_code == 200


def test_every_kind_of_sample_body_is_valid_for_model_and_schema() -> None:
    """The bodies the reference edge sends pass both the hub's model and the published schema."""
    bodies = {
        "status": sample_status(at=T0),
        "alert": sample_alert("a1", T0),
        "event": sample_event(),
        "gentest": sample_gentest(1, T0),
    }
    for kind, body in bodies.items():
        body_model(kind).model_validate(body)
        schema_validator(f"{kind}-body.json").validate(body)


def test_the_gentest_model_and_schema_list_the_same_words() -> None:
    """Model and schema drift apart silently otherwise: the enums and required fields agree."""
    for kind in ("status", "alert", "event", "gentest"):
        published = json.loads((SCHEMAS / f"{kind}-body.json").read_text())
        model = body_model(kind).model_json_schema()
        assert set(published["required"]) == set(model.get("required", [])), kind
        for name, prop in published["properties"].items():
            if "enum" in prop:
                words = set(prop["enum"]) - {None}
                assert words == _enum(model["properties"][name]), (kind, name)


def _enum(prop: dict[str, Any]) -> set[Any]:
    """The words of a model field's JSON Schema: `enum`, or inside `anyOf` when it may be null."""
    if "enum" in prop:
        return set(prop["enum"])
    if "const" in prop:
        return {prop["const"]}
    return set().union(*(_enum(p) for p in prop.get("anyOf", []) if p.get("type") != "null"))


# -- pages never fail on one site's stored data (also data stored by older hubs) -----------------
def _store_bad_rows(data: Path) -> None:
    """Rows as an older hub (no body checks) stored them for site nsp-bad (on SQLite or
    PostgreSQL, whichever the hub tests run on)."""
    store = HubStore(data)
    with store.db.write() as db:
        db.execute("INSERT INTO site_status(site_id, at, body) VALUES ('nsp-bad', ?, ?)",
                   (iso(T0), '{"readiness": "READY", "reasons": "x", "fridge_temp_c": NaN}'))
        db.execute(
            "INSERT INTO alerts(site_id, alert_id, at, state, severity, code, body, seq) "
            "VALUES ('nsp-bad', 'a1', ?, 'raised', '{\"x\": 1}', '[1]', '{\"value\": Infinity}', "
            "-1)",
            (iso(T0),))
        db.execute(
            "INSERT INTO gentests(site_id, test_id, started_at, ended_at, outcome, passed, "
            "started_by, body, arrival) VALUES ('nsp-bad', '1', NULL, "
            "'2026-03-01T11:00:00.000000Z', 'PASSED', 1, 'x', "
            "'{\"planned_s\": \"long\", \"ran_s\": NaN, \"passed\": true}', -1)")
        db.execute(
            "INSERT INTO site_commissioning(site_id, at, result, by, body) "
            "VALUES ('nsp-bad', ?, 'PASS', 'x', '[1, 2]')", (iso(T0),))
    store.close()


def test_one_sites_unreadable_rows_never_break_the_regions_pages(
    tmp_path, clock, caplog
) -> None:
    data = tmp_path / "hub"
    with running_hub(data, clock=clock) as hub:
        hub.store.add_site("nsp-bad", clock.now())
        good_key = hub.store.add_site("nsp-a", clock.now()).encode()
        token = hub.store.add_user("olga", "operator")
        assert post(hub, good_key, [message("status", sample_status(at=T0))]).status_code == 200
    _store_bad_rows(data)
    caplog.set_level(logging.ERROR, logger="edge_server.hub")
    with running_hub(data, clock=clock) as hub:  # a restart reads them again
        for path in ("/api/v1/sites", "/api/v1/sites/nsp-bad", "/api/v1/alerts?open=1",
                     "/api/v1/gentests?from=2026-01-01&to=2026-03-31",
                     "/api/v1/gentests?from=2026-01-01&to=2026-03-31&format=csv"):
            r = get(hub, token, path)
            assert r.status_code == 200, (path, r.text)
        sites = {s["site_id"]: s for s in get(hub, token, "/api/v1/sites").json()["sites"]}
        assert sites["nsp-a"]["readiness"] == "READY" and sites["nsp-a"]["unreadable"] == []
        bad = sites["nsp-bad"]
        assert set(bad["unreadable"]) == {"status", "last_gentest", "commissioning"}
        assert bad["reasons"][0]["code"] == "UNREADABLE_DATA"
        assert "unreadable data" in bad["reasons"][0]["text_en"]
        alerts = get(hub, token, "/api/v1/alerts?open=1").json()["alerts"]
        assert alerts[0]["body"] == {"unreadable": "unreadable data"}
        tests = get(hub, token, "/api/v1/gentests?from=2026-01-01&to=2026-03-31").json()["tests"]
        assert "unreadable data" in tests[0]["notes"]
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "nsp-bad" in logged and "unreadable data" in logged


# -- 2. headers and bodies that cannot be parsed: 400/401, never 500 -----------------------------
def test_the_signature_is_checked_before_the_time_is_interpreted(hub, key) -> None:
    """An unsigned request with a stale time learns nothing (was: 401 stale_timestamp and the
    hub's clock, for anyone who knows a site id)."""
    body = encode_batch("nsp-a", str(uuid.uuid4()), T0, [])
    headers = sign_headers("nsp-a", b"not the key", body, int(T0.timestamp()) - 3600)
    r = httpx.post(hub.url + "/api/v1/ingest", content=body, headers=headers, timeout=10)
    assert r.status_code == 401 and r.json()["code"] == "bad_signature"
    assert "X-NSP-Hub-Time" not in r.headers


@pytest.mark.parametrize(
    "timestamp",
    [b"9" * 5000, "١٧٧٢٣٦٦٤٠٠".encode(), b"\xb2", b"-1", b"1e9", b""],
    ids=["huge", "arabic_digits", "superscript_latin1", "negative", "exponent", "empty"],
)
def test_a_timestamp_that_is_not_unix_seconds_is_401(hub, key, timestamp) -> None:
    body = encode_batch("nsp-a", str(uuid.uuid4()), T0, [])
    headers = [(b"X-NSP-Site", b"nsp-a"), (b"X-NSP-Timestamp", timestamp),
               (b"X-NSP-Signature", b"sha256=00"), (b"Content-Type", b"application/json")]
    r = httpx.post(hub.url + "/api/v1/ingest", content=body, headers=headers, timeout=10)
    assert r.status_code == 401 and r.json()["code"] == "bad_timestamp", r.text


@pytest.mark.parametrize("site", [b"\xff\xfe", b"NSP-A", b"x" * 5000, b"nsp-\xe9"])
def test_a_site_header_that_is_no_site_id_is_401(hub, key, site) -> None:
    headers = [(b"X-NSP-Site", site), (b"X-NSP-Timestamp", b"1772366400")]
    r = httpx.post(hub.url + "/api/v1/ingest", content=b"{}", headers=headers, timeout=10)
    assert r.status_code == 401 and r.json()["code"] == "unknown_site"


@pytest.mark.parametrize("depth", [33, 200_000])
def test_deeply_nested_json_is_400(hub, key, depth) -> None:
    nested = "[" * depth + "]" * depth
    m = message("event", sample_event("x"))
    text = encode_batch("nsp-a", str(uuid.uuid4()), T0, [m]).decode()
    body = text.replace('"code":"x"', '"code":"x","deep":' + nested).encode()
    r = post_raw(hub, key, body)
    assert r.status_code == 400 and r.json()["code"] == "bad_json", r.text
    assert "nested deeper than 32" in r.json()["error"]
    assert hub.store.count_messages() == 0


@pytest.mark.parametrize("name", ["board%00.js", "..%2fapp.py", "%ff.js", "a\\b.css"])
def test_odd_static_names_are_404(hub, name) -> None:
    r = httpx.get(f"{hub.url}/static/{name}", timeout=10)
    assert r.status_code == 404, r.text


def test_an_unexpected_error_is_a_logged_500_with_an_error_id(hub, token, caplog) -> None:
    caplog.set_level(logging.ERROR, logger="edge_server.hub")
    with hub.store.db.write() as db:  # a real fault: a table the query needs is gone
        db.execute("DROP TABLE hub_acks")
    r = get(hub, token, "/api/v1/alerts")
    assert r.status_code == 500
    doc = r.json()
    assert doc["code"] == "internal" and doc["error_id"] in doc["error"]
    schema_validator("error.json").validate(doc)
    assert any(doc["error_id"] in rec.getMessage() and rec.exc_info for rec in caplog.records)


def test_the_hub_serves_its_openapi_document(hub) -> None:
    r = httpx.get(hub.url + "/openapi.json", timeout=10)
    assert r.status_code == 200
    paths = r.json()["paths"]
    assert "/api/v1/ingest" in paths and "/api/v1/sites" in paths


# -- 5. a confirmed batch is on disk before the 200 ----------------------------------------------
def test_the_hub_commits_with_synchronous_full(hub) -> None:
    """The site deletes what the hub confirmed: NORMAL (WAL) could lose it in a power cut; on
    PostgreSQL, synchronous_commit=off could."""
    with hub.store.db.read() as db:
        if hub.store.db.dialect.name == "sqlite":
            assert db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        else:
            assert db.execute("SHOW synchronous_commit").fetchone()[0] == "on"


# -- 6. the sender's clock is data, not truth -----------------------------------------------------
def _post_at(hub, key, clock, messages) -> None:
    body = encode_batch("nsp-a", str(uuid.uuid4()), clock.now(), messages)
    headers = sign_headers("nsp-a", key, body, int(clock.now().timestamp()))
    r = httpx.post(hub.url + "/api/v1/ingest", content=body, headers=headers, timeout=10)
    assert r.status_code == 200, r.text


def _site(hub, token) -> dict[str, Any]:
    return get(hub, token, "/api/v1/sites/nsp-a").json()


def test_a_site_clock_that_jumps_to_2099_or_2000_recovers_without_an_operator(
    hub, key, token, clock
) -> None:
    from datetime import timedelta

    def status(readiness: str, at: datetime, hours: float = 10.0) -> dict[str, Any]:
        m = message("status", sample_status(readiness, hours, at=at))
        m["at"] = iso(at)
        return m

    def alert(state: str, at: datetime) -> dict[str, Any]:
        m = message("alert", sample_alert("a1", at, state))
        m["at"] = iso(at)
        return m

    future, past = datetime(2099, 1, 1, tzinfo=UTC), datetime(2000, 1, 1, tzinfo=UTC)
    _post_at(hub, key, clock, [alert("raised", future), status("DEGRADED", future)])
    s = _site(hub, token)
    assert s["reported_readiness"] == "DEGRADED" and s["clock_off"] is True
    assert any(r["code"] == "SITE_CLOCK_OFF" and "ahead" in r["text_en"] for r in s["reasons"])
    assert s["last_contact"] == iso(clock.now())  # the hub's clock, not the site's
    clock.advance(60)
    # the clock is set right: the newer status wins although its `at` is older (was frozen)
    _post_at(hub, key, clock, [alert("cleared", clock.now()), status("READY", clock.now())])
    s = _site(hub, token)
    assert s["reported_readiness"] == "READY" and s["clock_off"] is False
    assert s["alerts"][0]["state"] == "cleared"
    clock.advance(60)
    # a power cut and the clock falls back to 2000: shown (was ignored), flagged
    _post_at(hub, key, clock, [status("NOT_READY", past, hours=5.0)])
    s = _site(hub, token)
    assert s["reported_readiness"] == "NOT_READY" and s["clock_off"] is True
    assert s["status_received_at"] == iso(clock.now())
    # the refuel time from the hub's clock, not "before 1 Jan 2000 05:00"
    assert s["refuel_before"] == iso(clock.now() + timedelta(hours=5))


# -- 7. lists: a total and a cursor ----------------------------------------------------------------
def _all_pages(hub, token, path: str, key: str) -> tuple[list[Any], set[int]]:
    rows, totals, cursor = [], set(), None
    for _ in range(20):
        page = get(hub, token, path + (f"&cursor={cursor}" if cursor else "")).json()
        rows += page[key]
        totals.add(page["total"])
        cursor = page["next"]
        if cursor is None:
            return rows, totals
    raise AssertionError("the cursor never ended")


def test_lists_have_a_total_and_a_cursor_to_every_row(hub, key, token, clock) -> None:
    for i in range(7):
        _post_at(hub, key, clock, [message("alert", sample_alert(f"a{i}", T0))])
    _post_at(hub, key, clock, [message("gentest", sample_gentest(i + 1, T0)) for i in range(5)])
    for i in range(4):
        hub.store.add_site(f"nsp-x{i}", T0)
    alerts, totals = _all_pages(hub, token, "/api/v1/alerts?open=1&limit=3", "alerts")
    assert totals == {7} and sorted(a["alert_id"] for a in alerts) == [f"a{i}" for i in range(7)]
    assert [a["alert_id"] for a in alerts] == [f"a{i}" for i in reversed(range(7))]  # newest 1st
    sites, totals = _all_pages(hub, token, "/api/v1/sites?limit=2", "sites")
    assert totals == {5} and len({s["site_id"] for s in sites}) == 5
    tests, totals = _all_pages(
        hub, token, "/api/v1/gentests?from=2026-01-01&to=2026-03-31&limit=2", "tests")
    assert totals == {5} and sorted(t["test_id"] for t in tests) == [1, 2, 3, 4, 5]
    for bad in ("/api/v1/alerts?cursor=xyz", "/api/v1/alerts?limit=0",
                "/api/v1/alerts?limit=99999999999999999999",
                "/api/v1/sites?cursor=" + get(hub, token, "/api/v1/alerts?limit=1").json()["next"]):
        r = get(hub, token, bad)
        assert r.status_code == 422, (bad, r.text)


# -- the edge's side of a body refusal: dead-lettered, the rest goes on ----------------------------
@pytest.mark.parametrize(
    ("kind", "bad"),
    [("gentest", {"planned_s": "1800"}), ("gentest", {"fuel_used_l": float("nan")}),
     ("alert", {"severity": {"x": 1}}), ("status", {"readiness": "FINE"})],
    ids=["gentest_text_number", "gentest_nan", "alert_object_severity", "status_unknown_word"],
)
async def test_the_edge_dead_letters_a_body_the_hub_refuses_and_goes_on(
    hub, tmp_path, clock, kind, bad
) -> None:
    """The real sender (edge_server/uplink/client.py) reads the hub's 422 as "this message, for
    good" (not "hub unwell, retry for ever", which a 500 was)."""
    from tests.test_uplink_e2e import make_uplink

    u = make_uplink(hub, "nsp-e", tmp_path, clock)
    base = {"gentest": sample_gentest(1, T0), "alert": sample_alert("a9", T0),
            "status": sample_status(at=T0)}[kind]
    first = u.enqueue("alert", sample_alert("a1", clock.now()))
    poisoned = u.enqueue(kind, base | bad)  # json.dumps writes NaN as the literal NaN
    after = u.enqueue("alert", sample_alert("a2", clock.now()))
    try:
        assert await u.tick() is True
        assert [m["id"] for m in hub.store.messages("nsp-e")] == [first, after]
        [dead] = u.outbox.dead_letters()
        assert (dead.id, dead.http_status, dead.code) == (poisoned, 422, "invalid")
        assert dead.reason.startswith("messages.")
        assert u.outbox.pending() == 0
    finally:
        await u.aclose()
        u.outbox.close()
