"""GET /metrics: the site in Prometheus text format (version 0.0.4), for a Prometheus or
VictoriaMetrics scraper at a C-NSP or a technician's laptop.

Written by hand rather than with prometheus-client: the values already live in SiteState and the
components, so a scrape just formats them (~80 lines); no process-global registry to reset
between test apps and no extra dependency on the edge box.

    nsp_reading{node,channel,unit}          every current GOOD reading (booleans 0/1); an
                                            unavailable value is left out, never exported as 0
    nsp_node_online{node}, nsp_node_<counter>_total{node}    reads_ok, timeouts, crc_errors, ...
    nsp_poll_cycles_total                   poll cycles the storage has seen
    nsp_storage_ok, nsp_storage_disk_full, nsp_storage_rows_{written,dropped}_total,
    nsp_storage_rows_pending, nsp_storage_db_bytes
    nsp_influx_{up,buffered_points,sent_total,dropped_total,failures_total}   (when configured)
    nsp_uplink_up, nsp_uplink_pending_messages{message_kind}, nsp_uplink_dead_letters,
    nsp_uplink_dead_lettered_total, nsp_uplink_clock_offset_seconds  (when [uplink] is enabled)
Every series carries site="<site id>". Reading needs a token only with api.require_auth_for_read.
"""

from __future__ import annotations

import math
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import PlainTextResponse

from edge_server.api.deps import ServiceDep
from edge_server.auth import ReadAccess
from edge_server.service import Service

router = APIRouter(tags=["metrics"])

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


class _Text:
    def __init__(self, site: str) -> None:
        self.site = site
        self.lines: list[str] = []
        self._declared: set[str] = set()

    def add(self, name: str, kind: str, help_text: str, value: float,
            **labels: str) -> None:
        if name not in self._declared:
            self._declared.add(name)
            self.lines.append(f"# HELP {name} {help_text}")
            self.lines.append(f"# TYPE {name} {kind}")
        pairs = {"site": self.site, **labels}
        text = ",".join(f'{k}="{_label(v)}"' for k, v in pairs.items())
        self.lines.append(f"{name}{{{text}}} {_number(value)}")


def _db_bytes(path: Path) -> int:
    total = 0
    for suffix in ("", "-wal", "-shm"):
        p = path.with_name(path.name + suffix)
        if p.exists():
            total += p.stat().st_size
    return total


@router.get("/metrics", response_class=PlainTextResponse)
def get_metrics(service: ServiceDep, _reader: ReadAccess) -> PlainTextResponse:
    state = service.state
    out = _Text(state.site_id)
    for reading in sorted(state.readings.values(), key=lambda r: r.channel):
        if reading.ok:
            out.add("nsp_reading", "gauge", "Current value of a GOOD reading (SI units).",
                    float(reading.value),  # type: ignore[arg-type]
                    node=reading.node, channel=reading.name, unit=reading.unit)
    for node in sorted(state.nodes.values(), key=lambda n: n.name):
        out.add("nsp_node_online", "gauge", "1 when the node answered its last poll.",
                1.0 if node.online else 0.0, node=node.name)
    for node in sorted(state.nodes.values(), key=lambda n: n.name):
        for counter, value in vars(node.counters).items():
            out.add(f"nsp_node_{counter}_total", "counter", f"Poll {counter} of the node.",
                    float(value), node=node.name)
    component = service.storage
    if component is not None and component.storage is not None:
        out.add("nsp_poll_cycles_total", "counter", "Poll cycles seen by the storage.",
                float(component.poll_cycles))
        if component.storage is not None:
            h = component.storage.health
            out.add("nsp_storage_ok", "gauge", "1 when the last write to site.db committed.",
                    1.0 if h.ok else 0.0)
            out.add("nsp_storage_disk_full", "gauge", "1 while site.db's disk is full.",
                    1.0 if h.disk_full else 0.0)
            out.add("nsp_storage_rows_written_total", "counter", "Rows committed to site.db.",
                    float(h.rows_written))
            out.add("nsp_storage_rows_pending", "gauge", "Rows held in memory after a failed "
                    "commit.", float(h.rows_pending))
            out.add("nsp_storage_rows_dropped_total", "counter", "Rows lost: pending overflowed.",
                    float(h.rows_dropped))
            out.add("nsp_storage_db_bytes", "gauge", "Size of site.db with its WAL.",
                    float(_db_bytes(component.storage.path)))
        if component.influx is not None:
            i = component.influx.health()
            out.add("nsp_influx_up", "gauge", "1 when the last send to InfluxDB succeeded.",
                    1.0 if i["last_error"] is None else 0.0)
            out.add("nsp_influx_buffered_points", "gauge", "Points waiting in the buffer.",
                    float(i["buffered"]))
            out.add("nsp_influx_sent_total", "counter", "Points acknowledged by InfluxDB.",
                    float(i["sent"]))
            out.add("nsp_influx_dropped_total", "counter", "Oldest points dropped: buffer full.",
                    float(i["dropped"]))
            out.add("nsp_influx_failures_total", "counter", "Failed sends.",
                    float(i["failures"]))
    _uplink(service, out)
    return PlainTextResponse("\n".join(out.lines) + "\n", media_type=CONTENT_TYPE)


def _uplink(service: Service, out: _Text) -> None:
    if service.uplink is None:
        return
    status = service.uplink.status()
    if not status["enabled"]:
        return
    out.add("nsp_uplink_up", "gauge", "1 while the last exchange with the C-NSP hub is recent.",
            1.0 if status["link_up"] else 0.0)
    for kind, n in sorted(status["pending_by_kind"].items()):
        out.add("nsp_uplink_pending_messages", "gauge", "Messages waiting in the outbox.",
                float(n), message_kind=kind)
    out.add("nsp_uplink_dead_letters", "gauge", "Messages the hub refused for good, kept in "
            "the dead letters (nsp-edge uplink dead-letters).", float(status["dead_letters"]))
    out.add("nsp_uplink_dead_lettered_total", "counter", "Messages moved to the dead letters "
            "since the service started.", float(status["dead_lettered_since_start"]))
    out.add("nsp_uplink_clock_offset_seconds", "gauge", "The C-NSP hub's clock minus this "
            "site's, as learned when the hub refused a timestamp (0 while they agree).",
            float(status["clock_offset_s"]))
