"""An alert raised at the site reaches the C-NSP hub exactly once, whatever kills the edge.

The rules commit an alert and its uplink message in ONE transaction of site.db (the hand-off
table); the uplink moves the message into its outbox under the same id, then lets it go in
site.db; at its next start it moves whatever a crash left (rules/alerts.py). Before this, the
alert and the outbox were two commits, and a crash between them left an alert raised at the
site that the hub never heard of.

The test runs the real edge Service (rules + uplink) in a child process and kills it with
SIGKILL at the N-th SQL statement of the evaluation that raises the alert, for every N in turn,
on both connections (site.db, outbox.sqlite). Then a fresh Service on the same files, with the
uplink pointed at a real hub, drains the outbox: the hub must hold each alert the site holds
exactly once, and nothing the site does not hold.
"""

from __future__ import annotations

import asyncio
import json
import signal
import sqlite3
import subprocess
import sys
import time
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from edge_server.clock import ManualClock
from edge_server.config import SiteConfig
from edge_server.hub.testing import running_hub
from edge_server.service import Part, Service
from tests.conftest import ROOT

T0 = datetime(2026, 3, 1, tzinfo=UTC)

# The child: evaluate once a minute (nothing answers, so NODE_OFFLINE alerts are raised);
# `arm_at` is the evaluation whose SQL statements are counted; SIGKILL at statement `kill_at`.
_CHILD = r"""
import asyncio, json, os, signal, sys
from datetime import UTC, datetime
from edge_server.clock import ManualClock
from edge_server.config import SiteConfig
from edge_server.service import Part, Service

raw, arm_at, kill_at = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
seen = 0

def trace(sql):
    global seen
    seen += 1
    if seen == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)

async def main():
    clock = ManualClock(datetime(2026, 3, 1, tzinfo=UTC))
    service = Service(SiteConfig.model_validate(raw), clock, parts=Part.RULES | Part.UPLINK)
    await service.start(run_poller=False)
    engine = service.rules.engine
    for i in range(1, arm_at + 1):
        clock.advance(60)
        if i == arm_at and kill_at:
            engine.conn.set_trace_callback(trace)
            service.uplink.uplink.outbox._db.set_trace_callback(trace)
        before = engine.store.count_open()
        engine.evaluate(service.state, clock.now())
        if not kill_at and engine.store.count_open() > before:
            print(i)  # the first evaluation that raises
            break
    os._exit(0)  # no clean stop: as a power cut would leave the files

asyncio.run(main())
"""


def site_raw(data_dir: Path, key_file: Path, hub_url: str) -> dict[str, Any]:
    raw = tomllib.loads((ROOT / "examples" / "site.toml").read_text())
    raw["storage"] = {"data_dir": str(data_dir)}
    raw["uplink"] = {"enabled": True, "hub_url": hub_url, "key_file": str(key_file),
                     "backoff_min_s": 3600, "backoff_max_s": 3600}
    return raw


def child(raw: dict[str, Any], arm_at: int, kill_at: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _CHILD, json.dumps(raw), str(arm_at),
                           str(kill_at)], cwd=ROOT, capture_output=True, text=True, timeout=60)


def site_alerts(data_dir: Path) -> set[int]:
    db = sqlite3.connect(data_dir / "site.db")
    try:
        return {int(r[0]) for r in db.execute("SELECT id FROM alerts WHERE kind = 'alert'")}
    finally:
        db.close()


async def deliver(raw: dict[str, Any]) -> None:
    """A fresh edge on the same files: its start moves what a crash left; drain the outbox."""
    service = Service(SiteConfig.model_validate(raw), ManualClock(T0),
                      parts=Part.RULES | Part.UPLINK)
    await service.start(run_poller=False)
    try:
        uplink = service.uplink
        assert uplink is not None and uplink.uplink is not None
        deadline = time.monotonic() + 15
        while uplink.uplink.outbox.pending():
            assert time.monotonic() < deadline, "the outbox did not drain"
            uplink.uplink.notify()
            await asyncio.sleep(0.02)
    finally:
        await service.stop()


async def test_kill_9_between_the_raise_and_the_outbox_loses_and_doubles_nothing(
    tmp_path: Path,
) -> None:
    clock = ManualClock(T0)
    with running_hub(tmp_path / "hub", clock=clock) as hub:
        nowhere = "http://127.0.0.1:9"  # the child never reaches a hub: nothing leaves early
        probe = tmp_path / "probe"
        key = tmp_path / "probe.key"
        key.write_text(hub.store.add_site("nsp-probe", clock.now()))
        run = child(site_raw(probe, key, nowhere), 60, 0)
        assert run.returncode == 0, run.stderr
        arm_at = int(run.stdout.split()[0])

        outcomes: list[str] = []
        for kill_at in range(1, 200):
            site_id = f"nsp-k{kill_at}"
            data, key = tmp_path / site_id, tmp_path / f"{site_id}.key"
            key.write_text(hub.store.add_site(site_id, clock.now()))
            raw = site_raw(data, key, nowhere)
            raw["site"]["id"] = site_id
            run = child(raw, arm_at, kill_at)
            killed = run.returncode == -signal.SIGKILL
            assert killed or run.returncode == 0, run.stderr

            raised = site_alerts(data)
            raw["uplink"]["hub_url"] = hub.url
            await deliver(raw)
            at_hub = [int(m["body"]["alert_id"]) for m in hub.store.messages(site_id, "alert")
                      if m["body"]["state"] == "raised"]
            assert sorted(at_hub) == sorted(raised), (kill_at, at_hub, raised)
            outcomes.append("raised" if raised else "none")
            if not killed:
                break
    # Killed at every statement of that evaluation in turn, then once it ran to its end.
    assert killed is False
    assert outcomes[0] == "none" and outcomes[-1] == "raised" and len(outcomes) >= 5
    assert outcomes == sorted(outcomes, key=lambda o: o == "raised")  # one switch: the commit
