"""The throwaway PostgreSQL cluster itself (tests/pgserver.py), independent of the hub's store:
a table written survives a restart of the server, a new database is empty and goes again, the
hub fixture sets NSP_HUB_DB for each variant, and close() leaves no server and no folder.
"""

from __future__ import annotations

import os
import socket

import psycopg
import pytest

from tests.pgserver import PgServer


def test_a_committed_row_survives_a_restart_of_the_server(pg_server: PgServer) -> None:
    url = pg_server.new_database()
    try:
        with psycopg.connect(url, autocommit=True) as c:
            c.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, word TEXT NOT NULL)")
            c.execute("INSERT INTO t VALUES (1, 'noodsteunpunt')")
            assert c.execute("SHOW fsync").fetchone() == ("off",)
        pg_server.restart()
        with psycopg.connect(url) as c:
            assert c.execute("SELECT id, word FROM t").fetchall() == [(1, "noodsteunpunt")]
    finally:
        pg_server.drop_database(url)
    with psycopg.connect(pg_server.url) as c:
        names = [r[0] for r in c.execute("SELECT datname FROM pg_database").fetchall()]
    assert url.rsplit("/", 1)[1] not in names


def test_a_stopped_server_refuses_and_a_started_one_answers(pg_server: PgServer) -> None:
    pg_server.stop()
    try:
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(pg_server.url, connect_timeout=2)
    finally:
        pg_server.start()
    with psycopg.connect(pg_server.url) as c:
        assert c.execute("SELECT 1").fetchone() == (1,)


def test_a_new_database_is_empty(pg_server: PgServer) -> None:
    a, b = pg_server.new_database(), pg_server.new_database()
    try:
        assert a != b
        with psycopg.connect(a, autocommit=True) as c:
            c.execute("CREATE TABLE only_in_a (x INTEGER)")
        with psycopg.connect(b) as c:
            tables = c.execute(
                "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'"
            ).fetchone()
            assert tables == (0,)
    finally:
        pg_server.drop_database(a)
        pg_server.drop_database(b)


def test_hub_db_sets_the_hubs_database_per_variant(
    hub_db: str, request: pytest.FixtureRequest
) -> None:
    assert os.environ["NSP_HUB_DB"] == hub_db
    if request.node.callspec.params["hub_db"] == "sqlite":
        assert hub_db == ""
        return
    assert hub_db.startswith("postgresql://nsp@127.0.0.1:")
    with psycopg.connect(hub_db) as c:
        assert c.execute("SELECT current_database()").fetchone() == (hub_db.rsplit("/", 1)[1],)


@pytest.mark.sqlite_only("checks that the marker skips the postgresql variant")
def test_sqlite_only_runs_the_sqlite_variant_alone(hub_db: str) -> None:
    assert hub_db == ""


def test_close_stops_the_server_and_removes_its_folder() -> None:
    server = PgServer.create(fsync=True)
    folder, port = server.dir, server.port
    try:
        with psycopg.connect(server.url) as c:
            assert c.execute("SHOW fsync").fetchone() == ("on",)
            assert c.execute("SHOW listen_addresses").fetchone() == ("127.0.0.1",)
    finally:
        server.close()
    assert not folder.exists()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
    assert os.environ.get("NSP_HUB_DB") in (None, "")
