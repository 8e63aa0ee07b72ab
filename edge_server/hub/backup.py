"""Back up and restore the hub's store (SQLite or PostgreSQL), while the hub runs.

    nsp-edge hub backup --data DIR --out FILE          # one consistent file, mode 600
    nsp-edge hub restore --from FILE --data NEWDIR [--master-key FILE]
    nsp-edge hub backup|restore ... --db postgresql://USER@HOST/DB   # pg_dump / pg_restore

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

On PostgreSQL (`--db postgresql://...` or $NSP_HUB_DB) the same two commands run the server's own
tools: `pg_dump --format=custom` (one transaction, REPEATABLE READ: a snapshot of the moment it
starts, while the hubs go on ingesting; <https://www.postgresql.org/docs/current/app-pgdump.html>)
and `pg_restore --single-transaction` into an EMPTY database only (a failed restore leaves it
empty). Both check the file with `pg_restore --list`: a hub backup has the hub's tables and its
`schema_migrations` with data. The password never goes on a command line (it shows in `ps`) nor
into a message: it is taken out of the URL and handed to the tools as PGPASSWORD. The tools come
from PATH, else the newest /usr/lib/postgresql/N/bin (Debian's postgresql-client).
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit, urlunsplit

from edge_server.hub.store import DB_NAME

_HUB_TABLES = {"sites", "messages", "users"}
_SQLITE_MAGIC = b"SQLite format 3\x00"
_PG_DUMP_MAGIC = b"PGDMP"  # the first bytes of a pg_dump custom-format archive
PG_CLIENT = "apt install postgresql-client"
# `pg_restore --list` lines: "216; 1259 16390 TABLE public sites nsp", "... TABLE DATA public ..."
_LISTED = re.compile(r"^\d+; \d+ \d+ (TABLE DATA|TABLE) (\S+) (\S+)", re.MULTILINE)


class BackupError(Exception):
    """The message names the file and what to do."""


def _part_file(out: Path) -> Path:
    """OUT.part, created empty with mode 600 (the backup holds the sealed site keys); renamed
    over `out` once the backup is complete and checked."""
    if out.exists() and out.is_dir():
        raise BackupError(f"--out {out}: a directory; give the backup file's name")
    tmp = out.with_name(out.name + ".part")
    try:
        fd = os.open(tmp, os.O_CREAT | os.O_WRONLY | os.O_TRUNC, 0o600)
    except OSError as exc:
        raise BackupError(f"--out {out}: cannot write there ({exc.strerror})") from exc
    os.close(fd)
    os.chmod(tmp, 0o600)
    return tmp


def backup(data_dir: Path, out: Path) -> int:
    """Copy DATA/hub.sqlite to `out` consistently; returns the backup's size in bytes."""
    source = data_dir / DB_NAME
    if not source.is_file():
        raise BackupError(f"--data {data_dir}: no hub database ({DB_NAME}) there")
    tmp = _part_file(out)
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
    if _magic(backup_file, _PG_DUMP_MAGIC):
        raise BackupError(f"--from {backup_file}: a PostgreSQL hub backup (pg_dump): restore it "
                          "into an empty database with --db postgresql://USER@HOST/NEWDB")
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


def _magic(path: Path, magic: bytes) -> bool:
    try:
        with open(path, "rb") as f:
            return f.read(len(magic)) == magic
    except OSError:
        return False


# -- PostgreSQL: pg_dump / pg_restore ------------------------------------------------------------
def pg_tool(name: str, *, path: str | None = None,
            versions: str = "/usr/lib/postgresql/*/bin") -> str:
    """`name` (pg_dump, pg_restore) on PATH, else in the newest Debian /usr/lib/postgresql/N/bin.

    A pg_dump older than the server refuses to dump it ("server version mismatch"): the
    message then says so; install the client of the server's version or newer."""
    found = shutil.which(name, path=path)
    if found is not None:
        return found

    def version(folder: str) -> tuple[int, ...]:
        return tuple(int(x) for x in Path(folder).parent.name.split(".") if x.isdigit())

    for folder in sorted(glob.glob(versions), key=version, reverse=True):
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise BackupError(f"{name} not found (on PATH or in {versions}): {PG_CLIENT} "
                      "(the version of the database server or newer)")


