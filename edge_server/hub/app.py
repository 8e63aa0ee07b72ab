"""The C-NSP hub's HTTP API and readiness board.

    app = create_app(store, clock, HubSettings())

Ingest (sites, HMAC-signed): POST /api/v1/ingest, POST /api/v1/ingest-compact.
Read (operators, `Authorization: Bearer TOKEN`): GET /api/v1/sites, /api/v1/sites/{id},
/api/v1/alerts?open=1&limit=N,
/api/v1/gentests?from=DAY&to=DAY[&site=ID][&format=csv[&sep=semicolon]] (the generator-test
register); POST /api/v1/alerts/{site}/{alert_id}/ack (operator or admin).
Every message body is checked against its kind's model (edge_server/uplink/protocol.py, the
schemas in docs/schemas/) before anything is stored: 422 naming `messages.N.body.<field>`.
A stored row that does not pass is shown as "unreadable data" (logged), never a 500 for the region.
Any unexpected error: a logged 500 with an error id (CatchAll). GET /openapi.json: the API.
GET / serves the board (static HTML+JS from edge_server/hub/static; no CDN).
Every refusal is JSON `{"error": "...", "code": "..."}` and stores nothing.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from importlib import resources
from typing import Annotated, Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.concurrency import run_in_threadpool
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge_server.clock import Clock
from edge_server.hub import bulletins, fuel_round, metrics, reports
from edge_server.hub.auth import HubError, User
from edge_server.hub.compact_ingest import CompactRefused, ingest_compact_frame
from edge_server.hub.gentests import SEPARATORS, register, register_page, site_gentest, to_csv
from edge_server.hub.sql import SqliteDatabase, StoreUnavailable
from edge_server.hub.store import HubStore, SiteKeys
from edge_server.uplink.protocol import (
    HEADER_HUB_TIME,
    HEADER_SIGNATURE,
    HEADER_SITE,
    HEADER_TIMESTAMP,
    INGEST_COMPACT_PATH,
    INGEST_PATH,
    KINDS,
    MAX_JSON_DEPTH,
    SITE_ID_PATTERN,
    TIMESTAMP_WINDOW_S,
    AlertBody,
    Batch,
    GentestBody,
    StatusBody,
    body_errors,
    body_model,
    error_text,
    iso,
    json_problem,
    parse_iso,
    verify_signature,
)

log = logging.getLogger(__name__)
_SITE_ID = re.compile(SITE_ID_PATTERN.strip("^$"))
# A unix time in seconds has 10 digits until 2286; 12 bound the int() the skew check makes.
_UNIX_SECONDS = re.compile(r"[0-9]{1,12}")
_STATIC_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")


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
    # A site whose status time is further than this from the hub's clock when it arrives is
    # flagged ("clock off"). Above the edge's longest status interval (15 min) plus its longest
    # back-off (5 min), so a status queued during a short outage is not flagged.
    clock_off_min: Annotated[float, Field(gt=0, le=10080)] = 30.0
    # The register without `from`: this many days back from `to`.
    register_default_days: Annotated[int, Field(ge=1, le=3660)] = 365


def _static(name: str) -> bytes:
    return resources.files("edge_server.hub").joinpath("static", name).read_bytes()


_CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
}


def create_app(store: HubStore, clock: Clock, settings: HubSettings | None = None) -> FastAPI:
    cfg = settings or HubSettings()
    # The OpenAPI document at the same place as the edge's (/openapi.json); no docs pages (they
    # would load scripts from a CDN).
    app = FastAPI(
        title="NSP C-NSP hub",
        description="The receiving end of the NSP uplink (docs/uplink-protocol.md).",
        docs_url=None,
        redoc_url=None,
        # FastAPI's built-in OpenTelemetry is off: the hub exports Prometheus /metrics, and
        # the check for a configured tracer per request was 5 % of the ingest's CPU (py-spy).
        # (An older FastAPI keeps the unknown keyword in app.extra.)
        telemetry={"tracing": False, "metrics": False, "logs": False},
    )
    app.add_middleware(CatchAll)
    app.state.store = store
    app.state.clock = clock
    # Bulletins to the sites and their emergency reports: routers in their own modules.
    app.state.notices = bulletins.open_notices(store)
    app.include_router(bulletins.router)
    app.include_router(reports.router)
    app.include_router(fuel_round.router)
    metrics.install(app, cfg)  # GET /metrics and the ingest counters (hub/metrics.py)

    @app.exception_handler(HubError)
    async def _hub_error(_request: Request, exc: HubError) -> JSONResponse:
        return JSONResponse(
            {"error": exc.message, "code": exc.code}, status_code=exc.status, headers=exc.headers
        )

    @app.exception_handler(StoreUnavailable)
    async def _store_down(_request: Request, exc: StoreUnavailable) -> JSONResponse:
        # The database is down or failed mid-transaction: nothing of this request was
        # committed. 503 + Retry-After: the site keeps the batch and sends it again.
        log.error("hub: database unavailable: %s", exc)
        return JSONResponse(
            {"error": "the hub's database is not reachable; nothing was stored, send again",
             "code": "store_unavailable"},
            status_code=503, headers={"Retry-After": "5"},
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
        ok = _SITE_ID.fullmatch(site_id) is not None
        keys = store.site_keys(site_id, clock.now()) if ok else None
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
        """The signature first: until it matches, the timestamp is only checked for its form
        (ASCII digits), so an unsigned request learns nothing and costs no arithmetic."""
        site_id, keys = site_keys(request)
        ts_text = request.headers.get(HEADER_TIMESTAMP, "")
        if _UNIX_SECONDS.fullmatch(ts_text) is None:
            raise HubError(
                401, "bad_timestamp", f"{HEADER_TIMESTAMP}: unix seconds required (1-12 digits)"
            )
        header = request.headers.get(HEADER_SIGNATURE, "")
        key = signed_with(site_id, keys, lambda k: verify_signature(k, ts_text, body, header))
        skew = int(ts_text) - clock.now().timestamp()
        if abs(skew) > cfg.timestamp_window_s:
            raise HubError(
                401,
                "stale_timestamp",
                f"{HEADER_TIMESTAMP} is {skew:+.0f} s from the hub's clock "
                f"(window ±{cfg.timestamp_window_s} s): check the site's clock",
                {HEADER_HUB_TIME: str(int(clock.now().timestamp()))},
            )
        return site_id, key

    on_sqlite = isinstance(store.db, SqliteDatabase)

    @app.post(INGEST_PATH, openapi_extra=_INGEST_DOC)
    async def ingest(request: Request) -> JSONResponse:
        body = await read_limited(request)
        if on_sqlite:
            # On the loop: the checks, the reads (microseconds on SQLite) and the group's
            # statements; only the fsync waits in a thread (HubStore.ingest_async).
            site_id, key, messages = check_batch(request, body)
            held = await store.ingest_async(site_id, messages, clock.now())
            return JSONResponse(reply_to(site_id, key, held, messages))
        # PostgreSQL: checked and stored in a worker thread (psycopg blocks on the network);
        # concurrent ingests are committed together (HubStore.ingest, group commit).
        return JSONResponse(await run_in_threadpool(check_store_reply, request, body))

    def check_store_reply(request: Request, body: bytes) -> dict[str, Any]:
        site_id, key, messages = check_batch(request, body)
        return reply_to(site_id, key, store.ingest(site_id, messages, clock.now()), messages)

    def check_batch(request: Request, body: bytes) -> tuple[str, bytes, list[dict[str, Any]]]:
        site_id, key = authenticate_site(request, body)
        try:
            doc = json.loads(body)
        except (ValueError, UnicodeDecodeError) as exc:
            raise HubError(400, "bad_json", f"body is not JSON: {exc}") from exc
        except RecursionError as exc:
            raise HubError(400, "bad_json", f"nested deeper than {MAX_JSON_DEPTH} levels") from exc
        problem = json_problem(doc)
        if problem is not None:
            where, what = problem
            status, code = (400, "bad_json") if "nested" in what else (422, "invalid")
            raise HubError(status, code, f"{where or 'body'}: {what}")
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
        # Every body against its kind's model before anything is stored; each error starts
        # `messages.N.body.`: the sender isolates the culprit from it and dead-letters it.
        refused = body_errors(batch)
        if refused is not None:
            raise HubError(422, "invalid", refused)
        ids = {m.id for m in batch.messages}
        if len(ids) != len(batch.messages):
            raise HubError(422, "duplicate_id", "a message id occurs twice in one batch")
        messages = [
            {"id": str(m.id), "kind": m.kind, "at": m.at, "body": m.body} for m in batch.messages
        ]
        return site_id, key, messages

    def reply_to(site_id: str, key: bytes, held: list[str], messages: list[dict[str, Any]]
                 ) -> dict[str, Any]:
        reply: dict[str, Any] = {"held": held, "acks": store.pending_acks(site_id)}
        # Signed bulletins and report acknowledgements for this site (hub/bulletins.py).
        reply |= bulletins.reply_notices(app.state.notices, clock.now(), site_id, key, messages)
        return reply

    @app.post(INGEST_COMPACT_PATH, openapi_extra=_COMPACT_DOC)
    async def ingest_compact(request: Request) -> JSONResponse:
        """A status or alert frame (24 or 28..44 bytes), checked as the radio receiver checks
        it: edge_server/hub/compact_ingest.py."""
        frame = await read_limited(request)
        site_id, _keys = site_keys(request)
        try:
            got = ingest_compact_frame(
                store, clock.now(), site_id, frame, cfg.timestamp_window_s, via="compact"
            )
        except CompactRefused as exc:
            raise HubError(exc.status, exc.code, exc.message) from exc
        return JSONResponse({"held": [got.message_id], "acks": store.pending_acks(site_id)})

    # -- operators ------------------------------------------------------------------------------

    def present(site: dict[str, Any]) -> dict[str, Any]:
        """One site for the board; a stored body that is not what its schema says (stored by an
        older hub, or damaged) is left out and named in `unreadable` (and logged), never a 500
        for every operator of the region."""
        try:
            out = present_checked(site)
            json.dumps(out, allow_nan=False)  # what the reply will need
            return out
        except Exception:
            log.exception("hub: site %s cannot be shown: unreadable data", site.get("site_id"))
            return _unreadable_site(str(site.get("site_id")), site.get("last_contact"))

    def readable(site: dict[str, Any], name: str, model: type[BaseModel]) -> Any:
        value = site[name]
        if value is None:
            return None
        try:
            model.model_validate(value)
            if json_problem(value) is not None:
                raise ValueError(json_problem(value))
        except (ValidationError, ValueError) as exc:
            log.error("hub: site %s: the stored %s is unreadable data, not shown: %s",
                      site["site_id"], name, error_text(exc)[:300])
            site.setdefault("unreadable", []).append(name)
            return None
        return value

    def present_checked(site: dict[str, Any]) -> dict[str, Any]:
        now = clock.now()
        site = dict(site)
        status = readable(site, "status", StatusBody) or {}
        site["last_gentest"] = readable(site, "last_gentest", GentestBody)
        site["commissioning"] = readable(site, "commissioning", body_model("commissioning"))
        last = site["last_contact"]
        stale = last is None or now - parse_iso(last) > timedelta(minutes=cfg.stale_after_min)
        readiness = "UNKNOWN" if stale else status.get("readiness", "UNKNOWN")
        skew = _clock_skew_s(site["status_at"], site.get("status_received_at"))
        clock_off = skew is not None and abs(skew) > cfg.clock_off_min * 60
        reasons = list(status.get("reasons", []))
        refuel = status.get("refuel_before")
        if clock_off and skew is not None:
            reasons.append(_clock_reason(skew))
            # The site's refuel time is its clock plus its autonomy: from the hub's clock instead.
            hours = status.get("fuel_autonomy_h")
            received = site.get("status_received_at")
            if isinstance(hours, int | float) and isinstance(received, str):
                refuel = iso(parse_iso(received) + timedelta(hours=hours))
        return {
            "site_id": site["site_id"],
            # From the registration (`hub add-site --name/--municipality/--region`, `set-site`).
            "name": site.get("name", ""),
            "municipality": site.get("municipality", ""),
            "region": site.get("region", ""),
            "lat": site.get("lat"),  # the board's map (`hub add-site --at LAT,LON`)
            "lon": site.get("lon"),
            "readiness": readiness,
            "reported_readiness": status.get("readiness"),
            "stale": stale,
            "last_contact": last,
            "no_contact_since": last if stale else None,
            "status_at": site["status_at"],
            # When the hub received that status (its clock) and how far the site's clock was
            # from it then; clock_off: more than clock_off_min (shown as a reason).
            "status_received_at": site.get("status_received_at"),
            "clock_skew_s": None if skew is None else round(skew),
            "clock_off": clock_off,
            "reasons": reasons,
            "fuel_autonomy_h": status.get("fuel_autonomy_h"),
            "refuel_before": refuel,
            "fridge_temp_c": status.get("fridge_temp_c"),
            "occupancy": status.get("occupancy"),
            "mains_present": status.get("mains_present"),
            "gen_running": status.get("gen_running"),
            "open_alerts": site["open_alerts_hub"],
            "gentest": site_gentest(
                now, cfg, site["last_gentest"], site["last_passed_gentest_at"], site["site_id"]
            ),
            "commissioning": site["commissioning"],
            "unreadable": site.get("unreadable", []),
            # The backup radio (docs/radio.md): when a frame last came by radio, and which link
            # the newest contact came by ("radio" while only the radio reaches the hub).
            "last_radio_at": site.get("last_radio_at"),
            "link": None if last is None else (
                "radio" if site.get("last_radio_at") == last else "ip"
            ),
        } | ({} if not site.get("unreadable") else {"reasons": [_UNREADABLE_REASON]})

    def page_size(limit: int | None, default: int) -> int:
        if limit is None:
            return default
        if not 1 <= limit <= cfg.max_page:
            raise HubError(422, "invalid", f"limit {limit}: use 1 to {cfg.max_page}")
        return limit

    @app.get("/api/v1/sites")
    async def list_sites(
        _user: User, limit: int | None = None, cursor: str | None = None
    ) -> dict[str, Any]:
        """Sites in id order, `limit` at a time (default: max_page, so a region's board gets
        every site at once); `next` continues, null on the last page; `total` counts all."""
        size = page_size(limit, cfg.max_page)
        after = None if cursor is None else str(_uncursor(cursor, "sites"))
        found = store.sites(after=after, limit=size + 1)
        more = len(found) > size
        sites = [present(s) for s in found[:size]]
        return {
            "now": iso(clock.now()),
            "stale_after_min": cfg.stale_after_min,
            "clock_off_min": cfg.clock_off_min,
            "sites": sites,
            "total": store.count_sites(),
            "next": _cursor("sites", sites[-1]["site_id"]) if more and sites else None,
        }

    @app.get("/api/v1/sites/{site_id}")
    async def get_site(site_id: str, _user: User) -> dict[str, Any]:
        site = store.site(site_id)
        if site is None:
            raise HubError(404, "unknown_site", f"site {site_id!r} is not registered")
        out = present(site)
        alerts, total, more = store.alerts_page(False, cfg.default_page, site_id)
        out["alerts"] = [_readable_alert(a) for a in alerts]
        # The rest: GET /api/v1/alerts?site=ID&cursor=alerts_next
        out["alerts_total"] = total
        out["alerts_next"] = None if more is None else _cursor("alerts", more)
        return out

    @app.get("/api/v1/alerts")
    async def list_alerts(
        _user: User,
        open: int = 0,
        limit: int | None = None,
        cursor: str | None = None,
        site: str | None = None,
    ) -> dict[str, Any]:
        """Alerts, newest state received first, `limit` at a time; `total` counts every alert
        that matches, `next` (null on the last page) is the cursor of the next page."""
        size = page_size(limit, cfg.default_page)
        before = None if cursor is None else _uncursor(cursor, "alerts")
        if before is not None and not isinstance(before, int):
            raise HubError(422, "invalid", "cursor: not a cursor of this list")
        alerts, total, more = store.alerts_page(bool(open), size, site, before)
        return {
            "alerts": [_readable_alert(a) for a in alerts],
            "total": total,
            "next": None if more is None else _cursor("alerts", more),
        }

    @app.get("/api/v1/gentests")
    async def gentest_register(
        _user: User,
        request: Request,
        site: str | None = None,
        format: str = "json",
        sep: str = "comma",
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Response:
        """One row per generator test that ended in [from, to] (whole days, Europe/Amsterdam).
        JSON comes in pages (`limit`, `cursor`, `total`, `next`); CSV is always the whole
        register (a download for the municipality's file)."""
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
        if format == "csv":
            rows = register(store, from_day, to_day, site)
            name = f"generatortests_{from_day}_{to_day}" + (f"_{site}" if site else "") + ".csv"
            return Response(
                to_csv(rows, sep),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{name}"'},
            )
        size = page_size(limit, cfg.default_page)
        after = None if cursor is None else _uncursor(cursor, "gentests")
        if after is not None and not (
            isinstance(after, list) and len(after) == 3 and all(isinstance(x, str) for x in after)
        ):
            raise HubError(422, "invalid", "cursor: not a cursor of this list")
        rows, total, more = register_page(
            store, from_day, to_day, site, None if after is None else tuple(after), size
        )
        return JSONResponse(
            {
                "from": str(from_day),
                "to": str(to_day),
                "site": site,
                "tests": rows,
                "total": total,
                "next": None if more is None else _cursor("gentests", list(more)),
            }
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
        # Names of shipped files only: no "/", "..", NUL or other bytes a file system refuses.
        if _STATIC_NAME.fullmatch(name) is None or suffix not in _CONTENT_TYPES:
            raise HubError(404, "not_found", name)
        try:
            data = _static(name)
        except FileNotFoundError as exc:
            raise HubError(404, "not_found", name) from exc
        return Response(data, media_type=_CONTENT_TYPES[suffix])

    return app


# The signed endpoints read their bodies themselves (the MAC covers the raw bytes), so FastAPI
# cannot describe them: this is what /openapi.json says (the full schemas: docs/schemas/).
_SIGNED_HEADERS = [
    {"name": name, "in": "header", "required": True, "schema": {"type": "string"}}
    for name in (HEADER_SITE, HEADER_TIMESTAMP, HEADER_SIGNATURE)
]
_INGEST_DOC: dict[str, Any] = {
    "parameters": _SIGNED_HEADERS,
    "requestBody": {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["site_id", "batch_id", "sent_at", "messages"],
                    "properties": {
                        "site_id": {"type": "string"},
                        "batch_id": {"type": "string", "format": "uuid"},
                        "sent_at": {"type": "string", "format": "date-time"},
                        "messages": {
                            "type": "array",
                            "items": {
                                "type": "object",
                                "required": ["id", "kind", "at", "body"],
                                "properties": {
                                    "id": {"type": "string", "format": "uuid"},
                                    "kind": {"enum": list(KINDS)},
                                    "at": {"type": "string", "format": "date-time"},
                                    "body": {"type": "object"},
                                },
                            },
                        },
                    },
                }
            }
        },
    },
}
_COMPACT_DOC: dict[str, Any] = {
    "parameters": _SIGNED_HEADERS[:1],
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
    },
}

