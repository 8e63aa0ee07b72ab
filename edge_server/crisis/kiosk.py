"""The kiosk page for residents at the site: the C-NSP's bulletins and the site's state in words.

    GET /kiosk          the page (edge_server/static/kiosk.html + kiosk.js + kiosk.css): large
                        type readable across a room, Dutch with English below, offline (nothing
                        from another host), refreshes itself every 30 s
    GET /api/v1/kiosk   what it shows: the bulletins valid now, newest first, each with when it
                        came in; the site's readiness, power and link in plain words (no codes,
                        edge_server/crisis/words.py); the time it was put together and the
                        site's time zone ([site] timezone), in which the page shows every time

No login: it is for a screen in the waiting room and holds nothing a resident may not read (no
reasons, no names of staff). The bulletins come from the site's own store, so the page keeps
showing the last ones while the link is down or after a restart, with their age. Texts are set
with textContent by kiosk.js: HTML in a bulletin is shown as text, never run.

The data come from a KioskSource (the crisis store and callables for the status summary and the
link): `app.state.kiosk`, or the running service's crisis part (edge_server/crisis/component.py).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from importlib import resources
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import Response

from edge_server.clock import Clock
from edge_server.crisis.store import CrisisStore
from edge_server.crisis.words import link_words, power_words, readiness_words
from edge_server.localtime import DEFAULT_ZONE
from edge_server.uplink.protocol import iso

MAX_SHOWN = 20  # more bulletins than this are not read on a wall screen
_FIELDS = ("id", "title_nl", "text_nl", "title_en", "text_en", "issued_at", "valid_until",
           "received_at")


@dataclass
class KioskSource:
    store: CrisisStore
    clock: Clock
    site_name: str
    status: Callable[[datetime], dict[str, Any] | None]  # the uplink status body; None: unknown
    link_up: Callable[[], bool | None]  # None: no uplink configured
    timezone: str = DEFAULT_ZONE  # [site] timezone: the page shows every time in it


def kiosk_view(source: KioskSource) -> dict[str, Any]:
    now = source.clock.now()
    status = source.status(now) or {}
    bulletins = [{k: b.get(k) for k in _FIELDS}
                 for b in source.store.bulletins(now, limit=MAX_SHOWN)]
    return {
        "now": iso(now),
        "site_name": source.site_name,
        "timezone": source.timezone,
        "readiness": readiness_words(str(status.get("readiness", "UNKNOWN"))),
        "power": power_words(status),
        "link": link_words(source.link_up()),
        "last_bulletin_at": source.store.last_bulletin_at(),
        "bulletins": bulletins,
    }


def _file(name: str) -> bytes:
    return resources.files("edge_server").joinpath("static", name).read_bytes()


router = APIRouter(tags=["kiosk"])


def _source(request: Request) -> KioskSource:
    """app.state.kiosk, else the running service's crisis part (edge_server/api/app.py): 404
    when this edge runs without one (a test's `parts=`), 503 while it is starting or stopping."""
    source = getattr(request.app.state, "kiosk", None)
    if source is None:
        service = getattr(request.app.state, "service", None)
        crisis = getattr(service, "crisis", None)
        if crisis is None:
            raise HTTPException(404, "this edge runs without the crisis part: no kiosk")
        source = crisis.source
        if isinstance(source, KioskSource) and service is not None:  # its [site] timezone
            source = replace(source, timezone=service.config.site.timezone)
    if not isinstance(source, KioskSource):
        raise HTTPException(503, "the kiosk is not running (service starting or stopped)")
    return source


@router.get("/kiosk", include_in_schema=False)
async def kiosk_page() -> Response:
    return Response(_file("kiosk.html"), media_type="text/html; charset=utf-8",
                    headers={"Cache-Control": "no-cache"})


@router.get("/api/v1/kiosk")
async def kiosk_data(request: Request) -> dict[str, Any]:
    return kiosk_view(_source(request))
