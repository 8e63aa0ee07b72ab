"""The uplink wire protocol (edge -> C-NSP hub): signing, the batch envelope and its validation.

One place for both ends, so the edge and the hub cannot drift apart. The public contract is
docs/uplink-protocol.md with JSON Schemas in docs/schemas/; a region may implement its own hub.

    body = encode_batch(site_id, batch_id, sent_at, messages)      # bytes, compact JSON
    headers = sign_headers(site_id, key, body, now_unix)
    verify_signature(key, timestamp, body, header_value)           # hmac.compare_digest
    body_model("gentest").model_validate(body)                      # one model per kind
    body_errors(Batch.model_validate(doc))                          # "messages.N.body.x: ..."
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

PROTOCOL_VERSION = 1
INGEST_PATH = "/api/v1/ingest"
INGEST_COMPACT_PATH = "/api/v1/ingest-compact"
HEADER_SITE = "X-NSP-Site"
HEADER_TIMESTAMP = "X-NSP-Timestamp"
HEADER_SIGNATURE = "X-NSP-Signature"
# On a 401 stale_timestamp the hub says what its clock reads (unix seconds), so a site whose clock
# is off (no NTP in an outage, a board without a battery-backed clock) can sign with the hub's
# time instead of being refused for ever (edge_server/uplink/client.py, clock_offset_s).
HEADER_HUB_TIME = "X-NSP-Hub-Time"
# A request whose timestamp is further than this from the hub's clock is refused (replay window).
TIMESTAMP_WINDOW_S = 300

Kind = Literal["status", "alert", "event", "gentest", "commissioning", "report", "receipt"]
KINDS: tuple[str, ...] = (
    "status", "alert", "event", "gentest", "commissioning", "report", "receipt",
)
SITE_ID_PATTERN = r"^[a-z0-9][a-z0-9-]{1,62}$"


def signature(key: bytes, timestamp: str, body: bytes) -> str:
    """`sha256=<hex>` of HMAC-SHA256(key, timestamp + "." + body)."""
    mac = hmac.new(key, timestamp.encode("ascii") + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


def verify_signature(key: bytes, timestamp: str, body: bytes, header_value: str) -> bool:
    """Constant-time check of an X-NSP-Signature header value."""
    expected = signature(key, timestamp, body)
    return hmac.compare_digest(expected.encode("ascii"), header_value.encode("ascii", "replace"))


def sign_headers(site_id: str, key: bytes, body: bytes, now_unix: int) -> dict[str, str]:
    timestamp = str(int(now_unix))
    return {
        HEADER_SITE: site_id,
        HEADER_TIMESTAMP: timestamp,
        HEADER_SIGNATURE: signature(key, timestamp, body),
        "Content-Type": "application/json",
    }


def iso(dt: datetime) -> str:
    """UTC ISO 8601 with a Z, seconds precision kept to microseconds when present."""
    return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")


def parse_iso(text: str) -> datetime:
    dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if dt.tzinfo is None:
        raise ValueError(f"{text!r}: a timestamp needs a time zone (use UTC, ending in Z)")
    return dt.astimezone(UTC)


def _iso_checked(text: str) -> str:
    parse_iso(text)
    return text


# A timestamp field kept as the sender wrote it, checked to be ISO 8601 with a time zone.
IsoTime = Annotated[str, AfterValidator(_iso_checked)]


# One spelling of a UUID on the wire: 36 characters, lower-case hex, 8-4-4-4-12 (RFC 9562's
# canonical form, what Python's str(uuid4()) writes). The hub stores each (site, id) once, so a
# second spelling of the same id (upper case, braces, urn:uuid:, 32 bare digits) would be a second
# message; the nil UUID is what a sender that forgot to make an id sends.
_CANONICAL_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
UUID_PATTERN = "^" + _CANONICAL_UUID.pattern + "$"
_NIL_UUID = "00000000-0000-0000-0000-000000000000"


def _canonical_uuid(v: str) -> str:
    if not _CANONICAL_UUID.fullmatch(v):
        raise ValueError(
            "not a canonical UUID: write 36 characters of lower-case hex as 8-4-4-4-12 "
            "(no braces, no urn:uuid:, no upper case)"
        )
    if v == _NIL_UUID:
        raise ValueError("the nil UUID is not an id: make one with uuid4()")
    return v


CanonicalUuid = Annotated[str, AfterValidator(_canonical_uuid)]


class Message(BaseModel):
    """One message in a batch; `id` is the idempotency key (a retry carries the same id)."""

    model_config = ConfigDict(extra="forbid", strict=True)
    id: CanonicalUuid
    kind: Kind
    at: IsoTime
    body: dict[str, Any]


class Batch(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    site_id: Annotated[str, Field(pattern=SITE_ID_PATTERN)]
    batch_id: CanonicalUuid
    sent_at: IsoTime
    messages: list[Message]


# -- message bodies: one model per kind (docs/schemas/<kind>-body.json) ---------------------------
# Strict (a "5" is not a number, a 1 is not true, as in JSON Schema), no NaN or infinity (JSON has
# neither; Python's json reads them and the hub's replies could not be written). Extra fields are
# allowed, as the schemas allow them: a newer edge may add one.
_BODY = ConfigDict(extra="allow", strict=True, allow_inf_nan=False)
Text = Annotated[str, Field(min_length=1)]
Seconds = Annotated[float, Field(ge=0)]


class Reason(BaseModel):
    model_config = _BODY
    code: str
    text_en: str
    text_nl: str


class StatusBody(BaseModel):
    model_config = _BODY
    readiness: Literal["READY", "DEGRADED", "NOT_READY", "UNKNOWN"]
    reasons: list[Reason]
    fuel_autonomy_h: Annotated[float, Field(ge=0)] | None = None
    refuel_before: IsoTime | None = None
    fridge_temp_c: float | None = None
    occupancy: Annotated[int, Field(ge=0)] | None = None
    open_alerts: Annotated[int, Field(ge=0)]
    mains_present: bool | None = None
    gen_running: bool | None = None
    # For the C-NSP's fuel round (hub/fuel_round.py): the tank now, its usable capacity (above
    # the pick-up pipe) and the consumption rate the autonomy is computed with.
    fuel_l: Annotated[float, Field(ge=0)] | None = None
    fuel_usable_l: Annotated[float, Field(ge=0)] | None = None
    tank_usable_l: Annotated[float, Field(ge=0)] | None = None
    burn_lph: Annotated[float, Field(ge=0)] | None = None


class AlertBody(BaseModel):
    model_config = _BODY
    alert_id: Text
    code: str
    severity: Literal["info", "warning", "critical"]
    state: Literal["raised", "acknowledged", "cleared"]
    raised_at: IsoTime
    acknowledged_at: IsoTime | None = None
    acknowledged_by: str | None = None
    cleared_at: IsoTime | None = None
    text_en: str
    text_nl: str
    channel: str | None = None
    value: Any = None


class EventBody(BaseModel):
    """A moment, not a state (MAINS_RESTORED, NODE_REBOOTED, UPLINK_DEAD_LETTER). Only the
    code is required: the hub stores events for the record and shows none of them (the
    reference edge always sends both texts)."""

    model_config = _BODY
    code: Text
    text_en: str | None = None
    text_nl: str | None = None
    subject: str | None = None
    at: IsoTime | None = None
    value: Any = None


# The outcome words of a finished generator test (edge_server/gentest/record.py: Outcome, without
# RUNNING, which is never sent): PASSED / FAILED / NOT_VERIFIED / ABORTED, with `end` saying how
# it ended. The four words after them are what edges before that sent (still accepted, read as
# FAILED / ABORTED). Keep in step with docs/schemas/gentest-body.json (a test checks).
GentestOutcome = Literal[
    "PASSED", "FAILED", "NOT_VERIFIED", "ABORTED",
    "FAILED_TO_START", "ABORTED_MAINS_LOST", "ABORTED_BY_OPERATOR", "ABORTED_NODE_OFFLINE",
]
GentestEnd = Literal[
    "COMPLETED", "FAILED_TO_START", "GEN_STOPPED", "MAINS_LOST", "BY_OPERATOR", "NODE_OFFLINE",
    "OUTAGE_RUN",
]


class Criterion(BaseModel):
    model_config = _BODY
    code: Literal["START_TIME", "CRANK_VOLTAGE", "RUN_DURATION", "FUEL_SENSOR", "RUN_HOURS", "LOAD",
                  "VOLTAGE", "FREQUENCY"]
    ok: bool | None
    value: float | str | None
    limit: str
    text_en: str
    text_nl: str


class GentestBody(BaseModel):
    model_config = _BODY
    id: Annotated[int, Field(ge=1)]
    site_id: str
    node: str
    started_by: Text
    started_at: IsoTime
    ended_at: IsoTime
    ended_by: str | None = None
    outcome: GentestOutcome
    passed: bool | None
    outcome_en: str | None = None
    outcome_nl: str | None = None
    end: GentestEnd | None = None
    end_en: str | None = None
    end_nl: str | None = None
    # a short exercise never counts as the monthly test (and is never PASSED)
    kind: Literal["monthly", "short_exercise", "outage_credit"] = "monthly"
    counts_as_monthly: bool | None = None
    # how the test commanded the set: the generator controller, or the power node's relay
    # (edge_server/gentest/runner.py); None for an outage credit and from older edges
    commanded_via: Literal["controller", "relay"] | None = None
    planned_s: Annotated[float, Field(gt=0)]
    start_time_s: Seconds | None
    ran_s: Seconds | None
    crank_min_v: float | None
    starter_v_before: float | None = None
    fuel_start_l: float | None
    fuel_end_l: float | None
    fuel_used_l: float | None = None
    run_hours_start_h: float | None
    run_hours_end_h: float | None
    criteria: list[Criterion]
    reasons: list[str]
    notes: str | None = None


Result = Literal["PASS", "WARN", "FAIL"]


class Problem(BaseModel):
    model_config = _BODY
    level: Literal["WARN", "FAIL"]
    code: Text


class NodeRecord(BaseModel):
    model_config = _BODY
    name: Text
    unit: Annotated[int, Field(ge=1, le=247)]
    roles: list[str] | None = None
    answered: bool
    result: Result
    firmware: str | None
    map_version: int | None
    problems: list[Problem]


class CommissioningBody(BaseModel):
    """One `nsp-edge commission --record` run (made by edge_server/commission/record.py)."""

    model_config = _BODY
    site_id: Annotated[str, Field(pattern=SITE_ID_PATTERN)]
    commissioned_at: IsoTime
    by: Annotated[str, Field(min_length=1, max_length=200)]
    result: Result
    tool_version: Text
    site_problems: list[Problem]
    nodes: list[NodeRecord]


# An emergency report (noodhulpmelding) typed by site staff (edge_server/crisis/): the C-NSP
# acknowledges it and the acknowledgement comes back signed (edge_server/uplink/notices.py).
ReportKind = Literal["medical", "fire", "missing_person", "other"]
Urgency = Literal["immediate", "urgent", "normal"]
REPORT_TEXT_MAX = 2000  # a long phone call's worth of notes; the board shows all of it
REPORT_LOCATION_MAX = 200


class ReportBody(BaseModel):
    model_config = _BODY
    report_id: CanonicalUuid  # the same fact by radio and by the primary link: one report
    kind: ReportKind
    urgency: Urgency
    location: Annotated[str, Field(min_length=1, max_length=REPORT_LOCATION_MAX)]
    people: Annotated[int, Field(ge=0, le=100_000)] | None = None  # null: not known
    text: Annotated[str, Field(max_length=REPORT_TEXT_MAX)] = ""
    reported_by: str | None = None  # the staff member's account (null: by radio)
    reported_at: IsoTime


class ReceiptBody(BaseModel):
    """The site holds a signed notice of its hub: a bulletin or a report acknowledgement. The
    hub repeats a notice in its replies until the receipt arrives."""

    model_config = _BODY
    of: Literal["bulletin", "report_ack"]
    id: CanonicalUuid  # the bulletin's id, or the acknowledged report's report_id
    received_at: IsoTime


def body_model(kind: str) -> type[BaseModel]:
    """The model of a kind's body (KeyError for an unknown kind)."""
    return _BODY_MODELS[kind]


