"""`nsp-edge hub backup` / `restore` on PostgreSQL: the server's own pg_dump and pg_restore on the
throwaway cluster of tests/pgserver.py (fails with CI=true when PostgreSQL is missing), a real hub
(uvicorn) and signed posts over httpx.

A dump taken during a burst of ingests holds every message answered 200 before it began, in
whole batches (one snapshot); restored into a new database, a hub with the same master key file
serves the same board, and the old token and site keys still work. Restore refuses a database
that is not empty and a file that is not a hub backup; no message shows the password.
Not parametrised over the two stores (tests/conftest.py NOT_TWICE): it is PostgreSQL's test.
"""

from __future__ import annotations

import itertools
import shutil
import sqlite3
import stat
import subprocess
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from edge_server.clock import ManualClock
from edge_server.hub.backup import BackupError, pg_tool, split_password
from edge_server.hub.store import HubStore
from edge_server.hub.testing import (
    RunningHub,
    running_hub,
    sample_alert,
    sample_event,
    sample_status,
)
from tests.conftest import refused_port
from tests.pgserver import PgServer
from tests.test_hub_backup import board, hub_cli, msg, post

SITES = 30
BATCH = 20  # messages per signed post: one transaction at the hub
PASSWORD = "s3cret-pw"  # trust authentication ignores it; it is only checked never to show


def with_password(url: str) -> str:
    return url.replace("nsp@", f"nsp:{PASSWORD}@", 1)


def ids_in(url: str) -> set[str]:
    with psycopg.connect(url) as c:
        return {str(r[0]) for r in c.execute("SELECT id FROM messages").fetchall()}


def dumped_ids(dump: Path) -> list[str]:
    """The message ids in the archive, read by pg_restore itself (not through the hub)."""
    out = subprocess.run([pg_tool("pg_restore"), "--data-only", "--table=messages",
                          "--file=-", str(dump)], capture_output=True, text=True, check=True)
    lines = iter(out.stdout.splitlines())
    header = next(line for line in lines if line.startswith("COPY public.messages "))
    columns = header.split("(", 1)[1].split(")", 1)[0].split(", ")
    at = columns.index("id")
    rows: list[str] = []
    for line in lines:
        if line == "\\.":
            return rows
        rows.append(line.split("\t")[at])
    raise AssertionError("no end of the COPY data")


class Burst:
    """Signed batches of BATCH events, round robin over the sites, from a thread: started by
    `with` (back once 5 batches are stored), stopped at its end. `answered`: (monotonic time of
    the 200, the batch's ids); `failed`: what went wrong, for the test to show."""

    def __init__(self, hub: RunningHub, keys: dict[str, bytes], clock: ManualClock) -> None:
        self.hub, self.keys, self.clock = hub, keys, clock
        self.answered: list[tuple[float, list[str]]] = []
        self.failed: list[BaseException] = []
        self._stop, self._going = threading.Event(), threading.Event()
        self._thread = threading.Thread(target=self._send, name="burst")

    def _send(self) -> None:
        sites = sorted(self.keys)
        try:
            for n in itertools.count():
                if self._stop.is_set():
                    return
                site = sites[n % len(sites)]
                batch = [msg("event", sample_event("x"), self.clock) for _ in range(BATCH)]
                post(self.hub, site, self.keys[site], batch, self.clock)  # asserts the 200
                self.answered.append((time.monotonic(), [m["id"] for m in batch]))
                if n == 4:
                    self._going.set()
        except BaseException as exc:  # noqa: BLE001 - the test asserts `failed` is empty
            self.failed.append(exc)
        finally:
            self._going.set()

    def __enter__(self) -> Burst:
        self._thread.start()
        if not self._going.wait(30):
            self.__exit__()
            raise AssertionError("5 batches not stored within 30 s")
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@pytest.fixture
def pg(pg_server: PgServer, monkeypatch: pytest.MonkeyPatch) -> PgServer:
    monkeypatch.setenv("NSP_HUB_DB", "")  # each call names its database
    if not pg_server.running:
        pg_server.start()  # a test stopped it and failed before starting it again
    return pg_server


