"""The C-NSP's fuel round: which sites to refuel, how many litres, in which order.

    GET  /api/v1/fuel-round[?region=R][&target_h=72][&format=csv[&sep=semicolon]|pdf]
                                     (any user) the round, most urgent first
    POST /api/v1/fuel-round/deliveries  (operator or admin) {"site_id", "litres", "note"}:
                                     "delivered N litres", recorded with who and when
    GET  /api/v1/fuel-round/deliveries[?site=ID]  (any user) the delivery log, newest first

Per site, from its newest status (fuel_l, fuel_usable_l, tank_usable_l, burn_lph,
fuel_autonomy_h; docs/uplink-protocol.md):

    to_full_l   = tank_usable_l - fuel_usable_l          the room in the tank above the pick-up
    to_target_l = min(to_full_l, max(0, target_h * burn_lph - fuel_usable_l))
                                                        enough for target_h hours (default 72:
                                                        the framework's "fully working 72 hours
                                                        into a crisis"), never more than fits
    refuel_before = the time of that status + its autonomy hours, on the hub's clock (as the
                    board does for a site whose clock is off)

The order to visit: refuel-before first (the site that runs dry first), then the sites whose
level is unknown (someone has to look), then the rest; a site needing 0 litres for the target is
listed last as "no delivery needed". A delivery shows afterwards in the site's own level (the
edge's FUEL_REFUELLED event); the log shows whether that event arrived after the delivery.

Written here, not taken from a routing library: the round is an ordering by urgency within one
region (tens of sites, one tanker), not a vehicle-routing problem; the driver knows the roads.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from edge_server.hub.auth import HubError, User, require_operator
from edge_server.hub.store import HubStore
from edge_server.localtime import for_people
from edge_server.uplink.protocol import iso, parse_iso

router = APIRouter(prefix="/api/v1", tags=["fuel round"])

DEFAULT_TARGET_H = 72.0
MAX_DELIVERY_L = 100_000.0  # the protocol's largest tank
NOTE_MAX = 500
ZONE = "Europe/Amsterdam"


@dataclass(frozen=True, slots=True)
class Stop:
    site_id: str
    name: str
    municipality: str
    region: str
    fuel_l: float | None
    fuel_usable_l: float | None
    tank_usable_l: float | None
    burn_lph: float | None
    autonomy_h: float | None
    refuel_before: datetime | None
    to_full_l: float | None
    to_target_l: float | None

    @property
    def known(self) -> bool:
        return self.to_target_l is not None

    def to_json(self) -> dict[str, Any]:
        return {
            "site_id": self.site_id, "name": self.name, "municipality": self.municipality,
            "region": self.region, "fuel_l": self.fuel_l, "fuel_usable_l": self.fuel_usable_l,
            "tank_usable_l": self.tank_usable_l, "burn_lph": self.burn_lph,
            "autonomy_h": self.autonomy_h,
            "refuel_before": None if self.refuel_before is None else iso(self.refuel_before),
            "to_full_l": self.to_full_l, "to_target_l": self.to_target_l,
        }


def _num(body: dict[str, Any], key: str) -> float | None:
    value = body.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def stop_for(site: dict[str, Any], target_h: float) -> Stop:
    """One site's line of the round from its registration and newest status."""
    body = site.get("status") or {}
    fuel, usable = _num(body, "fuel_l"), _num(body, "fuel_usable_l")
    tank, burn = _num(body, "tank_usable_l"), _num(body, "burn_lph")
    hours = _num(body, "fuel_autonomy_h")
    to_full = to_target = None
    if usable is not None and tank is not None:
        to_full = round(max(0.0, tank - usable), 1)
        if burn is not None:
            to_target = round(min(to_full, max(0.0, target_h * burn - usable)), 1)
    refuel = None
    received = site.get("status_received_at") or site.get("status_at")
    if hours is not None and isinstance(received, str):
        refuel = parse_iso(received) + timedelta(hours=hours)
    return Stop(site["site_id"], site.get("name", ""), site.get("municipality", ""),
                site.get("region", ""), fuel, usable, tank, burn, hours, refuel, to_full,
                to_target)


def plan(sites: list[dict[str, Any]], target_h: float = DEFAULT_TARGET_H,
         region: str | None = None) -> list[Stop]:
    """The round: sites that need fuel by refuel-before, then unknown levels, then none needed."""
    stops = [stop_for(s, target_h) for s in sites if not region or s.get("region") == region]

    def key(s: Stop) -> tuple[int, float, str]:
        if s.known and (s.to_target_l or 0) > 0:
            when = s.refuel_before.timestamp() if s.refuel_before is not None else math.inf
            return (0, when, s.site_id)
        return (1 if not s.known else 2, 0.0, s.site_id)

    return sorted(stops, key=key)


# -- CSV and PDF for the driver ----------------------------------------------------------------
CSV_COLUMNS = ("order", "site_id", "name", "municipality", "region", "refuel_before_local",
               "to_target_l", "to_full_l", "fuel_usable_l", "tank_usable_l", "burn_lph",
               "autonomy_h")


def _l(x: float | None) -> str:
    return "–" if x is None else f"{x:,.0f} L".replace(",", ".")


