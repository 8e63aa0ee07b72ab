"""Generator tests: list, next due date, start (technician), abort (operator), PDF report.

    GET  /api/v1/gentests                 read access; newest first
    GET  /api/v1/gentests/next            the NFPA 110 window for the next monthly test
    GET  /api/v1/gentests/status          for the site page: the running test's progress, the
                                          last finished test, the next due date, and why a
                                          start would be refused now (read access)
    GET  /api/v1/gentests/{id}            one record with its samples
    GET  /api/v1/gentests/{id}/report.pdf the one-page report for the municipality (NL + EN)
    POST /api/v1/gentests                 start a test now (role technician or higher)
    POST /api/v1/gentests/{id}/abort      abort a running test (role operator or higher)

Refusals (mains absent or unknown, a test already running, node offline, ...) are 409 with
{"error": code, "text_en", "text_nl"}. See docs/generator-tests.md.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Query, status
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from edge_server.api.deps import GenTests, RecordId, ServiceDep, SiteReader
from edge_server.auth import Operator, Technician
from edge_server.gentest.report import render_pdf
from edge_server.gentest.runner import Refused
from edge_server.gentest.store import GenTestNotFound

router = APIRouter(prefix="/api/v1", tags=["gentests"])


class StartRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    node: str | None = Field(None, description="power node; default from [gentest] node")
    notes: str = Field("", max_length=2000, description="remarks for the report")
    short_exercise: bool = Field(False, description=(
        "a run shorter than [gentest] min_duration_min: recorded as a short exercise, never "
        "PASSED, never counts as the monthly test (without it such a start is refused, 409)"))


def _conflict(exc: Refused) -> JSONResponse:
    return JSONResponse(exc.to_json(), status_code=status.HTTP_409_CONFLICT)


def _not_found(test_id: int) -> HTTPException:
    return HTTPException(status.HTTP_404_NOT_FOUND,
                         f"id: no generator test {test_id}; list them with GET /api/v1/gentests")


@router.get("/gentests")
async def list_tests(_reader: SiteReader, gentests: GenTests,
                     limit: int = Query(100, ge=1, le=1000)) -> dict[str, Any]:
    runner = gentests.require()
    tests = runner.store.list(limit)
    active = runner.active.record.id if runner.active is not None else None
    return {"count": len(tests), "running": active, "tests": [t.to_json() for t in tests]}


@router.get("/gentests/next")
async def next_test(_reader: SiteReader, gentests: GenTests) -> dict[str, Any]:
    return gentests.due().to_json()


@router.get("/gentests/status")
async def test_status(_reader: SiteReader, gentests: GenTests,
                      service: ServiceDep) -> dict[str, Any]:
    """What the site page's generator-test section shows. `blocked` is the refusal a start
    would get now ({"error", "text_en", "text_nl"}) or null; POST /gentests checks again and
    stays the authority. `active.progress` is 0..1 of the run under load."""
    runner = gentests.require()
    last = next((t for t in runner.store.list(2) if t.ended_at is not None), None)
    try:
        runner.check_start()
        blocked = None
    except Refused as exc:
        blocked = exc.to_json()
    return {
        "now": service.clock.now().isoformat(),
        "duration_min": service.config.gentest.duration_min,
        "min_duration_min": service.config.gentest.min_duration_min,
        "active": runner.progress(),
        "last": None if last is None else last.to_json(),
        "next": gentests.due().to_json(),
        "blocked": blocked,
    }


@router.get("/gentests/{test_id}")
async def get_test(test_id: RecordId, _reader: SiteReader, gentests: GenTests) -> dict[str, Any]:
    try:
        return gentests.require().store.get(test_id).to_json(samples=True)
    except GenTestNotFound:
        raise _not_found(test_id) from None


@router.get("/gentests/{test_id}/report.pdf")
async def report(test_id: RecordId, _reader: SiteReader, gentests: GenTests,
                 service: ServiceDep) -> Response:
    try:
        rec = gentests.require().store.get(test_id)
    except GenTestNotFound:
        raise _not_found(test_id) from None
    pdf = render_pdf(rec, service.config.site.name or service.config.site.id,
                     service.config.gentest, service.config.site.timezone)
    return Response(pdf, media_type="application/pdf", headers={
        "Content-Disposition": f'inline; filename="gentest-{rec.site_id}-{rec.id}.pdf"'})


@router.post("/gentests", status_code=status.HTTP_201_CREATED, response_model=None)
async def start_test(user: Technician, gentests: GenTests,
                     body: StartRequest | None = None) -> dict[str, Any] | JSONResponse:
    """Start a generator test now as the logged-in technician."""
    req = body or StartRequest()
    try:
        rec = await gentests.require().start(user.name, node=req.node, notes=req.notes,
                                             short_exercise=req.short_exercise)
    except Refused as exc:
        return _conflict(exc)
    return rec.to_json()


@router.post("/gentests/{test_id}/abort", response_model=None)
async def abort_test(test_id: RecordId, user: Operator,
                     gentests: GenTests) -> dict[str, Any] | JSONResponse:
    """Abort a running test; the generator is stopped only while mains is known present."""
    runner = gentests.require()
    try:
        runner.store.get(test_id)
    except GenTestNotFound:
        raise _not_found(test_id) from None
    try:
        rec = await runner.abort(test_id, user.name)
    except Refused as exc:
        return _conflict(exc)
    return rec.to_json()
