"""Start a real hub (uvicorn on localhost) for tests and the demo.

with running_hub(tmp_path / "hub", clock=ManualClock()) as hub:   # in a thread
    key = hub.store.add_site("nsp-a", hub.clock.now()); hub.url; hub.stop(); hub.start()

proc = start_hub_process(data_dir, port)   # `nsp-edge hub` as a subprocess; wait_http(url)
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from edge_server.clock import Clock, SystemClock
from edge_server.hub.app import HubSettings, create_app
from edge_server.hub.store import HubStore


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class RunningHub:
    """A hub served by uvicorn in a background thread; stop() and start() simulate an outage.

    Port 0: the first start() listens on a port the kernel picks (no bind-and-release race with
    other processes) and sets port and url from it; a restart listens on that same port again.
    """

    def __init__(
        self,
        data_dir: Path,
        clock: Clock,
        settings: HubSettings,
        port: int,
        master_key_file: Path | None = None,
    ) -> None:
        self.data_dir = data_dir
        self.clock = clock
        self.settings = settings
        self.port = port
        self.url = f"http://127.0.0.1:{port}"  # set again by start() when port is 0
        self.store = HubStore(data_dir, master_key_file)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def start(self, timeout_s: float = 10.0) -> None:
        app = create_app(self.store, self.clock, self.settings)
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            lifespan="off",
            access_log=False,
            proxy_headers=False,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(target=server.run, name=f"hub:{self.port}", daemon=True)
        thread.start()
        deadline = time.monotonic() + timeout_s
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                thread.join(timeout=10)
                raise RuntimeError(f"hub did not start on port {self.port}")
            time.sleep(0.01)
        self._server, self._thread = server, thread
        if self.port == 0:
            self.port = int(server.servers[0].sockets[0].getsockname()[1])
            self.url = f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def close(self) -> None:
        self.stop()
        self.store.close()


@contextmanager
def running_hub(
    data_dir: Path,
    clock: Clock | None = None,
    settings: HubSettings | None = None,
    port: int | None = None,
    master_key_file: Path | None = None,
) -> Iterator[RunningHub]:
    hub = RunningHub(
        data_dir, clock or SystemClock(), settings or HubSettings(), port or 0, master_key_file
    )
    try:
        hub.start()
        yield hub
    finally:
        hub.close()


def start_hub_process(
    data_dir: Path, port: int, extra: list[str] | None = None
) -> subprocess.Popen[bytes]:
    """`nsp-edge hub --data DIR --listen 127.0.0.1:PORT` as a subprocess (caller terminates it)."""
    cmd = [
        sys.executable,
        "-m",
        "edge_server.cli",
        "hub",
        "--data",
        str(data_dir),
        "--listen",
        f"127.0.0.1:{port}",
        *(extra or []),
    ]
    return subprocess.Popen(
        cmd, env=dict(os.environ), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def wait_http(
    url: str, timeout_s: float = 15.0, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Poll until the URL answers at all (any status), or raise; with `proc` (the server
    process), raise ChildProcessError as soon as it exits (e.g. its port was taken)."""
    deadline = time.monotonic() + timeout_s
    while True:
        if proc is not None and proc.poll() is not None:
            raise ChildProcessError(f"the server exited with {proc.returncode}")
        try:
            httpx.get(url, timeout=1.0)
            return
        except httpx.HTTPError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


# -- sample message bodies (docs/interfaces.md) for tests, benchmarks and the demo ----------------
def sample_status(
    readiness: str = "READY",
    fuel_autonomy_h: float | None = 48.0,
    at: datetime | None = None,
    reasons: list[str] | None = None,
) -> dict[str, Any]:
    from edge_server.uplink.compact import REASON_TEXTS
    from edge_server.uplink.protocol import iso

    refuel = None
    if fuel_autonomy_h is not None and at is not None:
        refuel = iso(at + timedelta(hours=fuel_autonomy_h))
    return {
        "readiness": readiness,
        "reasons": [
            {
                "code": c,
                "text_en": REASON_TEXTS.get(c, (c, c))[0],
                "text_nl": REASON_TEXTS.get(c, (c, c))[1],
            }
            for c in (reasons or [])
        ],
        "fuel_autonomy_h": fuel_autonomy_h,
        "refuel_before": refuel,
        "fridge_temp_c": 5.2,
        "occupancy": 7,
        "open_alerts": 0,
        "mains_present": False,
        "gen_running": True,
    }


def sample_alert(
    alert_id: str,
    at: datetime,
    state: str = "raised",
    code: str = "fridge_high",
    severity: str = "critical",
) -> dict[str, Any]:
    from edge_server.uplink.protocol import iso

    return {
        "alert_id": alert_id,
        "code": code,
        "severity": severity,
        "state": state,
        "raised_at": iso(at),
        "acknowledged_at": iso(at) if state == "acknowledged" else None,
        "acknowledged_by": "site" if state == "acknowledged" else None,
        "cleared_at": iso(at) if state == "cleared" else None,
        "text_en": "Medicine fridge above 8 °C",
        "text_nl": "Medicijnkoelkast boven 8 °C",
        "channel": "fridge.temp_c",
        "value": 9.1,
    }


def sample_event(code: str = "NODE_REBOOTED", **extra: Any) -> dict[str, Any]:
    """An event body as the edge's rules send it (docs/schemas/event-body.json)."""
    return {
        "code": code,
        "text_en": "Node restarted",
        "text_nl": "Node herstart",
        "subject": "power",
        "at": None,
        "value": None,
    } | extra


def sample_gentest(
    test_id: int,
    ended_at: datetime,
    outcome: str = "PASSED",
    started_by: str = "jan (technician)",
    ran_s: float | None = 1800.0,
    site_id: str = "nsp-a",
) -> dict[str, Any]:
    """A finished generator test as the edge sends it (docs/schemas/gentest-body.json)."""
    from edge_server.gentest.record import OUTCOME_TEXTS, read_outcome
    from edge_server.uplink.protocol import iso

    # an earlier word (FAILED_TO_START...) gives the four-word outcome and how it ended
    result, end = read_outcome(outcome, None)
    started = ended_at - timedelta(seconds=(ran_s or 0) + 120)
    en, nl = OUTCOME_TEXTS[result]
    return {
        "id": test_id,
        "site_id": site_id,
        "node": "power",
        "started_by": started_by,
        "started_at": iso(started),
        "ended_at": iso(ended_at),
        "ended_by": None,
        "outcome": result.value,
        "end": None if end is None else end.value,
        "passed": result.passed,
        "outcome_en": en,
        "outcome_nl": nl,
        "planned_s": 1800.0,
        "start_time_s": 6.5,
        "ran_s": ran_s,
        "crank_min_v": 10.4,
        "starter_v_before": 12.6,
        "fuel_start_l": 410.0,
        "fuel_end_l": 408.3,
        "fuel_used_l": 1.7,
        "run_hours_start_h": 120.0,
        "run_hours_end_h": 120.5,
        "criteria": [
            {
                "code": "LOAD",
                "ok": None,
                "value": None,
                "limit": ">= 30 % nameplate kW",
                "text_en": "Load: not measured by the system; record it on the report",
                "text_nl": "Belasting: niet gemeten door het systeem; noteer op het rapport",
            }
        ],
        "reasons": [] if result.passed else ["START_TIME"],
        "notes": "monthly test",
    }
