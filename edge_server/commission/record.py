"""The commissioning record: what `nsp-edge commission --record` tells the C-NSP hub.

    body = record_body(report, site_id, by, now)       # docs/schemas/commissioning-body.json
    msg_id = queue_record(cfg, body, now)               # into the site's uplink outbox

Only the result, each node's identity (unit, firmware, map version) and the codes of its WARN /
FAIL lines travel; the technician's full report (values, sentences) stays on site. The hub checks
a body with `CommissioningBody` (the schema as a pydantic model: both ends use this one model).
"""

from __future__ import annotations

import getpass
from datetime import datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_server.uplink.protocol import (
    CommissioningBody,
    NodeRecord,
    Problem,
    Result,
    iso,
)

if TYPE_CHECKING:
    from edge_server.commission.assess import Check, SiteReport
    from edge_server.config import SiteConfig

KIND = "commissioning"
# The models live with the other kinds' (one model per kind, used by the edge and the hub).
__all__ = ["KIND", "CommissioningBody", "NodeRecord", "Problem", "Result", "record_body"]


def tool_version() -> str:
    try:
        return metadata.version("nsp-site-monitor")
    except metadata.PackageNotFoundError:
        return "unknown"


def who_ran_it(by: str | None) -> str:
    """`--by NAME`, else the operating-system user."""
    if by and by.strip():
        return by.strip()
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown user"


def _problems(checks: list[Check]) -> list[dict[str, Any]]:
    from edge_server.commission.texts import Level

    return [{"level": c.level.name, "code": c.code} for c in checks if c.level >= Level.WARN]


def record_body(report: SiteReport, site_id: str, by: str, now: datetime) -> dict[str, Any]:
    nodes = []
    for n in report.nodes:
        v = n.values
        firmware = None
        if v.get("fw_major") is not None:
            firmware = f"{v['fw_major']}.{v['fw_minor']}.{v['fw_patch']}"
        version = v.get("map_version")
        nodes.append({
            "name": n.target.name,
            "unit": n.target.unit,
            "roles": None if n.target.roles is None else list(n.target.roles),
            "answered": n.answered,
            "result": n.level.name,
            "firmware": firmware,
            "map_version": None if version is None else int(version),
            "problems": _problems(n.checks),
        })
    body = {
        "site_id": site_id,
        "commissioned_at": iso(now),
        "by": by,
        "result": report.level.name,
        "tool_version": tool_version(),
        "site_problems": _problems(report.checks),
        "nodes": nodes,
    }
    CommissioningBody.model_validate(body)  # never queue what the hub would refuse
    return body


def outbox_path(cfg: SiteConfig) -> Path:
    """The outbox the edge service sends from (UplinkComponent: [storage] data_dir)."""
    from edge_server.uplink.component import OUTBOX_FILE

    return Path(cfg.storage.data_dir) / OUTBOX_FILE


def queue_record(cfg: SiteConfig, body: dict[str, Any], now: datetime) -> tuple[str, Path]:
    """Put the record in the site's outbox (one committed SQLite transaction, WAL: safe while
    the edge service runs, which sends it; without the service it waits there). (id, path)."""
    from edge_server.uplink.outbox import Outbox

    path = outbox_path(cfg)
    outbox = Outbox(path)
    try:
        return outbox.enqueue(KIND, body, now), path
    finally:
        outbox.close()
