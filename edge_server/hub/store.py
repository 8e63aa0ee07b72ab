"""The C-NSP hub's storage: sites and their keys, users, every message, latest state.

SQLite (hub.sqlite in the data folder) by default; PostgreSQL with `--db postgresql://...` (or
NSP_HUB_DB), shared by any number of hub instances (sql.py; docs/hub-postgres.md). The master key
stays a file in the data folder of every instance, never in the database.

- `messages` holds each (site, message id) once: a retried batch stores nothing new, which makes
  delivery exactly-once at the hub on top of the edge's at-least-once sending.
- `site_status` keeps the newest status per site (by the message's own `at`), `alerts` the newest
  state of each alert, `hub_acks` the acknowledgements operators made here; they are returned to
  the site in each ingest reply until the site reports the alert acknowledged or cleared.
- `gentests` holds one row per generator test (site + the edge's test id) for the board's due
  state and the municipality's register; `site_commissioning` the newest commissioning record per
  site. Both are derived from `messages` (an older database fills them at the first start).
- `sites.key` holds the site key encrypted with the hub's master key (keys.py; the master key is
  a file outside the database), `sites.old_key` the key before a rotation while its grace
  period runs (`old_key_until`). A database of an older hub (plain-text keys) is encrypted at the
  first start, in one transaction. The file is still created 0600 and keys are never logged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from edge_server.auth import hash_token, new_token, verify_token
from edge_server.hub.bulletins_store import NOTICES_SCHEMA
from edge_server.hub.keys import (
    MASTER_KEY_ENV,
    KeyUnusable,
    MasterKeyError,
    SiteKeyBox,
    create_master_key,
    is_sealed,
    master_key_path,
    read_master_key,
)
from edge_server.hub.sql import (
    Conn,
    Database,
    PostgresDatabase,
    SqliteDatabase,
    StoreUnavailable,
    describe,
    is_postgres,
    run_migrations,
)
from edge_server.uplink.protocol import iso, parse_iso

log = logging.getLogger(__name__)
DB_NAME = "hub.sqlite"
# The hub's database when --db is not given: a postgresql:// URL, or empty for hub.sqlite.
DB_ENV = "NSP_HUB_DB"
# viewer: reads the board and the logs; writes nothing (bulletins, acknowledgements need operator).
ROLES = ("operator", "admin", "viewer")
_MASTER_CHECK = "master_key_check"
_KEY_CACHE_MAX = 100_000  # decrypted site keys kept (a region has hundreds, the country 3,600)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sites (
    id TEXT PRIMARY KEY, key TEXT NOT NULL, created_at TEXT NOT NULL, last_contact TEXT
);
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY, role TEXT NOT NULL, token_hash TEXT NOT NULL UNIQUE
);
CREATE TABLE IF NOT EXISTS messages (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    site_id TEXT NOT NULL, id TEXT NOT NULL, kind TEXT NOT NULL, at TEXT NOT NULL,
    received_at TEXT NOT NULL, body TEXT NOT NULL,
    UNIQUE(site_id, id)
);
-- Emergency reports across all sites for the board (hub/reports.py); partial: statuses do not
-- pay for it.
CREATE INDEX IF NOT EXISTS messages_reports ON messages(seq) WHERE kind = 'report';
-- "Delivered N litres" by an operator (hub/fuel_round.py), for the record.
CREATE TABLE IF NOT EXISTS fuel_deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT, site_id TEXT NOT NULL, litres REAL NOT NULL,
    note TEXT NOT NULL, by TEXT NOT NULL, at TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS site_status (
    site_id TEXT PRIMARY KEY, at TEXT NOT NULL, body TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS alerts (
    site_id TEXT NOT NULL, alert_id TEXT NOT NULL, at TEXT NOT NULL, state TEXT NOT NULL,
    severity TEXT, code TEXT, body TEXT NOT NULL,
    PRIMARY KEY (site_id, alert_id)
);
CREATE INDEX IF NOT EXISTS alerts_state ON alerts(state);
CREATE TABLE IF NOT EXISTS hub_acks (
    site_id TEXT NOT NULL, alert_id TEXT NOT NULL, by TEXT NOT NULL, at TEXT NOT NULL,
    PRIMARY KEY (site_id, alert_id)
);
CREATE TABLE IF NOT EXISTS hub_meta (name TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS gentests (
    site_id TEXT NOT NULL, test_id TEXT NOT NULL, started_at TEXT, ended_at TEXT NOT NULL,
    outcome TEXT, passed INTEGER, started_by TEXT, body TEXT NOT NULL,
    PRIMARY KEY (site_id, test_id)
);
CREATE INDEX IF NOT EXISTS gentests_ended ON gentests(ended_at);
CREATE INDEX IF NOT EXISTS gentests_site_ended ON gentests(site_id, ended_at);
CREATE INDEX IF NOT EXISTS gentests_site_passed ON gentests(site_id, passed, ended_at);
CREATE TABLE IF NOT EXISTS site_commissioning (
    site_id TEXT PRIMARY KEY, at TEXT NOT NULL, result TEXT NOT NULL, by TEXT NOT NULL,
    body TEXT NOT NULL
);
-- Compact frames (HTTP relay or radio): the newest accepted frame time per site, so a replayed
-- or reordered frame is refused; last_radio_at: when a frame last arrived by radio.
CREATE TABLE IF NOT EXISTS compact_seen (
    site_id TEXT PRIMARY KEY, frame_ts INTEGER NOT NULL, last_radio_at TEXT
);
"""
# gentests / site_commissioning are derived from `messages`: a hub database made before they
# existed fills them from its stored messages once (marked in hub_meta).
_DERIVED_MARK = "derived_gentest_commissioning_v1"
# Added by key rotation; ALTER TABLE brings an older database up to date at start.
_SITE_COLUMNS = {"old_key": "TEXT", "old_key_until": "TEXT",
                 # What the board shows beside the id (`hub add-site --name ...`, `hub set-site`).
                 "name": "TEXT NOT NULL DEFAULT ''", "municipality": "TEXT NOT NULL DEFAULT ''",
                 "region": "TEXT NOT NULL DEFAULT ''",
                 # Where the board's map draws the site (`hub add-site --at LAT,LON`; WGS84).
                 "lat": "REAL", "lon": "REAL"}
