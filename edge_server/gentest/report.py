"""The one-page PDF report of a generator test, for the municipality's records (Dutch + English).

ReportLab (pure Python, no system library). Site, date, who, every log field the system
measured, pass/fail per criterion, the fields the system cannot measure (voltage, frequency,
load) as blanks to fill in and sign, and a small plot of the starter battery voltage and the
generator state over the test. Only the PDF core fonts (WinAnsi): no "≥", written as ">=".
"""

from __future__ import annotations

import io
from datetime import datetime

from reportlab.graphics.charts.lineplots import LinePlot
from reportlab.graphics.shapes import Drawing, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from edge_server.gentest.record import END_TEXTS, KIND_SHORT, OUTCOME_TEXTS, GenTestRecord, Outcome
from edge_server.gentest.settings import GenTestSettings
from edge_server.localtime import DEFAULT_ZONE, for_people

GEN_STATE_LEVEL = {"stopped": 0.0, "start_failed": 0.0, "starting": 0.5, "cooldown": 0.75,
                   "running": 1.0}


# how the test's commands went (GenTestRecord.commanded_via); an outage credit had none
VIA_WORDS = {
    "controller": "regelaar, daarna AUTO / controller, then AUTO",
    "relay": "startrelais / remote-start relay",
}

def _fmt(value: float | str | None, unit: str = "", digits: int = 1) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    return f"{value:.{digits}f}{(' ' + unit) if unit else ''}"


def _when(at: datetime | None, zone: str) -> str:
    """An official time: the site's wall clock with its zone and offset, e.g.
    '2026-12-03 12:35:00 CET (UTC+01:00)' (the record itself stays in UTC)."""
    return for_people(at, zone, seconds=True, offset=True)


def _verdict(ok: bool | None) -> str:
    if ok is None:
        return "NIET GEMETEN / NOT MEASURED"
    return "VOLDAAN / PASS" if ok else "NIET VOLDAAN / FAIL"


Series = list[tuple[float, float]]


def _chart(lines: list[tuple[Series, colors.Color]], y: tuple[float, float], legend: str,
           h: float) -> Drawing | None:
    """One line chart over the test's minutes; the lines with at least two points."""
    shown = [(pts, colour) for pts, colour in lines if len(pts) >= 2]
    if not shown:
        return None
    d = Drawing(170 * mm, (h + 12) * mm)
    lp = LinePlot()
    lp.x, lp.y, lp.width, lp.height = 12 * mm, 8 * mm, 150 * mm, h * mm
    lp.data = [pts for pts, _ in shown]
    for i, (_, colour) in enumerate(shown):
        lp.lines[i].strokeColor = colour
    lp.yValueAxis.valueMin, lp.yValueAxis.valueMax = y
    lp.yValueAxis.labels.fontSize = 6
    lp.xValueAxis.labels.fontSize = 6
    lp.xValueAxis.valueMin = 0
    d.add(lp)
    d.add(String(12 * mm, (h + 9) * mm, legend, fontSize=6.5))
    return d


def _plot(rec: GenTestRecord, h: float = 30.0) -> Drawing | None:
    pts_v = [(s.t_s / 60, s.starter_battery_v) for s in rec.samples
             if s.starter_battery_v is not None]
    pts_g = [(s.t_s / 60, GEN_STATE_LEVEL.get(s.gen_state or "", 0.0) * 4 + 8)
             for s in rec.samples if s.gen_state is not None]
    return _chart([(pts_v, colors.darkblue), (pts_g, colors.darkorange)], (6.0, 15.0),
                  "Startaccu / starter battery (V, blauw/blue); aggregaat / generator state "
                  "(oranje/orange: 8 = uit/off, 12 = draait/running) - minuten / minutes", h)


def _controller_plot(rec: GenTestRecord, h: float = 30.0) -> Drawing | None:
    """Load (% of rated kW), voltage / 10 and frequency over the test, when a controller
    measured them (one axis 0-60: 23 = 230 V, 50 = 50 Hz)."""
    return _chart([
        ([(s.t_s / 60, s.load_pct) for s in rec.samples if s.load_pct is not None],
         colors.darkgreen),
        ([(s.t_s / 60, s.voltage_v / 10) for s in rec.samples if s.voltage_v is not None],
         colors.purple),
        ([(s.t_s / 60, s.frequency_hz) for s in rec.samples if s.frequency_hz is not None],
         colors.red),
    ], (0.0, 60.0), "Belasting / load (% kW, groen/green); spanning / voltage (V / 10, "
       "paars/purple); frequentie / frequency (Hz, rood/red) - minuten / minutes", h)


