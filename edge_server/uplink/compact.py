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

Compact alert frame (one state change of one alert), 28..44 bytes, struct ">BBIIIBiB" + subject +
an 8-byte tag:

    off size field            encoding
    0   1    version          2 (byte 0 names the frame: 1 status, 2 alert)
    1   1    flags            bits 0-1 state: 0 raised, 1 acknowledged, 2 cleared;
                              bits 2-3 severity: 0 info, 1 warning, 2 critical
    2   4    timestamp        unix seconds (UTC) when the frame was made (the replay window)
    6   4    alert_id         the site's alert number (the full `alert` message's alert_id)
    10  4    raised_at        unix seconds (UTC)
    14  1    code             index in ALERT_CODES, 255 another code (see the full alert)
    15  4    value            signed, 0.01 units of the code's value, -2^31 unknown
    19  1    subject_len      0..16
    20  n    subject          UTF-8, the alert's subject (node name), cut to 16 bytes; for the
                              generator controller's alarms (GENSET_ALARM_CODES) without the
                              "alarm_" of the channel: "gen.low_oil_pres" for
                              gen.alarm_low_oil_pressure (the decoder puts it back)
    20+n 8   tag              HMAC-SHA256(site key, b"NSPC" + site_id + b"." + bytes 0..19+n)[:8]

`encode_alert()` / `decode_alert()`; the emergency report frame (version 3) is at the end of
this module; `decode_frame()` takes any kind.
"""

from __future__ import annotations

import hashlib
import hmac
import struct
import uuid
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

ALERT_VERSION = 2
_ALERT_HEAD = struct.Struct(">BBIIIBiB")
SUBJECT_MAX = 16
ALERT_FRAME_MIN = _ALERT_HEAD.size + TAG_BYTES  # 28
ALERT_FRAME_MAX = ALERT_FRAME_MIN + SUBJECT_MAX  # 44
MAX_FRAME_BYTES = max(FRAME_BYTES, ALERT_FRAME_MAX)
_NA_I32 = -(2**31)
ALERT_STATES = ("raised", "acknowledged", "cleared")
SEVERITIES = ("info", "warning", "critical")
# Alert and event codes of edge_server/rules/ruleset.py -> index. Append only: a hub decodes a
# frame with the index it was sent with. 255: a code not in this table (OTHER).
ALERT_CODES: tuple[str, ...] = (
    "FRIDGE_HIGH",
    "FRIDGE_HIGH_INSTANT",
    "FRIDGE_LOW",
    "FRIDGE_FREEZE",
    "FRIDGE_PROBE_FAULT",
    "FRIDGE_MKT",
    "FRIDGE_DOOR_OPEN",
    "FUEL_LOW",
    "FUEL_AUTONOMY_LOW",
    "FUEL_LEAK",
    "FUEL_SENSOR_FAULT",
    "FUEL_OLD",
    "STARTER_BATTERY_LOW",
    "BATTERY_LOW",
    "BATTERY_SENSOR_FAULT",
    "MAINS_LOST",
    "GEN_RUNNING_ON_OUTAGE",
    "GEN_FAILED_TO_START",
    "GEN_RUNNING_UNEXPECTED",
    "NODE_OFFLINE",
    "DATA_STALE",
    "OCCUPANCY_HIGH",
    "MAINS_RESTORED",
    "NODE_REBOOTED",
    "FUEL_REFUELLED",
    "GENSET_WITNESS_DISAGREES",
    # 26-28: the generator controller's alarms (edge_server/genset/alarms.py); before, OTHER
    "GENSET_SHUTDOWN",
    "GENSET_ELECTRICAL_TRIP",
    "GENSET_WARNING",
)
# Their subject is the alarm's channel NAME.alarm_ALARM; the frame leaves "alarm_" out (6 bytes
# more of the alarm's name within the 16), and only for these indexes: a frame of an older edge
# (code 255, the subject as it was) decodes as before.
GENSET_ALARM_CODES = frozenset({"GENSET_SHUTDOWN", "GENSET_ELECTRICAL_TRIP", "GENSET_WARNING"})
_ALARM_PREFIX = "alarm_"
_OTHER_CODE = 255

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


def alert_templates() -> dict[str, tuple[str, str, str]]:
    """code -> (English, Dutch, unit): the rules' own text templates ({subject}, {value})."""
    from edge_server.rules import ruleset
    from edge_server.rules.engine import Condition, EventSpec

    out: dict[str, tuple[str, str, str]] = {}
    for obj in vars(ruleset).values():
        if isinstance(obj, type) and issubclass(obj, Condition) and "code" in vars(obj):
            out[obj.code] = (obj.text_en, obj.text_nl, obj.unit)
        spec = getattr(obj, "spec", obj)
        if isinstance(spec, EventSpec):
            out[spec.code] = (spec.text_en, spec.text_nl, "")
    from edge_server.genset.alarms import CONDITIONS

    for cond in CONDITIONS:  # {alarm}: the alarm's words, CompactAlert.texts() fills it in
        out[cond.code] = (cond.text_en, cond.text_nl, "")
    out["OTHER"] = (
        "Alert at {subject} (see the full report)",
        "Melding bij {subject} (zie het volledige rapport)",
        "",
    )
    return out


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


