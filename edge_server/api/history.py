"""GET /api/v1/history: one channel's values over a time range, from site.db.

    GET /api/v1/history?channel=fridge1.fridge_temp_c&from=2026-03-01T00:00:00Z&to=...&step=auto

`step`: raw (every stored reading), 1m / 1h (min, mean, max per bucket), auto (raw for <= 3 h,
1m for <= 3 days, else 1h). Times are ISO 8601; a time without a zone is taken as UTC.
`from` defaults to 24 h before `to`, `to` to now. The answer:
    {"channel", "unit", "step", "from", "to",
     "columns": ["t_ms", "min", "mean", "max"], "points": [[1772323200000, 4.1, 4.3, 4.6], ...]}
`t_ms` is milliseconds since 1970-01-01 UTC (what chart libraries take; formatting 43,200 ISO
strings would cost more than the whole 30-day query).
A point whose three values are null is a gap: the channel was unavailable (node offline) there.
`points=N` (2-10,000, a plot's width): at most N buckets of one width on one grid (a whole number
of the step's source, so a 30-day plot comes from the 1-hour table), each the min, the
count-weighted mean and the max of what fell in it; `step` then says the bucket width ("7200s").
Reading needs a token only when the site sets api.require_auth_for_read = true.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Query, Response

from edge_server.api.deps import ServiceDep, Storage
from edge_server.auth import ReadAccess

router = APIRouter(prefix="/api/v1", tags=["history"])

MAX_RAW_SPAN = timedelta(days=2)


def _utc(at: datetime) -> datetime:
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


@router.get("/history", response_class=Response)
def get_history(
    _reader: ReadAccess,
    storage: Storage,
    service: ServiceDep,
    channel: Annotated[str, Query(description="<node>.<register>, e.g. fridge1.fridge_temp_c")],
    start: Annotated[datetime | None, Query(alias="from")] = None,
    end: Annotated[datetime | None, Query(alias="to")] = None,
    step: Literal["raw", "1m", "1h", "auto"] = "auto",
    points: Annotated[int | None, Query(
        ge=2, le=10_000,
        description="at most this many equal buckets (a plot's width in pixels), each with "
                    "min, mean and max; empty buckets are null")] = None,
) -> Response:
    end_at = _utc(end) if end is not None else service.clock.now()
    start_at = _utc(start) if start is not None else end_at - timedelta(hours=24)
    if end_at <= start_at:
        raise HTTPException(status_code=422, detail="to: must be later than from")
    if step == "raw" and points is None and end_at - start_at > MAX_RAW_SPAN:
        # 2 days of a 2-s channel is 86,400 points; more would be megabytes of JSON.
        raise HTTPException(
            status_code=422,
            detail=f"step: raw is limited to {MAX_RAW_SPAN.days} days; use step=1m, 1h or auto "
            "for a longer range",
        )
    channels = storage.channels()
    try:
        h = storage.history(channel, start_at, end_at, step, points)
    except KeyError:
        known = ", ".join(c["channel"] for c in channels[:50])
        raise HTTPException(
            status_code=404,
            detail=f"channel: no stored channel {channel!r}; known channels: {known or 'none yet'}",
        ) from None
    units = {c["channel"]: c["unit"] for c in channels}
    body = {
        "channel": channel,
        "unit": units.get(channel, ""),
        "step": h.step,
        "from": start_at.isoformat(),
        "to": end_at.isoformat(),
        "columns": ["t_ms", "min", "mean", "max"],
        "points": h.points,
    }
    # json.dumps directly: FastAPI's generic encoder takes ~245 ms for 43,200 points (30 days
    # of 1-minute data), json.dumps ~45 ms.
    return Response(json.dumps(body, allow_nan=False), media_type="application/json")