_UNREADABLE_REASON = {
    "code": "UNREADABLE_DATA",
    "text_en": "unreadable data at the hub (its log says which)",
    "text_nl": "onleesbare gegevens bij de hub (het logboek zegt welke)",
}


def _readable_alert(row: dict[str, Any]) -> dict[str, Any]:
    """An alert row whose stored body is not an alert body (an older hub stored anything) keeps
    its place in the list with its body replaced by the words "unreadable data" (logged)."""
    try:
        AlertBody.model_validate(row["body"])
        problem = json_problem(row)
        if problem is not None:
            raise ValueError(f"{problem[0]}: {problem[1]}")
    except (ValidationError, ValueError) as exc:
        log.error("hub: alert %s/%s: stored body is unreadable data, not shown: %s",
                  row["site_id"], row["alert_id"], error_text(exc)[:300])
        return row | {
            "severity": row["severity"] if isinstance(row["severity"], str) else None,
            "code": row["code"] if isinstance(row["code"], str) else None,
            "body": {"unreadable": "unreadable data"},
        }
    return row


def _clock_skew_s(status_at: Any, received_at: Any) -> float | None:
    """The site's clock minus the hub's when its newest status arrived (None: unknown, e.g. a
    status stored before the hub kept its receive time)."""
    if not isinstance(status_at, str) or not isinstance(received_at, str):
        return None
    try:
        return (parse_iso(status_at) - parse_iso(received_at)).total_seconds()
    except ValueError:
        return None


