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

import json
import logging
import re
import uuid
from collections.abc import Callable
from datetime import date, timedelta
from importlib import resources
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge_server.clock import Clock
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
_COMPACT_NS = uuid.UUID("6f1d8a52-4a0e-4d0c-9a53-0c2b7e0f1e55")
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
    # The OpenAPI document at the same place as the edge's (/openapi.json); no docs pages (they
    # would load scripts from a CDN).
    app = FastAPI(
        title="NSP C-NSP hub",
        description="The receiving end of the NSP uplink (docs/uplink-protocol.md).",
        docs_url=None,
        redoc_url=None,
    )
    app.add_middleware(CatchAll)
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

    @app.post(INGEST_PATH)
    async def ingest(request: Request) -> JSONResponse:
        body = await read_limited(request)
        site_id, _key = authenticate_site(request, body)
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
            "unreadable": site.get("unreadable", []),
        } | ({} if not site.get("unreadable") else {"reasons": [_UNREADABLE_REASON]})

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
        out["alerts"] = [_readable_alert(a) for a in store.alerts(False, cfg.default_page, site_id)]
        return out

    @app.get("/api/v1/alerts")
    async def list_alerts(_user: User, open: int = 0, limit: int | None = None) -> dict[str, Any]:
        page = min(cfg.max_page, max(1, limit or cfg.default_page))
        return {"alerts": [_readable_alert(a) for a in store.alerts(bool(open), page)]}

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
        # Names of shipped files only: no "/", "..", NUL or other bytes a file system refuses.
        if _STATIC_NAME.fullmatch(name) is None or suffix not in _CONTENT_TYPES:
            raise HubError(404, "not_found", name)
        try:
            data = _static(name)
        except FileNotFoundError as exc:
            raise HubError(404, "not_found", name) from exc
        return Response(data, media_type=_CONTENT_TYPES[suffix])

    return app


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


def _unreadable_site(site_id: str, last_contact: Any) -> dict[str, Any]:
    return {
        "site_id": site_id,
        "readiness": "UNKNOWN",
        "reported_readiness": None,
        "stale": True,
        "last_contact": last_contact if isinstance(last_contact, str) else None,
        "no_contact_since": None,
        "status_at": None,
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


def _day(text: str | None, name: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise HubError(422, "invalid", f"{name}: {text!r} is not a date YYYY-MM-DD") from exc


