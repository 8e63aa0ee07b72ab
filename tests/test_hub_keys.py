"""Site keys at the hub: encrypted at rest under a master key file, rotation with a grace period,
revocation; the CLI commands. Real SQLite files in tmp_path, a real hub over HTTP, the edge's
real Uplink client; the grace period moves with a ManualClock (no sleeps).
"""

from __future__ import annotations

import base64
import logging
import os
import sqlite3
import stat
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge_server.cli import main as cli_main
from edge_server.clock import ManualClock
from edge_server.hub.keys import MASTER_KEY_ENV, MasterKeyError, create_master_key
from edge_server.hub.store import DB_NAME, HubStore, SiteExists, UnknownSite
from edge_server.hub.testing import (
    RunningHub,
    running_hub,
    sample_alert,
    sample_event,
    sample_status,
)
from edge_server.uplink.client import Uplink
from edge_server.uplink.compact import encode_status
from edge_server.uplink.outbox import Outbox
from edge_server.uplink.protocol import encode_batch, iso, sign_headers
from edge_server.uplink.settings import UplinkSettings
from tests.conftest import ROOT

GRACE = timedelta(hours=72)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))


@pytest.fixture
def hub(tmp_path: Path, clock: ManualClock) -> Iterator[RunningHub]:
    with running_hub(tmp_path / "hub", clock=clock) as h:
        yield h


def key_forms(key: str) -> list[bytes]:
    """Every spelling of a key worth grepping for: its text, its 32 raw bytes, hex, base64."""
    raw = base64.urlsafe_b64decode(key + "=" * (-len(key) % 4))
    return [
        key.encode(),
        raw,
        raw.hex().encode(),
        raw.hex().upper().encode(),
        key.encode().hex().encode(),
        base64.b64encode(raw).rstrip(b"="),
        base64.b64encode(key.encode()).rstrip(b"=")[:40],
    ]


def leaked(data_dir: Path, keys: list[str]) -> list[str]:
    """Names of the keys found in any form in the database file or its -wal/-shm files."""
    blobs = [p.read_bytes() for p in data_dir.glob(DB_NAME + "*")]
    return [k for k in keys for form in key_forms(k) for blob in blobs if form in blob]


def post(hub: RunningHub, site_id: str, key: str | bytes, clock: ManualClock) -> httpx.Response:
    key_bytes = key.encode() if isinstance(key, str) else key
    m = {"id": str(uuid.uuid4()), "kind": "event", "at": iso(clock.now()), "body": sample_event()}
    body = encode_batch(site_id, str(uuid.uuid4()), clock.now(), [m])
    headers = sign_headers(site_id, key_bytes, body, int(clock.now().timestamp()))
    return httpx.post(hub.url + "/api/v1/ingest", content=body, headers=headers, timeout=10)


def make_old_hub_db(data_dir: Path, site_ids: list[str]) -> dict[str, str]:
    """A database as the hub before encryption left it: plain-text keys (one rotated the old
    way, by overwriting), copied mid-run with its WAL (as a backup or a crash leaves it)."""
    import secrets

    data_dir.mkdir(parents=True)
    live = data_dir.parent / "live"
    live.mkdir()
    db = sqlite3.connect(str(live / DB_NAME), isolation_level=None)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA wal_autocheckpoint=0")
    db.execute(
        "CREATE TABLE sites (id TEXT PRIMARY KEY, key TEXT NOT NULL, created_at TEXT NOT NULL, "
        "last_contact TEXT)"
    )
    keys: dict[str, str] = {}
    for site_id in site_ids:
        keys[site_id] = secrets.token_urlsafe(32)
        db.execute(
            "INSERT INTO sites(id, key, created_at) VALUES (?, ?, '2025-01-01T00:00:00Z')",
            (site_id, keys[site_id]),
        )
    db.execute("PRAGMA wal_checkpoint(PASSIVE)")  # some plain text in the main file too
    old = keys[site_ids[0]]
    keys[site_ids[0]] = secrets.token_urlsafe(32)  # `add-site` again: the old way to rotate
    db.execute("UPDATE sites SET key = ? WHERE id = ?", (keys[site_ids[0]], site_ids[0]))
    for name in (DB_NAME, DB_NAME + "-wal"):
        (data_dir / name).write_bytes((live / name).read_bytes())
    db.close()
    keys["(overwritten)"] = old
    return keys