def _clock_reason(skew_s: float) -> dict[str, str]:
    minutes = round(abs(skew_s) / 60)
    en = "ahead" if skew_s > 0 else "behind"
    nl = "voor" if skew_s > 0 else "achter"
    return {
        "code": "SITE_CLOCK_OFF",
        "text_en": f"site clock {minutes} min {en}: times shown are the hub's",
        "text_nl": f"klok van de locatie loopt {minutes} min {nl}: getoonde tijden zijn van de hub",
    }


def _unreadable_site(site_id: str, last_contact: Any) -> dict[str, Any]:
    return {
        "site_id": site_id,
        "readiness": "UNKNOWN",
        "reported_readiness": None,
        "stale": True,
        "last_contact": last_contact if isinstance(last_contact, str) else None,
        "no_contact_since": None,
        "status_at": None,
        "status_received_at": None,
        "clock_skew_s": None,
        "clock_off": False,
        "reasons": [_UNREADABLE_REASON],
        "fuel_autonomy_h": None,
        "refuel_before": None,
        "fridge_temp_c": None,
        "occupancy": None,
        "mains_present": None,
        "gen_running": None,
        "open_alerts": 0,
        "gentest": None,
        "commissioning": None,
        "unreadable": ["site"],
    }


class CatchAll:
    """Any error no handler expected: a 500 with an error id, logged with its traceback under
    that id (an operator quotes the id; the log has the rest), never a bare traceback page."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def watch(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, watch)
        except Exception:
            error_id = uuid.uuid4().hex[:12]
            log.exception(
                "hub: unexpected error %s in %s %s", error_id, scope.get("method"),
                scope.get("path"),
            )
            if started:  # half a reply went out: nothing better to do than close it
                raise
            reply = JSONResponse(
                {
                    "error": f"internal error {error_id}: the hub's log has the details",
                    "code": "internal",
                    "error_id": error_id,
                },
                status_code=500,
            )
            await reply(scope, receive, send)


def _cursor(kind: str, value: Any) -> str:
    """An opaque page cursor: the list it belongs to and the key of the last row shown."""
    raw = json.dumps([kind, value], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def _uncursor(text: str, kind: str) -> Any:
    bad = HubError(
        422, "invalid", "cursor: not a cursor of this list (use the `next` of the page before)"
    )
    if len(text) > 400:
        raise bad
    try:
        doc = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise bad from exc
    if not (isinstance(doc, list) and len(doc) == 2 and doc[0] == kind):
        raise bad
    value = doc[1]
    if isinstance(value, int) and not -(2**63) <= value < 2**63:  # SQLite's integer range
        raise bad
    return value


def _day(text: str | None, name: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise HubError(422, "invalid", f"{name}: {text!r} is not a date YYYY-MM-DD") from exc


