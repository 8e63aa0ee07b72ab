"""Grafana dashboards as code: the JSON is current, and every query runs on a real InfluxDB 1.6.7.

Points are written with the edge's own line-protocol function (edge_server.storage.influx.line),
so a change of the sink's schema breaks this test instead of silently emptying the dashboards.
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from edge_server.storage.influx import line
from tests.conftest import ROOT, free_port, need_tool

T0_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z
SITE = "nsp-test-01"


def _load_build() -> Any:
    spec = importlib.util.spec_from_file_location("dash_build", ROOT / "dashboards" / "build.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["dash_build"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_committed_json_is_generated_from_build_script() -> None:
    build = _load_build()
    for name, make in build.DASHBOARDS.items():
        committed = (ROOT / "dashboards" / name).read_text(encoding="utf-8")
        assert committed == build.render(make), (
            f"dashboards/{name} drifted: python dashboards/build.py"
        )


@pytest.fixture(scope="module")
def influx(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    influxd = need_tool("influxd", "apt-get install -y influxdb")
    d = tmp_path_factory.mktemp("influx")
    # influxd cannot report ports it picked: when another process takes a free_port() first,
    # influxd exits at start-up; start it again on new ports (a start-up retry, not a wait).
    for attempt in range(3):
        http_port, rpc_port = free_port(), free_port()
        (d / "influxdb.conf").write_text(
            f'reporting-disabled = true\nbind-address = "127.0.0.1:{rpc_port}"\n'
            f'[meta]\n  dir = "{d}/meta"\n'
            f'[data]\n  dir = "{d}/data"\n  wal-dir = "{d}/wal"\n  query-log-enabled = false\n'
            f'[http]\n  bind-address = "127.0.0.1:{http_port}"\n  log-enabled = false\n'
            "[monitor]\n  store-enabled = false\n[continuous_queries]\n  enabled = false\n"
        )
        proc = subprocess.Popen([influxd, "run", "-config", str(d / "influxdb.conf")],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        url = f"http://127.0.0.1:{http_port}"
        try:
            deadline = time.monotonic() + 60  # generous: a busy 2-core CI machine
            while proc.poll() is None:  # wait for the real server to start
                try:
                    if httpx.get(f"{url}/ping", timeout=0.5).status_code == 204:
                        break
                except httpx.TransportError:
                    pass
                assert time.monotonic() < deadline, "influxd did not start"
                time.sleep(0.05)
            if proc.poll() is not None:
                assert attempt < 2, f"influxd exited at start-up with {proc.returncode}"
                continue
            httpx.post(f"{url}/query", data={"q": "CREATE DATABASE nsp"}).raise_for_status()
            yield url
            return
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def _write_site(url: str) -> dict[str, float]:
    """One hour of data, a point per minute per channel; returns the last value per channel."""
    channels = {
        ("fridge", "fridge_temp_c", "°C"): lambda m: 4.0 + (m % 10) * 0.1,
        ("fridge", "ambient_temp_c", "°C"): lambda m: 20.0,
        ("fridge", "door_open", ""): lambda m: float(m % 2),
        ("power", "fuel_l", "L"): lambda m: 1000.0 - m,
        ("power", "mains_present", ""): lambda m: 1.0,
        ("power", "gen_running", ""): lambda m: 0.0,
        ("power", "battery_v", "V"): lambda m: 12.6,
        ("power", "starter_battery_v", "V"): lambda m: 12.5,
        ("power", "battery_soc_pct", "%"): lambda m: 95.0,
        ("entrance", "occupancy", ""): lambda m: float(m // 10),
    }
    lines, last = [], {}
    for minute in range(60):
        for (node, channel, unit), f in channels.items():
            value = f(minute)
            tags = {"site": SITE, "node": node, "channel": channel, "unit": unit}
            lines.append(line("nsp", tags, value, T0_MS + minute * 60_000))
            last[channel] = value
    # and another site, which the $site variable must keep out
    lines.append(line("nsp", {"site": "other", "node": "fridge", "channel": "fridge_temp_c",
                              "unit": "°C"}, 99.0, T0_MS))
    r = httpx.post(f"{url}/write", params={"db": "nsp", "precision": "ms"},
                   content="\n".join(lines).encode())
    assert r.status_code == 204, r.text
    return last


def _run(url: str, q: str) -> list[dict[str, Any]]:
    q = (q.replace("$site", SITE)
          .replace("$timeFilter", f"time >= {T0_MS}ms AND time < {T0_MS + 3_600_000}ms")
          .replace("$__interval", "1m"))
    r = httpx.get(f"{url}/query", params={"db": "nsp", "q": q})
    r.raise_for_status()
    result = r.json()["results"][0]
    assert "error" not in result, f"{q}: {result['error']}"
    series: list[dict[str, Any]] = result.get("series", [])
    return series


def test_every_panel_query_returns_the_written_data(influx: str) -> None:
    last = _write_site(influx)
    dash = json.loads((ROOT / "dashboards" / "nsp-site.json").read_text(encoding="utf-8"))
    checked = 0
    for panel in dash["panels"]:
        for target in panel["targets"]:
            series = _run(influx, target["query"])
            assert series, f"panel {panel['title']!r}: query returned nothing: {target['query']}"
            values = [v[1] for v in series[0]["values"] if v[1] is not None]
            assert len(values) == 60, f"{panel['title']}: one value per minute expected"
            channel = target["query"].split("\"channel\" = '")[1].split("'")[0]
            assert values[-1] == pytest.approx(last[channel]), panel["title"]
            assert 99.0 not in values, "another site's data leaked into the panel"
            checked += 1
    assert checked >= 12


def test_site_variable_lists_sites(influx: str) -> None:
    _write_site(influx)
    dash = json.loads((ROOT / "dashboards" / "nsp-site.json").read_text(encoding="utf-8"))
    q = dash["templating"]["list"][0]["query"]
    series = _run(influx, q)
    sites = {row[1] for row in series[0]["values"]}
    assert {SITE, "other"} <= sites
