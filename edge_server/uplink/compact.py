"""Compact status frame for a narrow backup radio link (LoRa, HF data, satellite SMS): 24 bytes.

Layout (big-endian, struct format ">BBIBHHhHB" followed by an 8-byte tag):

    off size field            encoding
    0   1    version          1
    1   1    flags            bits 0-1 mains_present, bits 2-3 gen_running: 0 unknown, 1 no, 2 yes
    2   4    timestamp        unix seconds (UTC) when the status was made
    6   1    readiness        0 READY, 1 DEGRADED, 2 NOT_READY, 3 UNKNOWN
    7   2    reasons          bit set, see REASON_BITS (bit 15: another reason, see the full status)
    9   2    fuel_autonomy    0.1 h units, 0..65534 (6553.4 h), 0xFFFF unknown
    11  2    fridge_temp      signed centi-degrees C, -32768 unknown
    13  2    occupancy        people, 0..65534, 0xFFFF unknown
    15  1    open_alerts      0..254, 255 means 255 or more
    16  8    tag              HMAC-SHA256(site key, b"NSPC" + site_id + b"." + bytes 0..15)[:8]

The site id is not in the frame (it is the radio gateway's sender address, or the X-NSP-Site
header at the hub) but it is inside the MAC, so a frame cannot be replayed as another site's.
A 64-bit tag makes a forgery a 1 in 2^64 guess per try; the timestamp limits replays to the
hub's window. `encode_status()` / `decode_status()` are the documented encoder and decoder.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

COMPACT_VERSION = 1
_HEAD = struct.Struct(">BBIBHHhHB")
TAG_BYTES = 8
FRAME_BYTES = _HEAD.size + TAG_BYTES  # 24
_NA_U16 = 0xFFFF
_NA_I16 = -32768

READINESS = ("READY", "DEGRADED", "NOT_READY", "UNKNOWN")

# Readiness reason code (edge_server/rules/readiness.py) -> bit. Codes not in this table set
# bit 15 (OTHER: the full status names it); ALL_OK sets no bit (READY says it).
REASON_BITS: dict[str, int] = {
    "POWER_UNKNOWN": 0,
    "GEN_FAILED": 1,
    "GENTEST_FAILED": 2,
    "GENTEST_OVERDUE": 3,
    "FUEL_UNKNOWN": 4,
    "FUEL_CRITICAL": 5,
    "FUEL_AUTONOMY_LOW": 6,
    "FUEL_LEAK": 7,
    "STARTER_BATTERY_LOW": 8,
    "BATTERY_LOW": 9,
    "FRIDGE_OUT_OF_RANGE": 10,
    "FRIDGE_PROBE_FAULT": 11,
    "NODE_OFFLINE": 12,
    "DATA_STALE": 13,
    "UPLINK_DOWN": 14,
    "OTHER": 15,
}
_NO_BIT = frozenset({"ALL_OK"})


def _reason_texts() -> dict[str, tuple[str, str]]:
    from edge_server.rules.readiness import REASONS

    texts = {code: (REASONS[code][1], REASONS[code][2]) for code in REASON_BITS if code in REASONS}
    texts["OTHER"] = ("Another reason (see the full status)", "Andere reden (zie volledige status)")
    return texts


# (English, Dutch) per code, the same texts the site shows.
REASON_TEXTS: dict[str, tuple[str, str]] = _reason_texts()


class CompactError(ValueError):
    """A frame that cannot be used: wrong length, unknown version or a bad tag."""


@dataclass(frozen=True)
class CompactStatus:
    at: datetime
    readiness: str
    reason_codes: tuple[str, ...]
    fuel_autonomy_h: float | None
    fridge_temp_c: float | None
    occupancy: int | None
    open_alerts: int
    mains_present: bool | None
    gen_running: bool | None

    def to_status_body(self) -> dict[str, Any]:
        """The same fields as a full `status` message body (docs/interfaces.md)."""
        refuel = None
        if self.fuel_autonomy_h is not None:
            ts = self.at.timestamp() + self.fuel_autonomy_h * 3600.0
            refuel = datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")
        return {
            "readiness": self.readiness,
            "reasons": [
                {"code": c, "text_en": REASON_TEXTS[c][0], "text_nl": REASON_TEXTS[c][1]}
                for c in self.reason_codes
            ],
            "fuel_autonomy_h": self.fuel_autonomy_h,
            "refuel_before": refuel,
            "fridge_temp_c": self.fridge_temp_c,
            "occupancy": self.occupancy,
            "open_alerts": self.open_alerts,
            "mains_present": self.mains_present,
            "gen_running": self.gen_running,
            "via": "compact",
        }


def _tri(value: bool | None) -> int:
    return 0 if value is None else (2 if value else 1)


def _untri(bits: int) -> bool | None:
    return None if bits == 0 else bits == 2


def _tag(key: bytes, site_id: str, head: bytes) -> bytes:
    mac = hmac.new(key, b"NSPC" + site_id.encode("utf-8") + b"." + head, hashlib.sha256)
    return mac.digest()[:TAG_BYTES]


def encode_status(site_id: str, key: bytes, body: dict[str, Any], at: datetime) -> bytes:
    """A `status` body (docs/interfaces.md) -> a signed 24-byte frame. Values are clamped."""
    readiness = str(body.get("readiness", "UNKNOWN"))
    if readiness not in READINESS:
        raise CompactError(f"readiness {readiness!r} is not one of {', '.join(READINESS)}")
    reasons = 0
    for reason in body.get("reasons") or []:
        code = str(reason.get("code") if isinstance(reason, dict) else reason)
        if code not in _NO_BIT:
            reasons |= 1 << REASON_BITS.get(code, REASON_BITS["OTHER"])
    fuel_h = body.get("fuel_autonomy_h")
    fuel_raw = _NA_U16 if fuel_h is None else max(0, min(65534, round(float(fuel_h) * 10)))
    temp_c = body.get("fridge_temp_c")
    temp_raw = _NA_I16 if temp_c is None else max(-32767, min(32767, round(float(temp_c) * 100)))
    occ = body.get("occupancy")
    occ_raw = _NA_U16 if occ is None else max(0, min(65534, int(occ)))
    alerts = max(0, min(255, int(body.get("open_alerts") or 0)))
    flags = _tri(body.get("mains_present")) | (_tri(body.get("gen_running")) << 2)
    head = _HEAD.pack(
        COMPACT_VERSION,
        flags,
        int(at.timestamp()),
        READINESS.index(readiness),
        reasons,
        fuel_raw,
        temp_raw,
        occ_raw,
        alerts,
    )
    return head + _tag(key, site_id, head)


def decode_status(site_id: str, key: bytes, frame: bytes) -> CompactStatus:
    """Check the tag (constant time) and decode; raises CompactError saying what is wrong."""
    if len(frame) != FRAME_BYTES:
        raise CompactError(f"compact frame must be {FRAME_BYTES} bytes, got {len(frame)}")
    if frame[0] != COMPACT_VERSION:
        raise CompactError(f"compact frame version {frame[0]} is unknown (this hub: 1)")
    head, tag = frame[: _HEAD.size], frame[_HEAD.size :]
    if not hmac.compare_digest(tag, _tag(key, site_id, head)):
        raise CompactError("compact frame tag does not match (wrong key, site or tampered)")
    _v, flags, ts, ready, reasons, fuel_raw, temp_raw, occ_raw, alerts = _HEAD.unpack(head)
    if ready >= len(READINESS):
        raise CompactError(f"compact frame readiness {ready} is unknown")
    codes = tuple(c for c, bit in REASON_BITS.items() if reasons & (1 << bit))
    return CompactStatus(
        at=datetime.fromtimestamp(ts, UTC),
        readiness=READINESS[ready],
        reason_codes=codes,
        fuel_autonomy_h=None if fuel_raw == _NA_U16 else fuel_raw / 10.0,
        fridge_temp_c=None if temp_raw == _NA_I16 else temp_raw / 100.0,
        occupancy=None if occ_raw == _NA_U16 else occ_raw,
        open_alerts=alerts,
        mains_present=_untri(flags & 3),
        gen_running=_untri((flags >> 2) & 3),
    )
