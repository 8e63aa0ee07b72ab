"""`nsp-edge run` as a real subprocess for tests that kill it (kill -9) or pair it with other
processes (a hub, the simulated radio): its site.toml, an operator's token, start and stop.

    toml = site_toml(data_dir, hub_url, key_file, radio={"port": ..., "sf": 7})
    token = add_user(data_dir, "anna", Role.OPERATOR)
    edge = EdgeProcess(config_path); edge.start(); edge.url; edge.kill9(); edge.stop()
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

from edge_server.auth import Role, UserStore
from edge_server.clock import SystemClock
from edge_server.hub.testing import free_port
from edge_server.storage.component import site_db_path
from edge_server.storage.db import open_db
from edge_server.storage.sqlite import migrate_storage

SITE_ID = "test-site"


def site_toml(data_dir: Path, hub_url: str, key_file: Path,
              radio: dict[str, Any] | None = None) -> str:
    """One node on a port nobody listens on (the poller marks it offline), the uplink to
    `hub_url` retrying within a second, and optionally the [radio] section."""
    text = f"""
[site]
id = "{SITE_ID}"
[storage]
data_dir = "{data_dir}"
[[buses]]
name = "b"
kind = "tcp"
host = "127.0.0.1"
port = 1
[[nodes]]
name = "fridge1"
bus = "b"
unit = 2
roles = ["fridge"]
[uplink]
enabled = true
hub_url = "{hub_url}"
key_file = "{key_file}"
backoff_min_s = 0.2
backoff_max_s = 1.0
timeout_s = 2.0
"""
    if radio:
        # JSON spells a string, an int and a float as TOML does.
        text += "[radio]\nenabled = true\n" + "".join(
            f"{k} = {json.dumps(v)}\n" for k, v in radio.items())
    return text


def add_user(data_dir: Path, name: str, role: Role) -> str:
    """A user in the site's users table (as `nsp-edge users add`); returns the token."""
    data_dir.mkdir(parents=True, exist_ok=True)
    conn = open_db(site_db_path(data_dir))
    try:
        migrate_storage(conn)
        return UserStore(conn).add(name, role, SystemClock().now())
    finally:
        conn.close()


class EdgeProcess:
    def __init__(self, config: Path, log: Path) -> None:
        self.config = config
        self.log = log  # the edge's stderr, appended across restarts (read it when a test fails)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, token: str, timeout_s: float = 30.0) -> None:
        """Start and wait until the reports API answers for `token` (the crisis part runs)."""
        with self.log.open("ab") as err:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "edge_server.cli", "run", "--config", str(self.config),
                 "--listen", f"127.0.0.1:{self.port}"],
                stdout=subprocess.DEVNULL, stderr=err, env=dict(os.environ))
        deadline = time.monotonic() + timeout_s
        while True:
            if self.proc.poll() is not None:
                raise ChildProcessError(f"nsp-edge run exited with {self.proc.returncode}: "
                                        + self.log.read_text()[-2000:])
            try:
                if self.get("/api/v1/reports", token).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("nsp-edge run did not serve /api/v1/reports in time: "
                                   + self.log.read_text()[-2000:])
            time.sleep(0.1)

    def get(self, path: str, token: str) -> httpx.Response:
        return httpx.get(self.url + path, headers={"Authorization": f"Bearer {token}"},
                         timeout=5.0)

    def post(self, path: str, token: str, body: dict[str, Any]) -> httpx.Response:
        return httpx.post(self.url + path, json=body,
                          headers={"Authorization": f"Bearer {token}"}, timeout=5.0)

    def kill9(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)
        self.proc = None

    def stop(self) -> None:
        """SIGTERM (the service stops gracefully), SIGKILL when it does not within 10 s."""
        if self.proc is not None:
            stop_process(self.proc)
        self.proc = None


def stop_process(proc: subprocess.Popen[Any]) -> None:
    """SIGTERM, then SIGKILL when the process has not ended within 10 s; reaped either way."""
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
