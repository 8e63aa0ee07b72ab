"""Times for people: in the site's time zone ([site] timezone, default Europe/Amsterdam).

UTC stays on the wire and in storage; only what a person reads (pages, the PDF report, CSV
registers, CLI tables) is shown in the site's zone, with the offset where a time is official
(a report, a register). zoneinfo reads the system's tz database, else the `tzdata` package (a
dependency), so the zone is known on an edge computer without /usr/share/zoneinfo too.
"""

from __future__ import annotations

from datetime import datetime, tzinfo
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_ZONE = "Europe/Amsterdam"


@lru_cache(maxsize=8)
def zone(name: str = DEFAULT_ZONE) -> tzinfo:
    """The zone by its IANA name; ValueError naming the fix for an unknown one."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}: give an IANA name such as "
                         f"{DEFAULT_ZONE!r}") from None


def local(at: datetime, zone_name: str = DEFAULT_ZONE) -> datetime:
    """`at` (aware; a naive time is taken as UTC) in the site's zone."""
    if at.tzinfo is None:
        from datetime import UTC

        at = at.replace(tzinfo=UTC)
    return at.astimezone(zone(zone_name))


def for_people(at: datetime | None, zone_name: str = DEFAULT_ZONE, *, seconds: bool = False,
               offset: bool = False) -> str:
    """'2026-12-03 12:35' in the site's zone; offset=True adds ' CET (UTC+01:00)' for official
    records; '-' for no time."""
    if at is None:
        return "-"
    t = local(at, zone_name)
    text = t.strftime("%Y-%m-%d %H:%M:%S" if seconds else "%Y-%m-%d %H:%M")
    if offset:
        raw = t.strftime("%z")  # +0100
        text += f" {t.tzname()} (UTC{raw[:3]}:{raw[3:]})"
    return text
