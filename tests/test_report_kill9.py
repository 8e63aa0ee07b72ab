"""Kill -9 of the edge right after an emergency report was accepted: it still arrives, once.

Real processes: `nsp-edge run` (its own SQLite files, its uplink task) and `nsp-edge hub`
(uvicorn, its SQLite store). The report is posted through the site's HTTP API with an operator's
token; at the 201 the edge is killed with SIGKILL at once. The edge is started again with the
hub up; the test waits until the edge says the hub holds the report (the hub's reply named its
message id) and then counts the hub's report messages.

Two cases: the hub down while the report is typed (it can only come from the edge's files after
the restart), and the hub up (the kill races the send: the hub may hold it already, and the
restarted edge sends it again; the hub keeps each message id once).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from edge_server.auth import Role
from edge_server.hub.store import HubStore
from edge_server.hub.testing import free_port, start_hub_process, wait_http
from tests.edge_process import SITE_ID, EdgeProcess, add_user, site_toml, stop_process

DEADLINE_S = 30.0
REPORT = {"kind": "fire", "urgency": "immediate", "location": "Sporthal, kleedkamer 3",
          "people": 2, "text": "Rook uit de kleedkamer; twee kinderen nog binnen."}


class Hub:
    """`nsp-edge hub` on a port fixed before it first runs, so the edge can be pointed at it
    while it is down."""

    def __init__(self, data_dir: Path) -> None:
        self.data_dir = data_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        store = HubStore(data_dir)
        try:
            self.key = store.add_site(SITE_ID, datetime.now(UTC))
        finally:
            store.close()

    def start(self) -> None:
        self.proc = start_hub_process(self.data_dir, self.port)
        wait_http(self.url + "/", proc=self.proc)

    def stop(self) -> None:
        if self.proc is not None:
            stop_process(self.proc)
            self.proc = None

    def reports(self) -> list[dict[str, Any]]:
        store = HubStore(self.data_dir)
        try:
            return store.messages(SITE_ID, kind="report")
        finally:
            store.close()


@pytest.fixture
def parts(tmp_path: Path) -> Iterator[tuple[Hub, EdgeProcess, str]]:
    hub = Hub(tmp_path / "hub")
    key_file = tmp_path / "site.key"
    key_file.write_text(hub.key)
    config = tmp_path / "site.toml"
    config.write_text(site_toml(tmp_path / "edge", hub.url, key_file))
    token = add_user(tmp_path / "edge", "anna", Role.OPERATOR)
    edge = EdgeProcess(config, tmp_path / "edge.log")
    try:
        yield hub, edge, token
    finally:
        edge.stop()
        hub.stop()


def _until(what: str, check: Any, edge: EdgeProcess) -> Any:
    end = time.monotonic() + DEADLINE_S
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        time.sleep(0.1)
    pytest.fail(f"no {what} within {DEADLINE_S} s; edge log:\n{edge.log.read_text()[-3000:]}")


@pytest.mark.parametrize("hub_up_at_submit", [False, True], ids=["hub-down", "hub-up"])
def test_kill9_right_after_submit_the_report_arrives_once(
    parts: tuple[Hub, EdgeProcess, str], hub_up_at_submit: bool
) -> None:
    hub, edge, token = parts
    if hub_up_at_submit:
        hub.start()
    edge.start(token)
    reply = edge.post("/api/v1/reports", token, REPORT)
    edge.kill9()  # at once: nothing of the edge runs after the 201
    assert reply.status_code == 201, reply.text
    report_id = reply.json()["report"]["report_id"]
    if not hub_up_at_submit:
        assert hub.reports() == []  # nothing could have left the site
        hub.start()
    edge.start(token)

    def delivered() -> bool:
        mine = [r for r in edge.get("/api/v1/reports", token).json()["reports"]
                if r["report_id"] == report_id]
        return bool(mine and mine[0]["delivered_at"])

    _until("'delivered' for the report at the restarted edge", delivered, edge)
    held = hub.reports()
    assert len(held) == 1, held
    body = held[0]["body"]
    assert body["report_id"] == report_id and body["reported_by"] == "anna"
    assert {k: body[k] for k in REPORT} == REPORT