SITE_INFO = ("name", "municipality", "region")
# Sender clocks are data, not truth: when the hub received a site's newest status, and
# the arrival order (messages.seq) of each alert's newest state, which orders the alert list and
# makes its cursor. Rows of an older database get -rowid: older than any new row, still unique.
# gentests.arrival: the seq of the message that last wrote the row ("the newest test" is the one
# received last; it was SQLite's rowid under INSERT OR REPLACE, which PostgreSQL has not).
_ADDED_COLUMNS = {
    "site_status": {"received_at": "TEXT"},
    "alerts": {"seq": "BIGINT"},
    "gentests": {"arrival": "BIGINT"},
}
_ADDED_INDEXES = """
CREATE INDEX IF NOT EXISTS alerts_seq ON alerts(seq);
CREATE INDEX IF NOT EXISTS gentests_site_arrival ON gentests(site_id, arrival);
"""


def _pg_migrations() -> list[tuple[int, str]]:
    """PostgreSQL's schema as numbered migrations (sql.run_migrations). 1: the hub's tables as
    SQLite has them today, with the notices (bulletins, report acks, audit) beside them."""
    from edge_server.hub.sql import POSTGRESQL

    added = "".join(
        f"ALTER TABLE {table} ADD COLUMN IF NOT EXISTS {name} {POSTGRESQL.schema(' ' + kind)};\n"
        for table, columns in {"sites": _SITE_COLUMNS, **_ADDED_COLUMNS}.items()
        for name, kind in columns.items()
    )
    return [(1, POSTGRESQL.schema(_SCHEMA) + added + _ADDED_INDEXES
             + POSTGRESQL.schema(NOTICES_SCHEMA))]


class UnknownSite(LookupError):
    pass


class SiteExists(ValueError):
    pass


@dataclass(frozen=True)
class SiteKeys:
    """The keys a site's request may be signed with right now."""

    current: bytes | None  # None: the stored key does not decrypt (logged at ERROR)
    previous: bytes | None  # the key before a rotation, only during its grace period
    sealed: str = ""  # the stored form of `current`: retiring checks it is still current


@dataclass
class _Waiting:
    """One ingest() call waiting for the group commit that holds its batch."""

    site_id: str
    messages: list[dict[str, Any]]
    received: str
    wake: threading.Event = field(default_factory=threading.Event)
    committed: bool = False  # False after wake: this call now leads the next group
    error: BaseException | None = None


