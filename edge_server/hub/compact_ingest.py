"""Compact frames into the hub: one function for POST /api/v1/ingest-compact and the radio.

`ingest_compact_frame()` checks a frame exactly one way whichever path it came by: the site is
registered, the frame's length and version, its tag (the current key, or during a rotation's
grace period the previous one; the first frame with the new key retires the old at once, as for
batches), its timestamp inside the hub's window, and that it is newer than the site's last
accepted compact frame (a replay or a reordered frame is refused; the radio sender makes its
frame times strictly increasing). Then it stores the status or alert as one message, marked
`via` "compact" (HTTP relay) or "radio". A refusal raises CompactRefused(status, code, message)
and stores nothing; a frame already held is "duplicate" (nothing stored again).

An emergency report frame is stored as a `report` message whose id is made from the site and
the report_id, not from the frame: the site sends a report by radio more than once (no answer
comes back over the air) and every copy is the same message, held once. The full report by the
primary link is its own message (its outbox id) naming the same report_id; the board merges the
two (hub/reports.py).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from edge_server.hub.store import HubStore
from edge_server.uplink.compact import (
    ALERT_FRAME_MIN,
    FRAME_BYTES,
    MAX_FRAME_BYTES,
    REPORT_FRAME_MAX,
    REPORT_FRAME_MIN,
    REPORT_VERSION,
    CompactAlert,
    CompactError,
    CompactReport,
    decode_frame,
    frame_time,
    iso_z,
)

_COMPACT_NS = uuid.UUID("6f1d8a52-4a0e-4d0c-9a53-0c2b7e0f1e55")


class CompactRefused(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True)
class Ingested:
    outcome: str  # "stored" | "duplicate"
    message_id: str
    kind: str  # "status" | "alert" | "report"


def ingest_compact_frame(
    store: HubStore, now: datetime, site_id: str, frame: bytes, window_s: int, via: str
) -> Ingested:
    keys = store.site_keys(site_id, now) if site_id else None
    if keys is None:
        raise CompactRefused(401, "unknown_site", f"site {site_id!r} is not registered")
    _check_length(frame)
    decoded = None
    for key in (keys.current, keys.previous):
        if key is None:
            continue
        try:
            decoded = decode_frame(site_id, key, frame)
        except CompactError as exc:
            if "tag" in str(exc):
                continue
            raise CompactRefused(400, "bad_frame", str(exc)) from exc
        if key is keys.current and keys.previous is not None:
            store.retire_old_key(site_id, "the site signed with its new key", keys.sealed)
        break
    if decoded is None:
        why = "compact frame tag does not match (wrong key, site or tampered)"
        if keys.current is None:
            why = "the hub cannot use its stored key for this site: re-key it (see the hub's log)"
        raise CompactRefused(401, "bad_signature", why)
    ts = frame_time(frame)
    skew = ts - now.timestamp()
    if abs(skew) > window_s:
        raise CompactRefused(
            401,
            "stale_timestamp",
            f"frame time is {skew:+.0f} s from the hub (window ±{window_s} s)",
        )
    msg_id = str(uuid.uuid5(_COMPACT_NS, site_id + frame.hex()))
    if isinstance(decoded, CompactReport):
        msg_id = str(uuid.uuid5(_COMPACT_NS, f"{site_id}/report/{decoded.report_id}"))
        kind, at, body = "report", iso_z(decoded.reported_at), decoded.to_report_body()
    elif isinstance(decoded, CompactAlert):
        # A raise has the time the site's own alert message has, so that message (by the
        # primary link later) is the same fact at the same time; a later state has no time of
        # its own in the frame.
        when = decoded.raised_at if decoded.state == "raised" else decoded.sent_at
        kind, at, body = "alert", iso_z(when), decoded.to_alert_body()
    else:
        kind, at, body = "status", iso_z(decoded.at), decoded.to_status_body()
    body["via"] = via
    message = {"id": msg_id, "kind": kind, "at": at, "body": body}
    outcome = store.ingest_compact(site_id, ts, message, now, radio=via == "radio")
    if outcome == "old":
        raise CompactRefused(
            409,
            "replayed",
            "compact frame is not newer than the last one accepted from this site "
            "(a replay or a reordered frame)",
        )
    return Ingested(outcome, msg_id, kind)


def _check_length(frame: bytes) -> None:
    """A length some kind of frame has, before any key is tried (the decoder checks the rest)."""
    report = frame[:1] == bytes([REPORT_VERSION])
    if not (len(frame) == FRAME_BYTES or ALERT_FRAME_MIN <= len(frame) <= MAX_FRAME_BYTES
            or (report and REPORT_FRAME_MIN <= len(frame) <= REPORT_FRAME_MAX)):
        raise CompactRefused(
            400,
            "bad_frame",
            f"compact frame must be {FRAME_BYTES} (status), {ALERT_FRAME_MIN}..{MAX_FRAME_BYTES}"
            f" (alert) or {REPORT_FRAME_MIN}..{REPORT_FRAME_MAX} (report) bytes, got {len(frame)}",
        )
