"""One way to open the site database `<data_dir>/site.db`: every component uses the same settings.

    conn = open_db(data_dir / "site.db")

Settings and why:
- `journal_mode=WAL`: readers (the API) never block the writer (the poll cycle) and vice versa.
- `synchronous=FULL`: every COMMIT fsyncs the WAL. With NORMAL a *process* kill (kill -9) loses
  nothing committed either, but a *power cut* may roll back the last transactions; an emergency
  support point is exactly the place where power is cut, and one fsync per commit (readings
  every 30 s by default, [storage] commit_every_s) costs ~1-5 ms on an SSD/SD card. Measured
  in benchmarks/bench_storage.py.
- `busy_timeout=5000`: a second connection (the API reader, the users CLI while the service runs)
  waits for a lock instead of failing at once.
- `foreign_keys=ON`.

Schema versions: `PRAGMA user_version` belongs to edge_server.storage (tables channels, readings,
agg_1m, agg_1h, events, users, meta). Other components (alerts, outbox, ...) keep their own tables
in the same file and version them with `migrate(conn, "component", steps)` below, which records the
version in the table `schema_versions`, so no two components fight over user_version.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from pathlib import Path

# A migration step: SQL text (may hold several statements) or a function given the connection.
Step = str | Callable[[sqlite3.Connection], None]


def open_db(path: Path | str, *, check_same_thread: bool = False) -> sqlite3.Connection:
    """Open (creating if needed) a SQLite database with the project's settings.

    The connection keeps Python's default transaction handling: `with conn:` commits the
    statements in the block as one transaction (or rolls them back on an exception).
    check_same_thread=False: the connection may be handed to a worker thread; callers that share
    one connection between threads must serialise its use with a lock.
    """
    p = Path(path)
    if str(p) != ":memory:":
        p.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(str(p), timeout=5.0, check_same_thread=check_same_thread)
    mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
    if str(p) != ":memory:" and str(mode).lower() != "wal":
        conn.close()
        raise sqlite3.OperationalError(f"{p}: cannot switch to WAL journal mode (got {mode!r})")
    conn.execute("PRAGMA synchronous=FULL")
    conn.execute("PRAGMA busy_timeout=5000")
    conn.execute("PRAGMA foreign_keys=ON")
    return conn


def component_version(conn: sqlite3.Connection, component: str) -> int:
    conn.execute(
        "CREATE TABLE IF NOT EXISTS schema_versions "
        "(component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
    )
    row = conn.execute(
        "SELECT version FROM schema_versions WHERE component = ?", (component,)
    ).fetchone()
    return int(row[0]) if row else 0


def migrate(conn: sqlite3.Connection, component: str, steps: Sequence[Step]) -> int:
    """Apply steps[version:] for `component`, each in its own transaction; return the new version.

    Step i brings the component from version i to i+1. Never edit a released step: append one.
    """
    version = component_version(conn, component)
    if version > len(steps):
        raise RuntimeError(
            f"{component}: database schema version {version} is newer than this software knows "
            f"({len(steps)}); upgrade the software or restore a matching backup"
        )
    for i in range(version, len(steps)):
        step = steps[i]
        with conn:
            # Explicit BEGIN: Python's sqlite3 runs DDL in autocommit mode otherwise, and a step
            # must apply completely or not at all.
            conn.execute("BEGIN IMMEDIATE")
            if isinstance(step, str):
                for statement in _split_sql(step):
                    conn.execute(statement)
            else:
                step(conn)
            conn.execute(
                "INSERT INTO schema_versions(component, version) VALUES (?, ?) "
                "ON CONFLICT(component) DO UPDATE SET version = excluded.version",
                (component, i + 1),
            )
    return len(steps)


def _split_sql(script: str) -> list[str]:
    """Split a script into statements (executescript would COMMIT outside our transaction)."""
    statements: list[str] = []
    current = ""
    for line in script.splitlines(keepends=True):
        current += line
        if sqlite3.complete_statement(current):
            if current.strip():
                statements.append(current.strip())
            current = ""
    if current.strip():
        statements.append(current.strip())
    return statements