class HubStore:
    """Raises MasterKeyError (the message names the file and the fix) when the master key is
    missing or wrong for a database whose keys are encrypted: never start and 401 everyone."""

    def __init__(
        self,
        data_dir: Path,
        master_key_file: Path | None = None,
        *,
        synchronous: Literal["FULL", "NORMAL"] = "FULL",  # NORMAL: only to measure the cost
        db_url: str | None = None,  # None: $NSP_HUB_DB; empty: hub.sqlite in data_dir
    ) -> None:
        if synchronous not in ("FULL", "NORMAL"):
            raise ValueError(f"synchronous={synchronous!r}: use FULL (or NORMAL to measure)")
        url = os.environ.get(DB_ENV, "") if db_url is None else db_url
        if url and not is_postgres(url):
            raise ValueError(
                f"hub database {url!r}: use a postgresql://USER@HOST:PORT/DB URL, or none for "
                f"{DB_NAME} in the data folder"
            )
        data_dir.mkdir(parents=True, exist_ok=True)
        # The directory too: SQLite's -wal/-shm side files and the master key hold secrets.
        os.chmod(data_dir, 0o700)
        self.data_dir = data_dir
        self.path = data_dir / DB_NAME
        self._db: Database
        if url:
            self._db = PostgresDatabase(url)
            self.where = describe(url)
            try:
                run_migrations(self._db, _pg_migrations())
            except BaseException:
                self._db.close()
                raise
        else:
            self.where = str(self.path)
            self._open_sqlite(synchronous)
        self._unusable_logged: set[str] = set()
        self._opened: dict[tuple[str, str], bytes] = {}  # (site, sealed key) -> key
        self._group_lock = threading.Lock()
        self._group: list[_Waiting] = []
        self._leading = False
        self._async_queue: list[tuple[_Waiting, asyncio.Future[None]]] = []
        self._committer: asyncio.Task[None] | None = None
        self.master_key_file = master_key_path(data_dir, master_key_file)
        try:
            self._derive_once()
            self._box = self._open_master_key(self.master_key_file)
        except BaseException:
            self._db.close()
            raise
        if isinstance(self._db, SqliteDatabase):
            for suffix in ("-wal", "-shm"):
                side = Path(str(self.path) + suffix)
                if side.exists():
                    os.chmod(side, 0o600)

    @property
    def db(self) -> Database:
        """The database (the hub's notices share it on PostgreSQL: bulletins.open_notices)."""
        return self._db

    def _open_sqlite(self, synchronous: str) -> None:
        path = self.path
        if not path.exists():
            # Create it 0600 before SQLite opens it: it holds the site keys.
            fd = os.open(path, os.O_CREAT | os.O_WRONLY, 0o600)
            os.close(fd)
        os.chmod(path, 0o600)
        # FULL: every commit is on disk (WAL fsync) before ingest() returns and the 200 goes out.
        # The site deletes what the hub confirmed, so under NORMAL a power cut at the C-NSP
        # could lose acknowledged alerts. Cost measured in benchmarks/bench_hub.py.
        # secure_delete: freed space is zeroed, a replaced key (plain text before the
        # migration) leaves no copy.
        db = SqliteDatabase(path, synchronous=synchronous, secure_delete=True)
        self._db = db
        c = db.conn
        c.executescript(_SCHEMA)
        for table, columns in {"sites": _SITE_COLUMNS, **_ADDED_COLUMNS}.items():
            have = {str(r[1]) for r in c.execute(f"PRAGMA table_info({table})")}
            for name, kind in columns.items():
                if name not in have:
                    c.execute(f"ALTER TABLE {table} ADD COLUMN {name} {kind}")
        c.execute("UPDATE alerts SET seq = -rowid WHERE seq IS NULL")
        # Older rows: before any new one (message seqs are positive), in their rowid order.
        c.execute("UPDATE gentests SET arrival = rowid - (SELECT MAX(rowid) + 1 FROM gentests) "
                  "WHERE arrival IS NULL")
        c.executescript(_ADDED_INDEXES)

    def _derive_once(self) -> None:
        with self._db.write() as db:
            self._db.lock(db, "derive")
            if db.execute("SELECT 1 FROM hub_meta WHERE name = ?", (_DERIVED_MARK,)).fetchone():
                return
            rows = db.execute(
                "SELECT site_id, id, kind, at, body, seq FROM messages "
                "WHERE kind IN ('gentest', 'commissioning') ORDER BY seq"
            ).fetchall()
            for site_id, msg_id, kind, at, body, seq in rows:
                m = {"id": msg_id, "kind": kind, "at": at, "body": json.loads(body)}
                self._apply(db, str(site_id), m, str(body), int(seq))
            db.execute("INSERT INTO hub_meta(name, value) VALUES (?, '1')", (_DERIVED_MARK,))
        if rows:
            log.info("hub: indexed %d stored gentest/commissioning messages", len(rows))

    # -- keys at rest -------------------------------------------------------------------------
    def _open_master_key(self, key_path: Path) -> SiteKeyBox:
        """Load (or on a hub without encrypted keys, create) the master key, check it against
        the database, and encrypt any plain-text key, all in one write transaction."""
        # One process at a time: the hub and a CLI (or two hub instances) may start together.
        with self._db.write() as db:
            self._db.lock(db, "master-key")
            row = db.execute("SELECT value FROM hub_meta WHERE name = ?", (_MASTER_CHECK,))
            check = row.fetchone()
            sealed = [
                (str(r[0]), str(r[1]))
                for r in db.execute("SELECT id, key FROM sites WHERE key LIKE 'enc1:%'")
            ]
            fix = (
                f"restore it from the master key backup (or point --master-key / "
                f"{MASTER_KEY_ENV} at it); without it every site must be re-keyed"
            )
            if not key_path.exists():
                if check is not None or sealed:
                    raise MasterKeyError(
                        f"the hub master key file {key_path} is missing, and the site keys in "
                        f"{self.where} are encrypted with it: {fix}"
                    )
                try:
                    create_master_key(key_path)
                    log.info("hub: created a new master key in %s (mode 0600)", key_path)
                except FileExistsError:
                    pass
            box = SiteKeyBox(read_master_key(key_path), key_path)
            wrong = MasterKeyError(
                f"the hub master key in {key_path} is not the one the site keys in {self.where} "
                f"were encrypted with: {fix}"
            )
            if check is not None and not box.matches(str(check[0])):
                raise wrong
            if check is None and sealed and not any(_opens(box, s, k) for s, k in sealed):
                raise wrong
            plain = db.execute("SELECT id, key FROM sites WHERE key NOT LIKE 'enc1:%'").fetchall()
            for site_id, key in plain:
                db.execute(
                    "UPDATE sites SET key = ? WHERE id = ?", (box.seal(site_id, key), site_id)
                )
            if check is None:
                db.execute(
                    "INSERT INTO hub_meta(name, value) VALUES (?, ?)",
                    (_MASTER_CHECK, box.check_value()),
                )
        if plain and isinstance(self._db, SqliteDatabase):
            # The plain-text pages now live on only in the WAL: copy back and empty it.
            self._db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        if plain:
            log.info(
                "hub: encrypted %d plain-text site key(s) with the master key in %s",
                len(plain),
                key_path,
            )
        mode = key_path.stat().st_mode & 0o777
        if mode & 0o077:
            log.warning(
                "hub: the master key file %s has mode %o: others may read it (chmod 600 %s)",
                key_path,
                mode,
                key_path,
            )
        with self._db.read() as db:
            stored = db.execute("SELECT id, key FROM sites").fetchall()
        for site_id, key in stored:
            if not _opens(box, site_id, key):
                self._unusable(site_id)
        return box

    def _unusable(self, site_id: str) -> None:
        # First time at ERROR, repeats (every request of that site) at DEBUG.
        level = logging.DEBUG if site_id in self._unusable_logged else logging.ERROR
        self._unusable_logged.add(site_id)
        log.log(
            level,
            "hub: the stored key of site %s does not decrypt with the master key %s for this "
            "site (a row copied from another site, or altered): its messages are refused (401) "
            "until it is re-keyed with `nsp-edge hub revoke-key %s`",
            site_id,
            self.master_key_file,
            site_id,
        )

    def close(self) -> None:
        self._db.close()

    # -- sites and users ----------------------------------------------------------------------
    def add_site(self, site_id: str, now: datetime, *, name: str = "", municipality: str = "",
                 region: str = "") -> str:
        """Register a new site; returns its key. SiteExists for a registered id (re-keying is
        rotate_key or revoke_key: never a silent cut-over)."""
        key = secrets.token_urlsafe(32)
        with self._db.write() as db:
            added = db.execute(
                "INSERT INTO sites(id, key, created_at, name, municipality, region) "
                "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING",
                (site_id, self._box.seal(site_id, key), iso(now), name.strip(),
                 municipality.strip(), region.strip()),
            ).rowcount
        if added != 1:
            raise SiteExists(f"site {site_id!r} is already registered")
        return key

    def set_site_info(self, site_id: str, **info: str | None) -> dict[str, str]:
        """Change a site's name, municipality or region (None: keep); returns all three."""
        unknown = set(info) - set(SITE_INFO)
        if unknown:
            raise ValueError(f"unknown site fields: {', '.join(sorted(unknown))}")
        changes = {k: v.strip() for k, v in info.items() if v is not None}
        with self._db.write() as db:
            if changes:
                db.execute(
                    "UPDATE sites SET " + ", ".join(f"{k} = ?" for k in changes)
                    + " WHERE id = ?", [*changes.values(), site_id])
            row = db.execute(
                "SELECT name, municipality, region FROM sites WHERE id = ?", (site_id,)
            ).fetchone()
        if row is None:
            raise UnknownSite(site_id)
        return dict(zip(SITE_INFO, row, strict=True))

    def set_site_location(self, site_id: str, lat: float | None, lon: float | None) -> None:
        """Where the board's map draws the site (None, None: off the map)."""
        with self._db.write() as db:
            changed = db.execute("UPDATE sites SET lat = ?, lon = ? WHERE id = ?",
                                 (lat, lon, site_id)).rowcount
        if changed == 0:
            raise UnknownSite(site_id)

    def has_site(self, site_id: str) -> bool:
        with self._db.read() as db:
            row = db.execute("SELECT 1 FROM sites WHERE id = ?", (site_id,)).fetchone()
        return row is not None

    def rotate_key(self, site_id: str, now: datetime, grace: timedelta, by: str) -> str:
        """A new key for the site; the key it uses now stays valid for `grace` or until the
        first request signed with the new key, whichever comes first. Rotating again while a
        rotation is pending replaces the unused new key and keeps the old one (the site's)."""
        if grace <= timedelta(0):
            raise ValueError("the grace period must be positive (revoke_key has none)")
        key = secrets.token_urlsafe(32)
        until = now + grace
        with self._db.write() as db:
            self._db.lock(db, f"site:{site_id}")
            row = db.execute(
                "SELECT key, old_key, old_key_until FROM sites WHERE id = ?", (site_id,)
            ).fetchone()
            if row is None:
                raise UnknownSite(f"site {site_id!r} is not registered")
            pending = row[1] is not None and now < parse_iso(str(row[2]))
            old = row[1] if pending else row[0]
            db.execute(
                "UPDATE sites SET key = ?, old_key = ?, old_key_until = ? WHERE id = ?",
                (self._box.seal(site_id, key), old, iso(until), site_id),
            )
        log.info(
            "hub: key of site %s rotated by %s at %s; the old key is accepted until %s or the "
            "first message signed with the new key",
            site_id,
            by,
            iso(now),
            iso(until),
        )
        return key

    def revoke_key(self, site_id: str, now: datetime, by: str) -> str:
        """A new key for the site; every earlier key is refused from now on."""
        key = secrets.token_urlsafe(32)
        with self._db.write() as db:
            changed = db.execute(
                "UPDATE sites SET key = ?, old_key = NULL, old_key_until = NULL WHERE id = ?",
                (self._box.seal(site_id, key), site_id),
            ).rowcount
        if changed == 0:
            raise UnknownSite(f"site {site_id!r} is not registered")
        self._unusable_logged.discard(site_id)
        log.info(
            "hub: key of site %s revoked by %s at %s; the old key is refused from now on",
            site_id,
            by,
            iso(now),
        )
        return key

    def site_keys(self, site_id: str, now: datetime) -> SiteKeys | None:
        """The site's usable keys, None for an unknown site. Read and decrypted per request
        (a primary-key lookup and one AES-GCM decryption, microseconds): a rotation or
        revocation made by the CLI in another process takes effect at once."""
        with self._db.read() as db:
            row = db.execute(
                "SELECT key, old_key, old_key_until FROM sites WHERE id = ?", (site_id,)
            ).fetchone()
        if row is None:
            return None
        current = self._decrypt(site_id, str(row[0]))
        if current is not None:
            self._unusable_logged.discard(site_id)
        previous = None
        if row[1] is not None:
            until = parse_iso(str(row[2]))
            if now < until:
                previous = self._decrypt(site_id, str(row[1]))
            else:
                reason = f"its grace period ended at {iso(until)}"
                self.retire_old_key(site_id, reason, str(row[0]))
        return SiteKeys(current, previous, str(row[0]))

    def retire_old_key(self, site_id: str, reason: str, sealed_current: str) -> None:
        """Forget the old key, unless the key was rotated again since it was read (then the
        pending rotation's old key, which the site may still need, is not this decision's)."""
        with self._db.write() as db:
            changed = db.execute(
                "UPDATE sites SET old_key = NULL, old_key_until = NULL "
                "WHERE id = ? AND key = ? AND old_key IS NOT NULL",
                (site_id, sealed_current),
            ).rowcount
        if changed:
            log.info("hub: the old key of site %s is retired: %s", site_id, reason)

    def _decrypt(self, site_id: str, stored: str) -> bytes | None:
        """The key, decrypted once per stored form: the cache is keyed by the sealed text
        read from the database on every request, so a rotation or revocation by any
        instance or CLI (a new sealed text) takes effect at the next request everywhere."""
        hit = self._opened.get((site_id, stored))
        if hit is not None:
            return hit
        try:
            key = self._box.open(site_id, stored).encode("utf-8")
        except KeyUnusable:
            self._unusable(site_id)
            return None
        if len(self._opened) >= _KEY_CACHE_MAX:
            self._opened.clear()  # rare (more sites than the cap): start over, no LRU needed
        self._opened[(site_id, stored)] = key
        return key

    def add_user(self, name: str, role: str) -> str:
        if role not in ROLES:
            raise ValueError(f"role {role!r}: use one of {', '.join(ROLES)}")
        token = new_token()
        with self._db.write() as db:
            db.execute(
                "INSERT INTO users(name, role, token_hash) VALUES (?, ?, ?) "
                "ON CONFLICT(name) DO UPDATE SET role = excluded.role, "
                "token_hash = excluded.token_hash",
                (name, role, hash_token(token)),
            )
        return token

    def user_for_token(self, token: str) -> tuple[str, str] | None:
        digest = hash_token(token)
        with self._db.read() as db:
            row = db.execute(
                "SELECT name, role, token_hash FROM users WHERE token_hash = ?", (digest,)
            ).fetchone()
        if row is None or not verify_token(token, str(row[2])):
            return None
        return str(row[0]), str(row[1])

    # -- ingest -------------------------------------------------------------------------------
    def ingest(self, site_id: str, messages: list[dict[str, Any]], now: datetime) -> list[str]:
        """Store a batch durably; returns every id now held (new or already had).

        Group commit: the batches of the calls that arrive while a commit is under way are
        stored together in the next transaction (one fsync for all), and each call returns
        only after the commit that holds its batch. The first caller leads: it commits what
        has queued up, then hands the lead to the oldest waiting call (nobody commits for
        others for long). If the group's transaction fails on one batch, each batch is
        stored on its own, so a bad batch fails its own caller only."""
        me = _Waiting(site_id, messages, iso(now))
        with self._group_lock:
            self._group.append(me)
            lead = not self._leading
            self._leading = True
        if not lead:
            me.wake.wait()
        if not me.committed:
            with self._group_lock:
                group, self._group = self._group, []
            self._commit_group(group)
            with self._group_lock:
                if self._group:
                    self._group[0].wake.set()  # the next leader
                else:
                    self._leading = False
        if me.error is not None:
            raise me.error
        return [str(m["id"]) for m in messages]

    def _commit_group(self, group: list[_Waiting]) -> None:
        try:
            self._store_batches(group)
        except StoreUnavailable as exc:
            for w in group:
                w.error = exc  # nothing was committed
        except BaseException as exc:
            if len(group) == 1:
                group[0].error = exc
            else:
                for w in group:
                    try:
                        self._store_batches([w])
                    except BaseException as one:
                        w.error = one
        finally:
            for w in group:
                w.committed = True
                w.wake.set()

    async def ingest_async(self, site_id: str, messages: list[dict[str, Any]],
                           now: datetime) -> list[str]:
        """ingest() for the event loop. On SQLite the group's statements run on the loop itself
        and only the COMMIT (the fsync) in a thread, on a connection of its own: no hand-off of
        the interpreter lock per statement, which made the threaded writer wait (measured in
        docs/hub-scaling.md). Batches that arrive during a COMMIT form the next group; each
        caller returns after the COMMIT that holds its batch. On PostgreSQL: ingest() in a
        thread (psycopg is blocking; the loop must not wait for the network)."""
        db = self._db
        if not isinstance(db, SqliteDatabase):
            return await asyncio.to_thread(self.ingest, site_id, messages, now)
        loop = asyncio.get_running_loop()
        me = _Waiting(site_id, messages, iso(now))
        done = loop.create_future()
        self._async_queue.append((me, done))
        if self._committer is None or self._committer.done():
            self._committer = loop.create_task(self._commit_queued(db))
        await done
        if me.error is not None:
            raise me.error
        return [str(m["id"]) for m in messages]

    async def _commit_queued(self, db: SqliteDatabase) -> None:
        conn = db.committer_conn()
        while self._async_queue:
            queued, self._async_queue = self._async_queue, []
            group = [w for w, _f in queued]
            try:
                await self._commit_on_loop(conn, group)
            except BaseException as exc:
                if len(group) == 1:
                    group[0].error = exc
                else:  # a bad batch fails only its own caller
                    for w in group:
                        try:
                            await self._commit_on_loop(conn, [w])
                        except BaseException as one:
                            w.error = one
            for _w, f in queued:
                if not f.done():
                    f.set_result(None)

    async def _commit_on_loop(self, conn: Any, group: list[_Waiting]) -> None:
        # BEGIN IMMEDIATE takes SQLite's write lock (another writer waits busy_timeout): from
        # here to COMMIT no other connection writes, and nothing awaits before the COMMIT.
        conn.execute("BEGIN IMMEDIATE")
        try:
            self._group_statements(conn, group)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        try:
            await asyncio.to_thread(conn.execute, "COMMIT")
        except Exception:  # the COMMIT failed (and returned); not a cancelled wait, during
            if conn.in_transaction:  # which the thread still uses the connection
                conn.execute("ROLLBACK")
            raise

    def _store_batches(self, group: list[_Waiting]) -> None:
        """One transaction for the group, in a handful of statements whatever its size: the
        messages in one multi-row INSERT ... ON CONFLICT DO NOTHING RETURNING (what it returns is
        new; the rest was held already), the newest status per
        site and the newest state per alert in one upsert each (arrival order: the last one
        received wins, as one by one), the rare kinds one by one. Few statements matter more
        than they seem: each SQLite call releases the interpreter lock and must win it back from
        the threads checking other requests (docs/hub-scaling.md)."""
        with self._db.write() as db:
            self._group_statements(db, group)

    def _group_statements(self, db: Conn, group: list[_Waiting]) -> None:
        rows: list[tuple[str, dict[str, Any], str]] = []  # (site, message, body), arrival order
        seen: set[tuple[str, str]] = set()
        for w in group:
            for m in w.messages:
                key = (w.site_id, str(m["id"]))
                if key not in seen:  # a batch repeated within the group: stored once
                    seen.add(key)
                    body = json.dumps(m["body"], separators=(",", ":"), ensure_ascii=False)
                    rows.append((w.site_id, m, body))
        received = max(w.received for w in group)
        seqs = self._insert_many(db, rows, received)
        statuses: dict[str, tuple[Any, ...]] = {}
        alerts: dict[tuple[str, str], tuple[Any, ...]] = {}
        for site, m, body in rows:
            seq = seqs.get((site, str(m["id"])))
            if seq is None:
                continue  # held already (a retry, or stored by another hub instance)
            at = iso(parse_iso(m["at"]))
            if m["kind"] == "status":
                statuses[site] = (site, at, body, received)
            elif m["kind"] == "alert":
                row = _alert_values(site, m, at, body, seq)
                alerts[(site, row[1])] = row
            else:
                self._apply(db, site, m, body, seq, received)
        _upsert(db, _STATUS_UPSERT, list(statuses.values()))
        _upsert(db, _ALERT_UPSERT, list(alerts.values()))
        sites = sorted({w.site_id for w in group})
        for part in _chunks(sites, 500):
            db.execute(f"UPDATE sites SET last_contact = ? WHERE id IN ({_marks(len(part))})",
                       [received, *part])

    def _insert_many(self, db: Conn, rows: list[tuple[str, dict[str, Any], str]],
                     received: str) -> dict[tuple[str, str], int]:
        """Insert what is not held yet; the seq (arrival order) of each new one by (site, id).
        (A lookup first would not help: SQLite scans the whole table for a row-value IN list.)"""
        seqs: dict[tuple[str, str], int] = {}
        for part in _chunks(rows, 400):
            values = ", ".join(["(?, ?, ?, ?, ?, ?)"] * len(part))
            params = [x for site, m, body in part
                      for x in (site, str(m["id"]), m["kind"], m["at"], received, body)]
            for site, msg_id, seq in db.execute(
                "INSERT INTO messages(site_id, id, kind, at, received_at, body) "
                f"VALUES {values} ON CONFLICT DO NOTHING RETURNING site_id, id, seq", params,
            ).fetchall():
                seqs[(str(site), str(msg_id))] = int(seq)
        return seqs

    def _insert(self, db: Conn, site_id: str, m: dict[str, Any], received: str) -> bool:
        body_text = json.dumps(m["body"], separators=(",", ":"), ensure_ascii=False)
        row = db.execute(
            "INSERT INTO messages(site_id, id, kind, at, received_at, body) "
            "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING seq",
            (site_id, m["id"], m["kind"], m["at"], received, body_text),
        ).fetchone()
        if row is not None:
            self._apply(db, site_id, m, body_text, int(row[0]), received)
            return True
        return False

    def ingest_compact(
        self, site_id: str, frame_ts: int, message: dict[str, Any], now: datetime, radio: bool
    ) -> str:
        """One decoded compact frame: "stored", "duplicate" (this id is held: a relay's retry,
        nothing changes) or "old" (not newer than the site's last accepted compact frame: a
        replay or a reordered frame, refused). Check and store in one transaction."""
        received = iso(now)
        with self._db.write() as db:
            self._db.lock(db, f"compact:{site_id}")  # check-then-insert, across instances
            held = db.execute(
                "SELECT 1 FROM messages WHERE site_id = ? AND id = ?", (site_id, message["id"])
            ).fetchone()
            row = db.execute(
                "SELECT frame_ts FROM compact_seen WHERE site_id = ?", (site_id,)
            ).fetchone()
            if held is not None or (row is not None and int(row[0]) >= frame_ts):
                return "duplicate" if held is not None else "old"  # nothing was written
            self._insert(db, site_id, message, received)
            db.execute(
                "INSERT INTO compact_seen(site_id, frame_ts, last_radio_at) VALUES (?, ?, ?) "
                "ON CONFLICT(site_id) DO UPDATE SET frame_ts = excluded.frame_ts, "
                "last_radio_at = COALESCE(excluded.last_radio_at, compact_seen.last_radio_at)",
                (site_id, frame_ts, received if radio else None),
            )
            db.execute("UPDATE sites SET last_contact = ? WHERE id = ?", (received, site_id))
        return "stored"

    def _apply(
        self, db: Conn, site_id: str, m: dict[str, Any], body_text: str, seq: int,
        received: str | None = None,
    ) -> None:
        """The derived tables after a new message. The message received last wins, never the one
        with the newest `at`: the sender's clock is data, not truth (a status stamped 2099 would
        freeze the board, a clock fallen back to 2000 would be ignored); the edge sends in its
        outbox order, so arrival order is the site's own order."""
        at = iso(parse_iso(m["at"]))
        if m["kind"] == "status":
            _upsert(db, _STATUS_UPSERT, [(site_id, at, body_text, received)])
        elif m["kind"] == "alert":
            _upsert(db, _ALERT_UPSERT, [_alert_values(site_id, m, at, body_text, seq)])
        elif m["kind"] == "gentest":
            self._apply_gentest(db, site_id, m, at, body_text, seq)
        elif m["kind"] == "commissioning":
            body = m["body"]
            db.execute(
                "INSERT INTO site_commissioning(site_id, at, result, by, body) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(site_id) DO UPDATE SET at = excluded.at, "
                "result = excluded.result, by = excluded.by, body = excluded.body",
                (
                    site_id,
                    _iso_or(body.get("commissioned_at"), at),
                    str(body.get("result", "")),
                    str(body.get("by", "")),
                    body_text,
                ),
            )

    def _apply_gentest(
        self, db: Conn, site_id: str, m: dict[str, Any], at: str, body_text: str, seq: int
    ) -> None:
        """One row per test (the edge's record id; a re-sent test replaces its row and becomes
        the newest by arrival)."""
        body = m["body"]
        passed = body.get("passed")
        db.execute(
            "INSERT INTO gentests(site_id, test_id, started_at, ended_at, outcome, "
            "passed, started_by, body, arrival) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?) "
            "ON CONFLICT(site_id, test_id) DO UPDATE SET started_at = excluded.started_at, "
            "ended_at = excluded.ended_at, outcome = excluded.outcome, passed = excluded.passed, "
            "started_by = excluded.started_by, body = excluded.body, arrival = excluded.arrival",
            (
                site_id,
                str(body.get("id") or m["id"]),
                _iso_or(body.get("started_at"), None),
                _iso_or(body.get("ended_at"), at),
                body.get("outcome"),
                None if passed is None else int(bool(passed)),
                body.get("started_by"),
                body_text,
                seq,
            ),
        )

    def pending_acks(self, site_id: str) -> list[dict[str, str]]:
        """Hub acknowledgements the site has not confirmed yet (its alert is still 'raised')."""
        with self._db.read() as db:
            rows = db.execute(
                # CROSS JOIN fixes the loop order in SQLite: the few acks of this site first,
                # not every raised alert in the region (measured 1.2 ms -> 0.02 ms per ingest).
                f"SELECT h.alert_id, h.by, h.at FROM hub_acks h {self._db.dialect.cross_join} "
                "alerts a "
                "ON a.site_id = h.site_id AND a.alert_id = h.alert_id "
                "WHERE h.site_id = ? AND a.state = 'raised' ORDER BY h.at",
                (site_id,),
            ).fetchall()
        return [{"alert_id": r[0], "by": r[1], "at": r[2]} for r in rows]

    # -- reads --------------------------------------------------------------------------------
    def count_sites(self) -> int:
        with self._db.read() as db:
            n: int = db.execute("SELECT COUNT(*) FROM sites").fetchone()[0]
        return n

    def sites(
        self, site_id: str | None = None, after: str | None = None, limit: int = -1
    ) -> list[dict[str, Any]]:
        """One site, or the sites in id order after `after` (a page of `limit`; -1: all)."""
        where, params = "", []
        if site_id is not None:
            where, params = "WHERE s.id = ? ", [site_id]
        elif after is not None:
            where, params = "WHERE s.id > ? ", [after]
        with self._db.read() as db:
            rows = db.execute(
                "SELECT s.id, s.last_contact, st.at, st.body, "
                "(SELECT COUNT(*) FROM alerts a WHERE a.site_id = s.id AND a.state != 'cleared'), "
                # The newest test (any outcome) and the end of the newest PASSED one (what the
                # monthly schedule counts from, as at the edge).
                # Newest by arrival (the message seq that last wrote the row), not by the
                # sender's clock: a test stamped 2099 must not stay "the newest" for ever.
                "(SELECT g.body FROM gentests g WHERE g.site_id = s.id "
                " ORDER BY g.arrival DESC LIMIT 1), "
                "(SELECT g.ended_at FROM gentests g WHERE g.site_id = s.id AND g.passed = 1 "
                " ORDER BY g.arrival DESC LIMIT 1), "
                "c.body, st.received_at, cs.last_radio_at, s.name, s.municipality, s.region, "
                "s.lat, s.lon "
                "FROM sites s LEFT JOIN site_status st ON st.site_id = s.id "
                "LEFT JOIN site_commissioning c ON c.site_id = s.id "
                "LEFT JOIN compact_seen cs ON cs.site_id = s.id "
                + where
                + "ORDER BY s.id LIMIT ?",
                [*params, self._db.dialect.limit(limit)],
            ).fetchall()
        return [
            {
                "site_id": r[0],
                "last_contact": r[1],
                "status_at": r[2],
                "status": _loads(r[3]) if r[3] else None,
                "open_alerts_hub": int(r[4]),
                "last_gentest": _loads(r[5]) if r[5] else None,
                "last_passed_gentest_at": r[6],
                "commissioning": _loads(r[7]) if r[7] else None,
                "status_received_at": r[8],
                "last_radio_at": r[9],
                "name": r[10],
                "municipality": r[11],
                "region": r[12],
                "lat": r[13],
                "lon": r[14],
            }
            for r in rows
        ]

    def site(self, site_id: str) -> dict[str, Any] | None:
        found = self.sites(site_id)
        return found[0] if found else None

    def gentests(
        self,
        ended_from: str,
        ended_before: str,
        site_id: str | None = None,
        after: tuple[str, str, str] | None = None,
        limit: int = -1,
    ) -> tuple[list[dict[str, Any]], int]:
        """The generator-test register: tests that ended in [ended_from, ended_before) (ISO UTC),
        oldest first (ended_at, site, test id), each {"site_id", "body", "key"}, from after
        `after` (a row's key) for `limit` rows (-1: all); and how many the range holds."""
        sql = "FROM gentests WHERE ended_at >= ? AND ended_at < ?"
        params: list[Any] = [ended_from, ended_before]
        if site_id is not None:
            sql += " AND site_id = ?"
            params.append(site_id)
        page_sql, page_params = sql, list(params)
        if after is not None:
            page_sql += " AND (ended_at, site_id, test_id) > (?, ?, ?)"
            page_params.extend(after)
        with self._db.read() as db:
            total: int = db.execute("SELECT COUNT(*) " + sql, params).fetchone()[0]
            rows = db.execute(
                "SELECT site_id, body, ended_at, test_id " + page_sql
                + " ORDER BY ended_at, site_id, test_id LIMIT ?",
                [*page_params, self._db.dialect.limit(limit)],
            ).fetchall()
        return [
            {"site_id": r[0], "body": _loads(r[1]), "key": (r[2], r[0], r[3])} for r in rows
        ], total

    def alerts(
        self, open_only: bool, limit: int, site_id: str | None = None
    ) -> list[dict[str, Any]]:
        return self.alerts_page(open_only, limit, site_id)[0]

    def alerts_page(
        self, open_only: bool, limit: int, site_id: str | None = None, before: int | None = None
    ) -> tuple[list[dict[str, Any]], int, int | None]:
        """Alerts, the newest state received first (arrival order: a sender's wrong clock
        cannot pin an alert to the top), from before `before` (the `next` of the page before);
        (rows, how many match, the `next` of this page or None at the end)."""
        where = " WHERE 1=1"
        params: list[Any] = []
        if open_only:
            where += " AND a.state != 'cleared'"
        if site_id is not None:
            where += " AND a.site_id = ?"
            params.append(site_id)
        page_where, page_params = where, list(params)
        if before is not None:
            page_where += " AND a.seq < ?"
            page_params.append(before)
        with self._db.read() as db:
            total: int = db.execute(
                "SELECT COUNT(*) FROM alerts a" + where, params
            ).fetchone()[0]
            rows = db.execute(
                "SELECT a.site_id, a.alert_id, a.at, a.state, a.severity, a.code, a.body, "
                "h.by, h.at, a.seq FROM alerts a LEFT JOIN hub_acks h "
                "ON h.site_id = a.site_id AND h.alert_id = a.alert_id"
                + page_where + " ORDER BY a.seq DESC LIMIT ?",
                [*page_params, limit + 1],
            ).fetchall()
        more = len(rows) > limit
        rows = rows[:limit]
        next_seq = int(rows[-1][9]) if more and rows else None
        return [_alert_row(r) for r in rows], total, next_seq

    def ack_alert(self, site_id: str, alert_id: str, by: str, now: datetime) -> bool:
        with self._db.write() as db:
            row = db.execute(
                "SELECT 1 FROM alerts WHERE site_id = ? AND alert_id = ?", (site_id, alert_id)
            ).fetchone()
            if row is None:
                return False
            db.execute(
                "INSERT INTO hub_acks(site_id, alert_id, by, at) VALUES (?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (site_id, alert_id, by, iso(now)),
            )
        return True

    def messages(self, site_id: str, kind: str | None = None) -> list[dict[str, Any]]:
        """Every stored message of a site in arrival order (tests and audits)."""
        sql = "SELECT id, kind, at, received_at, body FROM messages WHERE site_id = ?"
        params: list[Any] = [site_id]
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        with self._db.read() as db:
            rows = db.execute(sql + " ORDER BY seq", params).fetchall()
        return [
            {"id": r[0], "kind": r[1], "at": r[2], "received_at": r[3], "body": json.loads(r[4])}
            for r in rows
        ]

    def messages_of_kind(self, kind: str, limit: int) -> list[dict[str, Any]]:
        """The newest `limit` messages of one kind across all sites, newest first (emergency
        reports for the board, hub/reports.py; the partial index messages_reports)."""
        with self._db.read() as db:
            rows = db.execute(
                "SELECT site_id, id, kind, at, received_at, body FROM messages WHERE kind = ? "
                "ORDER BY seq DESC LIMIT ?", (kind, limit),
            ).fetchall()
        return [
            {"site_id": r[0], "id": r[1], "kind": r[2], "at": r[3], "received_at": r[4],
             "body": _loads(r[5])}
            for r in rows
        ]

    def add_fuel_delivery(self, site_id: str, litres: float, note: str, by: str,
                          now: datetime) -> dict[str, Any]:
        """Record "delivered `litres` at `site_id`" by operator `by` (committed on return)."""
        with self._db.write() as db:
            row = db.execute(
                "INSERT INTO fuel_deliveries(site_id, litres, note, by, at) "
                "VALUES (?, ?, ?, ?, ?) RETURNING id",
                (site_id, litres, note, by, iso(now))).fetchone()
        return {"id": int(row[0]), "site_id": site_id, "litres": litres, "note": note,
                "by": by, "at": iso(now), "seen_at_site": None}

    def fuel_deliveries(self, site_id: str | None, limit: int) -> list[dict[str, Any]]:
        """Deliveries newest first; `seen_at_site`: when the site's own FUEL_REFUELLED event
        (its level jumped) arrived after the delivery was recorded, else None."""
        where, params = ("WHERE d.site_id = ? ", [site_id]) if site_id else ("", [])
        code = self._db.dialect.json_text("m.body", "code")
        with self._db.read() as db:
            rows = db.execute(
                "SELECT d.id, d.site_id, d.litres, d.note, d.by, d.at, "
                "(SELECT MIN(m.received_at) FROM messages m WHERE m.site_id = d.site_id "
                " AND m.kind = 'event' AND m.received_at >= d.at "
                f" AND {code} = 'FUEL_REFUELLED') "
                "FROM fuel_deliveries d " + where + "ORDER BY d.id DESC LIMIT ?",
                [*params, limit]).fetchall()
        return [{"id": r[0], "site_id": r[1], "litres": r[2], "note": r[3], "by": r[4],
                 "at": r[5], "seen_at_site": r[6]} for r in rows]

    def count_messages(self) -> int:
        with self._db.read() as db:
            n: int = db.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
        return n


