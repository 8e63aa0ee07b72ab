"""Bulletins for residents, written at the C-NSP hub and carried to the sites' kiosks.

    POST /api/v1/bulletins   (operator or admin) write one: Dutch title and text, English optional,
                             valid for `valid_hours` or until `valid_until`; for all sites, a
                             region, or chosen sites. 201 with the bulletin; 422 names the field.
    GET  /api/v1/bulletins   (any user) newest first, each with per-site deliveries (receipts)
    GET  /api/v1/audit       (any user) who wrote which bulletin, who acknowledged which report

A bulletin travels in the hub's 200 reply to each target site's next batch (`reply_notices`,
called by the ingest route), signed with that site's key (edge_server/uplink/notices.py), and is
repeated in every reply until the site's `receipt` message arrives. Sites exchange at least every
minute (status_interval_s), so a bulletin reaches a site with a working link within about a
minute; a site without a link gets it when the link is back, while it is still valid.
Texts are kept as typed: HTML in them is shown as text by the pages (textContent), never run.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, ValidationError

from edge_server.hub.auth import HubError, User, require_operator
from edge_server.hub.bulletins_store import HubNotices
from edge_server.hub.sql import SqliteDatabase
from edge_server.hub.store import HubStore
from edge_server.uplink.notices import TEXT_MAX, TITLE_MAX, sign_notice
from edge_server.uplink.protocol import ReceiptBody, error_text, iso, parse_iso

router = APIRouter(prefix="/api/v1", tags=["bulletins"])

# How long a bulletin may be valid, and how far ahead it may start: a crisis message older than
# a month is not news; an operator who means longer writes it again.
MAX_VALID = timedelta(days=30)
DEFAULT_VALID_HOURS = 24.0


class BulletinRequest(BaseModel):
    """Types only: the limits are checked by hand to say what to do (`_check`)."""

    model_config = ConfigDict(extra="forbid")
    title_nl: str
    text_nl: str
    title_en: str | None = None
    text_en: str | None = None
    valid_from: str | None = None  # ISO 8601 with a zone; default now
    valid_until: str | None = None  # ISO 8601 with a zone; or valid_hours
    valid_hours: float | None = None
    target: Literal["all", "region", "sites"] = "all"
    region: str | None = None
    sites: list[str] | None = None


def open_notices(store: HubStore) -> HubNotices:
    """The notices beside the hub's data (built by create_app): crisis.sqlite next to
    hub.sqlite, or the hub's PostgreSQL database, which every instance shares."""
    if isinstance(store.db, SqliteDatabase):
        return HubNotices.in_folder(store.data_dir)
    return HubNotices(store.db)


def _notices(request: Request) -> HubNotices:
    notices: HubNotices = request.app.state.notices
    return notices


def _invalid(message: str) -> HubError:
    return HubError(422, "invalid", message)


def _text(value: str | None, field: str, limit: int, required: bool) -> str | None:
    text = (value or "").strip()
    if not text:
        if required:
            raise _invalid(f"{field}: empty; a bulletin needs a Dutch title and text")
        return None
    if len(text) > limit:
        raise _invalid(
            f"{field}: {len(text)} characters; at most {limit} (what a kiosk shows readable "
            "across a room on one screen): shorten it, or split it over two bulletins"
        )
    return text


def _time(value: str, field: str) -> datetime:
    try:
        return parse_iso(value)
    except ValueError as exc:
        raise _invalid(f"{field}: {exc}; write ISO 8601 with a zone, e.g. "
                       "2026-03-01T18:00:00+01:00") from exc


def _validity(req: BulletinRequest, now: datetime) -> tuple[datetime, datetime]:
    start = now if req.valid_from is None else _time(req.valid_from, "valid_from")
    if start > now + MAX_VALID:
        raise _invalid(f"valid_from: more than {MAX_VALID.days} days ahead")
    if req.valid_until is not None and req.valid_hours is not None:
        raise _invalid("valid_until, valid_hours: give one of the two")
    if req.valid_until is not None:
        end = _time(req.valid_until, "valid_until")
    else:
        hours = DEFAULT_VALID_HOURS if req.valid_hours is None else req.valid_hours
        if not 0 < hours <= MAX_VALID.total_seconds() / 3600:
            raise _invalid(f"valid_hours: {hours:g}; use more than 0 and at most "
                           f"{MAX_VALID.total_seconds() / 3600:g} hours")
        end = start + timedelta(hours=hours)
    if end <= max(start, now):
        raise _invalid("valid_until: not after valid_from and now: the bulletin would never show")
    if end - start > MAX_VALID:
        raise _invalid(f"valid_until: more than {MAX_VALID.days} days after valid_from")
    return start, end