# -- (a) keys at rest -------------------------------------------------------------------------
@pytest.mark.sqlite_only("reads hub.sqlite and its WAL file byte by byte")
def test_db_and_wal_hold_no_site_key_after_add_site_and_rotation(tmp_path: Path) -> None:
    data = tmp_path / "hub"
    store = HubStore(data)
    now = datetime(2026, 3, 1, tzinfo=UTC)
    keys = [store.add_site(f"nsp-{i}", now) for i in range(20)]
    keys.append(store.rotate_key("nsp-0", now, GRACE, "test"))
    keys.append(store.revoke_key("nsp-1", now, "test"))
    assert (data / (DB_NAME + "-wal")).exists()  # the check covers the WAL while it is live
    assert leaked(data, keys) == []
    sk = store.site_keys("nsp-0", now)
    assert sk is not None and sk.current == keys[-2].encode() and sk.previous == keys[0].encode()
    store.close()
    assert leaked(data, keys) == []
    assert stat.S_IMODE((data / "master.key").stat().st_mode) == 0o600


@pytest.mark.sqlite_only("an older hub.sqlite with plain-text keys; PostgreSQL never had them")
def test_plain_text_db_is_migrated_once_and_keys_keep_working(tmp_path, caplog) -> None:
    data = tmp_path / "hub"
    keys = make_old_hub_db(data, [f"nsp-{i}" for i in range(30)])
    assert leaked(data, list(keys.values()))  # the test can see a key when there is one
    caplog.set_level(logging.INFO, logger="edge_server.hub")
    store = HubStore(data)
    assert "encrypted 30 plain-text site key(s)" in caplog.text
    assert str(data / "master.key") in caplog.text
    assert leaked(data, list(keys.values())) == []
    now = datetime(2026, 3, 1, tzinfo=UTC)
    for site_id in (f"nsp-{i}" for i in range(30)):
        got = store.site_keys(site_id, now)
        assert got is not None and got.current == keys[site_id].encode()
    store.close()
    caplog.clear()
    again = HubStore(data)  # idempotent: nothing left to migrate, the same keys
    assert "encrypted" not in caplog.text
    got = again.site_keys("nsp-3", now)
    assert got is not None and got.current == keys["nsp-3"].encode()
    again.close()
    assert leaked(data, list(keys.values())) == []
    for k in keys.values():
        assert k not in caplog.text


@pytest.mark.sqlite_only("the plain-text key migration of an older hub.sqlite")
def test_migration_is_one_transaction(tmp_path: Path, monkeypatch) -> None:
    data = tmp_path / "hub"
    keys = make_old_hub_db(data, ["nsp-a", "nsp-b", "nsp-c"])
    from edge_server.hub import keys as keys_mod

    calls = 0
    real_seal = keys_mod.SiteKeyBox.seal

    def failing_seal(self: Any, site_id: str, key: str) -> str:
        nonlocal calls
        calls += 1
        if calls == 2:
            raise RuntimeError("power cut")
        return real_seal(self, site_id, key)

    monkeypatch.setattr(keys_mod.SiteKeyBox, "seal", failing_seal)
    with pytest.raises(RuntimeError):
        HubStore(data)
    db = sqlite3.connect(str(data / DB_NAME))
    rows = dict(db.execute("SELECT id, key FROM sites").fetchall())
    db.close()
    assert rows == {s: keys[s] for s in ("nsp-a", "nsp-b", "nsp-c")}  # all still plain
    monkeypatch.setattr(keys_mod.SiteKeyBox, "seal", real_seal)
    store = HubStore(data)
    assert leaked(data, [keys[s] for s in ("nsp-a", "nsp-b", "nsp-c")]) == []
    store.close()