def test_backup_during_a_burst_restores_to_the_same_board(
    pg: PgServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = ManualClock(datetime(2026, 3, 1, 12, 0, tzinfo=UTC))  # stands still: see below
    source, out, data = pg.new_database(), tmp_path / "backup" / "hub.dump", tmp_path / "hub"
    out.parent.mkdir()
    monkeypatch.setenv("NSP_HUB_DB", source)
    with running_hub(data, clock=clock) as hub:
        token = hub.store.add_user("olga", "operator")
        keys = {f"nsp-{i:03d}": hub.store.add_site(f"nsp-{i:03d}", clock.now()).encode()
                for i in range(SITES)}
        for i, (site, key) in enumerate(keys.items()):
            if i % 5:
                post(hub, site, key, [msg("status", sample_status(at=clock.now()), clock)], clock)
            else:
                post(hub, site, key, [
                    msg("status", sample_status("NOT_READY", at=clock.now(),
                                                reasons=["FUEL_CRITICAL"]), clock),
                    msg("alert", sample_alert(f"a{i}", clock.now()), clock)], clock)
        expected = board(hub, token)
        before_burst = hub.store.count_messages()

        with Burst(hub, keys, clock) as burst:  # batches are being stored when the dump starts
            began = time.monotonic()
            r = hub_cli("backup", "--data", str(data), "--db", with_password(source),
                        "--out", str(out))
            ended = time.monotonic()
        assert burst.failed == []  # every post answered 200 while pg_dump ran
        assert r.returncode == 0, r.stderr
        assert "master key" in r.stdout and "not in the backup" in r.stdout
        assert PASSWORD not in r.stdout + r.stderr
        late = msg("event", sample_event("after"), clock)
        post(hub, "nsp-000", keys["nsp-000"], [late], clock)
        # The clock stands still, so the burst's events leave the board as it was: the board
        # of the backup's moment is known.
        assert board(hub, token) == expected
        final = ids_in(source)

    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    assert not out.with_name(out.name + ".part").exists()
    dumped = dumped_ids(out)
    answered_before = {i for t, batch in burst.answered if t < began for i in batch}
    assert len(answered_before) >= 5 * BATCH
    assert answered_before <= set(dumped)  # every 200 before the dump began is in it
    assert any(began < t < ended for t, _ in burst.answered)  # the hub went on ingesting meanwhile
    assert len(set(dumped)) == len(dumped) and set(dumped) <= final
    assert (len(dumped) - before_burst) % BATCH == 0  # whole batches: one snapshot
    assert late["id"] not in dumped

    target = pg.new_database()
    master = tmp_path / "master.key"  # kept apart from the backups, as the docs say
    shutil.copy2(data / "master.key", master)
    r = hub_cli("restore", "--from", str(out), "--db", with_password(target),
                "--data", str(tmp_path / "restored"), "--master-key", str(master))
    assert r.returncode == 0, r.stderr
    assert f"{SITES} sites, {len(dumped)} messages" in r.stdout
    assert PASSWORD not in r.stdout + r.stderr
    assert ids_in(target) == set(dumped)

    monkeypatch.setenv("NSP_HUB_DB", target)
    with running_hub(tmp_path / "restored", clock=clock, master_key_file=master) as restored:
        assert board(restored, token) == expected  # the old operator token works
        assert restored.store.count_messages() == len(dumped)
        # The restored site keys still verify; the late event, not in the backup, is taken
        # again when the site sends it again (it is new here).
        post(restored, "nsp-000", keys["nsp-000"], [late], clock)
        assert restored.store.count_messages() == len(dumped) + 1


def test_restore_refuses_a_database_that_is_not_empty_or_a_file_that_is_no_hub_backup(
    pg: PgServer, tmp_path: Path
) -> None:
    source = pg.new_database()
    store = HubStore(tmp_path / "hub", db_url=source)
    store.add_site("nsp-a", datetime(2026, 3, 1, tzinfo=UTC))
    store.close()
    dump = tmp_path / "hub.dump"
    r = hub_cli("backup", "--data", str(tmp_path / "hub"), "--db", source, "--out", str(dump))
    assert r.returncode == 0, r.stderr

    def restore(frm: Path, url: str) -> str:
        r = hub_cli("restore", "--from", str(frm), "--db", with_password(url),
                    "--data", str(tmp_path / "restored"))
        assert r.returncode == 1, r.stdout
        assert "Traceback" not in r.stderr and PASSWORD not in r.stderr
        return r.stderr

    # Never over a hub's database, nor any other data: it names the fix.
    why = restore(dump, source)
    assert "not empty" in why and "createdb" in why and "nothing was changed" in why
    assert HubStore(tmp_path / "hub", db_url=source).count_sites() == 1
    other = pg.new_database()
    with psycopg.connect(other, autocommit=True) as c:
        c.execute("CREATE TABLE t (x int)")
    assert "public.t" in restore(dump, other)

    empty = pg.new_database()
    junk = tmp_path / "junk.dump"
    junk.write_bytes(b"this is not a dump" * 100)
    assert "not a hub backup" in restore(junk, empty)
    lite = tmp_path / "hub.sqlite"
    with sqlite3.connect(lite) as db:
        db.execute("CREATE TABLE t (x)")
    assert "SQLite hub backup" in restore(lite, empty)
    foreign = tmp_path / "other.dump"
    subprocess.run([pg_tool("pg_dump"), "--format=custom", f"--file={foreign}", other],
                   check=True, capture_output=True)
    why = restore(foreign, empty)
    assert "not a hub backup" in why and "schema_migrations" in why
    schema_only = tmp_path / "schema.dump"
    subprocess.run([pg_tool("pg_dump"), "--format=custom", "--schema-only",
                    f"--file={schema_only}", source], check=True, capture_output=True)
    assert "schema-only" in restore(schema_only, empty)
    assert "no such file" in restore(tmp_path / "nothing.dump", empty)
    with psycopg.connect(empty) as c:  # every refusal left it empty
        assert c.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
                         ).fetchone() == (0,)

    # The SQLite restore knows a PostgreSQL backup when it sees one.
    r = hub_cli("restore", "--from", str(dump), "--data", str(tmp_path / "lite"))
    assert r.returncode == 1 and "--db postgresql://" in r.stderr

    # A server that does not answer: the database named, the password not.
    with refused_port() as port:
        down = with_password(f"postgresql://nsp@127.0.0.1:{port}/nsp_hub")
        r = hub_cli("backup", "--data", str(tmp_path / "hub"), "--db", down,
                    "--out", str(tmp_path / "down.dump"))
        assert r.returncode == 1 and "pg_dump failed" in r.stderr
        assert f"127.0.0.1:{port}/nsp_hub" in r.stderr and PASSWORD not in r.stderr
        assert not (tmp_path / "down.dump.part").exists()
        why = restore(dump, down)
        assert "cannot connect" in why and f"127.0.0.1:{port}/nsp_hub" in why


def test_the_client_tools_and_the_password() -> None:
    assert split_password("postgresql://hub:p%40ss@db.example:5433/nsp?sslmode=require") == (
        "postgresql://hub@db.example:5433/nsp?sslmode=require", "p@ss")
    assert split_password("postgresql://db.example/nsp?password=x&sslmode=verify-full") == (
        "postgresql://db.example/nsp?sslmode=verify-full", "x")
    assert split_password("postgresql://hub@db.example/nsp") == (
        "postgresql://hub@db.example/nsp", None)


def test_missing_client_tools_name_the_package(tmp_path: Path) -> None:
    nowhere = dict(path=str(tmp_path / "empty"), versions=str(tmp_path / "pg" / "*" / "bin"))
    with pytest.raises(BackupError, match="apt install postgresql-client"):
        pg_tool("pg_dump", **nowhere)
    for version in ("9.6", "13", "16"):  # the newest server version's client is taken
        folder = tmp_path / "pg" / version / "bin"
        folder.mkdir(parents=True)
        (folder / "pg_dump").write_text("#!/bin/sh\n")
        (folder / "pg_dump").chmod(0o755)
    assert pg_tool("pg_dump", **nowhere) == str(tmp_path / "pg" / "16" / "bin" / "pg_dump")
