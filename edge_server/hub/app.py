"""The C-NSP hub's HTTP API and readiness board.

    app = create_app(store, clock, HubSettings())

Ingest (sites, HMAC-signed): POST /api/v1/ingest, POST /api/v1/ingest-compact.
Read (operators, `Authorization: Bearer TOKEN`): GET /api/v1/sites, /api/v1/sites/{id},
/api/v1/alerts?open=1&limit=N,
/api/v1/gentests?from=DAY&to=DAY[&site=ID][&format=csv[&sep=semicolon]] (the generator-test
register); POST /api/v1/alerts/{site}/{alert_id}/ack (operator or admin).
Bodies of kind "commissioning" are checked against docs/schemas/commissioning-body.json (422).
GET / serves the board (static HTML+JS from edge_server/hub/static; no CDN).
Every refusal is JSON `{"error": "...", "code": "..."}` and stores nothing.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from importlib import resources
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from edge_server.clock import Clock
from edge_server.commission.record import CommissioningBody
from edge_server.hub.gentests import SEPARATORS, register, site_gentest, to_csv
from edge_server.hub.store import HubStore, SiteKeys
from edge_server.uplink.compact import FRAME_BYTES, CompactError, decode_status
from edge_server.uplink.protocol import (
    HEADER_HUB_TIME,
    HEADER_SIGNATURE,
    HEADER_SITE,
    HEADER_TIMESTAMP,
    INGEST_COMPACT_PATH,
    INGEST_PATH,
    TIMESTAMP_WINDOW_S,
    Batch,
    error_text,
    iso,
    parse_iso,
    verify_signature,
)

log = logging.getLogger(__name__)
_COMPACT_NS = uuid.UUID("6f1d8a52-4a0e-4d0c-9a53-0c2b7e0f1e55")


class HubSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # A site silent for longer than this shows as UNKNOWN ("no contact since ...").
    stale_after_min: Annotated[float, Field(gt=0, le=10080)] = 15.0
    max_body_bytes: Annotated[int, Field(ge=1024)] = 1_000_000
    max_batch_messages: Annotated[int, Field(ge=1)] = 500
    timestamp_window_s: Annotated[int, Field(ge=1, le=3600)] = TIMESTAMP_WINDOW_S
    default_page: Annotated[int, Field(ge=1)] = 500
    max_page: Annotated[int, Field(ge=1)] = 10_000
    # The monthly generator-test window, as [rules] at the sites (NFPA 110: 20-40 days apart):
    # the board judges "overdue" with the edge's own schedule function and these numbers.
    gentest_min_days: Annotated[float, Field(ge=0)] = 20.0
    gentest_max_days: Annotated[float, Field(gt=0)] = 40.0
    # The register without `from`: this many days back from `to`.
    register_default_days: Annotated[int, Field(ge=1, le=3660)] = 365


class HubError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def _static(name: str) -> bytes:
    return resources.files("edge_server.hub").joinpath("static", name).read_bytes()


_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
}


def _user(request: Request) -> tuple[str, str]:
    """(name, role) of the operator whose bearer token came with the request; else 401."""
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HubError(401, "no_token", "Authorization: Bearer TOKEN required")
    store: HubStore = request.app.state.store
    found = store.user_for_token(token.strip())
    if found is None:
        raise HubError(401, "bad_token", "token not recognised")
    return found


User = Annotated[tuple[str, str], Depends(_user)]


def create_app(store: HubStore, clock: Clock, settings: HubSettings | None = None) -> FastAPI:
    cfg = settings or HubSettings()
    app = FastAPI(title="NSP C-NSP hub", docs_url=None, redoc_url=None, openapi_url=None)
    app.state.store = store
    app.state.clock = clock

    @app.exception_handler(HubError)
    async def _hub_error(_request: Request, exc: HubError) -> JSONResponse:
        return JSONResponse(
            {"error": exc.message, "code": exc.code}, status_code=exc.status, headers=exc.headers
        )

    async def read_limited(request: Request) -> bytes:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > cfg.max_body_bytes:
            raise HubError(413, "too_large", f"body is {length} bytes; limit {cfg.max_body_bytes}")
        chunks: list[bytes] = []
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > cfg.max_body_bytes:
                raise HubError(413, "too_large", f"body exceeds {cfg.max_body_bytes} bytes")
            chunks.append(chunk)
        return b"".join(chunks)

    def site_keys(request: Request) -> tuple[str, SiteKeys]:
        site_id = request.headers.get(HEADER_SITE, "")
        keys = store.site_keys(site_id, clock.now()) if site_id else None
        if keys is None:
            raise HubError(
                401, "unknown_site", f"{HEADER_SITE}: site {site_id!r} is not registered"
            )
        return site_id, keys

    def signed_with(site_id: str, keys: SiteKeys, check: Callable[[bytes], bool]) -> bytes:
        """The key that `check` accepts: the current one, or during a rotation's grace period
        the old one. The first success with the new key retires the old key at once."""
        if keys.current is not None and check(keys.current):
            if keys.previous is not None:
                store.retire_old_key(site_id, "the site signed with its new key", keys.sealed)
            return keys.current
        if keys.previous is not None and check(keys.previous):
            return keys.previous
        if keys.current is None:
            raise HubError(
                401,
                "bad_signature",
                "the hub cannot use its stored key for this site: the C-NSP operator must "
                "re-key it (the hub's log says why)",
            )
        raise HubError(401, "bad_signature", f"{HEADER_SIGNATURE} does not match the body")

    def authenticate_site(request: Request, body: bytes) -> tuple[str, bytes]:
        site_id, keys = site_keys(request)
        ts_text = request.headers.get(HEADER_TIMESTAMP, "")
        if not ts_text.isdigit():
            raise HubError(401, "bad_timestamp", f"{HEADER_TIMESTAMP}: unix seconds required")
        skew = int(ts_text) - clock.now().timestamp()
        if abs(skew) > cfg.timestamp_window_s:
            raise HubError(
                401,
                "stale_timestamp",
                f"{HEADER_TIMESTAMP} is {skew:+.0f} s from the hub's clock "
                f"(window ±{cfg.timestamp_window_s} s): check the site's clock",
                {HEADER_HUB_TIME: str(int(clock.now().timestamp()))},
            )
        header = request.headers.get(HEADER_SIGNATURE, "")
        key = signed_with(site_id, keys, lambda k: verify_signature(k, ts_text, body, header))
        return site_id, key

    @app.post(INGEST_PATH)
    async def ingest(request: Request) -> JSONResponse:
        body = await read_limited(request)
        site_id, _key = authenticate_site(request, body)
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HubError(400, "bad_json", f"body is not JSON: {exc}") from exc
        if isinstance(doc, dict) and isinstance(doc.get("messages"), list):
            if len(doc["messages"]) > cfg.max_batch_messages:
                raise HubError(
                    413,
                    "too_many",
                    f"{len(doc['messages'])} messages; limit {cfg.max_batch_messages} per batch",
                )
        try:
            batch = Batch.model_validate(doc)
        except ValidationError as exc:
            raise HubError(422, "invalid", error_text(exc)) from exc
        if batch.site_id != site_id:
            raise HubError(422, "site_mismatch", f"site_id {batch.site_id!r} != {HEADER_SITE}")
        for i, m in enumerate(batch.messages):
            if m.kind == "commissioning":
                try:
                    CommissioningBody.model_validate(m.body)
                except ValidationError as exc:
                    # `messages.N.` first: the sender isolates the culprit from it.
                    raise HubError(422, "invalid", _prefixed(f"messages.{i}.body", exc)) from exc
        ids = {m.id for m in batch.messages}
        if len(ids) != len(batch.messages):
            raise HubError(422, "duplicate_id", "a message id occurs twice in one batch")
        messages = [
            {"id": str(m.id), "kind": m.kind, "at": m.at, "body": m.body} for m in batch.messages
        ]
        held = store.ingest(site_id, messages, clock.now())
        return JSONResponse({"held": held, "acks": store.pending_acks(site_id)})

    @app.post(INGEST_COMPACT_PATH)
    async def ingest_compact(request: Request) -> JSONResponse:
        frame = await read_limited(request)
        site_id, keys = site_keys(request)
        if len(frame) != FRAME_BYTES:
            raise HubError(400, "bad_frame", f"compact frame must be {FRAME_BYTES} bytes")

        def tag_matches(key: bytes) -> bool:
            try:
                decode_status(site_id, key, frame)
            except CompactError as exc:
                if "tag" in str(exc):
                    return False
                raise HubError(400, "bad_frame", str(exc)) from exc
            return True

        try:
            key = signed_with(site_id, keys, tag_matches)
        except HubError as exc:
            if exc.code == "bad_signature" and keys.current is not None:
                exc.message = "compact frame tag does not match (wrong key, site or tampered)"
            raise
        status = decode_status(site_id, key, frame)
        skew = status.at.timestamp() - clock.now().timestamp()
        if abs(skew) > cfg.timestamp_window_s:
            raise HubError(401, "stale_timestamp", f"frame time is {skew:+.0f} s from the hub")
        msg_id = str(uuid.uuid5(_COMPACT_NS, site_id + frame.hex()))
        message = {
            "id": msg_id,
            "kind": "status",
            "at": iso(status.at),
            "body": status.to_status_body(),
        }
        held = store.ingest(site_id, [message], clock.now())
        return JSONResponse({"held": held, "acks": store.pending_acks(site_id)})

    # -- operators ------------------------------------------------------------------------------

    def present(site: dict[str, Any]) -> dict[str, Any]:
        now = clock.now()
        status = site["status"] or {}
        last = site["last_contact"]
        stale = last is None or now - parse_iso(last) > timedelta(minutes=cfg.stale_after_min)
        readiness = "UNKNOWN" if stale else status.get("readiness", "UNKNOWN")
        return {
            "site_id": site["site_id"],
            "readiness": readiness,
            "reported_readiness": status.get("readiness"),
            "stale": stale,
            "last_contact": last,
            "no_contact_since": last if stale else None,
            "status_at": site["status_at"],
            "reasons": status.get("reasons", []),
            "fuel_autonomy_h": status.get("fuel_autonomy_h"),
            "refuel_before": status.get("refuel_before"),
            "fridge_temp_c": status.get("fridge_temp_c"),
            "occupancy": status.get("occupancy"),
            "mains_present": status.get("mains_present"),
            "gen_running": status.get("gen_running"),
            "open_alerts": site["open_alerts_hub"],
            "gentest": site_gentest(
                now, cfg, site["last_gentest"], site["last_passed_gentest_at"], site["site_id"]
            ),
            "commissioning": site["commissioning"],
        }

    @app.get("/api/v1/sites")
    async def list_sites(_user: User) -> dict[str, Any]:
        sites = [present(s) for s in store.sites()]
        return {"now": iso(clock.now()), "stale_after_min": cfg.stale_after_min, "sites": sites}

    @app.get("/api/v1/sites/{site_id}")
    async def get_site(site_id: str, _user: User) -> dict[str, Any]:
        site = store.site(site_id)
        if site is None:
            raise HubError(404, "unknown_site", f"site {site_id!r} is not registered")
        out = present(site)
        out["alerts"] = store.alerts(False, cfg.default_page, site_id)
        return out

    @app.get("/api/v1/alerts")
    async def list_alerts(_user: User, open: int = 0, limit: int | None = None) -> dict[str, Any]:
        page = min(cfg.max_page, max(1, limit or cfg.default_page))
        return {"alerts": store.alerts(bool(open), page)}

    @app.get("/api/v1/gentests")
    async def gentest_register(
        _user: User,
        request: Request,
        site: str | None = None,
        format: str = "json",
        sep: str = "comma",
    ) -> Response:
        """One row per generator test that ended in [from, to] (whole days, Europe/Amsterdam)."""
        to_day = _day(request.query_params.get("to"), "to") or clock.now().date()
        from_day = _day(request.query_params.get("from"), "from") or (
            to_day - timedelta(days=cfg.register_default_days)
        )
        if from_day > to_day:
            raise HubError(422, "invalid", f"from {from_day} is after to {to_day}")
        if format not in ("json", "csv"):
            raise HubError(422, "invalid", f"format {format!r}: use json or csv")
        if sep not in SEPARATORS:
            raise HubError(422, "invalid", f"sep {sep!r}: use comma or semicolon")
        rows = register(store, from_day, to_day, site)
        if format == "csv":
            name = f"generatortests_{from_day}_{to_day}" + (f"_{site}" if site else "") + ".csv"
            return Response(
                to_csv(rows, sep),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{name}"'},
            )
        return JSONResponse(
            {"from": str(from_day), "to": str(to_day), "site": site, "tests": rows}
        )

    @app.post("/api/v1/alerts/{site_id}/{alert_id}/ack")
    async def ack_alert(site_id: str, alert_id: str, who: User) -> dict[str, Any]:
        name, role = who
        if role not in ("operator", "admin"):
            raise HubError(403, "forbidden", "acknowledging needs the operator role")
        if not store.ack_alert(site_id, alert_id, name, clock.now()):
            raise HubError(404, "unknown_alert", f"no alert {alert_id!r} at site {site_id!r}")
        log.info("hub: alert %s/%s acknowledged by %s", site_id, alert_id, name)
        return {"site_id": site_id, "alert_id": alert_id, "acknowledged_by": name}

    @app.get("/")
    async def board() -> Response:
        return Response(_static("index.html"), media_type=_CONTENT_TYPES[".html"])

    @app.get("/static/{name}")
    async def static(name: str) -> Response:
        suffix = "." + name.rsplit(".", 1)[-1] if "." in name else ""
        if "/" in name or suffix not in _CONTENT_TYPES:
            raise HubError(404, "not_found", name)
        try:
            data = _static(name)
        except FileNotFoundError as exc:
            raise HubError(404, "not_found", name) from exc
        return Response(data, media_type=_CONTENT_TYPES[suffix])

    return app


def _day(text: str | None, name: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise HubError(422, "invalid", f"{name}: {text!r} is not a date YYYY-MM-DD") from exc


def _prefixed(where: str, exc: ValidationError) -> str:
    """A body's validation error with the message's place in front of each field."""
    parts = []
    for e in exc.errors():
        loc = ".".join([where, *(str(p) for p in e.get("loc", ()))])
        parts.append(f"{loc}: {e.get('msg', '')}")
    return "; ".join(parts)