# The derived rows' upserts, for one row or many (HubStore._apply, _store_batches): the newest
# status per site, the newest state per alert; {rows} is "(?, ...), (?, ...)".
_STATUS_UPSERT = (
    "INSERT INTO site_status(site_id, at, body, received_at) VALUES {rows} "
    "ON CONFLICT(site_id) DO UPDATE SET at = excluded.at, body = excluded.body, "
    "received_at = excluded.received_at", 4)
_ALERT_UPSERT = (
    "INSERT INTO alerts(site_id, alert_id, at, state, severity, code, body, seq) VALUES {rows} "
    "ON CONFLICT(site_id, alert_id) DO UPDATE SET at = excluded.at, state = excluded.state, "
    "severity = excluded.severity, code = excluded.code, body = excluded.body, "
    "seq = excluded.seq", 8)


def _alert_values(site_id: str, m: dict[str, Any], at: str, body_text: str,
                  seq: int) -> tuple[Any, ...]:
    body = m["body"]
    return (site_id, str(body.get("alert_id") or m["id"]), at, str(body.get("state", "raised")),
            body.get("severity"), body.get("code"), body_text, seq)


def _upsert(db: Conn, statement: tuple[str, int], rows: list[tuple[Any, ...]]) -> None:
    """Rows with distinct keys (PostgreSQL refuses one statement touching a row twice)."""
    sql, width = statement
    for part in _chunks(rows, 200):
        marks = ", ".join([f"({_marks(width)})"] * len(part))
        db.execute(sql.format(rows=marks), [x for r in part for x in r])


