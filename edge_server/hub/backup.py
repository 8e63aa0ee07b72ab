"""Back up and restore the hub's SQLite store, while the hub runs.

    nsp-edge hub backup --data DIR --out FILE          # one consistent file, mode 600
    nsp-edge hub restore --from FILE --data NEWDIR [--master-key FILE]

The backup uses SQLite's online backup API (sqlite3.Connection.backup,
<https://www.sqlite.org/backup.html>): a consistent snapshot of the database as of one moment,
taken while the hub goes on answering (in WAL mode a reader does not block its writer). The file
is written next to FILE, checked (`PRAGMA integrity_check`), fsync'd and renamed over FILE, so a
nightly job never leaves half a backup under the name of the good one. It is a single file
(journal mode DELETE), mode 600: it holds the site keys, encrypted with the master key, and the
operators' token hashes. The master key is NOT in it (it is a file apart, docs/security.md):
keep a copy of the master key apart from the backups; a restore without it cannot use the site
keys (the hub refuses to start, naming the file).

Restore writes into a directory without a hub database only (never over a live one), checks the
file first (a SQLite database with the hub's tables that passes its integrity check), then opens
it as the hub would, with the master key, so a wrong or missing key is found now, not at 03:00.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
from pathlib import Path

from edge_server.hub.store import DB_NAME

_HUB_TABLES = {"sites", "messages", "users"}


class BackupError(Exception):
    """The message names the file and what to do."""


def backup(data_dir: Path, out: Path) -> int:
    """Copy DATA/hub.sqlite to `out` consistently; returns the backup's size in bytes."""
    source = data_dir / DB_NAME
    if not source.is_file():
        raise BackupError(f"--data {data_dir}: no hub database ({DB_NAME}) there")
    if out.exists() and out.is_dir():
        raise BackupError(f"--out {out}: a directory; give the backup file's name")
    tmp = out.with_name(out.name + ".part")
    try:
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    except OSError as exc:
        raise BackupError(f"--out {out}: cannot write there ({exc.strerror})") from exc
    os.close(fd)
    os.chmod(tmp, 0o600)
    src = sqlite3.connect(str(source), timeout=30)
    dst = sqlite3.connect(str(tmp))
    try:
        src.execute("PRAGMA busy_timeout=30000")
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file
        _check(dst, out)
        dst.commit()
    except sqlite3.Error as exc:
        dst.close()
        tmp.unlink(missing_ok=True)
        raise BackupError(f"--data {data_dir}: backup failed ({exc})") from exc
    finally:
        src.close()
    dst.close()
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, out)
    _fsync_dir(out.parent)
    return out.stat().st_size


def restore(backup_file: Path, data_dir: Path) -> None:
    """Copy a backup into an empty hub data directory (created 700, the database 600)."""
    target = data_dir / DB_NAME
    if target.exists() and target.stat().st_size > 0:
        raise BackupError(
            f"--data {data_dir}: already holds a hub database; restore into a new directory "
            f"(or stop the hub and move {data_dir} aside first): nothing was changed"
        )
    if not backup_file.is_file():
        raise BackupError(f"--from {backup_file}: no such file")
    src = sqlite3.connect(f"file:{backup_file}?mode=ro", uri=True)
    try:
        _check(src, backup_file)
        data_dir.mkdir(parents=True, exist_ok=True)
        os.chmod(data_dir, 0o700)
        fd = os.open(target, os.O_CREAT | os.O_WRONLY, 0o600)
        os.close(fd)
        dst = sqlite3.connect(str(target))
        try:
            src.backup(dst)
            dst.commit()
        finally:
            dst.close()
    except sqlite3.Error as exc:
        raise BackupError(f"--from {backup_file}: not a hub backup ({exc})") from exc
    finally:
        src.close()
    with open(target, "rb") as f:
        os.fsync(f.fileno())
    _fsync_dir(data_dir)


def _check(db: sqlite3.Connection, name: Path) -> None:
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    if not _HUB_TABLES <= tables:
        raise BackupError(f"{name}: not a hub database (tables {', '.join(sorted(tables))})")
    result = [r[0] for r in db.execute("PRAGMA integrity_check")]
    if result != ["ok"]:
        raise BackupError(f"{name}: damaged ({'; '.join(result[:3])})")


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def command(args: argparse.Namespace, prog: str) -> int:
    """`nsp-edge hub backup|restore`: exit 1 when it cannot be done, with the reason."""
    from edge_server.hub.keys import MasterKeyError
    from edge_server.hub.sql import describe, is_postgres
    from edge_server.hub.store import DB_ENV, HubStore

    url = getattr(args, "db", None) or os.environ.get(DB_ENV, "")
    if is_postgres(url):
        print(f"{prog}: the hub's data is in {describe(url)}: back it up with the server's own "
              "pg_dump / pg_restore (docs/hub-postgres.md); the master key file is not in the "
              "database either: keep a copy of it apart", file=sys.stderr)
        return 1
    try:
        if args.hub_command == "backup":
            size = backup(args.data, args.out)
            print(f"{prog}: {args.out} ({size} bytes). The site keys in it are encrypted with "
                  "the hub's master key, which is not in the backup: keep a copy of it apart "
                  "(docs/hub-operations.md)")
            return 0
        restore(args.source, args.data)
    except BackupError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    try:
        store = HubStore(args.data, getattr(args, "master_key", None))
    except MasterKeyError as exc:
        print(f"{prog}: restored into {args.data}, but the hub cannot use its site keys: {exc}",
              file=sys.stderr)
        return 1
    sites, messages = store.count_sites(), store.count_messages()
    store.close()
    print(f"{prog}: {args.data}: {sites} sites, {messages} messages; start the hub with "
          f"--data {args.data} and the same master key")
    return 0