def split_password(url: str) -> tuple[str, str | None]:
    """The URL without its password (from user:password@ or ?password=), and the password."""
    parts = urlsplit(url)
    password: str | None = None
    netloc = parts.netloc
    userinfo, at, hostport = netloc.rpartition("@")
    if at:
        user, colon, secret = userinfo.partition(":")
        if colon:
            password = unquote(secret)
        netloc = f"{user}@{hostport}" if user else hostport
    query = parse_qsl(parts.query, keep_blank_values=True)
    kept = [(k, v) for k, v in query if k != "password"]
    for k, v in query:
        if k == "password":
            password = v
    return urlunsplit(parts._replace(netloc=netloc, query=urlencode(kept))), password


def _run_pg(tool: str, args: list[str], url: str) -> subprocess.CompletedProcess[str]:
    """Run a PostgreSQL client tool on `url`, its password in the environment only; never
    prompting (a nightly job must fail, not wait for a password on a terminal)."""
    bare, password = split_password(url)
    env = dict(os.environ, PGAPPNAME="nsp-hub-backup")
    env.setdefault("PGCONNECT_TIMEOUT", "10")
    if password is not None:
        env["PGPASSWORD"] = password
    result = subprocess.run([pg_tool(tool), *args, "--no-password", f"--dbname={bare}"],
                            capture_output=True, text=True, env=env)
    if password:
        result.stderr = result.stderr.replace(password, "***")
    return result


def _tool_error(stderr: str) -> str:
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return "; ".join(lines[:4]) or "no message"


