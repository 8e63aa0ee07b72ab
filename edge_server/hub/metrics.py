"""GET /metrics on the C-NSP hub: Prometheus text format (version 0.0.4).

    metrics.install(app, cfg)      # in create_app: the counting middleware and the route

    nsp_hub_ingest_requests_total{path,outcome}   signed posts to the two ingest paths; outcome
                                    "accepted" (200) or "refused"
    nsp_hub_ingest_messages_held_total            message ids the hub answered as held (200
                                    replies; a retried batch counts again: idempotent ids)
    nsp_hub_ingest_refusals_total{reason,status}  refusals by their JSON `code` (bad_signature,
                                    unknown_site, clock_skew, invalid, too_large, ...; "internal"
                                    for a 500, "http_<status>" for a refusal without a code)
    nsp_hub_messages_stored                       distinct messages in the store (from the
                                    database: survives restarts, one count for every instance)
    nsp_hub_sites                                 registered sites
    nsp_hub_sites_by_readiness{readiness}         as the board shows them: a silent site UNKNOWN
    nsp_hub_sites_never_contacted                 registered, nothing received yet
    nsp_hub_oldest_contact_age_seconds            hub clock minus the oldest last contact of the
                                    sites heard from at least once (0 while none)

The counters are this process's since it started (a Prometheus counter; rate() copes with a
restart). Written by hand rather than with prometheus-client, as the edge's /metrics
(edge_server/api/metrics.py): prometheus-client is no dependency of the project, and a
process-global registry would have to be reset between the test apps.

Authentication: a bearer token of any hub user, as every other read on the hub (the edge's
/metrics follows the edge's read rule; the hub's read rule is "always a token"). The board's
data is not public: give Prometheus its own user (`nsp-edge hub add-user prometheus --role
operator`) and `authorization: {credentials: TOKEN}` in its scrape config.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from datetime import timedelta
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from edge_server.hub.auth import User
from edge_server.uplink.protocol import INGEST_COMPACT_PATH, INGEST_PATH, parse_iso

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
READINESS = ("READY", "DEGRADED", "NOT_READY", "UNKNOWN")
_INGEST = {INGEST_PATH: "ingest", INGEST_COMPACT_PATH: "ingest-compact"}
_MAX_REPLY = 200_000  # bytes of an ingest reply read for counting; a longer one is not parsed

router = APIRouter(tags=["metrics"])


class IngestCounts:
    def __init__(self) -> None:
        self.requests: Counter[tuple[str, str]] = Counter()
        self.refusals: Counter[tuple[str, str]] = Counter()
        self.held = 0

    def count(self, path: str, status: int, reply: bytes) -> None:
        try:
            doc = json.loads(reply) if len(reply) <= _MAX_REPLY else None
        except ValueError:
            doc = None
        if status == 200:
            self.requests[(path, "accepted")] += 1
            if isinstance(doc, dict) and isinstance(doc.get("held"), list):
                self.held += len(doc["held"])
            return
        self.requests[(path, "refused")] += 1
        code = doc.get("code") if isinstance(doc, dict) else None
        reason = code if isinstance(code, str) and code else f"http_{status}"
        self.refusals[(reason[:40], str(status))] += 1


class CountIngest:
    """Counts every reply of the two ingest paths (outermost middleware: it sees the 500s of
    CatchAll too). Only those replies are read; every other request passes untouched."""

    def __init__(self, app: ASGIApp, counts: IngestCounts) -> None:
        self.app = app
        self.counts = counts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = _INGEST.get(scope.get("path", "")) if scope["type"] == "http" else None
        if path is None:
            await self.app(scope, receive, send)
            return
        status = 0
        chunks: list[bytes] = []

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    self.counts.count(path, status, b"".join(chunks))
            await send(message)

        await self.app(scope, receive, watch)


def install(app: FastAPI, cfg: Any) -> None:
    """The counting middleware and GET /metrics; `cfg` is the app's HubSettings."""
    app.state.ingest_counts = IngestCounts()
    app.state.metrics_stale_after = timedelta(minutes=cfg.stale_after_min)
    app.add_middleware(CountIngest, counts=app.state.ingest_counts)
    app.include_router(router)


def readiness_of(site: dict[str, Any], now: Any, stale_after: timedelta) -> str:
    """The board's readiness: UNKNOWN when silent for stale_after or the status is unreadable."""
    last = site.get("last_contact")
    try:
        if not isinstance(last, str) or now - parse_iso(last) > stale_after:
            return "UNKNOWN"
    except ValueError:
        return "UNKNOWN"
    status = site.get("status")
    value = status.get("readiness") if isinstance(status, dict) else None
    return value if value in READINESS else "UNKNOWN"


class _Text:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str,
               samples: list[tuple[dict[str, str], float]]) -> None:
        self.lines.append(f"# HELP {name} {help_text}")
        self.lines.append(f"# TYPE {name} {kind}")
        for labels, value in samples:
            text = ",".join(f'{k}="{_label(v)}"' for k, v in labels.items())
            self.lines.append(f"{name}{{{text}}} {_number(value)}" if text
                              else f"{name} {_number(value)}")


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    return "NaN" if math.isnan(value) else repr(float(value))


@router.get("/metrics", response_class=PlainTextResponse)
async def get_metrics(request: Request, _user: User) -> PlainTextResponse:
    store = request.app.state.store
    now = request.app.state.clock.now()
    counts: IngestCounts = request.app.state.ingest_counts
    sites = store.sites()
    states = Counter(readiness_of(s, now, request.app.state.metrics_stale_after) for s in sites)
    ages = []
    for s in sites:
        if isinstance(s["last_contact"], str):
            try:
                ages.append((now - parse_iso(s["last_contact"])).total_seconds())
            except ValueError:
                continue
    out = _Text()
    out.family("nsp_hub_ingest_requests_total", "counter",
               "Signed posts to the ingest paths since the hub started, by outcome.",
               [({"path": p, "outcome": o}, float(counts.requests[(p, o)]))
                for p in _INGEST.values() for o in ("accepted", "refused")])
    out.family("nsp_hub_ingest_messages_held_total", "counter",
               "Message ids answered as held (a retried batch counts again).",
               [({}, float(counts.held))])
    out.family("nsp_hub_ingest_refusals_total", "counter",
               "Ingest refusals since the hub started, by the reply's error code.",
               [({"reason": r, "status": st}, float(n))
                for (r, st), n in sorted(counts.refusals.items())])
    out.family("nsp_hub_messages_stored", "gauge", "Distinct messages in the hub's store.",
               [({}, float(store.count_messages()))])
    out.family("nsp_hub_sites", "gauge", "Registered sites.", [({}, float(len(sites)))])
    out.family("nsp_hub_sites_by_readiness", "gauge",
               "Sites by the readiness the board shows (silent: UNKNOWN).",
               [({"readiness": r}, float(states[r])) for r in READINESS])
    out.family("nsp_hub_sites_never_contacted", "gauge", "Registered sites never heard from.",
               [({}, float(len(sites) - len(ages)))])
    out.family("nsp_hub_oldest_contact_age_seconds", "gauge",
               "Seconds since the oldest last contact among sites heard from (0: none).",
               [({}, max(ages, default=0.0))])
    return PlainTextResponse("\n".join(out.lines) + "\n", media_type=CONTENT_TYPE)