@dataclass(frozen=True)
class CompactAlert:
    sent_at: datetime  # the frame's own time (replay window), not the alert's
    alert_id: int
    code: str  # "OTHER" when the site's code is not in ALERT_CODES
    severity: str
    state: str
    raised_at: datetime
    value: float | None
    subject: str

    def texts(self) -> tuple[str, str]:
        templates = alert_templates()
        en, nl, unit = templates.get(self.code, templates["OTHER"])
        if self.code in GENSET_ALARM_CODES:
            # the site's own sentence: the set's name and the alarm in the profile's words
            from edge_server.genset.alarms import alarm_words

            gen, _, channel = self.subject.partition(".")
            alarm_en, alarm_nl = alarm_words(channel.removeprefix(_ALARM_PREFIX))
            return (en.format(subject=gen, alarm=alarm_en), nl.format(subject=gen, alarm=alarm_nl))
        shown = "?" if self.value is None else f"{self.value:.4g}{unit}"
        return (
            en.format(subject=self.subject, value=shown),
            nl.format(subject=self.subject, value=shown),
        )

    def to_alert_body(self) -> dict[str, Any]:
        """An `alert` message body (docs/schemas/alert-body.json) with what the frame holds."""
        text_en, text_nl = self.texts()
        return {
            "alert_id": str(self.alert_id),
            "code": self.code,
            "subject": self.subject,
            "severity": self.severity,
            "state": self.state,
            "raised_at": iso_z(self.raised_at),
            "acknowledged_at": None,
            "acknowledged_by": None,
            "cleared_at": None,
            "text_en": text_en,
            "text_nl": text_nl,
            "channel": None,
            "value": self.value,
            "via": "compact",
        }


def iso_z(at: datetime) -> str:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _alarm_subject_out(subject: str) -> str:
    """gen.alarm_low_oil_pressure -> gen.low_oil_pressure (cut to 16 bytes after this)."""
    gen, dot, channel = subject.partition(".")
    return gen + dot + channel.removeprefix(_ALARM_PREFIX) if dot else subject


def _alarm_subject_in(sent: str) -> str:
    """The channel back: "alarm_" put back, and a name cut by the 16 bytes completed when it is
    the start of exactly one alarm the profiles know (else left as it came)."""
    from edge_server.genset.alarms import ALARM_WORDS

    gen, dot, alarm = sent.partition(".")
    if not dot:
        return sent
    if alarm not in ALARM_WORDS:
        whole = [name for name in ALARM_WORDS if name.startswith(alarm)]
        if len(whole) == 1 and alarm:
            alarm = whole[0]
    return f"{gen}.{_ALARM_PREFIX}{alarm}"


