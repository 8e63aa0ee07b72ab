"""Alerts: `GET /api/v1/alerts?state=open|all`, `POST /api/v1/alerts/{id}/ack` (operator role).

An alert goes raised -> acknowledged (who, when) -> cleared; the texts are in Dutch and English.
Acknowledging records who saw it; it does not clear it (only the data can).
"""

from __future__ import annotations

from typing import Any, Literal

from fastapi import APIRouter, HTTPException, Query, status

from edge_server.api.deps import RecordId, Rules, ServiceDep, SiteReader
from edge_server.auth import Operator
from edge_server.rules.alerts import AlertNotFound, AlreadyAcknowledged

router = APIRouter(prefix="/api/v1", tags=["alerts"])


@router.get("/alerts")
async def list_alerts(
    _reader: SiteReader,
    engine: Rules,
    state: Literal["open", "all"] = Query("open", description="open: not cleared; all: history"),
    limit: int = Query(200, ge=1, le=5000),
) -> dict[str, Any]:
    """Newest first. Each alert: id, code, severity, state (raised|acknowledged|cleared),
    raised_at, acknowledged_at, acknowledged_by, cleared_at, text_en, text_nl, channel, value.
    Events (kind "event", e.g. MAINS_RESTORED) appear in `state=all` only."""
    alerts = engine.store.query(open_only=state == "open", limit=limit)
    return {"state": state, "count": len(alerts), "alerts": [a.to_json() for a in alerts]}


@router.post("/alerts/{alert_id}/ack")
async def acknowledge_alert(alert_id: RecordId, user: Operator, engine: Rules,
                            service: ServiceDep) -> dict[str, Any]:
    """Acknowledge an alert as the logged-in operator (or a higher role)."""
    try:
        alert = engine.acknowledge(alert_id, user.name, service.clock.now())
    except AlertNotFound:
        raise HTTPException(status.HTTP_404_NOT_FOUND,
                            f"alert_id: no alert {alert_id}; list them with GET /api/v1/alerts"
                            ) from None
    except AlreadyAcknowledged as exc:
        raise HTTPException(status.HTTP_409_CONFLICT, str(exc)) from None
    return alert.to_json()