# -- (b) a row copied to another site ---------------------------------------------------------
def test_key_row_copied_to_another_site_does_not_decrypt(tmp_path, clock, caplog) -> None:
    data = tmp_path / "hub"
    store = HubStore(data)
    key_a = store.add_site("nsp-a", clock.now())
    key_b = store.add_site("nsp-b", clock.now())
    with store.db.write() as db:  # SQLite or PostgreSQL, whichever the hub tests run on
        db.execute(
            "UPDATE sites SET key = (SELECT key FROM sites WHERE id = 'nsp-a') WHERE id = 'nsp-b'"
        )
    store.close()
    caplog.set_level(logging.DEBUG, logger="edge_server.hub")
    with running_hub(data, clock=clock) as hub:
        # Said at start, at ERROR, naming the site and the fix ...
        errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
        assert len(errors) == 1
        assert "nsp-b" in errors[0] and "does not decrypt" in errors[0]
        assert "revoke-key nsp-b" in errors[0]
        caplog.clear()
        for key in (key_a, key_b):  # neither a's key (the copied row) nor b's own opens b
            r = post(hub, "nsp-b", key, clock)
            assert r.status_code == 401 and r.json()["code"] == "bad_signature"
            assert "re-key" in r.json()["error"]
        # ... and repeated per request at DEBUG only (a site retries every few minutes).
        levels = [r.levelno for r in caplog.records if "does not decrypt" in r.getMessage()]
        assert levels == [logging.DEBUG, logging.DEBUG]
        assert post(hub, "nsp-a", key_a, clock).status_code == 200
        assert hub.store.count_messages() == 1
        new_b = hub.store.revoke_key("nsp-b", clock.now(), "test")  # the fix the log names
        assert post(hub, "nsp-b", new_b, clock).status_code == 200
    assert key_a not in caplog.text and key_b not in caplog.text


# -- (c) master key missing or wrong ----------------------------------------------------------
def encrypted_hub(data: Path, master: Path) -> None:
    """A hub database with one site, its key encrypted with the master key in `master`."""
    store = HubStore(data, master)
    store.add_site("nsp-a", datetime(2026, 3, 1, tzinfo=UTC))
    store.close()


def test_wrong_or_missing_master_key_refuses_to_start(tmp_path: Path) -> None:
    data = tmp_path / "hub"
    master = tmp_path / "secrets" / "hub-master.key"
    encrypted_hub(data, master)
    assert not (data / "master.key").exists()
    good = master.read_bytes()

    with pytest.raises(MasterKeyError) as forgot:  # started without --master-key
        HubStore(data)
    assert str(data / "master.key") in str(forgot.value) and "missing" in str(forgot.value)
    assert not (data / "master.key").exists()

    master.unlink()
    create_master_key(master)  # a valid key, just not this hub's
    with pytest.raises(MasterKeyError) as wrong:
        HubStore(data, master)
    assert str(master) in str(wrong.value) and "backup" in str(wrong.value)

    master.unlink()
    with pytest.raises(MasterKeyError) as missing:
        HubStore(data, master)
    assert str(master) in str(missing.value) and "missing" in str(missing.value)
    assert not master.exists()  # never a fresh key for an encrypted database

    master.write_text("not a key\n")
    with pytest.raises(MasterKeyError) as garbage:
        HubStore(data, master)
    assert str(master) in str(garbage.value)

    master.write_bytes(good)
    HubStore(data, master).close()


