"""The durable outbox on real SQLite: order, coalescing, acknowledgement, restart, settings."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from edge_server.hub.testing import sample_alert, sample_status
from edge_server.uplink.outbox import Outbox
from edge_server.uplink.protocol import encode_batch
from edge_server.uplink.settings import UplinkSettings
from tests.test_hub_api import schema_validator

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def test_alerts_first_in_order_then_only_latest_status(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    s1 = box.enqueue("status", sample_status(at=T0), T0)
    a1 = box.enqueue("alert", sample_alert("1", T0), T0)
    s2 = box.enqueue("status", sample_status("DEGRADED", at=T0), T0 + timedelta(minutes=1))
    e1 = box.enqueue("event", {"code": "door"}, T0 + timedelta(minutes=2))
    a2 = box.enqueue("alert", sample_alert("2", T0), T0 + timedelta(minutes=3))
    batch = box.next_batch(10)
    assert [m.id for m in batch] == [a1, e1, a2, s2]
    assert s1 not in {m.id for m in batch}
    assert box.pending_by_kind() == {"alert": 2, "event": 1, "status": 1}
    # A small batch holds non-status messages first; the status waits for room.
    assert [m.id for m in box.next_batch(2)] == [a1, e1]
    box.close()


def test_only_acknowledged_ids_leave_and_survive_restart(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite"
    box = Outbox(path)
    ids = [box.enqueue("alert", sample_alert(str(i), T0), T0) for i in range(5)]
    assert box.ack([ids[1], ids[3], str(uuid.uuid4())]) == 2
    box.close()
    again = Outbox(path)
    assert [m.id for m in again.next_batch(10)] == [ids[0], ids[2], ids[4]]
    again.close()


def test_batches_built_from_the_outbox_match_the_public_schema(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    box.enqueue("alert", sample_alert("7", T0), T0)
    box.enqueue("status", sample_status(at=T0), T0)
    body = encode_batch("nsp-a", str(uuid.uuid4()), T0, [m.wire() for m in box.next_batch(10)])
    validator = schema_validator("batch.json")
    validator.validate(json.loads(body))
    bad = json.loads(body)
    bad["messages"][0]["body"]["severity"] = "apocalyptic"
    assert not validator.is_valid(bad)
    box.close()


def test_unknown_kind_is_refused(tmp_path: Path) -> None:
    box = Outbox(tmp_path / "o.sqlite")
    with pytest.raises(ValueError, match="unknown kind 'gossip'"):
        box.enqueue("gossip", {}, T0)
    assert box.pending() == 0
    box.close()


def test_site_key_comes_from_env_or_file_never_the_toml(tmp_path: Path, monkeypatch) -> None:
    with pytest.raises(ValueError, match="extra"):
        UplinkSettings.model_validate({"key": "secret-in-toml"})
    monkeypatch.setenv("NSP_SITE_KEY", "abcdefghijklmnopqrstuvwxyz")
    assert UplinkSettings().load_key() == b"abcdefghijklmnopqrstuvwxyz"
    key_file = tmp_path / "site.key"
    key_file.write_text("0123456789abcdef0123\n")
    assert UplinkSettings(key_file=key_file).load_key() == b"0123456789abcdef0123"
    monkeypatch.delenv("NSP_SITE_KEY")
    with pytest.raises(ValueError, match="NSP_SITE_KEY"):
        UplinkSettings().load_key()
    with pytest.raises(ValueError, match="hub_url"):
        UplinkSettings(enabled=True, hub_url="")
    with pytest.raises(ValueError, match="backoff_max_s"):
        UplinkSettings(backoff_min_s=10, backoff_max_s=5)
