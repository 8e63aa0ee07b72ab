"""GET /metrics on the real hub (uvicorn on localhost, real SQLite, signed posts over httpx).

prometheus-client is no dependency of the project, so the text is read by a strict parser of the
exposition format 0.0.4 here (every sample line must match, every family declared by # TYPE
before its samples, no family declared twice).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge_server.clock import ManualClock
from edge_server.hub.app import HubSettings
from edge_server.hub.testing import RunningHub, running_hub, sample_event, sample_status
from edge_server.uplink.protocol import encode_batch, iso, sign_headers

_SAMPLE = re.compile(
    r'([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{((?:[a-zA-Z_][a-zA-Z0-9_]*="(?:[^"\\\n]|\\.)*",?)*)\})? '
    r"(NaN|[+-]Inf|[-+]?[0-9.eE+-]+)"
)
_LABEL = re.compile(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\\n]|\\.)*)"')


def parse(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    assert text.endswith("\n")
    declared: dict[str, str] = {}
    out: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            _, _, name, kind = line.split(" ")
            assert name not in declared, f"{name} declared twice"
            assert kind in ("counter", "gauge")
            declared[name] = kind
            continue
        if line.startswith("# HELP "):
            continue
        m = _SAMPLE.fullmatch(line)
        assert m is not None, f"not a sample line: {line!r}"
        assert m.group(1) in declared, f"{m.group(1)} has no # TYPE before it"
        labels = frozenset(_LABEL.findall(m.group(2) or ""))
        key = (m.group(1), labels)
        assert key not in out, f"{line!r} twice"
        out[key] = float(m.group(3))
    return out


def value(samples: dict[Any, float], name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))


@pytest.fixture
def hub(tmp_path: Path, clock: ManualClock) -> Iterator[RunningHub]:
    with running_hub(tmp_path / "hub", clock=clock, settings=HubSettings()) as h:
        yield h


def scrape(hub: RunningHub, token: str) -> dict[Any, float]:
    r = httpx.get(hub.url + "/metrics", headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain; version=0.0.4")
    return parse(r.text)


def post(hub: RunningHub, site_id: str, key: bytes, messages: list[dict[str, Any]],
         clock: ManualClock, ts_shift: int = 0) -> httpx.Response:
    body = encode_batch(site_id, str(uuid.uuid4()), clock.now(), messages)
    headers = sign_headers(site_id, key, body, int(clock.now().timestamp()) + ts_shift)
    return httpx.post(hub.url + "/api/v1/ingest", content=body, headers=headers, timeout=10)


def msg(kind: str, body: dict[str, Any], clock: ManualClock) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "kind": kind, "at": iso(clock.now()), "body": body}


def test_metrics_need_a_token(hub: RunningHub) -> None:
    assert httpx.get(hub.url + "/metrics").status_code == 401
    r = httpx.get(hub.url + "/metrics", headers={"Authorization": "Bearer wrong"})
    assert r.status_code == 401 and r.json()["code"] == "bad_token"


def test_counts_follow_signed_posts_refusals_and_the_board(
    hub: RunningHub, clock: ManualClock
) -> None:
    token = hub.store.add_user("prometheus", "operator")
    key_a = hub.store.add_site("nsp-a", clock.now()).encode()
    key_b = hub.store.add_site("nsp-b", clock.now()).encode()
    hub.store.add_site("nsp-c", clock.now())  # never heard from
    before = scrape(hub, token)
    assert value(before, "nsp_hub_sites") == 3
    assert value(before, "nsp_hub_sites_by_readiness", readiness="UNKNOWN") == 3
    assert value(before, "nsp_hub_sites_never_contacted") == 3
    assert value(before, "nsp_hub_oldest_contact_age_seconds") == 0
    assert value(before, "nsp_hub_ingest_messages_held_total") == 0

    # nsp-a: a status NOT_READY and an event, then the same messages again (a lost reply).
    messages = [msg("status", sample_status("NOT_READY", at=clock.now(),
                                            reasons=["FUEL_CRITICAL"]), clock),
                msg("event", sample_event("door"), clock)]
    assert post(hub, "nsp-a", key_a, messages, clock).status_code == 200
    assert post(hub, "nsp-a", key_a, messages, clock).status_code == 200
    clock.advance(5 * 60)
    assert post(hub, "nsp-b", key_b, [msg("status", sample_status(at=clock.now()), clock)],
                clock).status_code == 200
    # Refusals: a wrong key, an unknown site, a timestamp out of the window, a bad kind.
    assert post(hub, "nsp-a", b"not-the-key", messages, clock).json()["code"] == "bad_signature"
    assert post(hub, "nsp-zz", key_a, messages, clock).json()["code"] == "unknown_site"
    assert post(hub, "nsp-b", key_b, messages, clock, ts_shift=-3600).status_code == 401
    assert post(hub, "nsp-b", key_b, [msg("gossip", {}, clock)], clock).status_code == 422
    r = httpx.post(hub.url + "/api/v1/ingest-compact", content=b"\x00" * 24,
                   headers={"X-NSP-Site": "nsp-b"})
    assert r.status_code >= 400
    compact_code = r.json()["code"]

    after = scrape(hub, token)
    assert value(after, "nsp_hub_ingest_requests_total", path="ingest", outcome="accepted") == 3
    assert value(after, "nsp_hub_ingest_requests_total", path="ingest", outcome="refused") == 4
    assert value(after, "nsp_hub_ingest_requests_total", path="ingest-compact",
                 outcome="refused") == 1
    assert value(after, "nsp_hub_ingest_messages_held_total") == 5  # 2 + 2 (retry) + 1
    assert value(after, "nsp_hub_messages_stored") == 3  # the retry stored nothing new
    assert value(after, "nsp_hub_ingest_refusals_total", reason="bad_signature",
                 status="401") == 1
    assert value(after, "nsp_hub_ingest_refusals_total", reason="unknown_site",
                 status="401") == 1
    assert value(after, "nsp_hub_ingest_refusals_total", reason="stale_timestamp",
                 status="401") == 1
    assert value(after, "nsp_hub_ingest_refusals_total", reason="invalid", status="422") == 1
    assert value(after, "nsp_hub_ingest_refusals_total", reason=compact_code,
                 status=str(r.status_code)) == 1
    assert value(after, "nsp_hub_sites_by_readiness", readiness="NOT_READY") == 1
    assert value(after, "nsp_hub_sites_by_readiness", readiness="READY") == 1
    assert value(after, "nsp_hub_sites_by_readiness", readiness="UNKNOWN") == 1
    assert value(after, "nsp_hub_sites_never_contacted") == 1
    assert value(after, "nsp_hub_oldest_contact_age_seconds") == 300  # nsp-a, 5 min ago

    # Silence: 20 minutes later both sites are past stale_after_min (15) and show UNKNOWN.
    clock.advance(20 * 60)
    late = scrape(hub, token)
    assert value(late, "nsp_hub_sites_by_readiness", readiness="UNKNOWN") == 3
    assert value(late, "nsp_hub_oldest_contact_age_seconds") == 25 * 60
    # Reads are not counted as ingest.
    assert value(late, "nsp_hub_ingest_requests_total", path="ingest", outcome="accepted") == 3
