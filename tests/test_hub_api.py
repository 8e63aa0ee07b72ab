"""The hub's ingest and read API over real HTTP (uvicorn on localhost, real SQLite).

Every refusal is checked for its status code, its JSON error (docs/schemas/error.json) and that
nothing was stored.
"""

from __future__ import annotations

import json
import logging
import stat
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest
from referencing import Registry, Resource

from edge_server.clock import ManualClock
from edge_server.hub.app import HubSettings
from edge_server.hub.testing import (
    RunningHub,
    running_hub,
    sample_alert,
    sample_event,
    sample_status,
)
from edge_server.uplink.compact import encode_status
from edge_server.uplink.protocol import encode_batch, iso, sign_headers

SCHEMAS = Path(__file__).resolve().parent.parent / "docs" / "schemas"


def schema_validator(name: str) -> jsonschema.protocols.Validator:
    resources = []
    for path in SCHEMAS.glob("*.json"):
        doc = json.loads(path.read_text())
        if "$schema" in doc:  # test vectors live next to the schemas
            resources.append((path.name, Resource.from_contents(doc)))
    registry: Registry = Registry().with_resources(resources)
    schema = json.loads((SCHEMAS / name).read_text())
    cls = jsonschema.validators.validator_for(schema)
    return cls(schema, registry=registry, format_checker=cls.FORMAT_CHECKER)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))


@pytest.fixture
def hub(tmp_path: Path, clock: ManualClock) -> Iterator[RunningHub]:
    settings = HubSettings(max_batch_messages=50, max_body_bytes=64_000)
    with running_hub(tmp_path / "hub", clock=clock, settings=settings) as h:
        yield h


@pytest.fixture
def site(hub: RunningHub, clock: ManualClock) -> tuple[str, bytes]:
    return "nsp-a", hub.store.add_site("nsp-a", clock.now()).encode()


@pytest.fixture
def token(hub: RunningHub) -> str:
    return hub.store.add_user("olga", "operator")


def batch(site_id: str, messages: list[dict[str, Any]], clock: ManualClock) -> bytes:
    return encode_batch(site_id, str(uuid.uuid4()), clock.now(), messages)


def msg(kind: str, body: dict[str, Any], clock: ManualClock) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "kind": kind, "at": iso(clock.now()), "body": body}


def post(hub: RunningHub, body: bytes, headers: dict[str, str]) -> httpx.Response:
    return httpx.post(hub.url + "/api/v1/ingest", content=body, headers=headers, timeout=10)


def test_signed_batch_is_stored_once_and_replies_match_schemas(hub, site, clock) -> None:
    site_id, key = site
    messages = [
        msg("alert", sample_alert("a1", clock.now()), clock),
        msg("status", sample_status(at=clock.now()), clock),
    ]
    body = batch(site_id, messages, clock)
    schema_validator("batch.json").validate(json.loads(body))
    for _ in range(2):  # the retry of a batch whose reply was lost
        headers = sign_headers(site_id, key, body, int(clock.now().timestamp()))
        r = post(hub, body, headers)
        assert r.status_code == 200, r.text
        schema_validator("ingest-reply.json").validate(r.json())
        assert r.json()["held"] == [m["id"] for m in messages]
    stored = hub.store.messages(site_id)
    assert [m["id"] for m in stored] == [m["id"] for m in messages]


def _rejections() -> list[tuple[str, int, str]]:
    return [
        ("tampered", 401, "bad_signature"),
        ("wrong_key", 401, "bad_signature"),
        ("unknown_site", 401, "unknown_site"),
        ("no_signature", 401, "bad_signature"),
        ("future_timestamp", 401, "stale_timestamp"),
        ("old_timestamp", 401, "stale_timestamp"),
        ("too_many", 413, "too_many"),
        ("too_large", 413, "too_large"),
        ("malformed_json", 400, "bad_json"),
        ("bad_kind", 422, "invalid"),
        ("bad_uuid", 422, "invalid"),
        ("other_site_in_body", 422, "site_mismatch"),
    ]


