"""The SQLite files a site or hub must not lose a committed row of (outbox, notices, reports).

    db = open_durable(path)                  # WAL, synchronous=FULL, busy_timeout 5 s
    with write_transaction(lock, db) as db:  # BEGIN IMMEDIATE ... COMMIT, ROLLBACK on any error
        ...
    class Outbox(DurableFile): ...           # the connection, its lock, the schema, close()

synchronous=FULL: every COMMIT fsyncs the WAL, so what a caller was told is stored survives a
power cut or a kill -9 (a site loses mains power by design).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path


def open_durable(path: Path) -> sqlite3.Connection:
    """A connection in autocommit mode (explicit transactions), shareable between threads
    under the caller's lock."""
    db = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA busy_timeout=5000")
    return db


@contextmanager
def write_transaction(lock: threading.Lock, db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One write transaction under the lock: committed whole, or rolled back whole."""
    with lock:
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


class DurableFile:
    """One durable SQLite file shared between the asyncio loop and worker threads: the
    connection, the lock every access takes, the schema run at open, close()."""

    def __init__(self, path: Path, schema: str) -> None:
        self._lock = threading.Lock()
        self._db = open_durable(path)
        self._db.executescript(schema)

    def _transaction(self) -> AbstractContextManager[sqlite3.Connection]:
        """One write transaction under the lock: committed whole, or rolled back whole."""
        return write_transaction(self._lock, self._db)

    def close(self) -> None:
        with self._lock:
            self._db.close()
