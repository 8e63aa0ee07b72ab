"""`nsp-edge hub backup` of a running hub with messages (real uvicorn, real SQLite, signed posts
over httpx) and `restore` into a new directory: the restored hub serves the same board and
alerts, the same operator token works, and the sites' keys still verify their signatures."""

from __future__ import annotations

import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge_server.clock import ManualClock
from edge_server.hub.testing import (
    RunningHub,
    running_hub,
    sample_alert,
    sample_event,
    sample_status,
)
from edge_server.uplink.protocol import encode_batch, iso, sign_headers
from tests.conftest import ROOT

# `nsp-edge hub backup/restore` copy hub.sqlite; a hub on PostgreSQL is backed up with the
# server's pg_dump / pg_restore (docs/hub-postgres.md) and its CLI says so
pytestmark = pytest.mark.sqlite_only("backup and restore of the SQLite file")


def hub_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "edge_server.cli", "hub", *args], cwd=ROOT,
                          capture_output=True, text=True, timeout=60)


def post(hub: RunningHub, site_id: str, key: bytes, messages: list[dict[str, Any]],
         clock: ManualClock) -> None:
    body = encode_batch(site_id, str(uuid.uuid4()), clock.now(), messages)
    headers = sign_headers(site_id, key, body, int(clock.now().timestamp()))
    r = httpx.post(hub.url + "/api/v1/ingest", content=body, headers=headers, timeout=10)
    assert r.status_code == 200, r.text


def msg(kind: str, body: dict[str, Any], clock: ManualClock) -> dict[str, Any]:
    return {"id": str(uuid.uuid4()), "kind": kind, "at": iso(clock.now()), "body": body}


def board(hub: RunningHub, token: str) -> tuple[Any, Any]:
    auth = {"Authorization": f"Bearer {token}"}
    sites = httpx.get(hub.url + "/api/v1/sites", headers=auth, timeout=10).json()
    alerts = httpx.get(hub.url + "/api/v1/alerts", headers=auth, timeout=10).json()
    return sites, alerts


def test_backup_of_a_running_hub_restores_to_the_same_board(tmp_path: Path) -> None:
    clock = ManualClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    old, new, out = tmp_path / "hub", tmp_path / "restored", tmp_path / "backup" / "hub.sqlite"
    out.parent.mkdir()
    with running_hub(old, clock=clock) as hub:
        token = hub.store.add_user("olga", "operator")
        keys = {s: hub.store.add_site(s, clock.now()).encode() for s in ("nsp-a", "nsp-b")}
        post(hub, "nsp-a", keys["nsp-a"], [
            msg("status", sample_status("NOT_READY", at=clock.now(), reasons=["FUEL_CRITICAL"]),
                clock),
            msg("alert", sample_alert("a1", clock.now()), clock)], clock)
        post(hub, "nsp-b", keys["nsp-b"], [msg("status", sample_status(at=clock.now()), clock)],
             clock)
        r = hub_cli("backup", "--data", str(old), "--out", str(out))  # the hub keeps running
        assert r.returncode == 0, r.stderr
        assert "master key" in r.stdout
        expected = board(hub, token)
        post(hub, "nsp-b", keys["nsp-b"], [msg("event", sample_event("after"), clock)], clock)
        stored_before = hub.store.count_messages()
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert not out.with_name(out.name + ".part").exists()
    with sqlite3.connect(out) as db:  # one self-contained file, as of the backup's moment
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "delete"
        assert db.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == stored_before - 1

    # Without the master key the restore says the site keys cannot be used.
    r = hub_cli("restore", "--from", str(out), "--data", str(tmp_path / "nokey"))
    assert r.returncode == 1 and "master key" in r.stderr.lower(), r.stderr
    assert "Traceback" not in r.stderr

    master = tmp_path / "master.key"  # kept apart from the backups, as the docs say
    shutil.copy2(old / "master.key", master)
    r = hub_cli("restore", "--from", str(out), "--data", str(new), "--master-key", str(master))
    assert r.returncode == 0, r.stderr
    assert "2 sites, 3 messages" in r.stdout
    assert stat.S_IMODE(new.stat().st_mode) == 0o700
    # Never over a hub that has data.
    r = hub_cli("restore", "--from", str(out), "--data", str(new), "--master-key", str(master))
    assert r.returncode == 1 and "already holds a hub database" in r.stderr

    with running_hub(new, clock=clock, master_key_file=master) as restored:
        sites, alerts = board(restored, token)
        assert (sites, alerts) == expected
        assert [s["readiness"] for s in sites["sites"]] == ["NOT_READY", "READY"]
        assert alerts["total"] == 1
        # The event posted after the backup is not in it (a site that still has it in its
        # outbox would send it again); the restored site keys still verify new posts.
        post(restored, "nsp-a", keys["nsp-a"], [msg("event", sample_event("again"), clock)], clock)
        assert restored.store.count_messages() == 4


def test_restore_refuses_what_is_not_a_hub_backup(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"this is not a database" * 100)
    r = hub_cli("restore", "--from", str(junk), "--data", str(tmp_path / "a"))
    assert r.returncode == 1 and "not a hub backup" in r.stderr and "Traceback" not in r.stderr
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as db:
        db.execute("CREATE TABLE t (x)")
    r = hub_cli("restore", "--from", str(other), "--data", str(tmp_path / "b"))
    assert r.returncode == 1 and "not a hub database" in r.stderr
    r = hub_cli("backup", "--data", str(tmp_path / "nothing"), "--out", str(tmp_path / "x"))
    assert r.returncode == 1 and "no hub database" in r.stderr


def test_backup_during_a_burst_is_consistent_and_the_hub_keeps_answering(tmp_path: Path) -> None:
    clock = ManualClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))
    out = tmp_path / "hub-backup.sqlite"
    with running_hub(tmp_path / "hub", clock=clock) as hub:
        key = hub.store.add_site("nsp-a", clock.now()).encode()
        stop, going = threading.Event(), threading.Event()
        posted: list[int] = []
        failed: list[BaseException] = []

        def burst() -> None:
            try:
                while not stop.is_set():
                    post(hub, "nsp-a", key, [msg("event", sample_event("x"), clock)
                                             for _ in range(20)], clock)
                    posted.append(20)
                    if len(posted) >= 5:  # writes are going on when the backup starts
                        going.set()
            except BaseException as exc:  # noqa: BLE001 - reported below
                failed.append(exc)
                going.set()

        sender = threading.Thread(target=burst)
        sender.start()
        try:
            assert going.wait(30)
            r = hub_cli("backup", "--data", str(hub.store.path.parent), "--out", str(out))
        finally:
            stop.set()
            sender.join(timeout=30)
        assert failed == []  # every post answered 200 during the backup
        assert r.returncode == 0, r.stderr
        final_ids = {m["id"] for m in hub.store.messages("nsp-a")}
    with sqlite3.connect(out) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        ids = [row[0] for row in db.execute("SELECT id FROM messages")]
    # A snapshot of one moment: whole batches (20 each, one transaction), all of them stored.
    assert len(ids) % 20 == 0 and 100 <= len(ids) <= sum(posted)
    assert set(ids) <= final_ids
