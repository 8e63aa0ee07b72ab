"""The uplink wire protocol (edge -> C-NSP hub): signing, the batch envelope and its validation.

One place for both ends, so the edge and the hub cannot drift apart. The public contract is
docs/uplink-protocol.md with JSON Schemas in docs/schemas/; a region may implement its own hub.

    body = encode_batch(site_id, batch_id, sent_at, messages)      # bytes, compact JSON
    headers = sign_headers(site_id, key, body, now_unix)
    verify_signature(key, timestamp, body, header_value)           # hmac.compare_digest
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator

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

Kind = Literal["status", "alert", "event", "gentest", "commissioning"]
KINDS: tuple[str, ...] = ("status", "alert", "event", "gentest", "commissioning")
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


class Message(BaseModel):
    """One message in a batch; `id` is the idempotency key (a retry carries the same id)."""

    model_config = ConfigDict(extra="forbid")
    # Kept as the sender wrote it (a UUID checked for form): `held` must echo the sender's
    # spelling, or a sender writing upper-case hex would never see its messages acknowledged.
    id: str
    kind: Kind
    at: IsoTime
    body: dict[str, Any]

    @field_validator("id")
    @classmethod
    def _id_is_uuid(cls, v: str) -> str:
        uuid.UUID(v)
        return v


class Batch(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site_id: Annotated[str, Field(pattern=SITE_ID_PATTERN)]
    batch_id: uuid.UUID
    sent_at: IsoTime
    messages: list[Message]


def encode_batch(
    site_id: str, batch_id: str, sent_at: datetime, messages: list[dict[str, Any]]
) -> bytes:
    doc = {"site_id": site_id, "batch_id": batch_id, "sent_at": iso(sent_at), "messages": messages}
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def error_text(exc: Exception) -> str:
    """A pydantic validation error as one line per field ('messages.0.kind: ...')."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        parts = []
        for e in errors():
            loc = ".".join(str(p) for p in e.get("loc", ()))
            parts.append(f"{loc}: {e.get('msg', '')}")
        return "; ".join(parts)
    return str(exc)