def _marks(n: int) -> str:
    return ", ".join(["?"] * n)


def _chunks(items: list[Any], size: int) -> list[list[Any]]:
    """Pieces small enough for one statement's bound parameters (SQLite allows 32,766)."""
    return [items[i:i + size] for i in range(0, len(items), size)]


def _alert_row(r: tuple[Any, ...]) -> dict[str, Any]:
    return {
        "site_id": r[0],
        "alert_id": r[1],
        "at": r[2],
        "state": r[3],
        "severity": r[4],
        "code": r[5],
        "body": _loads(r[6]),
        "hub_ack": None if r[7] is None else {"by": r[7], "at": r[8]},
    }


# What a stored body that is not JSON at all reads as: no body model accepts it, so the pages
# show "unreadable data" for it (edge_server/hub/app.py) instead of failing.
_NOT_JSON = {"unreadable": "the stored text is not JSON"}


def _loads(text: Any) -> Any:
    try:
        return json.loads(text)
    except (TypeError, ValueError, RecursionError):
        return dict(_NOT_JSON)


def sortable(dt: datetime) -> str:
    """UTC with a fixed 6-digit fraction: compares as text in time order (date-range queries)."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _iso_or(text: Any, default: str | None) -> str | None:
    """A body's timestamp in the sortable form, else `default` (sortable too)."""
    if isinstance(text, str):
        try:
            return sortable(parse_iso(text))
        except ValueError:
            pass
    return None if default is None else sortable(parse_iso(default))


def _opens(box: SiteKeyBox, site_id: str, stored: str) -> bool:
    if not is_sealed(stored):
        return True  # plain text (about to be encrypted): usable
    try:
        box.open(site_id, stored)
    except KeyUnusable:
        return False
    return True