def to_csv(stops: list[Stop], sep: str = "comma") -> str:
    out = io.StringIO()
    if sep == "semicolon":
        out.write("\ufeff")  # Excel with Dutch settings (as the generator-test register)
    writer = csv.writer(out, delimiter=";" if sep == "semicolon" else ",", lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for i, s in enumerate(stops, 1):
        row = {**s.to_json(), "order": i,
               "refuel_before_local": "" if s.refuel_before is None
               else for_people(s.refuel_before, ZONE, offset=True)}
        writer.writerow(["" if row[c] is None else row[c] for c in CSV_COLUMNS])
    return out.getvalue()


def to_pdf(stops: list[Stop], now: datetime, target_h: float, region: str | None) -> bytes:
    """One page (A4 landscape) for the driver, Dutch with English headings."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4, landscape
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=landscape(A4), leftMargin=12 * mm,
                            rightMargin=12 * mm, topMargin=12 * mm, bottomMargin=12 * mm,
                            title="Tankronde / Fuel round")
    styles = getSampleStyleSheet()
    need = [s for s in stops if s.known and (s.to_target_l or 0) > 0]
    total = sum(s.to_target_l or 0 for s in need)
    head = (f"Tankronde / Fuel round{' – ' + region if region else ''}")
    sub = (f"Opgesteld / made {for_people(now, ZONE, offset=True)} · doel / target "
           f"{target_h:g} uur/h autonomie · {len(need)} locaties / sites, totaal / total "
           f"{_l(total)}")
    rows: list[list[str]] = [["#", "Locatie / Site", "Gemeente / Municipality",
                              "Tanken vóór / Refuel before", "Leveren / Deliver",
                              "Tot vol / To full", "Nu / Now", "Geleverd / Delivered"]]
    for i, s in enumerate(stops, 1):
        deliver = ("geen nodig / none needed" if s.known and not s.to_target_l
                   else "niveau onbekend / level unknown" if not s.known else _l(s.to_target_l))
        rows.append([str(i), (s.name or s.site_id)[:40], s.municipality[:28],
                     for_people(s.refuel_before, ZONE), deliver, _l(s.to_full_l),
                     _l(s.fuel_usable_l), ""])
    table = Table(rows, repeatRows=1, colWidths=[10 * mm, 70 * mm, 42 * mm, 40 * mm,
                                                 42 * mm, 25 * mm, 22 * mm, 25 * mm])
    table.setStyle(TableStyle([
        ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 8), ("FONT", (0, 1), (-1, -1), "Helvetica", 8),
        ("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
        ("BACKGROUND", (0, 0), (-1, 0), colors.HexColor("#e8e8e8")),
    ]))
    doc.build([Paragraph(head, styles["Title"]), Paragraph(sub, styles["Normal"]),
               Spacer(1, 4 * mm), table])
    return buf.getvalue()


# -- routes ------------------------------------------------------------------------------------
class Delivery(BaseModel):
    model_config = ConfigDict(extra="forbid")
    site_id: str
    litres: float = Field(gt=0, le=MAX_DELIVERY_L)
    note: str = Field("", max_length=NOTE_MAX)


def _store(request: Request) -> HubStore:
    store: HubStore = request.app.state.store
    return store


def _now(request: Request) -> datetime:
    now: datetime = request.app.state.clock.now()
    return now


@router.get("/fuel-round", response_model=None)
async def fuel_round(
    request: Request, _who: User,
    region: str | None = Query(None, max_length=200),
    target_h: float = Query(DEFAULT_TARGET_H, gt=0, le=24 * 30),
    format: str = Query("json", pattern="^(json|csv|pdf)$"),
    sep: str = Query("comma", pattern="^(comma|semicolon)$"),
) -> dict[str, Any] | Response:
    store, now = _store(request), _now(request)
    stops = plan(store.sites(), target_h, region)
    day = for_people(now, ZONE)[:10]
    if format == "csv":
        return Response(to_csv(stops, sep), media_type="text/csv; charset=utf-8", headers={
            "Content-Disposition": f'attachment; filename="tankronde_{day}.csv"'})
    if format == "pdf":
        return Response(to_pdf(stops, now, target_h, region), media_type="application/pdf",
                        headers={"Content-Disposition": f'inline; filename="tankronde_{day}.pdf"'})
    need = [s for s in stops if s.known and (s.to_target_l or 0) > 0]
    return {"now": iso(now), "target_h": target_h, "region": region,
            "total_l": round(sum(s.to_target_l or 0 for s in need), 1),
            "stops": [s.to_json() for s in stops]}


@router.post("/fuel-round/deliveries", status_code=201)
async def record_delivery(request: Request, who: User, body: Delivery) -> dict[str, Any]:
    name = require_operator(who, "recording a fuel delivery")
    store, now = _store(request), _now(request)
    if not store.has_site(body.site_id):
        raise HubError(404, "unknown_site", f"site_id: no site {body.site_id!r} is registered")
    return store.add_fuel_delivery(body.site_id, body.litres, body.note, name, now)


@router.get("/fuel-round/deliveries")
async def deliveries(request: Request, _who: User,
                     site: str | None = Query(None, max_length=100),
                     limit: int = Query(200, ge=1, le=5000)) -> dict[str, Any]:
    return {"deliveries": _store(request).fuel_deliveries(site, limit)}