def test_hub_start_refused_with_a_message_naming_the_file(tmp_path: Path) -> None:
    data = tmp_path / "hub"
    master = tmp_path / "keys" / "m.key"
    encrypted_hub(data, master)
    master.unlink()
    env = dict(os.environ)
    env[MASTER_KEY_ENV] = str(master)
    proc = subprocess.run(
        [sys.executable, "-m", "edge_server.cli", "hub", "--data", str(data),
         "--listen", "127.0.0.1:1"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 1
    assert "not started" in proc.stderr and str(master) in proc.stderr
    assert "missing" in proc.stderr and "--master-key" in proc.stderr


# -- (d) rotation, grace period, revocation ---------------------------------------------------
def test_both_keys_work_during_the_grace_period_only_the_new_after(hub, clock, caplog) -> None:
    caplog.set_level(logging.INFO, logger="edge_server.hub")
    old = hub.store.add_site("nsp-a", clock.now())
    new = hub.store.rotate_key("nsp-a", clock.now(), GRACE, "olga")
    assert "rotated by olga" in caplog.text
    assert post(hub, "nsp-a", old, clock).status_code == 200
    clock.advance(GRACE.total_seconds() - 60)
    assert post(hub, "nsp-a", old, clock).status_code == 200
    frame = encode_status("nsp-a", old.encode(), sample_status(at=clock.now()), clock.now())
    r = httpx.post(
        hub.url + "/api/v1/ingest-compact", content=frame, headers={"X-NSP-Site": "nsp-a"}
    )
    assert r.status_code == 200
    clock.advance(61)
    r = post(hub, "nsp-a", old, clock)
    assert r.status_code == 401 and r.json()["code"] == "bad_signature"
    assert "grace period ended" in caplog.text
    frame = encode_status("nsp-a", old.encode(), sample_status(at=clock.now()), clock.now())
    r = httpx.post(
        hub.url + "/api/v1/ingest-compact", content=frame, headers={"X-NSP-Site": "nsp-a"}
    )
    assert r.status_code == 401 and r.json()["code"] == "bad_signature"
    assert post(hub, "nsp-a", new, clock).status_code == 200
    assert hub.store.count_messages() == 4
    assert old not in caplog.text and new not in caplog.text


def test_first_message_with_the_new_key_retires_the_old_at_once(hub, clock, caplog) -> None:
    caplog.set_level(logging.INFO, logger="edge_server.hub")
    old = hub.store.add_site("nsp-a", clock.now())
    new = hub.store.rotate_key("nsp-a", clock.now(), GRACE, "olga")
    assert post(hub, "nsp-a", new, clock).status_code == 200
    assert "signed with its new key" in caplog.text
    assert post(hub, "nsp-a", old, clock).status_code == 401
    assert post(hub, "nsp-a", new, clock).status_code == 200


def test_rotating_again_while_pending_keeps_the_sites_key(hub, clock) -> None:
    old = hub.store.add_site("nsp-a", clock.now())
    lost = hub.store.rotate_key("nsp-a", clock.now(), GRACE, "olga")  # e.g. a mistyped install
    clock.advance(3600)
    new = hub.store.rotate_key("nsp-a", clock.now(), GRACE, "olga")
    assert post(hub, "nsp-a", lost, clock).status_code == 401
    assert post(hub, "nsp-a", old, clock).status_code == 200
    assert post(hub, "nsp-a", new, clock).status_code == 200


def test_a_rotation_racing_the_first_new_key_request_keeps_the_old_key(tmp_path, clock) -> None:
    store = HubStore(tmp_path / "hub")
    old = store.add_site("nsp-a", clock.now())
    store.rotate_key("nsp-a", clock.now(), GRACE, "olga")
    seen = store.site_keys("nsp-a", clock.now())  # a request verified with the first new key
    assert seen is not None
    store.rotate_key("nsp-a", clock.now(), GRACE, "olga")  # meanwhile: rotated again (CLI)
    store.retire_old_key("nsp-a", "the site signed with its new key", seen.sealed)
    now = store.site_keys("nsp-a", clock.now())
    assert now is not None and now.previous == old.encode()  # not retired by a stale decision
    store.close()


def test_revoke_refuses_the_old_key_at_once(hub, clock) -> None:
    old = hub.store.add_site("nsp-a", clock.now())
    assert post(hub, "nsp-a", old, clock).status_code == 200
    hub.store.rotate_key("nsp-a", clock.now(), GRACE, "olga")
    new = hub.store.revoke_key("nsp-a", clock.now(), "olga")  # even during a grace period
    r = post(hub, "nsp-a", old, clock)
    assert r.status_code == 401 and r.json()["code"] == "bad_signature"
    assert post(hub, "nsp-a", new, clock).status_code == 200


def test_store_refuses_unknown_and_duplicate_sites(tmp_path: Path, clock) -> None:
    store = HubStore(tmp_path / "hub")
    store.add_site("nsp-a", clock.now())
    with pytest.raises(SiteExists):
        store.add_site("nsp-a", clock.now())
    with pytest.raises(UnknownSite):
        store.rotate_key("nsp-x", clock.now(), GRACE, "t")
    with pytest.raises(UnknownSite):
        store.revoke_key("nsp-x", clock.now(), "t")
    store.close()


async def test_the_edge_uplink_delivers_across_a_rotation(hub, clock, tmp_path) -> None:
    old = hub.store.add_site("nsp-a", clock.now())
    settings = UplinkSettings(enabled=True, hub_url=hub.url, batch_size=10)

    def uplink(key: str, outbox: Outbox) -> Uplink:
        return Uplink("nsp-a", key.encode(), settings, outbox, clock)

    outbox = Outbox(tmp_path / "outbox.sqlite")
    before = uplink(old, outbox)
    before.enqueue("alert", sample_alert("a1", clock.now()))
    assert await before.attempt() is True
    new = hub.store.rotate_key("nsp-a", clock.now(), GRACE, "olga")
    # The technician has not installed the new key yet: the site keeps delivering.
    clock.advance(3600)
    before.enqueue("alert", sample_alert("a2", clock.now()))
    assert await before.attempt() is True
    await before.aclose()
    # New key file + restart of the edge service = a new Uplink on the same outbox.
    clock.advance(3600)
    after = uplink(new, outbox)
    after.enqueue("status", sample_status(at=clock.now()))
    after.enqueue("alert", sample_alert("a3", clock.now()))
    assert await after.attempt() is True
    assert outbox.pending() == 0
    stored = hub.store.messages("nsp-a")
    assert [m["body"].get("alert_id") for m in stored if m["kind"] == "alert"] == ["a1", "a2", "a3"]
    await after.aclose()
    # The old key retired with the first new-key request: a stale edge is refused now.
    stale = uplink(old, outbox)
    stale.enqueue("alert", sample_alert("a4", clock.now()))
    assert await stale.attempt() is False and stale.last_code == "bad_signature"
    assert outbox.pending() == 1  # kept for when it has the right key
    await stale.aclose()
    outbox.close()


# -- (e) the CLI ------------------------------------------------------------------------------
def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = cli_main(["hub", *args])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_rotate_revoke_and_errors(tmp_path: Path, capsys, caplog) -> None:
    data = str(tmp_path / "hub")
    caplog.set_level(logging.INFO, logger="edge_server.hub")
    code, out, _ = run_cli(capsys, "add-site", "nsp-a", "nsp-b", "--data", data)
    assert code == 0
    keys = dict(line.split() for line in out.splitlines())

    code, out, err = run_cli(capsys, "rotate-key", "nsp-a", "--data", data, "--grace-hours", "24")
    assert code == 0 and len(out.splitlines()) == 1
    site_id, new_key = out.split()
    assert site_id == "nsp-a" and len(new_key) >= 32 and new_key != keys["nsp-a"]
    assert "restart its edge service" in err and "UTC" in err
    assert "rotated by" in caplog.text and new_key not in caplog.text

    code, out, err = run_cli(capsys, "revoke-key", "nsp-b", "--data", data)
    assert code == 0 and out.split()[0] == "nsp-b" and len(out.split()) == 2
    assert "refused from now on" in err and "401" in err
    assert "revoked by" in caplog.text

    for command in ("rotate-key", "revoke-key"):
        code, out, err = run_cli(capsys, command, "nsp-x", "--data", data)
        assert (code, out) == (1, "")
        assert "'nsp-x' is not registered" in err and "add-site" in err
    code, out, err = run_cli(capsys, "add-site", "nsp-c", "nsp-a", "--data", data)
    assert (code, out) == (1, "") and "already registered: nsp-a" in err and "rotate-key" in err
    code, out, err = run_cli(capsys, "rotate-key", "nsp-a", "--data", data, "--grace-hours", "0")
    assert code == 2 and "revoke-key" in err
    code, out, err = run_cli(capsys, "rotate-key", "NSP A", "--data", data)
    assert code == 2 and "invalid site id" in err

    other = tmp_path / "other.key"
    create_master_key(other)
    code, out, err = run_cli(
        capsys, "add-site", "nsp-d", "--data", data, "--master-key", str(other)
    )
    assert (code, out) == (1, "") and str(other) in err

    store = HubStore(Path(data))
    now = datetime.now(UTC)
    got = store.site_keys("nsp-a", now)
    assert got is not None and got.current == new_key.encode()
    assert got.previous == keys["nsp-a"].encode()
    assert not store.has_site("nsp-c") and not store.has_site("nsp-d")
    store.close()
