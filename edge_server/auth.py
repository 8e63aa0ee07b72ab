"""Accounts, roles and API tokens of the edge service (the hub may reuse the plain token functions).

Plain functions (no FastAPI, no database):
    token = new_token()            # 256 random bits, URL-safe text; shown ONCE to the admin
    digest = hash_token(token)     # what is stored
    verify_token(token, digest)    # constant-time comparison

Why SHA-256 and not scrypt/PBKDF2: a token is 256 bits from the OS random generator, not a
password a person chose. Slow, salted hashes exist to make guessing *low-entropy* secrets
expensive; guessing a 256-bit token is infeasible at any hash speed (2^255 tries on average), so a
fast hash loses nothing, and it lets us look a token up by its digest (an indexed column) instead
of trying every user's salt on every request. A leaked database therefore reveals no usable token.

Roles are ordered: viewer < operator < technician < admin. The FastAPI dependencies
(`RequireRole("operator")`, `ReadAccess`) are at the end of this module.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import logging
import secrets
import sqlite3
import threading
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import IntEnum
from pathlib import Path
from typing import Annotated

from fastapi import Depends, HTTPException, Request, status

from edge_server.clock import Clock, SystemClock

log = logging.getLogger(__name__)

TOKEN_BYTES = 32  # 256 bits


class Role(IntEnum):
    """Ordered: a higher role may do everything a lower one may."""

    VIEWER = 1  # reads the site page and history
    OPERATOR = 2  # acknowledges alerts, resets occupancy
    TECHNICIAN = 3  # generator tests, relay commands, commissioning
    ADMIN = 4  # manages accounts and settings

    @classmethod
    def parse(cls, text: str) -> Role:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            known = ", ".join(r.name.lower() for r in cls)
            raise ValueError(f"role: unknown role {text!r}; use one of: {known}") from None

    @property
    def label(self) -> str:
        return self.name.lower()


def new_token() -> str:
    """A fresh API token: 256 random bits, URL-safe base64 (43 characters)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """SHA-256 hex digest of a token (see the module docstring for why a fast hash is right)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def verify_token(token: str, digest: str) -> bool:
    """True when `token` hashes to `digest`; constant-time comparison."""
    return hmac.compare_digest(hash_token(token), digest)


# --- the users table (in site.db; created by edge_server.storage's schema) ------------------------

USERS_SCHEMA = """
CREATE TABLE IF NOT EXISTS users (
    name TEXT PRIMARY KEY,
    role TEXT NOT NULL,
    token_sha256 TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);
"""

USER_NAME_RULE = "1-64 characters: letters, digits, '.', '_', '-', '@'"


@dataclass(frozen=True, slots=True)
class User:
    name: str
    role: Role
    created_at: str = ""


def _check_name(name: str) -> str:
    allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-@")
    if not 1 <= len(name) <= 64 or not set(name) <= allowed:
        raise ValueError(f"name: {name!r} is not a valid user name ({USER_NAME_RULE})")
    return name


class UserStore:
    """Users in site.db. Only the token's SHA-256 digest is stored."""

    def __init__(self, db: sqlite3.Connection | Path) -> None:
        """`db`: an open connection, or the path of site.db, opened on first use (so the app
        can be built without I/O and the file is opened inside the service's lifespan)."""
        self._path = db if isinstance(db, Path) else None
        self._db: sqlite3.Connection | None = None if isinstance(db, Path) else db
        # One connection shared by the API's worker threads: serialise its use.
        self._lock = threading.Lock()

    @property
    def _conn(self) -> sqlite3.Connection:
        """The connection, opened and the table ensured on first use; call with _lock held."""
        if self._db is None:
            from edge_server.storage.db import open_db  # storage imports this module

            assert self._path is not None
            self._db = open_db(self._path)
        if not self._ready:
            with self._db:
                self._db.execute(USERS_SCHEMA)
            self._ready = True
        return self._db

    _ready = False

    def close(self) -> None:
        with self._lock:
            if self._db is not None and self._path is not None:
                self._db.close()
                self._db = None

    def add(self, name: str, role: Role, now: datetime) -> str:
        """Create a user; return the token (the only time it is ever available)."""
        _check_name(name)
        token = new_token()
        try:
            with self._lock, self._conn:
                self._conn.execute(
                    "INSERT INTO users(name, role, token_sha256, created_at) VALUES (?, ?, ?, ?)",
                    (name, role.label, hash_token(token), now.isoformat()),
                )
        except sqlite3.IntegrityError:
            raise ValueError(
                f"name: a user {name!r} already exists; remove it first to issue a new token"
            ) from None
        return token

    def remove(self, name: str) -> bool:
        with self._lock, self._conn:
            cur = self._conn.execute("DELETE FROM users WHERE name = ?", (name,))
        return cur.rowcount > 0

    def list(self) -> list[User]:
        with self._lock:
            rows = self._conn.execute(
                "SELECT name, role, created_at FROM users ORDER BY name"
            ).fetchall()
        return [User(n, Role.parse(r), c) for n, r, c in rows]

    def authenticate(self, token: str) -> User | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT name, role, created_at, token_sha256 FROM users WHERE token_sha256 = ?",
                (hash_token(token),),
            ).fetchone()
        if row is None or not verify_token(token, row[3]):
            return None
        return User(row[0], Role.parse(row[1]), row[2])


