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
        # a controller alarm's subject is sent without "alarm_"; the decoder puts it back
        vector.get("subject_decoded", fields["subject"]),
    )
    assert frame[20:-8].decode() == fields["subject"]  # the bytes on the air
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


# The table before the generator controller's alarms got their own codes (append only: an index
# never changes, or a hub would read an older edge's frame as another alert).
CODES_BEFORE = (
    "FRIDGE_HIGH", "FRIDGE_HIGH_INSTANT", "FRIDGE_LOW", "FRIDGE_FREEZE", "FRIDGE_PROBE_FAULT",
    "FRIDGE_MKT", "FRIDGE_DOOR_OPEN", "FUEL_LOW", "FUEL_AUTONOMY_LOW", "FUEL_LEAK",
    "FUEL_SENSOR_FAULT", "FUEL_OLD", "STARTER_BATTERY_LOW", "BATTERY_LOW", "BATTERY_SENSOR_FAULT",
    "MAINS_LOST", "GEN_RUNNING_ON_OUTAGE", "GEN_FAILED_TO_START", "GEN_RUNNING_UNEXPECTED",
    "NODE_OFFLINE", "DATA_STALE", "OCCUPANCY_HIGH", "MAINS_RESTORED", "NODE_REBOOTED",
    "FUEL_REFUELLED", "GENSET_WITNESS_DISAGREES",
)
GENSET = [("GENSET_SHUTDOWN", "critical", "low_oil_pressure", 26),
          ("GENSET_ELECTRICAL_TRIP", "critical", "gen_over_frequency", 27),
          ("GENSET_WARNING", "warning", "battery_low_voltage", 28)]


def _site_sentence(code: str, subject: str) -> tuple[str, str]:
    """What the site's own rule says for this alarm (edge_server/genset/alarms.py)."""
    from edge_server.genset.alarms import CONDITIONS
    from edge_server.rules.engine import Sample

    cond = next(c for c in CONDITIONS if c.code == code)
    return cond().texts(Sample(subject, 1.0, subject))


def test_the_controller_alarm_codes_are_appended_never_renumbered() -> None:
    assert ALERT_CODES[: len(CODES_BEFORE)] == CODES_BEFORE
    assert [(ALERT_CODES.index(code), code) for code, *_ in GENSET] == [
        (index, code) for code, _sev, _alarm, index in GENSET]


@pytest.mark.parametrize(("code", "severity", "alarm", "index"), GENSET,
                         ids=[g[0] for g in GENSET])
def test_a_controller_alarm_round_trips_with_its_own_code(code: str, severity: str, alarm: str,
                                                          index: int) -> None:
    subject = f"gen.alarm_{alarm}"
    body = {"alert_id": 41, "code": code, "severity": severity, "state": "raised",
            "raised_at": AT, "value": 1.0, "subject": subject}
    frame = encode_alert(SITE, KEY, body, AT)
    assert frame[14] == index  # the code byte: no longer 255 (OTHER)
    assert frame[20:-8].decode() == f"gen.{alarm}"[:16]  # "alarm_" left out on the air
    a = decode_alert(SITE, KEY, frame)
    assert (a.code, a.severity, a.subject, a.value) == (code, severity, subject, 1.0)
    assert a.texts() == _site_sentence(code, subject)  # the site's sentence, NL and EN
    jsonschema.validate(a.to_alert_body(), json.loads((SCHEMAS / "alert-body.json").read_text()))


def test_an_older_edges_frame_of_a_controller_alarm_still_decodes_as_other() -> None:
    """Before the codes: 255 and the subject cut as it was; read as before, nothing guessed."""
    new = encode_alert(SITE, KEY, {"alert_id": 5, "code": "GENSET_SHUTDOWN",
                                   "severity": "critical", "state": "raised", "raised_at": AT,
                                   "value": 1.0, "subject": "gen.alarm_low_oil_pressure"}, AT)
    old = encode_alert(SITE, KEY, {"alert_id": 5, "code": "A_CODE_THE_TABLE_LACKS",
                                   "severity": "critical", "state": "raised", "raised_at": AT,
                                   "value": 1.0, "subject": "gen.alarm_low_oil_pressure"}, AT)
    assert old[14] == 255 and new[14] == 26
    a = decode_alert(SITE, KEY, old)
    assert (a.code, a.subject) == ("OTHER", "gen.alarm_low_oi")
    assert a.texts()[0] == "Alert at gen.alarm_low_oi (see the full report)"


def test_a_cut_alarm_name_is_completed_only_when_one_alarm_fits() -> None:
    # a long generator name leaves "fail_to": fail_to_start or fail_to_stop, so it stays cut
    body = {"alert_id": 6, "code": "GENSET_SHUTDOWN", "severity": "critical",
            "state": "raised", "raised_at": AT, "value": 1.0,
            "subject": "noodaggr.alarm_fail_to_start"}
    a = decode_alert(SITE, KEY, encode_alert(SITE, KEY, body, AT))
    assert a.subject == "noodaggr.alarm_fail_to"
    body["subject"] = "noodaggr.alarm_emergency_stop"
    a = decode_alert(SITE, KEY, encode_alert(SITE, KEY, body, AT))
    assert a.subject == "noodaggr.alarm_emergency_stop"


def test_the_hub_stores_a_controller_alarm_by_radio_with_its_code(tmp_path: Path) -> None:
    from edge_server.hub.compact_ingest import ingest_compact_frame
    from edge_server.hub.store import HubStore

    store = HubStore(tmp_path / "hub")
    try:
        key = store.add_site("nsp-a", AT).encode()
        body = {"alert_id": "12", "code": "GENSET_SHUTDOWN", "severity": "critical",
                "state": "raised", "raised_at": AT, "value": 1.0,
                "subject": "gen.alarm_low_oil_pressure"}
        frame = encode_alert("nsp-a", key, body, AT)
        got = ingest_compact_frame(store, AT, "nsp-a", frame, 300, via="radio")
        assert (got.outcome, got.kind) == ("stored", "alert")
        [alert] = store.alerts(True, 10, "nsp-a")
        got_body = alert["body"]
        assert (alert["code"], alert["severity"], got_body["subject"], got_body["via"]) == (
            "GENSET_SHUTDOWN", "critical", "gen.alarm_low_oil_pressure", "radio")
        en, nl = _site_sentence("GENSET_SHUTDOWN", "gen.alarm_low_oil_pressure")
        assert (got_body["text_en"], got_body["text_nl"]) == (en, nl)
        assert "Lage oliedruk" in got_body["text_nl"] and got_body["text_en"].startswith(
            "Generator gen: shutdown alarm \"Low oil pressure\"")
    finally:
        store.close()


def test_the_documented_code_table_is_the_one_in_the_code() -> None:
    import re

    doc = (SCHEMAS.parent / "uplink-protocol.md").read_text(encoding="utf-8")
    table = doc[doc.index("The code table is append-only"):]
    table = table[: table.index("Before 26-28")]
    pairs = re.findall(r"(\d+) ([A-Z][A-Z0-9_]+)", table)
    assert [(int(i), c) for i, c in pairs] == list(enumerate(ALERT_CODES))
