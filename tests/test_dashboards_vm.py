"""The sink-to-dashboard chain on one server: the edge's InfluxDB sink writes into a real
VictoriaMetrics, and every query of dashboards/nsp-site-prometheus.json (PromQL for Grafana's
Prometheus data source) runs there on the points the sink itself wrote, returning the values
that were polled, per node. The site variable's query lists the site."""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge_server.clock import ManualClock
from edge_server.state import Quality, Reading
from tests.conftest import ROOT
from tests.test_influx_sink import VictoriaMetrics, sink_service, vm  # noqa: F401  (fixture)

T0 = datetime(2026, 3, 1, tzinfo=UTC)
DASH = ROOT / "dashboards" / "nsp-site-prometheus.json"
CYCLES = 60  # 2 minutes of polls, 2 s apart


def _exprs(doc: dict[str, Any]) -> list[str]:
    return [t["expr"] for p in doc["panels"] for t in p.get("targets", [])]


def _get(vm: VictoriaMetrics, path: str, **params: str) -> Any:  # noqa: F811
    q = urllib.parse.urlencode(params)
    with urllib.request.urlopen(f"{vm.url}{path}?{q}", timeout=10) as r:
        return json.loads(r.read())


async def test_every_panel_query_answers_from_what_the_sink_wrote(
        vm: VictoriaMetrics, tmp_path: Path) -> None:  # noqa: F811
    doc = json.loads(DASH.read_text())
    exprs = _exprs(doc)
    channels = sorted({re.search(r'channel="([^"]+)"', e).group(1) for e in exprs})  # type: ignore[union-attr]
    assert len(exprs) >= 10 and "fridge_temp_c" in channels
    clock = ManualClock(T0)
    service = sink_service(vm, tmp_path / "data", clock)
    await service.start(run_poller=False)
    try:
        for k in range(CYCLES):
            at = clock.now()
            for i, ch in enumerate(channels):
                service.state.put(Reading("n1", ch, float(i * 100 + k), "", at, Quality.GOOD))
            service.state.notify(at)
            clock.advance(2)
        assert service.storage is not None and service.storage.influx is not None
        service.storage.influx.flush_all()
    finally:
        await service.stop()
    urllib.request.urlopen(f"{vm.url}/internal/force_flush", timeout=10).close()

    sites = _get(vm, "/api/v1/label/site/values")["data"]
    assert sites == ["test-site"]  # the dashboard's $site variable: label_values(nsp_value, site)
    assert "label_values(nsp_value, site)" in json.dumps(doc["templating"])
    start, end = T0.timestamp(), T0.timestamp() + CYCLES * 2
    for expr in exprs:
        q = expr.replace("$site", "test-site").replace("$__interval", "1m")
        res = _get(vm, "/api/v1/query_range", query=q, start=str(start), end=str(end),
                   step="60")
        assert res["status"] == "success", (expr, res)
        series = res["data"]["result"]
        assert len(series) == 1 and series[0]["metric"]["node"] == "n1", (expr, series)
        channel = re.search(r'channel="([^"]+)"', expr).group(1)  # type: ignore[union-attr]
        base = channels.index(channel) * 100
        values = [float(v) for _, v in series[0]["values"]]
        # every value is one the sink wrote for this channel (its own range, never another's)
        assert values and all(base <= v <= base + CYCLES - 1 for v in values), (expr, values)
        if expr.startswith("last_over_time"):
            assert values[-1] == base + CYCLES - 1  # the newest poll
