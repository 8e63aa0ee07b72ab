"""Grafana dashboards for an NSP site, as code: `python dashboards/build.py` writes the JSON.

The data comes from the edge's optional InfluxDB sink (edge_server/storage/influx.py), which writes
one measurement `nsp` with tags site, node, channel (the register name), unit and one field `value`.
Two flavours of the same panels:
- nsp-site-prometheus.json: PromQL/MetricsQL for Grafana's Prometheus data source on
  VictoriaMetrics, which takes the sink's line protocol itself (as the metric `nsp_value` with the
  same labels): one server both receives the sink's writes and answers the dashboard
  (tests/test_dashboards_vm.py runs every panel's query on the points the sink wrote);
- nsp-site.json: InfluxQL for an InfluxDB 1.x data source (tests/test_dashboards.py runs every
  query against a real InfluxDB 1.6.7 holding points in the sink's line protocol).
Both tests fail when a generated JSON file drifts from this script.

Built with grafanalib, not grafana-foundation-sdk: grafanalib has an InfluxDB (InfluxQL) target,
the foundation SDK has none and would need a hand-written Dataquery class. grafanalib is a dev-only
build tool here: the committed output is plain dashboard JSON that any Grafana imports.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path

from grafanalib._gen import DashboardEncoder
from grafanalib.core import (
    Dashboard,
    GridPos,
    Stat,
    StateTimeline,
    Target,
    Template,
    Templating,
    Threshold,
    TimeSeries,
)
from grafanalib.influxdb import InfluxDBTarget

HERE = Path(__file__).resolve().parent
DATASOURCE = "${DS_NSP}"  # chosen at import time in Grafana (the InfluxDB data source)
MEASUREMENT = "nsp"


@dataclass(frozen=True)
class Series:
    """One channel shown in a panel: the register name and a legend text (NL / EN)."""

    channel: str
    legend: str


def query(channel: str, agg: str = "mean") -> str:
    """InfluxQL for one channel of the selected site, per node, downsampled to the panel width."""
    return (
        f'SELECT {agg}("value") FROM "{MEASUREMENT}" '
        f"WHERE \"site\" =~ /^$site$/ AND \"channel\" = '{channel}' AND $timeFilter "
        f'GROUP BY time($__interval), "node" fill(null)'
    )


METRIC = "nsp_value"  # what VictoriaMetrics names the sink's measurement `nsp`, field `value`
PROM_AGG = {"mean": "avg_over_time", "last": "last_over_time", "max": "max_over_time"}


def promql(channel: str, agg: str = "mean") -> str:
    """PromQL (MetricsQL runs it too) for one channel of the selected site, per node, one value
    per panel step; a step without points stays empty (a gap is never drawn over)."""
    return (f'{PROM_AGG[agg]}({METRIC}{{site=~"$site", channel="{channel}"}}'
            f"[$__interval])")


FLAVOUR = "influxql"  # set by build(): "influxql" or "prometheus"


def targets(series: list[Series], agg: str = "mean") -> list[InfluxDBTarget] | list[Target]:
    if FLAVOUR == "prometheus":
        return [Target(expr=promql(s.channel, agg), legendFormat=f"{s.legend} ({{{{node}}}})",
                       refId=chr(ord("A") + i), datasource=DATASOURCE)
                for i, s in enumerate(series)]
    return [
        InfluxDBTarget(
            query=query(s.channel, agg), alias=f"{s.legend} ($tag_node)", rawQuery=True,
            refId=chr(ord("A") + i), datasource=DATASOURCE,
        )
        for i, s in enumerate(series)
    ]


def timeseries(title: str, series: list[Series], unit: str, pos: GridPos,
               thresholds: list[Threshold] | None = None, agg: str = "mean") -> TimeSeries:
    return TimeSeries(
        title=title, dataSource=DATASOURCE, targets=targets(series, agg), unit=unit,
        gridPos=pos, thresholds=thresholds or [], thresholdsStyleMode="line+area" if thresholds
        else "off", spanNulls=False,  # a gap is a gap: unavailable data is never drawn over
    )


def site_dashboard() -> Dashboard:
    fridge_thresholds = [
        Threshold("blue", 0, 0.0),
        Threshold("green", 1, 2.0),
        Threshold("red", 2, 8.0),
    ]
    panels = [
        Stat(
            title="Koelkast nu / Fridge now", dataSource=DATASOURCE,
            targets=targets([Series("fridge_temp_c", "koelkast / fridge")], "last"),
            format="celsius", gridPos=GridPos(h=5, w=6, x=0, y=0), reduceCalc="lastNotNull",
            thresholds=fridge_thresholds,
        ),
        Stat(
            title="Brandstof / Fuel", dataSource=DATASOURCE,
            targets=targets([Series("fuel_l", "liter")], "last"),
            format="litre", gridPos=GridPos(h=5, w=6, x=6, y=0), reduceCalc="lastNotNull",
        ),
        Stat(
            title="Bezetting / Occupancy", dataSource=DATASOURCE,
            targets=targets([Series("occupancy", "personen / people")], "last"),
            format="none", gridPos=GridPos(h=5, w=6, x=12, y=0), reduceCalc="lastNotNull",
        ),
        Stat(
            title="Startaccu / Starter battery", dataSource=DATASOURCE,
            targets=targets([Series("starter_battery_v", "V")], "last"),
            format="volt", gridPos=GridPos(h=5, w=6, x=18, y=0), reduceCalc="lastNotNull",
        ),
        timeseries(
            "Medicijnkoelkast / Medicine fridge (2-8 °C)",
            [Series("fridge_temp_c", "koelkast / fridge"),
             Series("ambient_temp_c", "ruimte / ambient")],
            "celsius", GridPos(h=8, w=12, x=0, y=5), fridge_thresholds,
        ),
        timeseries(
            "Brandstof / Fuel", [Series("fuel_l", "liter")], "litre",
            GridPos(h=8, w=12, x=12, y=5),
        ),
        StateTimeline(
            title="Net en aggregaat / Mains and generator", dataSource=DATASOURCE,
            targets=targets([Series("mains_present", "net / mains"),
                             Series("gen_running", "aggregaat / generator"),
                             Series("door_open", "koelkastdeur / fridge door")], "last"),
            gridPos=GridPos(h=6, w=24, x=0, y=13),
        ),
        timeseries(
            "Accu's / Batteries",
            [Series("battery_v", "accubank / battery bank"),
             Series("starter_battery_v", "startaccu / starter")],
            "volt", GridPos(h=8, w=12, x=0, y=19),
        ),
        timeseries(
            "Laadtoestand / State of charge", [Series("battery_soc_pct", "SoC")], "percent",
            GridPos(h=8, w=12, x=12, y=19),
        ),
        timeseries(
            "Bezoekers / Visitors", [Series("occupancy", "binnen / inside")], "none",
            GridPos(h=8, w=24, x=0, y=27), agg="max",
        ),
    ]
    return Dashboard(
        title="NSP locatie / NSP site",
        uid="nsp-site",
        description=(
            "Live en historische waarden van één noodsteunpunt / one emergency support point"
        ),
        tags=["nsp"],
        timezone="Europe/Amsterdam",  # the site's zone for people, whatever the browser's
        refresh="30s",
        templating=Templating(list=[
            Template(
                name="site", label="Locatie / Site", dataSource=DATASOURCE,
                query=(f"label_values({METRIC}, site)" if FLAVOUR == "prometheus"
                       else f'SHOW TAG VALUES FROM "{MEASUREMENT}" WITH KEY = "site"'),
            ),
        ]),
        panels=panels,
    ).auto_panel_ids()


def flavoured(flavour: str) -> Dashboard:
    global FLAVOUR
    FLAVOUR = flavour
    try:
        dash = site_dashboard()
    finally:
        FLAVOUR = "influxql"
    if flavour == "prometheus":
        dash.uid, dash.title = "nsp-site-prom", dash.title + " (VictoriaMetrics / Prometheus)"
    return dash


def site_influxql() -> Dashboard:
    return flavoured("influxql")


def site_prometheus() -> Dashboard:
    return flavoured("prometheus")


DASHBOARDS = {"nsp-site.json": site_influxql, "nsp-site-prometheus.json": site_prometheus}


def render(build: object) -> str:
    dash = build() if callable(build) else build
    return json.dumps(dash.to_json_data(), cls=DashboardEncoder, indent=2, sort_keys=True) + "\n"


def main() -> int:
    for name, build in DASHBOARDS.items():
        (HERE / name).write_text(render(build), encoding="utf-8")
        print(f"wrote dashboards/{name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
