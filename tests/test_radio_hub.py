"""Compact frames into the hub, by HTTP relay and by the radio path's function: alert frames,
replays, reordering, unknown sites and bad tags are refused and store nothing."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from edge_server.clock import ManualClock
from edge_server.hub.compact_ingest import CompactRefused, ingest_compact_frame
from edge_server.hub.store import HubStore
from edge_server.hub.testing import running_hub, sample_status
from edge_server.uplink.compact import encode_alert, encode_status

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def _alert(alert_id: int = 7) -> dict[str, object]:
    return {"alert_id": str(alert_id), "code": "FRIDGE_HIGH", "severity": "critical",
            "state": "raised", "raised_at": "2026-03-01T11:58:00+00:00", "value": 9.5,
            "subject": "fridge1"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HubStore]:
    s = HubStore(tmp_path / "hub")
    yield s
    s.close()


def test_alert_frame_by_radio_is_stored_as_the_sites_alert(store: HubStore) -> None:
    key = store.add_site("nsp-a", T0).encode()
    frame = encode_alert("nsp-a", key, _alert(), T0)
    got = ingest_compact_frame(store, T0, "nsp-a", frame, 300, via="radio")
    assert (got.outcome, got.kind) == ("stored", "alert")
    [alert] = store.alerts(True, 10, "nsp-a")
    assert alert["alert_id"] == "7" and alert["code"] == "FRIDGE_HIGH"
    [msg] = store.messages("nsp-a", "alert")
    assert msg["body"]["via"] == "radio"
    assert store.site("nsp-a") is not None


@pytest.mark.parametrize("case", ["replayed", "reordered", "unknown_site", "bad_tag", "corrupt",
                                  "stale"])
def test_bad_frames_are_refused_and_store_nothing(store: HubStore, case: str) -> None:
    key = store.add_site("nsp-a", T0).encode()
    first = encode_status("nsp-a", key, sample_status(at=T0), T0)
    ingest_compact_frame(store, T0, "nsp-a", first, 300, via="radio")
    before = store.count_messages()
    site, now = "nsp-a", T0
    if case == "replayed":
        frame = first
    elif case == "reordered":  # made before the first, arriving after it
        frame = encode_alert("nsp-a", key, _alert(), T0 - timedelta(seconds=5))
    elif case == "unknown_site":
        site, frame = "nsp-x", encode_alert("nsp-x", key, _alert(), T0)
    elif case == "bad_tag":
        frame = encode_alert("nsp-a", b"w" * 32, _alert(), T0)
    elif case == "corrupt":
        b = bytearray(encode_alert("nsp-a", key, _alert(), T0))
        b[12] ^= 0x04
        frame = bytes(b)
    else:
        frame = encode_status("nsp-a", key, sample_status(at=T0), T0)
        now = datetime.fromtimestamp(T0.timestamp() + 400, UTC)
    if case == "replayed":
        assert ingest_compact_frame(store, now, site, frame, 300, "radio").outcome == "duplicate"
    else:
        with pytest.raises(CompactRefused) as err:
            ingest_compact_frame(store, now, site, frame, 300, via="radio")
        assert err.value.code == {
            "reordered": "replayed",
            "unknown_site": "unknown_site",
            "bad_tag": "bad_signature",
            "corrupt": "bad_signature",
            "stale": "stale_timestamp",
        }[case]
    assert store.count_messages() == before


def test_http_relay_takes_alert_frames_and_refuses_a_reordered_one(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    with running_hub(tmp_path / "hub", clock=clock) as hub:
        key = hub.store.add_site("nsp-a", clock.now()).encode()
        url = hub.url + "/api/v1/ingest-compact"
        later = encode_alert("nsp-a", key, _alert(8), T0 + timedelta(seconds=2))
        earlier = encode_alert("nsp-a", key, _alert(9), T0)
        r = httpx.post(url, content=later, headers={"X-NSP-Site": "nsp-a"})
        assert r.status_code == 200, r.text
        r = httpx.post(url, content=earlier, headers={"X-NSP-Site": "nsp-a"})
        assert r.status_code == 409 and r.json()["code"] == "replayed"
        r = httpx.post(url, content=later[:-1], headers={"X-NSP-Site": "nsp-a"})
        assert r.status_code in (400, 401)
        [msg] = hub.store.messages("nsp-a", "alert")
        assert msg["body"]["via"] == "compact" and msg["body"]["alert_id"] == "8"


def test_the_board_shows_a_site_heard_only_by_radio(tmp_path: Path) -> None:
    from edge_server.uplink.protocol import AlertBody, StatusBody

    clock = ManualClock(T0)
    with running_hub(tmp_path / "hub", clock=clock) as hub:
        key = hub.store.add_site("nsp-a", clock.now()).encode()
        token = hub.store.add_user("olga", "operator")
        frame = encode_status("nsp-a", key, sample_status("DEGRADED", at=T0), T0)
        ingest_compact_frame(hub.store, clock.now(), "nsp-a", frame, 300, via="radio")
        alert = encode_alert("nsp-a", key, _alert(), T0 + timedelta(seconds=1))
        ingest_compact_frame(hub.store, clock.now(), "nsp-a", alert, 300, via="radio")
        got = httpx.get(hub.url + "/api/v1/sites/nsp-a",
                        headers={"Authorization": f"Bearer {token}"}).json()
        assert got["link"] == "radio" and got["last_radio_at"] == got["last_contact"]
        assert got["readiness"] == "DEGRADED" and got["unreadable"] == []
        StatusBody.model_validate(hub.store.messages("nsp-a", "status")[0]["body"])
        AlertBody.model_validate(hub.store.messages("nsp-a", "alert")[0]["body"])
        clock.advance(60)
        relay = encode_status("nsp-a", key, sample_status("READY", at=clock.now()), clock.now())
        r = httpx.post(hub.url + "/api/v1/ingest-compact", content=relay,
                       headers={"X-NSP-Site": "nsp-a"})
        assert r.status_code == 200
        got = httpx.get(hub.url + "/api/v1/sites/nsp-a",
                        headers={"Authorization": f"Bearer {token}"}).json()
        assert got["link"] == "ip" and got["last_radio_at"] != got["last_contact"]
