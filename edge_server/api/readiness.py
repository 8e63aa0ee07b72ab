"""`GET /api/v1/readiness`: READY / DEGRADED / NOT_READY / UNKNOWN with the reasons (NL/EN),
the fuel autonomy (hours, "refuel before") and the status summary sent to the C-NSP."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from edge_server.api.deps import Rules, ServiceDep, SiteReader

router = APIRouter(prefix="/api/v1", tags=["readiness"])


@router.get("/readiness")
async def get_readiness(_reader: SiteReader, engine: Rules, service: ServiceDep) -> dict[str, Any]:
    now = service.clock.now()
    readiness = engine.assess(now)
    autonomy = engine.autonomy(now)
    body = readiness.to_json()
    body["autonomy"] = None if autonomy is None else autonomy.to_json()
    body["status"] = engine.status_body(now)
    return body