def _engine_plot(rec: GenTestRecord, h: float = 14.0) -> Drawing | None:
    """Coolant temperature and oil pressure / 10 over the test, when a controller measured them
    (one axis 0-120: 85 = 85 °C, 40 = 400 kPa)."""
    return _chart([
        ([(s.t_s / 60, s.coolant_c) for s in rec.samples if s.coolant_c is not None],
         colors.darkcyan),
        ([(s.t_s / 60, s.oil_kpa / 10) for s in rec.samples if s.oil_kpa is not None],
         colors.brown),
    ], (0.0, 120.0), "Koelvloeistof / coolant (°C, cyaan/cyan); oliedruk / oil pressure "
       "(kPa / 10, bruin/brown) - minuten / minutes", h)


def render_pdf(rec: GenTestRecord, site_name: str, settings: GenTestSettings,
               zone: str = DEFAULT_ZONE) -> bytes:
    """The one-page report; times in the site's zone (`[site] timezone`) with the offset. A
    record with more to say (a second line of outcome, criteria not measured, their fill-in
    rows) gets lower plots, so the report stays one page."""
    pdf, pages = b"", 0
    for scale in (1.0, 0.75, 0.5):
        pdf, pages = _render(rec, site_name, settings, zone, scale)
        if pages == 1:
            break
    return pdf