@pytest.mark.parametrize(("case", "status", "code"), _rejections())
def test_bad_requests_are_refused_and_nothing_is_stored(
    hub, site, clock, case: str, status: int, code: str
) -> None:
    site_id, key = site
    hub.store.add_site("nsp-b", clock.now())
    now = int(clock.now().timestamp())
    messages = [msg("alert", sample_alert("a1", clock.now()), clock)]
    body = batch(site_id, messages, clock)
    headers = sign_headers(site_id, key, body, now)
    if case == "tampered":
        body = body.replace(b'"value":9.1', b'"value":1.0')
    elif case == "wrong_key":
        headers = sign_headers(site_id, b"not-the-key-of-this-site", body, now)
    elif case == "unknown_site":
        headers = sign_headers("nsp-zz", key, body, now)
    elif case == "no_signature":
        del headers["X-NSP-Signature"]
    elif case == "future_timestamp":
        headers = sign_headers(site_id, key, body, now + 301)
    elif case == "old_timestamp":
        headers = sign_headers(site_id, key, body, now - 301)
    elif case == "too_many":
        body = batch(site_id, [msg("event", sample_event("x"), clock) for _ in range(51)], clock)
        headers = sign_headers(site_id, key, body, now)
    elif case == "too_large":
        body = batch(site_id, [msg("event", sample_event("x", pad="y" * 70_000), clock)], clock)
        headers = sign_headers(site_id, key, body, now)
    elif case == "malformed_json":
        body = b'{"site_id": "nsp-a", "messages": [}'
        headers = sign_headers(site_id, key, body, now)
    elif case == "bad_kind":
        body = batch(site_id, [msg("gossip", {}, clock)], clock)
        headers = sign_headers(site_id, key, body, now)
    elif case == "bad_uuid":
        m = msg("event", {}, clock)
        m["id"] = "42"
        body = batch(site_id, [m], clock)
        headers = sign_headers(site_id, key, body, now)
    elif case == "other_site_in_body":
        body = batch("nsp-b", messages, clock)
        headers = sign_headers(site_id, key, body, now)
    r = post(hub, body, headers)
    assert r.status_code == status, r.text
    schema_validator("error.json").validate(r.json())
    assert r.json()["code"] == code
    assert hub.store.count_messages() == 0
    assert hub.store.site(site_id)["last_contact"] is None


def test_replay_within_window_is_harmless_and_refused_after(hub, site, clock) -> None:
    site_id, key = site
    body = batch(site_id, [msg("alert", sample_alert("a1", clock.now()), clock)], clock)
    headers = sign_headers(site_id, key, body, int(clock.now().timestamp()))
    assert post(hub, body, headers).status_code == 200
    clock.advance(200)
    replay = post(hub, body, headers)  # an eavesdropper replays the exact request
    assert replay.status_code == 200
    assert len(hub.store.messages(site_id)) == 1  # idempotent ids: nothing new
    clock.advance(101)  # now 301 s after the signature's timestamp
    late = post(hub, body, headers)
    assert late.status_code == 401 and late.json()["code"] == "stale_timestamp"
    assert len(hub.store.messages(site_id)) == 1


def test_reads_need_a_token(hub, site, token) -> None:
    for path in ("/api/v1/sites", "/api/v1/sites/nsp-a", "/api/v1/alerts?open=1"):
        assert httpx.get(hub.url + path).status_code == 401
        bad = httpx.get(hub.url + path, headers={"Authorization": "Bearer nope"})
        assert bad.status_code == 401 and bad.json()["code"] == "bad_token"
        ok = httpx.get(hub.url + path, headers={"Authorization": f"Bearer {token}"})
        assert ok.status_code == 200, ok.text


def test_silent_site_shows_unknown_with_no_contact_since(hub, site, token, clock) -> None:
    site_id, key = site
    body = batch(site_id, [msg("status", sample_status(at=clock.now()), clock)], clock)
    assert (
        post(hub, body, sign_headers(site_id, key, body, int(clock.now().timestamp()))).status_code
        == 200
    )
    auth = {"Authorization": f"Bearer {token}"}
    first = httpx.get(hub.url + "/api/v1/sites/nsp-a", headers=auth).json()
    assert first["readiness"] == "READY" and first["no_contact_since"] is None
    clock.advance(14 * 60)
    assert httpx.get(hub.url + "/api/v1/sites/nsp-a", headers=auth).json()["readiness"] == "READY"
    clock.advance(2 * 60)  # 16 minutes silent > 15 (default setting)
    late = httpx.get(hub.url + "/api/v1/sites/nsp-a", headers=auth).json()
    assert late["readiness"] == "UNKNOWN"
    assert late["reported_readiness"] == "READY"
    assert late["no_contact_since"] == first["last_contact"]