_BODY_MODELS: dict[str, type[BaseModel]] = {
    "status": StatusBody,
    "alert": AlertBody,
    "event": EventBody,
    "gentest": GentestBody,
    "commissioning": CommissioningBody,
    "report": ReportBody,
    "receipt": ReceiptBody,
}

# Deeper JSON than this is refused: no message of this protocol nests more than 5 levels, and
# Python's parser turns some 1,000 levels into a RecursionError.
MAX_JSON_DEPTH = 32


def json_problem(doc: Any, max_depth: int = MAX_JSON_DEPTH) -> tuple[str, str] | None:
    """(where, what) of the first value no hub can store and show: nesting deeper than
    max_depth, or a number that is not finite (NaN, Infinity, 1e999); None when there is none.
    Iterative: a deep document cannot exhaust the stack here."""
    stack: list[tuple[Any, str, int]] = [(doc, "", 0)]
    while stack:
        value, where, depth = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            return where, "NaN and infinite numbers are not JSON: send null or a finite number"
        if isinstance(value, dict | list):
            if depth >= max_depth:
                return where, f"nested deeper than {max_depth} levels"
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for k, v in items:
                stack.append((v, f"{where}.{k}" if where else str(k), depth + 1))
    return None


def body_errors(batch: Batch) -> str | None:
    """Every message body checked against its kind's model: None, or the errors, each starting
    `messages.N.body.` (the sender isolates the culprit from the first one)."""
    parts: list[str] = []
    for i, m in enumerate(batch.messages):
        try:
            body_model(m.kind).model_validate(m.body)
        except ValidationError as exc:
            parts.append(prefixed(f"messages.{i}.body", exc))
    return "; ".join(parts) or None


def encode_batch(
    site_id: str, batch_id: str, sent_at: datetime, messages: list[dict[str, Any]]
) -> bytes:
    doc = {"site_id": site_id, "batch_id": batch_id, "sent_at": iso(sent_at), "messages": messages}
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def error_text(exc: Exception) -> str:
    """A pydantic validation error as one line per field ('messages.0.kind: ...')."""
    if isinstance(exc, ValidationError):
        return prefixed("", exc)
    return str(exc)


def prefixed(where: str, exc: ValidationError) -> str:
    """A validation error with `where` in front of each field ('messages.2.body.severity: ...')."""
    parts = []
    for e in exc.errors():
        loc = ".".join([*([where] if where else []), *(str(p) for p in e.get("loc", ()))])
        parts.append(f"{loc}: {e.get('msg', '')}")
    return "; ".join(parts)
