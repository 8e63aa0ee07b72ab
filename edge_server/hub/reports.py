"""Emergency reports (noodhulpmeldingen) from the sites, for the C-NSP's operators.

    GET  /api/v1/reports?limit=N                  (any user) the log: unacknowledged first,
                                                  then newest first; each with its site's name
    POST /api/v1/reports/{site}/{report_id}/ack   (operator or admin) "received by the C-NSP":
                                                  signed back to the site in its next replies

A report is a `report` message (docs/schemas/report-body.json): stored by the ingest in the
same transaction as everything it holds, whichever way it came (a batch over the primary link,
or a compact report frame by the backup radio: kind, urgency, people and the start of the place
and text, `cut` naming what was shortened; hub/compact_ingest.py). Both ways name the same
`report_id`, so the log shows one report: the radio's short version (`complete` false) until
the full one is there, then the full text, and that it first came by radio (`first_via`).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Request

from edge_server.hub.auth import HubError, User, require_operator
from edge_server.hub.bulletins_store import HubNotices
from edge_server.hub.store import HubStore

router = APIRouter(prefix="/api/v1", tags=["reports"])
log = logging.getLogger(__name__)

_URGENCY_RANK = {"immediate": 0, "urgent": 1, "normal": 2}


def report_log(store: HubStore, notices: HubNotices, limit: int) -> list[dict[str, Any]]:
    """One entry per (site, report_id): merged from the messages that carried it."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for m in reversed(store.messages_of_kind("report", limit * 4)):  # oldest first
        body = m["body"]
        key = (m["site_id"], str(body.get("report_id")))
        seen = merged.get(key)
        by_radio = body.get("via") == "radio"
        if seen is None:
            merged[key] = {"site_id": m["site_id"], "received_at": m["received_at"],
                           "first_via": "radio" if by_radio else "ip", "body": body,
                           "complete": not by_radio}
        elif not by_radio and not seen["complete"]:
            seen["body"], seen["complete"] = body, True  # the full text after the radio frame
    acks = notices.report_acks()
    names: dict[str, dict[str, Any]] = {}
    out = []
    for (site_id, report_id), entry in merged.items():
        if site_id not in names:
            names[site_id] = store.site(site_id) or {}
        info = names[site_id]
        ack = acks.get((site_id, report_id))
        out.append(entry | {
            "report_id": report_id,
            "name": info.get("name", ""),
            "municipality": info.get("municipality", ""),
            "ack": ack,
        })
    out.sort(key=lambda e: e["received_at"], reverse=True)
    out.sort(key=lambda e: (e["ack"] is not None,
                            _URGENCY_RANK.get(e["body"].get("urgency"), 3) if e["ack"] is None
                            else 0))
    return out[:limit]


@router.get("/reports")
async def list_reports(request: Request, _user: User, limit: int = 200) -> dict[str, Any]:
    if not 1 <= limit <= 5000:
        raise HubError(422, "invalid", f"limit {limit}: use 1 to 5000")
    reports = report_log(request.app.state.store, request.app.state.notices, limit)
    return {"now": request.app.state.clock.now().isoformat(), "reports": reports,
            "open": sum(1 for r in reports if r["ack"] is None)}


@router.post("/reports/{site_id}/{report_id}/ack")
async def ack_report(site_id: str, report_id: str, request: Request,
                     who: User) -> dict[str, Any]:
    name = require_operator(who, "acknowledging a report")
    store: HubStore = request.app.state.store
    held = any(str(m["body"].get("report_id")) == report_id
               for m in store.messages(site_id, "report"))
    if not held:
        raise HubError(404, "unknown_report", f"no report {report_id!r} from site {site_id!r}")
    now = request.app.state.clock.now()
    notices: HubNotices = request.app.state.notices
    if notices.ack_report(site_id, report_id, name, now):
        log.info("hub: report %s/%s acknowledged by %s", site_id, report_id, name)
    ack = notices.report_acks()[(site_id, report_id)]
    return {"site_id": site_id, "report_id": report_id, "ack": ack}