def test_alerts_listing_ack_and_acks_in_next_reply(hub, site, token, clock) -> None:
    site_id, key = site
    auth = {"Authorization": f"Bearer {token}"}
    msgs = [msg("alert", sample_alert(f"a{i}", clock.now()), clock) for i in range(5)]
    msgs.append(msg("alert", sample_alert("a0", clock.now(), state="cleared"), clock))
    body = batch(site_id, msgs, clock)
    assert (
        post(hub, body, sign_headers(site_id, key, body, int(clock.now().timestamp()))).status_code
        == 200
    )
    open_alerts = httpx.get(hub.url + "/api/v1/alerts?open=1", headers=auth).json()["alerts"]
    assert sorted(a["alert_id"] for a in open_alerts) == ["a1", "a2", "a3", "a4"]
    page = httpx.get(hub.url + "/api/v1/alerts?open=1&limit=2", headers=auth).json()["alerts"]
    assert len(page) == 2
    ack_url = hub.url + "/api/v1/alerts/nsp-a/a2/ack"
    assert httpx.post(ack_url).status_code == 401
    assert httpx.post(hub.url + "/api/v1/alerts/nsp-a/zz/ack", headers=auth).status_code == 404
    assert httpx.post(ack_url, headers=auth).status_code == 200
    clock.advance(60)
    empty = batch(site_id, [], clock)
    reply = post(hub, empty, sign_headers(site_id, key, empty, int(clock.now().timestamp())))
    assert [a["alert_id"] for a in reply.json()["acks"]] == ["a2"]
    assert reply.json()["acks"][0]["by"] == "olga"
    # The site applies it and reports the alert acknowledged: the hub stops repeating it.
    confirm = batch(
        site_id, [msg("alert", sample_alert("a2", clock.now(), "acknowledged"), clock)], clock
    )
    reply2 = post(hub, confirm, sign_headers(site_id, key, confirm, int(clock.now().timestamp())))
    assert reply2.json()["acks"] == []


def test_compact_frame_is_accepted_and_a_tampered_one_refused(hub, site, token, clock) -> None:
    site_id, key = site
    status = sample_status(
        "NOT_READY", fuel_autonomy_h=6.5, at=clock.now(), reasons=["FUEL_CRITICAL"]
    )
    frame = encode_status(site_id, key, status, clock.now())
    url = hub.url + "/api/v1/ingest-compact"
    bad = bytearray(frame)
    bad[9] ^= 0x01
    r_bad = httpx.post(url, content=bytes(bad), headers={"X-NSP-Site": site_id})
    assert r_bad.status_code == 401 and r_bad.json()["code"] == "bad_signature"
    assert hub.store.count_messages() == 0
    r = httpx.post(url, content=frame, headers={"X-NSP-Site": site_id})
    assert r.status_code == 200, r.text
    assert httpx.post(url, content=frame, headers={"X-NSP-Site": site_id}).status_code == 200
    assert hub.store.count_messages() == 1
    got = httpx.get(
        hub.url + "/api/v1/sites/nsp-a", headers={"Authorization": f"Bearer {token}"}
    ).json()
    assert got["readiness"] == "NOT_READY"
    assert got["fuel_autonomy_h"] == 6.5
    assert [r["code"] for r in got["reasons"]] == ["FUEL_CRITICAL"]


@pytest.mark.sqlite_only("checks the mode 0600 of hub.sqlite")
def test_db_is_private_and_keys_never_logged(hub, site, clock, caplog) -> None:
    site_id, key = site
    assert stat.S_IMODE(hub.store.path.stat().st_mode) == 0o600
    caplog.set_level(logging.DEBUG)
    body = batch(site_id, [msg("event", sample_event("door"), clock)], clock)
    post(hub, body, sign_headers(site_id, key, body, int(clock.now().timestamp())))
    post(
        hub,
        body,
        sign_headers(site_id, b"wrong-key-xxxxxxxxxx", body, int(clock.now().timestamp())),
    )
    assert key.decode() not in caplog.text


def test_revoked_key_is_refused_at_once(hub, site, clock) -> None:
    site_id, old_key = site
    new_key = hub.store.revoke_key(site_id, clock.now(), "test").encode()  # `hub revoke-key`
    body = batch(site_id, [msg("event", sample_event("door"), clock)], clock)
    now = int(clock.now().timestamp())
    assert post(hub, body, sign_headers(site_id, old_key, body, now)).status_code == 401
    assert hub.store.count_messages() == 0
    assert post(hub, body, sign_headers(site_id, new_key, body, now)).status_code == 200


@pytest.mark.parametrize(
    "spelling",
    ["upper", "braces", "urn", "hex32", "nil"],
)
def test_a_message_id_has_one_spelling_and_is_never_nil(hub, site, clock, spelling) -> None:
    """The hub stores each (site, id) once: a second spelling of one id would store it twice."""
    site_id, key = site
    m = msg("event", sample_event("door"), clock)
    u = uuid.UUID(m["id"])
    m["id"] = {
        "upper": str(u).upper(),
        "braces": "{" + str(u) + "}",
        "urn": u.urn,
        "hex32": u.hex,
        "nil": str(uuid.UUID(int=0)),
    }[spelling]
    body = batch(site_id, [m], clock)
    r = post(hub, body, sign_headers(site_id, key, body, int(clock.now().timestamp())))
    assert r.status_code == 422, r.text
    assert r.json()["code"] == "invalid" and r.json()["error"].startswith("messages.0.id")
    assert hub.store.count_messages() == 0
