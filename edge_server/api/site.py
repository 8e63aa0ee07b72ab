"""GET /api/v1/site: every value with unit, timestamp and quality, and every node's status."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from edge_server import regmap
from edge_server.api.deps import ServiceDep
from edge_server.auth import ReadAccess

router = APIRouter(prefix="/api/v1", tags=["site"])


@router.get("/site")
def get_site(service: ServiceDep, _reader: ReadAccess) -> dict[str, Any]:
    """The site state now (a viewer token is needed only with api.require_auth_for_read).

    `values`: {"<node>.<register>": {"value", "unit", "at", "quality"}}; a value that could not be
    read is null with quality "unavailable", never a stale or zero number.
    `nodes`: {"<node>": {"online", "last_ok", "last_error", "counters", "identity", ...}}.
    `capacity`: the people the site is meant for ([site] capacity; the page shows n / capacity).
    `uplink`: the link to the C-NSP ({"enabled": false} without one): link_up, pending_by_kind,
    dead_letters and newest_refusal (messages the hub refused for good, docs/uplink-protocol.md).
    """
    body = service.state.to_json()
    body["site_name"] = service.config.site.name
    body["capacity"] = service.config.site.capacity  # people the site is meant for (site page)
    body["timezone"] = service.config.site.timezone  # the page shows every time in this zone
    body["now"] = service.clock.now().isoformat()
    body["poll_interval_s"] = service.config.poll.interval_s
    body["registers"] = _REGISTER_TEXTS
    body["uplink"] = {"enabled": False} if service.uplink is None else service.uplink.status()
    return body


# Names of enum values and bits, so a client can show "running" instead of 2.
_REGISTER_TEXTS: dict[str, dict[str, dict[int, str]]] = {
    r.name: {k: v for k, v in (("enum", r.enum), ("bits", r.bits)) if v}
    for r in regmap.load().registers
    if r.enum or r.bits
}