# --- FastAPI dependencies ----------------------------------------------------------------------


class Authenticator:
    """Checks bearer tokens, rate-limits failed attempts per client address, logs failures.

    The app keeps one in `app.state.auth`; the dependencies below find it there.
    After `max_failures` failed attempts within `window_s` seconds (monotonic clock, injected)
    a client address gets 429 until the oldest failure leaves the window; a valid token does not
    bypass the block (otherwise guessing could continue in parallel with one valid account).
    Tokens are never logged: only the client address, the reason and the user name.
    """

    def __init__(
        self,
        users: UserStore,
        clock: Clock | None = None,
        *,
        require_auth_for_read: bool = False,
        max_failures: int = 10,
        window_s: float = 60.0,
        trusted_proxies: Iterable[str] = (),
    ) -> None:
        self.users = users
        self.trusted_proxies = parse_networks(trusted_proxies)
        self.clock: Clock = clock or SystemClock()
        self.require_auth_for_read = require_auth_for_read
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent_failures(self, client: str, now_s: float) -> deque[float]:
        """Failures of `client` inside the window; call with _lock held."""
        q = self._failures.get(client)
        if q is None:
            return deque()
        while q and now_s - q[0] >= self.window_s:
            q.popleft()
        if not q:  # forget quiet addresses, so the table cannot grow without bound
            del self._failures[client]
        return q

    def _fail(self, client: str, reason: str, code: int, detail: str) -> HTTPException:
        now_s = self.clock.monotonic()
        with self._lock:
            q = self._recent_failures(client, now_s)
            q.append(now_s)
            self._failures[client] = q
            count = len(q)
        log.warning("authentication failed from %s: %s (%d in %.0f s)",
                    client, reason, count, self.window_s)
        headers = {"WWW-Authenticate": "Bearer"} if code == status.HTTP_401_UNAUTHORIZED else None
        return HTTPException(status_code=code, detail=detail, headers=headers)

    def authenticate(self, authorization: str | None, client: str) -> User:
        """The user for an `Authorization: Bearer TOKEN` header, or HTTPException 401/429."""
        now_s = self.clock.monotonic()
        with self._lock:
            blocked = len(self._recent_failures(client, now_s)) >= self.max_failures
        if blocked:
            log.warning("authentication refused from %s: too many failed attempts", client)
            raise HTTPException(
                status_code=status.HTTP_429_TOO_MANY_REQUESTS,
                detail=f"too many failed logins from {client}; try again later",
                headers={"Retry-After": str(int(self.window_s))},
            )
        if not authorization:
            # A missing header is not a guess: answer 401 but do not count it as a failure,
            # so a browser page that first tries without a token cannot lock its user out.
            raise HTTPException(
                status_code=status.HTTP_401_UNAUTHORIZED,
                detail="authentication required: send 'Authorization: Bearer <token>' "
                "(create a token with: nsp-edge users add NAME --role ROLE)",
                headers={"WWW-Authenticate": "Bearer"},
            )
        scheme, _, token = authorization.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise self._fail(client, "malformed Authorization header",
                             status.HTTP_401_UNAUTHORIZED,
                             "Authorization header must be 'Bearer <token>'")
        user = self.users.authenticate(token)
        if user is None:
            raise self._fail(client, "unknown or revoked token",
                             status.HTTP_401_UNAUTHORIZED, "invalid token")
        return user


Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(texts: Iterable[str]) -> tuple[Network, ...]:
    """"10.0.0.5", "10.0.0.0/24", "::1" -> networks (ValueError naming the bad entry)."""
    nets = []
    for text in texts:
        try:
            nets.append(ipaddress.ip_network(text.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"{text!r} is not an IP address or network (e.g. 10.0.0.5 or "
                             "10.0.0.0/24)") from exc
    return tuple(nets)


def _in(address: str, networks: tuple[Network, ...]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_address(
    peer: str | None, forwarded_for: str | None, trusted_proxies: tuple[Network, ...]
) -> str:
    """The address a request came from, for the failed-login limit and the log.

    X-Forwarded-For is anyone's to write, so it counts only when the TCP peer is one of the
    configured proxies; then the client is the right-most address in it that is not a proxy
    (each proxy appends the address it saw; what a client wrote itself stands further left).
    uvicorn's own forwarded-header handling is switched off (proxy_headers=False) where the
    apps are served: it would trust any header from 127.0.0.1.
    """
    address = peer or "unknown"
    if not forwarded_for or not _in(address, trusted_proxies):
        return address
    for hop in reversed(forwarded_for.split(",")):
        hop = hop.strip()
        if _in(hop, trusted_proxies):
            continue
        try:
            return str(ipaddress.ip_address(hop))
        except ValueError:  # not an address ("unknown", garbage): count it as the proxy's
            return address
    return address


def _client(request: Request) -> str:
    peer = request.client.host if request.client else None
    auth = getattr(request.app.state, "auth", None)
    trusted = auth.trusted_proxies if isinstance(auth, Authenticator) else ()
    return client_address(peer, request.headers.get("x-forwarded-for"), trusted)


def get_authenticator(request: Request) -> Authenticator:
    auth = getattr(request.app.state, "auth", None)
    if not isinstance(auth, Authenticator):
        raise RuntimeError("app.state.auth is not set: create_app must install an Authenticator")
    return auth


class RequireRole:
    """Dependency: `user: Annotated[User, Depends(RequireRole("operator"))]`.

    401 without or with an invalid token, 403 when the user's role is below `role`,
    429 after too many failures from the client's address.
    """

    def __init__(self, role: str | Role) -> None:
        self.role = role if isinstance(role, Role) else Role.parse(role)

    def __call__(self, request: Request) -> User:
        auth = get_authenticator(request)
        user = auth.authenticate(request.headers.get("authorization"), _client(request))
        if user.role < self.role:
            log.warning("user %s (%s) refused: %s %s needs role %s", user.name, user.role.label,
                        request.method, request.url.path, self.role.label)
            raise HTTPException(
                status_code=status.HTTP_403_FORBIDDEN,
                detail=f"role {self.role.label} or higher required (you are {user.role.label})",
            )
        return user


def read_access(request: Request) -> User | None:
    """Reading needs a viewer token only when the site sets api.require_auth_for_read = true.

    Without that setting an anonymous reader gets None; a reader who does send a token still has
    it checked (a wrong token is an error, never silently anonymous).
    """
    auth = get_authenticator(request)
    header = request.headers.get("authorization")
    if header is None and not auth.require_auth_for_read:
        return None
    return RequireRole(Role.VIEWER)(request)


ReadAccess = Annotated[User | None, Depends(read_access)]
Operator = Annotated[User, Depends(RequireRole(Role.OPERATOR))]
Technician = Annotated[User, Depends(RequireRole(Role.TECHNICIAN))]
Admin = Annotated[User, Depends(RequireRole(Role.ADMIN))]

__all__ = [
    "Admin", "Authenticator", "Operator", "ReadAccess", "RequireRole", "Role", "Technician",
    "User", "UserStore", "client_address", "hash_token", "new_token", "parse_networks",
    "read_access", "verify_token",
]
