"""The PostgreSQL hub database holds no site key in clear: what a `pg_dump` of it shows (every
table, every row the server still has) carries each key only sealed ("enc1:..."), never the
text add_site / rotate_key / revoke_key returned, nor its raw bytes, hex or base64.

The SQLite version reads hub.sqlite and its WAL byte by byte (tests/test_hub_keys.py). Here the
dump is the server's own pg_dump (plain SQL) of the throwaway cluster of tests/pgserver.py (fails
with CI=true when PostgreSQL is missing). The check can fail: a key put in clear into a table of
the same database is found in the next dump. Not parametrised over the two stores
(tests/conftest.py NOT_TWICE): it is PostgreSQL's test.
"""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg

from edge_server.hub.backup import pg_tool
from edge_server.hub.keys import SEALED_PREFIX
from edge_server.hub.store import HubStore
from tests.pgserver import PgServer
from tests.test_hub_keys import key_forms

GRACE = timedelta(hours=72)


def dump(url: str) -> bytes:
    """The database as plain SQL, read by pg_dump itself (not through the hub)."""
    out = subprocess.run([pg_tool("pg_dump"), "--format=plain", "--no-password",
                          f"--dbname={url}"], capture_output=True, timeout=120)
    assert out.returncode == 0, out.stderr.decode(errors="replace")
    return out.stdout


def leaked(text: bytes, keys: list[str]) -> list[str]:
    return [k for k in keys if any(form in text for form in key_forms(k))]


def test_pg_dump_holds_sealed_site_keys_only(pg_server: PgServer, tmp_path: Path) -> None:
    url = pg_server.new_database()
    try:
        store = HubStore(tmp_path / "hub", db_url=url)
        now = datetime(2026, 3, 1, tzinfo=UTC)
        keys = [store.add_site(f"nsp-{i}", now) for i in range(20)]
        keys.append(store.rotate_key("nsp-0", now, GRACE, "test"))
        keys.append(store.revoke_key("nsp-1", now, "test"))
        sk = store.site_keys("nsp-0", now)  # the hub itself still opens them
        assert sk is not None and sk.current == keys[-2].encode()
        assert sk.previous == keys[0].encode()
        store.close()
        with psycopg.connect(url) as c:
            sealed = [str(v) for row in c.execute("SELECT key, old_key FROM sites").fetchall()
                      for v in row if v is not None]
        assert len(sealed) == 21  # 20 keys, and nsp-0's old key during its grace period
        assert all(s.startswith(SEALED_PREFIX) for s in sealed), sealed
        text = dump(url)
        assert b"nsp-19" in text and all(s.encode() in text for s in sealed)
        assert leaked(text, keys) == []
        with psycopg.connect(url) as c:  # the check can fail: a key in clear is seen
            c.execute("CREATE TABLE probe (k TEXT)")
            c.execute("INSERT INTO probe VALUES (%s)", (keys[5],))
        assert leaked(dump(url), keys) == [keys[5]]
    finally:
        pg_server.drop_database(url)
