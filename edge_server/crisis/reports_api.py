"""Emergency reports (noodhulpmeldingen) typed by site staff on the edge, for the C-NSP.

    POST /api/v1/reports   (operator) kind, urgency, location, people, text: 201 with the report
                           (report_id, reported_by, reported_at); committed before the reply, then
                           first in the outbox; 422 names the field
    GET  /api/v1/reports   (operator) newest first, each with delivered_at (the hub holds it) and
                           ack ({by, at}: "received by the C-NSP at TIME") once that came back

Staff only (operator role): a report may name people and places. The limits are the wire's
(edge_server/uplink/protocol.py ReportBody), so what is accepted here is never refused by the hub.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field

from edge_server.auth import Operator
from edge_server.crisis.component import CrisisComponent
from edge_server.uplink.protocol import (
    REPORT_LOCATION_MAX,
    REPORT_TEXT_MAX,
    ReportKind,
    Urgency,
)

router = APIRouter(prefix="/api/v1", tags=["reports"])


class ReportRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: ReportKind
    urgency: Urgency
    location: Annotated[str, Field(min_length=1, max_length=REPORT_LOCATION_MAX)]
    people: Annotated[int, Field(ge=0, le=100_000)] | None = None
    text: Annotated[str, Field(max_length=REPORT_TEXT_MAX)] = ""


def _crisis(request: Request) -> CrisisComponent:
    crisis = getattr(getattr(request.app.state, "service", None), "crisis", None)
    if crisis is None:
        raise HTTPException(404, "this edge runs without the crisis part: no reports")
    if crisis.store is None:
        raise HTTPException(503, "the crisis part is not running (service starting or stopped)")
    assert isinstance(crisis, CrisisComponent)
    return crisis


@router.post("/reports", status_code=201)
async def add_report(req: ReportRequest, user: Operator, request: Request) -> dict[str, Any]:
    fields = req.model_dump()
    fields["location"] = fields["location"].strip()
    if not fields["location"]:
        raise HTTPException(422, "location: empty; say where help is needed")
    return {"report": _crisis(request).report(fields, user.name), "status": "queued"}


@router.get("/reports")
async def list_reports(user: Operator, request: Request, limit: int = 50) -> dict[str, Any]:
    if not 1 <= limit <= 1000:
        raise HTTPException(422, f"limit {limit}: use 1 to 1000")
    crisis = _crisis(request)
    assert crisis.store is not None
    return {"reports": crisis.store.reports(limit)}