def _render(rec: GenTestRecord, site_name: str, settings: GenTestSettings, zone: str,
            scale: float) -> tuple[bytes, int]:
    """The report with its plots at `scale` of their height, and its number of pages."""
    buf = io.BytesIO()
    doc = SimpleDocTemplate(buf, pagesize=A4, leftMargin=15 * mm, rightMargin=15 * mm,
                            topMargin=12 * mm, bottomMargin=12 * mm,
                            title=f"Aggregaattest {rec.site_id} #{rec.id}",
                            author="NSP Site Monitor")
    styles = getSampleStyleSheet()
    small = ParagraphStyle("small", parent=styles["Normal"], fontSize=7.5, leading=9.5)
    h1 = ParagraphStyle("h1", parent=styles["Heading1"], fontSize=14, spaceAfter=2)
    h2 = ParagraphStyle("h2", parent=styles["Heading2"], fontSize=10, spaceBefore=4,
                        spaceAfter=2)
    grid = TableStyle([("FONT", (0, 0), (-1, -1), "Helvetica", 7.5),
                       ("FONT", (0, 0), (-1, 0), "Helvetica-Bold", 7.5),
                       ("GRID", (0, 0), (-1, -1), 0.3, colors.grey),
                       ("VALIGN", (0, 0), (-1, -1), "TOP"),
                       ("TOPPADDING", (0, 0), (-1, -1), 1.5),
                       ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5)])
    en, nl = OUTCOME_TEXTS[rec.outcome]
    colour = {Outcome.PASSED: "green", Outcome.FAILED: "red"}.get(rec.outcome, "darkorange")
    word = {Outcome.PASSED: "GESLAAGD / PASSED", Outcome.FAILED: "AFGEKEURD / FAILED",
            Outcome.NOT_VERIFIED: "NIET GEVERIFIEERD / NOT VERIFIED",
            Outcome.ABORTED: "AFGEBROKEN / ABORTED"}.get(rec.outcome, rec.outcome.value)
    how = ""
    if rec.end is not None:
        end_en, end_nl = END_TEXTS[rec.end]
        how = f" ({end_nl} / {end_en})"
    story: list[object] = [
        Paragraph("Testrapport noodstroomaggregaat / Generator test report", h1),
        Paragraph(f"<b>Locatie / Site:</b> {site_name} ({rec.site_id}) &nbsp; "
                  f"<b>Test:</b> #{rec.id} &nbsp; <b>Knooppunt / Node:</b> {rec.node}", small),
        Paragraph(f"<b>Uitslag / Result:</b> <font color='{colour}'><b>{word}"
                  f"</b></font> - {nl} / {en}{how}", small),
    ]
    if rec.kind == KIND_SHORT:
        story.append(Paragraph(
            "<b>KORTE OEFENRUN / SHORT EXERCISE</b>: telt niet als de maandelijkse test / does "
            f"not count as the monthly test (minimum {settings.min_duration_min:g} min onder "
            "last / under load)", small))
    rh_delta = None
    if rec.run_hours_start_h is not None and rec.run_hours_end_h is not None:
        rh_delta = rec.run_hours_end_h - rec.run_hours_start_h
    rows = [
        ["Veld / Field", "Waarde / Value"],
        ["Datum, start / Date, start", _when(rec.started_at, zone)],
        ["Einde / End", _when(rec.ended_at, zone)],
        ["Gestart door / Started by", rec.started_by],
        ["Bediend via / Commanded via", VIA_WORDS.get(rec.commanded_via or "", "-")],
        ["Beeindigd door / Ended by", rec.ended_by or "automatisch / automatic"],
        ["Geplande looptijd / Planned run", _fmt(rec.planned_s / 60, "min")],
        ["Gedraaid (zonder afkoelen) / Ran (cool-down not counted)",
         _fmt(None if rec.ran_s is None else rec.ran_s / 60, "min")],
        ["Starttijd / Start time (command to running)", _fmt(rec.start_time_s, "s")],
        # begin - end (difference) on one row each: the report stays one page
        ["Urenteller begin - einde (gedraaid) / Run-hour meter start - end (run)",
         f"{_fmt(rec.run_hours_start_h, 'h', 2)} - {_fmt(rec.run_hours_end_h, 'h', 2)} "
         f"({_fmt(rh_delta, 'h', 2)})"],
        ["Startaccu voor de test / Starter battery before", _fmt(rec.starter_v_before, "V", 2)],
        ["Startaccu laagste bij starten / Starter battery min while cranking",
         _fmt(rec.crank_min_v, "V", 2)],
        ["Brandstof begin - einde (verbruikt) / Fuel start - end (used)",
         f"{_fmt(rec.fuel_start_l, 'L')} - {_fmt(rec.fuel_end_l, 'L')} "
         f"({_fmt(rec.fuel_used_l, 'L')})"],
    ]
    t = Table(rows, colWidths=[95 * mm, 85 * mm])
    t.setStyle(grid)
    story += [Paragraph("Logboek / Test log", h2), t]
    crit = [["Criterium / Criterion", "Grens / Limit", "Waarde / Value", "Oordeel / Verdict"]]
    for c in rec.criteria:
        crit.append([Paragraph(f"{c.text_nl} / {c.text_en}", small), c.limit,
                     _fmt(c.value, "", 2) if not isinstance(c.value, str) else c.value,
                     _verdict(c.ok)])
    t2 = Table(crit, colWidths=[80 * mm, 38 * mm, 22 * mm, 40 * mm])
    t2.setStyle(grid)
    story += [Paragraph("Criteria (NFPA 110 §8.4; instelbaar / configurable)", h2), t2]
    remarks = rec.reasons or ["geen / none"]
    story += [Paragraph("Afwijkingen / Abnormalities", h2),
              Paragraph("<br/>".join(remarks), small)]
    if rec.notes:
        story.append(Paragraph(f"<b>Opmerkingen / Notes:</b> {rec.notes}", small))
    # with the controller's plot as well, both are lower: the report stays one page
    measured = _controller_plot(rec, 12.0 * scale)
    engine = _engine_plot(rec, 12.0 * scale)
    plot = _plot(rec, (30.0 if measured is None and engine is None else 12.0) * scale)
    if plot is not None:
        story += [Paragraph("Verloop / Course of the test", h2), plot]
    story += [d for d in (measured, engine) if d is not None]
    # the technician fills in only what the system did not measure (a controller measures
    # voltage, frequency and load: then their rows go, and the report stays one page; a site
    # without a power node has no crank dip: its row is added)
    measured_ok = {c.code for c in rec.criteria if c.ok is not None}
    unmeasured = {c.code for c in rec.criteria if c.ok is None}
    fill = [(code, text) for code, text in (
        ("VOLTAGE", "Spanning / Voltage (V)"), ("FREQUENCY", "Frequentie / Frequency (Hz)"),
        ("LOAD", f"Belasting / Load (kW; >= {settings.min_load_pct:g} % van het typeplaatje / "
                 "of nameplate)")) if code not in measured_ok]
    if "CRANK_VOLTAGE" in unmeasured:
        fill.append(("CRANK_VOLTAGE", "Startaccu laagste bij starten / Starter battery min "
                                      f"while cranking (V; >= {settings.crank_min_v:g} V)"))
    manual = [["In te vullen door de monteur / To be filled in by the technician", ""],
              *([text, ""] for _code, text in fill),
              ["Naam en handtekening / Name and signature", ""]]
    t3 = Table(manual, colWidths=[110 * mm, 70 * mm],
               rowHeights=[None, *(6 * mm for _ in fill), 9 * mm])
    t3.setStyle(grid)
    story += [Spacer(1, 3 * mm), t3, Spacer(1, 2 * mm), Paragraph(
        "Maandelijkse test volgens NFPA 110 §8.4 (20-40 dagen na de vorige, >= 30 min onder "
        "last); er is geen Nederlands criterium voor starttijd of maandelijkse test gevonden. "
        "Bewaren: 10 jaar. / Monthly exercise per NFPA 110 §8.4 (20-40 days apart, >= 30 min "
        "under load); no Dutch start-time or monthly-run criterion was found. Keep 10 years. "
        "NSP Site Monitor.", small)]
    doc.build(story)
    return buf.getvalue(), doc.page
