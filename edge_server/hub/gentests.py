"""Generator tests at the hub: each site's due state and the municipality's test register.

The due state comes from the edge's own schedule (edge_server.gentest.schedule.next_due, NFPA 110
monthly window, counted from the end of the newest PASSED test), so the board and the site can
never disagree about "overdue". Board states: ok (before the window), due (inside the window),
overdue (past its end), never (no passed test on record: due now), and failed (the newest test
did not pass, whatever the window says: the edge's readiness calls that GENTEST_FAILED, NOT
READY, and so does the board).

The register is one row per finished test (docs/schemas/gentest-body.json), as JSON or CSV.
"""

from __future__ import annotations

import csv
import io
import logging
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError

from edge_server.gentest.schedule import DueStatus, WindowSettings, next_due
from edge_server.uplink.protocol import GentestBody, error_text, json_problem, parse_iso

if TYPE_CHECKING:
    from edge_server.hub.store import HubStore

log = logging.getLogger(__name__)

BOARD_STATE = {
    DueStatus.TOO_EARLY: "ok",
    DueStatus.DUE: "due",
    DueStatus.OVERDUE: "overdue",
    DueStatus.NEVER_TESTED: "never",
}
try:  # register days are Dutch calendar days, as the board shows times
    REGISTER_TZ: Any = ZoneInfo("Europe/Amsterdam")
except ZoneInfoNotFoundError:  # no tz database on this machine: UTC days, said once
    from datetime import UTC

    REGISTER_TZ = UTC
    log.warning("hub: no time zone data for Europe/Amsterdam: the register uses UTC days")

CSV_COLUMNS = (
    "site_id", "test_id", "started_at", "ended_at", "outcome", "end", "kind", "passed",
    "started_by",
    "ended_by", "planned_min", "ran_min", "start_time_s", "load", "fuel_used_l",
    "run_hours_start_h", "run_hours_end_h", "reasons", "notes",
)


def _load(body: dict[str, Any]) -> tuple[float | str | None, str | None]:
    """(measured load, limit) from the LOAD criterion; the edge does not measure load (yet)."""
    for c in body.get("criteria") or []:
        if isinstance(c, dict) and c.get("code") == "LOAD":
            return c.get("value"), c.get("limit")
    return None, None


def _minutes(seconds: Any) -> float | None:
    return round(float(seconds) / 60, 1) if isinstance(seconds, int | float) else None


def register_row(site_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """One register row (also the board's "last test") from a gentest message body."""
    load, load_limit = _load(body)
    reasons = body.get("reasons") or []
    return {
        "site_id": site_id,
        "test_id": body.get("id"),
        "started_at": body.get("started_at"),
        "ended_at": body.get("ended_at"),
        "outcome": body.get("outcome"),
        "outcome_en": body.get("outcome_en"),
        "outcome_nl": body.get("outcome_nl"),
        "end": body.get("end"),
        # a short exercise never counts as the monthly test; older edges sent no kind
        "kind": body.get("kind") or "monthly",
        "passed": body.get("passed"),
        "started_by": body.get("started_by"),
        "ended_by": body.get("ended_by"),
        "planned_min": _minutes(body.get("planned_s")),
        "ran_min": _minutes(body.get("ran_s")),
        "start_time_s": body.get("start_time_s"),
        "load": load,
        "load_limit": load_limit,
        "fuel_used_l": body.get("fuel_used_l"),
        "run_hours_start_h": body.get("run_hours_start_h"),
        "run_hours_end_h": body.get("run_hours_end_h"),
        "reasons": [str(r) for r in reasons] if isinstance(reasons, list) else [],
        "notes": body.get("notes"),
    }


def site_gentest(
    now: datetime,
    window: WindowSettings,
    last_body: dict[str, Any] | None,
    last_passed_at: str | None,
    site_id: str,
) -> dict[str, Any]:
    """The board's generator-test cell for one site: state, the schedule window, the last test."""
    due = next_due(now, window, None if last_passed_at is None else parse_iso(last_passed_at))
    state = BOARD_STATE[due.status]
    if last_body is not None and last_body.get("passed") is False:
        state = "failed"  # as edge_server/rules/readiness.py: the newest test decides
    return {
        "state": state,
        "due": due.to_json(),
        "last": None if last_body is None else register_row(site_id, last_body),
    }


def day_range(from_day: date, to_day: date) -> tuple[datetime, datetime]:
    """[start of from_day, start of the day after to_day) in the register's time zone."""
    start = datetime.combine(from_day, time(0), REGISTER_TZ)
    end = datetime.combine(to_day + timedelta(days=1), time(0), REGISTER_TZ)
    return start, end


# `sep=semicolon`: for Excel with Dutch regional settings, whose list separator is ";" and which
# reads a CSV as ANSI unless it starts with a UTF-8 byte order mark ("vóór" would be garbled).
SEPARATORS = {"comma": ",", "semicolon": ";"}


def to_csv(rows: list[dict[str, Any]], sep: str = "comma") -> str:
    out = io.StringIO()
    if sep == "semicolon":
        out.write("\ufeff")
    writer = csv.writer(out, delimiter=SEPARATORS[sep], lineterminator="\r\n")  # RFC 4180
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        cells = []
        for name in CSV_COLUMNS:
            value = row.get(name)
            if name == "reasons":
                value = "; ".join(value or [])
            elif isinstance(value, bool):
                value = "yes" if value else "no"
            cells.append("" if value is None else value)
        writer.writerow(cells)
    return out.getvalue()


def register(
    store: HubStore, from_day: date, to_day: date, site_id: str | None = None
) -> list[dict[str, Any]]:
    """The register rows of tests that ended on from_day..to_day (inclusive), oldest first."""
    return register_page(store, from_day, to_day, site_id)[0]


RowKey = tuple[str, str, str]  # (ended_at, site_id, test_id): the register's order


def register_page(
    store: HubStore,
    from_day: date,
    to_day: date,
    site_id: str | None = None,
    after: RowKey | None = None,
    limit: int = -1,
) -> tuple[list[dict[str, Any]], int, RowKey | None]:
    """`limit` register rows (-1: all) after the row `after`; (rows, how many the days hold,
    the key to continue after, None at the end)."""
    from edge_server.hub.store import sortable

    start, end = day_range(from_day, to_day)
    fetch = limit + 1 if limit >= 0 else -1
    found, total = store.gentests(sortable(start), sortable(end), site_id, after, fetch)
    more = 0 <= limit < len(found)
    found = found[:limit] if limit >= 0 else found
    rows = [readable_row(r["site_id"], r["body"]) for r in found]
    return rows, total, (found[-1]["key"] if more and found else None)


def readable_row(site_id: str, body: Any) -> dict[str, Any]:
    """register_row of a stored body, or, for one that is not a gentest body (stored by an older
    hub, which did not check), a row saying "unreadable data" (logged): one site's bad record
    never fails the register of the region."""
    try:
        GentestBody.model_validate(body)
        problem = json_problem(body)
        if problem is not None:
            raise ValueError(f"{problem[0]}: {problem[1]}")
        row = register_row(site_id, body)
    except (ValidationError, ValueError) as exc:
        log.error("hub: a stored generator test of site %s is unreadable data, not shown: %s",
                  site_id, error_text(exc)[:300])
        row = {name: None for name in CSV_COLUMNS} | {
            "site_id": site_id, "reasons": [], "notes": "unreadable data / onleesbare gegevens",
        }
    return row