def _targets(req: BulletinRequest, store: HubStore) -> tuple[dict[str, Any], list[str]]:
    sites = store.sites()
    if req.target == "all":
        if not sites:
            raise _invalid("target: no site is registered at this hub yet")
        return {"all": True}, [s["site_id"] for s in sites]
    if req.target == "region":
        region = (req.region or "").strip()
        found = [s["site_id"] for s in sites if s["region"].casefold() == region.casefold()]
        if not region or not found:
            known = sorted({s["region"] for s in sites if s["region"]})
            raise _invalid(f"region: {region!r} is no site's region at this hub (known: "
                           f"{', '.join(known) or 'none'}; set one with `nsp-edge hub set-site "
                           "ID --region NAME`)")
        return {"region": region}, found
    wanted = sorted({s.strip() for s in req.sites or [] if s.strip()})
    known_ids = {s["site_id"] for s in sites}
    unknown = [s for s in wanted if s not in known_ids]
    if not wanted or unknown:
        raise _invalid("sites: " + (f"not registered: {', '.join(unknown)}" if unknown
                                    else "choose at least one site"))
    return {"sites": wanted}, wanted


@router.post("/bulletins", status_code=201)
async def write_bulletin(request: Request, who: User) -> JSONResponse:
    name = require_operator(who, "writing a bulletin")
    try:
        req = BulletinRequest.model_validate(await request.json())
    except ValidationError as exc:
        raise _invalid(error_text(exc)) from exc
    except ValueError as exc:
        raise HubError(400, "bad_json", f"body is not JSON: {exc}") from exc
    now = request.app.state.clock.now()
    doc: dict[str, Any] = {"id": str(uuid.uuid4())}
    doc["title_nl"] = _text(req.title_nl, "title_nl", TITLE_MAX, True)
    doc["text_nl"] = _text(req.text_nl, "text_nl", TEXT_MAX, True)
    doc["title_en"] = _text(req.title_en, "title_en", TITLE_MAX, False)
    doc["text_en"] = _text(req.text_en, "text_en", TEXT_MAX, False)
    if (doc["title_en"] is None) != (doc["text_en"] is None):
        raise _invalid("title_en, text_en: give both English fields or neither")
    start, end = _validity(req, now)
    doc |= {"valid_from": iso(start), "valid_until": iso(end), "issued_at": iso(now),
            "issued_by": name}
    target, site_ids = _targets(req, request.app.state.store)
    _notices(request).add_bulletin(doc, target, site_ids, name, now)
    return JSONResponse(doc | {"target": target, "sites": site_ids}, status_code=201)


@router.get("/bulletins")
async def list_bulletins(request: Request, _user: User, limit: int = 100) -> dict[str, Any]:
    if not 1 <= limit <= 1000:
        raise _invalid(f"limit {limit}: use 1 to 1000")
    return {"now": iso(request.app.state.clock.now()),
            "bulletins": _notices(request).bulletins(limit)}


@router.get("/audit")
async def audit_log(request: Request, _user: User, limit: int = 200) -> dict[str, Any]:
    if not 1 <= limit <= 10_000:
        raise _invalid(f"limit {limit}: use 1 to 10000")
    return {"entries": _notices(request).audit(limit)}


def reply_notices(notices: HubNotices, now: datetime, site_id: str, key: bytes,
                  messages: list[dict[str, Any]]) -> dict[str, list[dict[str, str]]]:
    """The ingest reply's notices for this site, after taking the batch's receipts: the
    bulletins and report acknowledgements it has not confirmed yet, each signed with `key`
    (the key this very request was signed with: during a key rotation, the one the site has)."""
    for m in messages:
        if m["kind"] == "receipt":
            r = ReceiptBody.model_validate(m["body"])
            notices.receipt(site_id, r.of, r.id, r.received_at, now)
    bulletins = [sign_notice(key, site_id, {"type": "bulletin", "site_id": site_id} | doc)
                 for doc in notices.pending_bulletins(site_id, now)]
    acks = [sign_notice(key, site_id, {"type": "report_ack", "site_id": site_id} | a)
            for a in notices.pending_report_acks(site_id)]
    return {"bulletins": bulletins, "report_acks": acks}
