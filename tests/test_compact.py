"""The compact status frame for a narrow backup radio link: size, round trip, signing."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from edge_server.hub.testing import sample_status
from edge_server.uplink.compact import (
    FRAME_BYTES,
    REASON_BITS,
    CompactError,
    decode_status,
    encode_status,
)

AT = datetime(2026, 3, 1, 12, 30, 5, tzinfo=UTC)
KEY = b"k" * 32


def test_frame_fits_50_bytes_and_round_trips() -> None:
    body = sample_status(
        "DEGRADED", fuel_autonomy_h=31.47, at=AT, reasons=["POWER_UNKNOWN", "FUEL_AUTONOMY_LOW"]
    )
    body.update(
        fridge_temp_c=-0.55, occupancy=13, open_alerts=2, mains_present=False, gen_running=True
    )
    frame = encode_status("nsp-a", KEY, body, AT)
    assert len(frame) == FRAME_BYTES <= 50
    got = decode_status("nsp-a", KEY, frame)
    assert got.at == AT
    assert got.readiness == "DEGRADED"
    assert got.reason_codes == ("POWER_UNKNOWN", "FUEL_AUTONOMY_LOW")
    assert got.fuel_autonomy_h == 31.5  # 0.1 h resolution
    assert got.fridge_temp_c == -0.55
    assert (got.occupancy, got.open_alerts, got.mains_present, got.gen_running) == (
        13,
        2,
        False,
        True,
    )
    full = got.to_status_body()
    assert full["refuel_before"] == "2026-03-02T20:00:05Z"  # at + 31.5 h
    assert full["reasons"][1]["text_nl"] == "Brandstofautonomie onder het doel"


def test_unknown_values_and_unknown_reasons() -> None:
    body = {
        "readiness": "UNKNOWN",
        "reasons": [{"code": "something_new"}, {"code": "FUEL_OLD"}],
        "fuel_autonomy_h": None,
        "fridge_temp_c": None,
        "occupancy": None,
        "open_alerts": 900,
        "mains_present": None,
        "gen_running": None,
    }
    got = decode_status("nsp-a", KEY, encode_status("nsp-a", KEY, body, AT))
    assert got.reason_codes == ("OTHER",)
    assert (got.fuel_autonomy_h, got.fridge_temp_c, got.occupancy) == (None, None, None)
    assert (got.mains_present, got.gen_running) == (None, None)
    assert got.open_alerts == 255  # saturates
    assert got.to_status_body()["refuel_before"] is None


def test_every_reason_bit_round_trips() -> None:
    for code in REASON_BITS:
        body = sample_status("NOT_READY", at=AT, reasons=[code])
        assert decode_status("s1", KEY, encode_status("s1", KEY, body, AT)).reason_codes == (code,)


@pytest.mark.parametrize(
    "change", ["flip_payload", "flip_tag", "other_site", "other_key", "short", "version"]
)
def test_tampered_or_foreign_frames_are_refused(change: str) -> None:
    frame = bytearray(encode_status("nsp-a", KEY, sample_status(at=AT), AT))
    site, key = "nsp-a", KEY
    if change == "flip_payload":
        frame[13] ^= 0x10
    elif change == "flip_tag":
        frame[-1] ^= 0x01
    elif change == "other_site":
        site = "nsp-b"
    elif change == "other_key":
        key = b"x" * 32
    elif change == "short":
        del frame[-1]
    elif change == "version":
        frame[0] = 2
    with pytest.raises(CompactError):
        decode_status(site, key, bytes(frame))


def test_bad_readiness_is_refused_by_the_encoder() -> None:
    with pytest.raises(CompactError, match="readiness"):
        encode_status("nsp-a", KEY, {"readiness": "FINE"}, AT)


def test_reason_bits_name_real_readiness_reasons() -> None:
    from edge_server.rules.readiness import REASONS

    unknown = [c for c in REASON_BITS if c != "OTHER" and c not in REASONS]
    assert not unknown, f"compact reason bits for codes the rules do not have: {unknown}"
    assert len(set(REASON_BITS.values())) == len(REASON_BITS) and max(REASON_BITS.values()) < 16
    body = sample_status("READY", at=AT, reasons=["ALL_OK"])
    assert decode_status("s1", KEY, encode_status("s1", KEY, body, AT)).reason_codes == ()
