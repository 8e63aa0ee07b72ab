"""Signed notices from the C-NSP hub to one site: bulletins for residents, report acknowledgements.

They ride in the hub's 200 reply to the site's batch (docs/uplink-protocol.md, section 1b), and
the site shows a bulletin on its kiosk to people who cannot check where it came from. So each
notice is signed by the hub with the key it shares with that one site, over the exact bytes:

    item = sign_notice(key, site_id, {"type": "bulletin", ...})   # {"payload": str, "sig": str}
    doc = open_notice(key, site_id, item)                          # NoticeRefused if not ours

MAC = HMAC-SHA256(site key, b"NSPN" + site_id + b"." + payload as UTF-8), written "sha256=<hex>".
The prefix keeps a notice MAC from ever equalling a batch signature or a compact frame tag made
with the same key; the site id inside the MAC (and in the payload) makes a notice signed for
another site fail here: a bulletin copied from a neighbour's reply is refused. Signing the text
as sent (not a re-serialised object) means a hub written in another language needs no canonical
JSON. A replayed notice changes nothing: ids are kept once.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge_server.uplink.protocol import CanonicalUuid, IsoTime, error_text, parse_iso

NOTICE_DOMAIN = b"NSPN"
# Size limits of a bulletin (the hub refuses more with 422 naming the field): a kiosk shows a
# title and some 1,000 characters in type readable across a room (about 2.5 cm capitals) on one
# screen; more does not get read. A reply carries at most MAX_PER_REPLY bulletins.
TITLE_MAX = 100
TEXT_MAX = 1000
MAX_PER_REPLY = 10
# A payload is at most this long (4 texts of 1,000 characters of up to 4 UTF-8 bytes, escaped):
# a bigger one is refused unread.
PAYLOAD_MAX = 40_000


class NoticeRefused(ValueError):
    """Not a notice of this site's hub (unsigned, signed with another key or for another site,
    malformed). The message says which; it never contains the key."""


class BulletinNotice(BaseModel):
    """A bulletin as the hub signs it for one site."""

    model_config = ConfigDict(extra="allow", strict=True)
    type: Literal["bulletin"]
    site_id: str
    id: CanonicalUuid
    title_nl: Annotated[str, Field(min_length=1, max_length=TITLE_MAX)]
    text_nl: Annotated[str, Field(min_length=1, max_length=TEXT_MAX)]
    title_en: Annotated[str, Field(max_length=TITLE_MAX)] | None = None
    text_en: Annotated[str, Field(max_length=TEXT_MAX)] | None = None
    valid_from: IsoTime
    valid_until: IsoTime
    issued_at: IsoTime
    issued_by: str


class ReportAckNotice(BaseModel):
    """An operator at the C-NSP acknowledged one of this site's emergency reports."""

    model_config = ConfigDict(extra="allow", strict=True)
    type: Literal["report_ack"]
    site_id: str
    report_id: CanonicalUuid
    by: str
    at: IsoTime


def notice_mac(key: bytes, site_id: str, payload: str) -> str:
    data = NOTICE_DOMAIN + site_id.encode("utf-8") + b"." + payload.encode("utf-8")
    return "sha256=" + hmac.new(key, data, hashlib.sha256).hexdigest()


def sign_notice(key: bytes, site_id: str, doc: dict[str, Any]) -> dict[str, str]:
    payload = json.dumps(doc, separators=(",", ":"), ensure_ascii=False)
    return {"payload": payload, "sig": notice_mac(key, site_id, payload)}


def open_notice(key: bytes, site_id: str, item: Any) -> dict[str, Any]:
    """The verified payload of a notice for this site; NoticeRefused saying why not."""
    if not isinstance(item, dict):
        raise NoticeRefused("not a signed notice: an object with payload and sig is expected")
    payload, sig = item.get("payload"), item.get("sig")
    if not isinstance(payload, str) or not isinstance(sig, str) or not sig:
        raise NoticeRefused("unsigned notice: payload and sig (sha256=...) are required")
    if len(payload) > PAYLOAD_MAX:
        raise NoticeRefused(f"notice payload of {len(payload)} characters; at most {PAYLOAD_MAX}")
    expected = notice_mac(key, site_id, payload)
    if not hmac.compare_digest(expected.encode("ascii"), sig.encode("ascii", "replace")):
        raise NoticeRefused(
            "signature does not match: not signed by this site's hub with this site's key "
            "(forged, altered, or meant for another site)"
        )
    try:
        doc = json.loads(payload)
    except ValueError as exc:
        raise NoticeRefused(f"signed payload is not JSON: {exc}") from exc
    if not isinstance(doc, dict) or doc.get("site_id") != site_id:
        raise NoticeRefused("signed payload names another site")
    return doc


def read_bulletin(doc: dict[str, Any]) -> BulletinNotice:
    """A verified payload as a bulletin; NoticeRefused naming the field otherwise."""
    try:
        bulletin = BulletinNotice.model_validate(doc)
    except ValidationError as exc:
        raise NoticeRefused(f"bulletin: {error_text(exc)}") from exc
    if parse_iso(bulletin.valid_until) <= parse_iso(bulletin.valid_from):
        raise NoticeRefused("bulletin: valid_until is not after valid_from")
    return bulletin


def read_report_ack(doc: dict[str, Any]) -> ReportAckNotice:
    try:
        return ReportAckNotice.model_validate(doc)
    except ValidationError as exc:
        raise NoticeRefused(f"report_ack: {error_text(exc)}") from exc
