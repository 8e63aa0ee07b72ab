"""The compact alert frame (version 2) beside the status frame: vectors, schema, refusals."""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import pytest

from edge_server.uplink.compact import (
    ALERT_CODES,
    ALERT_FRAME_MAX,
    ALERT_FRAME_MIN,
    CompactAlert,
    CompactError,
    CompactStatus,
    alert_templates,
    decode_alert,
    decode_frame,
    encode_alert,
    encode_status,
    frame_time,
)

SCHEMAS = Path(__file__).resolve().parent.parent / "docs" / "schemas"
VECTORS = json.loads((SCHEMAS / "compact-vectors.json").read_text())
KEY = bytes.fromhex(VECTORS["key_hex"])
SITE = VECTORS["site_id"]
AT = datetime(2026, 3, 1, 12, 30, 5, tzinfo=UTC)


def _at(v: dict[str, Any]) -> datetime:
    return datetime.fromtimestamp(v["at"], UTC)


@pytest.mark.parametrize("vector", VECTORS["alert"], ids=lambda v: v["body"]["code"])
def test_alert_vectors_encode_decode_and_fit_the_schema(vector: dict[str, Any]) -> None:
    frame = encode_alert(SITE, KEY, vector["body"], _at(vector))
    assert frame.hex() == vector["frame_hex"]
    assert ALERT_FRAME_MIN <= len(frame) <= ALERT_FRAME_MAX
    # The tag, computed here from the documented rule rather than by the module.
    mac = hmac.new(KEY, b"NSPC" + SITE.encode() + b"." + frame[:-8], hashlib.sha256)
    assert frame[-8:] == mac.digest()[:8]
    a = decode_alert(SITE, KEY, frame)
    fields = vector["fields"]
    jsonschema.validate(fields, json.loads((SCHEMAS / "compact-alert.json").read_text()))
    assert (a.state, a.severity, a.alert_id, a.code, a.value, a.subject) == (
        fields["state"],
        fields["severity"],
        fields["alert_id"],
        fields["code"],
        fields["value"],
        fields["subject"],
    )
    assert int(a.sent_at.timestamp()) == fields["sent_at"] == frame_time(frame)
    body = a.to_alert_body()
    jsonschema.validate(body, json.loads((SCHEMAS / "alert-body.json").read_text()))


def test_status_vector_still_decodes_as_before() -> None:
    v = VECTORS["status"][0]
    frame = bytes.fromhex(v["frame_hex"])
    assert encode_status(SITE, KEY, v["body"], _at(v)) == frame
    got = decode_frame(SITE, KEY, frame)
    assert isinstance(got, CompactStatus)
    assert got.readiness == "DEGRADED" and got.fuel_autonomy_h == 31.5
    assert frame_time(frame) == v["at"]


def test_alert_texts_are_the_rules_texts_in_dutch_and_english() -> None:
    frame = bytes.fromhex(VECTORS["alert"][0]["frame_hex"])
    a = decode_frame(SITE, KEY, frame)
    assert isinstance(a, CompactAlert)
    en, nl = a.texts()
    assert en == "Medicine fridge too warm (fridge1: 9.87 °C), above the limit for too long"
    assert nl.startswith("Medicijnkoelkast te warm (fridge1: 9.87 °C)")


def test_every_alert_code_is_a_code_of_the_rules() -> None:
    templates = alert_templates()
    assert [c for c in ALERT_CODES if c not in templates] == []
    assert len(ALERT_CODES) == len(set(ALERT_CODES)) < 255


def test_a_long_subject_is_cut_at_a_character_boundary() -> None:
    body = {"alert_id": 3, "code": "FRIDGE_LOW", "severity": "critical", "state": "raised",
            "raised_at": AT, "value": 1.0, "subject": "é" * 12}  # 24 bytes
    a = decode_alert(SITE, KEY, encode_alert(SITE, KEY, body, AT))
    assert a.subject == "é" * 8


@pytest.mark.parametrize(
    "change", ["flip_value", "flip_tag", "other_site", "other_key", "short", "long", "subject_len"]
)
def test_tampered_alert_frames_are_refused(change: str) -> None:
    frame = bytearray.fromhex(VECTORS["alert"][0]["frame_hex"])
    site, key = SITE, KEY
    if change == "flip_value":
        frame[17] ^= 0x01
    elif change == "flip_tag":
        frame[-1] ^= 0x80
    elif change == "other_site":
        site = "nsp-b"
    elif change == "other_key":
        key = b"x" * 32
    elif change == "short":
        del frame[5]
    elif change == "long":
        frame.insert(20, 0x41)
    elif change == "subject_len":
        frame[19] = 17
    with pytest.raises(CompactError):
        decode_frame(site, key, bytes(frame))


@pytest.mark.parametrize(
    ("body", "named"),
    [
        ({"state": "gone"}, "state"),
        ({"severity": "fatal"}, "severity"),
        ({"alert_id": "x"}, "alert_id"),
        ({"alert_id": 2**32}, "32 bits"),
    ],
)
def test_encoder_refuses_what_the_frame_cannot_say(body: dict[str, Any], named: str) -> None:
    full = {"alert_id": 1, "code": "FUEL_LOW", "severity": "critical", "state": "raised",
            "raised_at": AT, "value": None, "subject": ""}
    full.update(body)
    with pytest.raises(CompactError, match=named):
        encode_alert(SITE, KEY, full, AT)