def _subject_bytes(subject: str) -> bytes:
    raw = subject.encode("utf-8")[:SUBJECT_MAX]
    # Cut at a character boundary: a partial UTF-8 sequence would not decode at the hub.
    return raw.decode("utf-8", "ignore").encode("utf-8")


def encode_alert(site_id: str, key: bytes, body: dict[str, Any], at: datetime) -> bytes:
    """An `alert` body (Alert.to_json()) -> a signed 28..44-byte frame made at `at`."""
    state = str(body.get("state", "raised"))
    severity = str(body.get("severity", "critical"))
    if state not in ALERT_STATES:
        raise CompactError(f"alert state {state!r} is not one of {', '.join(ALERT_STATES)}")
    if severity not in SEVERITIES:
        raise CompactError(f"alert severity {severity!r} is not one of {', '.join(SEVERITIES)}")
    try:
        alert_id = int(body["alert_id"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CompactError("a compact alert needs the site's numeric alert_id") from exc
    if not 0 <= alert_id < 2**32:
        raise CompactError(f"alert_id {alert_id} does not fit 32 bits")
    raised = body.get("raised_at")
    raised_at = raised if isinstance(raised, datetime) else datetime.fromisoformat(str(raised))
    code = str(body.get("code", ""))
    index = ALERT_CODES.index(code) if code in ALERT_CODES else _OTHER_CODE
    value = body.get("value")
    raw_value = (
        _NA_I32 if value is None else max(-(2**31) + 1, min(2**31 - 1, round(float(value) * 100)))
    )
    subject_text = str(body.get("subject") or "")
    if code in GENSET_ALARM_CODES:
        subject_text = _alarm_subject_out(subject_text)
    subject = _subject_bytes(subject_text)
    head = (
        _ALERT_HEAD.pack(
            ALERT_VERSION,
            ALERT_STATES.index(state) | (SEVERITIES.index(severity) << 2),
            int(at.timestamp()),
            alert_id,
            int(raised_at.timestamp()),
            index,
            raw_value,
            len(subject),
        )
        + subject
    )
    return head + _tag(key, site_id, head)


def decode_alert(site_id: str, key: bytes, frame: bytes) -> CompactAlert:
    """Check the tag (constant time) and decode; raises CompactError saying what is wrong."""
    if not ALERT_FRAME_MIN <= len(frame) <= ALERT_FRAME_MAX:
        raise CompactError(
            f"compact alert frame must be {ALERT_FRAME_MIN}..{ALERT_FRAME_MAX} bytes, "
            f"got {len(frame)}"
        )
    if frame[0] != ALERT_VERSION:
        raise CompactError(f"compact alert frame version {frame[0]} is unknown (this hub: 2)")
    n = frame[_ALERT_HEAD.size - 1]
    if len(frame) != ALERT_FRAME_MIN + n or n > SUBJECT_MAX:
        raise CompactError(f"compact alert frame of {len(frame)} bytes has a {n}-byte subject")
    head, tag = frame[:-TAG_BYTES], frame[-TAG_BYTES:]
    if not hmac.compare_digest(tag, _tag(key, site_id, head)):
        raise CompactError("compact frame tag does not match (wrong key, site or tampered)")
    _v, flags, ts, alert_id, raised, index, raw_value, _n = _ALERT_HEAD.unpack(
        head[: _ALERT_HEAD.size]
    )
    state_i, sev_i = flags & 3, (flags >> 2) & 3
    if state_i >= len(ALERT_STATES) or sev_i >= len(SEVERITIES):
        raise CompactError(f"compact alert frame flags {flags:#04x} are unknown")
    try:
        subject = head[_ALERT_HEAD.size :].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CompactError("compact alert frame subject is not UTF-8") from exc
    code = ALERT_CODES[index] if index < len(ALERT_CODES) else "OTHER"
    if code in GENSET_ALARM_CODES:
        subject = _alarm_subject_in(subject)
    return CompactAlert(
        sent_at=datetime.fromtimestamp(ts, UTC),
        alert_id=alert_id,
        code=code,
        severity=SEVERITIES[sev_i],
        state=ALERT_STATES[state_i],
        raised_at=datetime.fromtimestamp(raised, UTC),
        value=None if raw_value == _NA_I32 else raw_value / 100.0,
        subject=subject,
    )


def frame_time(frame: bytes) -> int:
    """The frame's own timestamp (unix seconds) without checking it: both kinds keep it at 2..5."""
    if len(frame) < 6:
        raise CompactError(f"compact frame of {len(frame)} bytes is too short")
    return int.from_bytes(frame[2:6], "big")


def decode_frame(
    site_id: str, key: bytes, frame: bytes
) -> CompactStatus | CompactAlert | CompactReport:
    """Any kind, by its first byte."""
    if frame[:1] == bytes([ALERT_VERSION]):
        return decode_alert(site_id, key, frame)
    if frame[:1] == bytes([REPORT_VERSION]):
        return decode_report(site_id, key, frame)
    return decode_status(site_id, key, frame)


# -- emergency reports (noodhulpmelding) over the backup radio -----------------------------------
# Compact report frame, 38..96 bytes, struct ">BBI16sIHBB" + location + text + an 8-byte tag:
#
#     off size field            encoding
#     0   1    version          3
#     1   1    flags            bits 0-1 kind (REPORT_KINDS), bits 2-3 urgency (URGENCIES),
#                               bit 4 location cut, bit 5 text cut
#     2   4    timestamp        unix seconds (UTC) when the frame was made (the replay window)
#     6   16   report_id        the report's UUID, raw (the full `report` message names it too)
#     22  4    reported_at      unix seconds (UTC)
#     26  2    people           0..65534 (65534: that many or more), 0xFFFF not known
#     28  1    location_len     bytes of location
#     29  1    text_len         bytes of text
#     30  n    location         UTF-8, cut at a character boundary
#     30+n m   text             UTF-8, cut at a character boundary
#     30+n+m 8 tag              HMAC-SHA256(site key, b"NSPC" + site_id + b"." + head)[:8]
#
# Location and text share REPORT_ROOM bytes: the location first, up to REPORT_LOCATION_SHARE (it
# says where help is needed), more when the text is short; the text gets the rest. Why 96 bytes:
# docs/radio.md ("Emergency reports by radio").
REPORT_VERSION = 3
_REPORT_HEAD = struct.Struct(">BBI16sIHBB")
REPORT_FRAME_MIN = _REPORT_HEAD.size + TAG_BYTES  # 38
REPORT_FRAME_MAX = 96
REPORT_ROOM = REPORT_FRAME_MAX - REPORT_FRAME_MIN  # 58 bytes of location and text
REPORT_LOCATION_SHARE = 32
REPORT_KINDS = ("medical", "fire", "missing_person", "other")
URGENCIES = ("immediate", "urgent", "normal")
_CUT_LOCATION, _CUT_TEXT = 0x10, 0x20


@dataclass(frozen=True)
class CompactReport:
    sent_at: datetime  # the frame's own time (replay window), not the report's
    report_id: str
    kind: str
    urgency: str
    reported_at: datetime
    people: int | None
    location: str
    text: str
    cut: tuple[str, ...]  # "location", "text": what the frame holds only the start of

    def to_report_body(self) -> dict[str, Any]:
        """A `report` message body (docs/schemas/report-body.json) with what the frame holds;
        `cut` names the fields the full report (by the primary link) has more of."""
        return {
            "report_id": self.report_id,
            "kind": self.kind,
            "urgency": self.urgency,
            "location": self.location,
            "people": self.people,
            "text": self.text,
            "reported_by": None,
            "reported_at": iso_z(self.reported_at),
            "cut": list(self.cut),
            "via": "compact",
        }


def _cut_utf8(raw: bytes, n: int) -> bytes:
    return raw[:n].decode("utf-8", "ignore").encode("utf-8")


def encode_report(site_id: str, key: bytes, body: dict[str, Any], at: datetime) -> bytes:
    """A `report` body (ReportBody) -> a signed 38..96-byte frame made at `at`; location and text
    are cut to what fits (flags say so)."""
    kind, urgency = str(body.get("kind")), str(body.get("urgency"))
    if kind not in REPORT_KINDS:
        raise CompactError(f"report kind {kind!r} is not one of {', '.join(REPORT_KINDS)}")
    if urgency not in URGENCIES:
        raise CompactError(f"report urgency {urgency!r} is not one of {', '.join(URGENCIES)}")
    try:
        report_id = uuid.UUID(str(body["report_id"])).bytes
    except (KeyError, ValueError) as exc:
        raise CompactError("a compact report needs the report's UUID report_id") from exc
    reported = body.get("reported_at")
    reported_at = (reported if isinstance(reported, datetime)
                   else datetime.fromisoformat(str(reported)))
    people = body.get("people")
    people_raw = _NA_U16 if people is None else max(0, min(65534, int(people)))
    loc_full = str(body.get("location") or "").encode("utf-8")
    text_full = str(body.get("text") or "").encode("utf-8")
    loc = _cut_utf8(loc_full, max(REPORT_LOCATION_SHARE, REPORT_ROOM - len(text_full)))
    text = _cut_utf8(text_full, REPORT_ROOM - len(loc))
    flags = REPORT_KINDS.index(kind) | (URGENCIES.index(urgency) << 2)
    flags |= (_CUT_LOCATION if len(loc) < len(loc_full) else 0)
    flags |= (_CUT_TEXT if len(text) < len(text_full) else 0)
    head = _REPORT_HEAD.pack(
        REPORT_VERSION, flags, int(at.timestamp()), report_id, int(reported_at.timestamp()),
        people_raw, len(loc), len(text),
    ) + loc + text
    return head + _tag(key, site_id, head)


def decode_report(site_id: str, key: bytes, frame: bytes) -> CompactReport:
    """Check the tag (constant time) and decode; raises CompactError saying what is wrong."""
    if not REPORT_FRAME_MIN <= len(frame) <= REPORT_FRAME_MAX:
        raise CompactError(
            f"compact report frame must be {REPORT_FRAME_MIN}..{REPORT_FRAME_MAX} bytes, "
            f"got {len(frame)}"
        )
    if frame[0] != REPORT_VERSION:
        raise CompactError(f"compact report frame version {frame[0]} is unknown (this hub: 3)")
    _v, flags, ts, rid, reported, people, n_loc, n_text = _REPORT_HEAD.unpack(
        frame[: _REPORT_HEAD.size]
    )
    if len(frame) != REPORT_FRAME_MIN + n_loc + n_text:
        raise CompactError(f"compact report frame of {len(frame)} bytes does not hold its "
                           f"{n_loc}-byte location and {n_text}-byte text")
    head, tag = frame[:-TAG_BYTES], frame[-TAG_BYTES:]
    if not hmac.compare_digest(tag, _tag(key, site_id, head)):
        raise CompactError("compact frame tag does not match (wrong key, site or tampered)")
    if flags & 0xC0 or (flags >> 2) & 3 >= len(URGENCIES):
        raise CompactError(f"compact report frame flags {flags:#04x} are unknown")
    try:
        loc = head[_REPORT_HEAD.size : _REPORT_HEAD.size + n_loc].decode("utf-8")
        text = head[_REPORT_HEAD.size + n_loc :].decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CompactError("compact report frame location or text is not UTF-8") from exc
    return CompactReport(
        sent_at=datetime.fromtimestamp(ts, UTC),
        report_id=str(uuid.UUID(bytes=rid)),
        kind=REPORT_KINDS[flags & 3],
        urgency=URGENCIES[(flags >> 2) & 3],
        reported_at=datetime.fromtimestamp(reported, UTC),
        people=None if people == _NA_U16 else people,
        location=loc,
        text=text,
        cut=tuple(name for name, bit in (("location", _CUT_LOCATION), ("text", _CUT_TEXT))
                  if flags & bit),
    )