def _check_dump(dump: Path, name: Path) -> set[str]:
    """The hub's tables in a pg_dump archive, or BackupError "not a hub backup"."""
    if not _magic(dump, _PG_DUMP_MAGIC):
        kind = "a SQLite hub backup: restore it with --data NEWDIR and without --db" if _magic(
            dump, _SQLITE_MAGIC) else "not a pg_dump custom-format archive"
        raise BackupError(f"{name}: not a hub backup for PostgreSQL ({kind})")
    result = subprocess.run([pg_tool("pg_restore"), "--list", str(dump)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise BackupError(f"{name}: not a hub backup ({_tool_error(result.stderr)})")
    tables = {t for kind, _schema, t in _LISTED.findall(result.stdout) if kind == "TABLE"}
    with_data = {t for kind, _schema, t in _LISTED.findall(result.stdout) if kind == "TABLE DATA"}
    need = _HUB_TABLES | {"schema_migrations"}
    if not need <= tables:
        raise BackupError(
            f"{name}: not a hub backup (no {', '.join(sorted(need - tables))} table; "
            f"it holds {', '.join(sorted(tables)) or 'no tables'})")
    if "schema_migrations" not in with_data:
        raise BackupError(f"{name}: not a hub backup (schema_migrations without its rows: a "
                          "--schema-only dump?)")
    return tables


def backup_pg(url: str, out: Path) -> tuple[int, float]:
    """pg_dump the hub's database to `out` (custom format, mode 600, checked, fsync'd, renamed
    over `out`); returns (bytes, seconds)."""
    from edge_server.hub.sql import describe

    tmp = _part_file(out)  # pg_dump writes into this file and keeps its mode
    started = time.monotonic()
    try:
        # --lock-wait-timeout: fail (and say so) rather than queue behind an ALTER TABLE
        result = _run_pg("pg_dump", ["--format=custom", f"--file={tmp}",
                                     "--lock-wait-timeout=60s"], url)
        if result.returncode != 0:
            raise BackupError(f"{describe(url)}: pg_dump failed: {_tool_error(result.stderr)}")
        _check_dump(tmp, out)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, out)
    _fsync_dir(out.parent)
    return out.stat().st_size, time.monotonic() - started


def _relations(url: str) -> list[str]:
    """The tables, views and sequences of the target database outside the system schemas."""
    import psycopg

    from edge_server.hub.sql import describe

    try:
        with psycopg.connect(url, connect_timeout=10, autocommit=True) as c:
            rows = c.execute(
                "SELECT n.nspname || '.' || c.relname FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') "
                "AND n.nspname NOT IN ('pg_catalog', 'information_schema') "
                "AND n.nspname NOT LIKE 'pg\\_%' ORDER BY 1").fetchall()
    except psycopg.Error as exc:
        _bare, password = split_password(url)
        why = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if password:
            why = why.replace(password, "***")
        raise BackupError(f"{describe(url)}: cannot connect ({why}); create the empty database "
                          "first (createdb --owner USER NEWDB): nothing was changed") from exc
    return [str(r[0]) for r in rows]


def restore_pg(backup_file: Path, url: str) -> float:
    """pg_restore a hub backup into an empty database, in one transaction; returns seconds."""
    from edge_server.hub.sql import describe

    if not backup_file.is_file():
        raise BackupError(f"--from {backup_file}: no such file")
    _check_dump(backup_file, backup_file)
    found = _relations(url)
    if found:
        shown = ", ".join(found[:3]) + (", ..." if len(found) > 3 else "")
        raise BackupError(
            f"{describe(url)}: not empty ({len(found)} tables and sequences: {shown}); restore "
            "into a new empty database (createdb --owner USER NEWDB, then --db "
            "postgresql://USER@HOST/NEWDB), or stop every hub on this one, dropdb and createdb "
            "it first: nothing was changed")
    started = time.monotonic()
    # --no-owner/--no-privileges: the tables belong to the user restoring (the hub's user), as
    # a hub that created them would own them; --single-transaction: all or nothing
    result = _run_pg("pg_restore", ["--no-owner", "--no-privileges", "--single-transaction",
                                    "--exit-on-error", str(backup_file)], url)
    if result.returncode != 0:
        raise BackupError(f"{describe(url)}: pg_restore failed, nothing was restored (one "
                          f"transaction): {_tool_error(result.stderr)}")
    return time.monotonic() - started


def command(args: argparse.Namespace, prog: str) -> int:
    """`nsp-edge hub backup|restore`: exit 1 when it cannot be done, with the reason."""
    from edge_server.hub.keys import MasterKeyError
    from edge_server.hub.sql import StoreUnavailable, describe, is_postgres
    from edge_server.hub.store import DB_ENV, HubStore

    url = getattr(args, "db", None) or os.environ.get(DB_ENV, "")
    postgres = is_postgres(url)
    if url and not postgres:
        print(f"{prog}: --db: use a postgresql://USER@HOST:PORT/DB URL, or none for {DB_NAME} "
              "in the data folder", file=sys.stderr)
        return 2
    where = describe(url) if postgres else str(args.data)
    try:
        if args.hub_command == "backup":
            if postgres:
                size, seconds = backup_pg(url, args.out)
                source = f"pg_dump of {where} in {seconds:.1f} s"
            else:
                size, source = backup(args.data, args.out), f"of {args.data / DB_NAME}"
            print(f"{prog}: {args.out} ({size} bytes, {source}). The site keys in it are "
                  "encrypted with the hub's master key, which is not in the backup: keep a copy "
                  "of it apart (docs/hub-operations.md)")
            return 0
        if postgres:
            seconds = restore_pg(args.source, url)
            where = f"{where} (pg_restore in {seconds:.1f} s)"
        else:
            restore(args.source, args.data)
    except BackupError as exc:
        print(f"{prog}: {exc}", file=sys.stderr)
        return 1
    try:
        store = HubStore(args.data, getattr(args, "master_key", None), db_url=url)
    except MasterKeyError as exc:
        print(f"{prog}: restored into {where}, but the hub cannot use its site keys: {exc}",
              file=sys.stderr)
        return 1
    except StoreUnavailable as exc:
        print(f"{prog}: restored into {where}, but cannot open it now: {exc}", file=sys.stderr)
        return 1
    sites, messages = store.count_sites(), store.count_messages()
    store.close()
    start = f"--db {split_password(url)[0]} --data {args.data}" if postgres else (
        f"--data {args.data}")
    print(f"{prog}: {where}: {sites} sites, {messages} messages; start the hub with {start} "
          "and the same master key (it is not in the backup)")
    return 0
