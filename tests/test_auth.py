"""Accounts: the users CLI (a real subprocess), tokens hashed at rest, 401/403/429, read access."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated

import httpx
import pytest
from fastapi import Depends

from edge_server.api.app import create_app
from edge_server.auth import (
    RequireRole,
    Role,
    User,
    UserStore,
    hash_token,
    new_token,
    verify_token,
)
from edge_server.clock import ManualClock
from edge_server.config import parse_config
from edge_server.service import Part, Service
from edge_server.storage.db import open_db
from tests.conftest import ROOT

# A state-changing test route guarded the way real routes are.
NeedsOperator = Annotated[User, Depends(RequireRole("operator"))]


def nsp_edge(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    return subprocess.run([sys.executable, "-m", "edge_server.cli", *args], env=env,
                          capture_output=True, text=True, timeout=60)


def site_toml(data_dir: Path, require_auth_for_read: bool = False) -> str:
    return f"""
[site]
id = "test-site"
[api]
require_auth_for_read = {str(require_auth_for_read).lower()}
[storage]
data_dir = "{data_dir}"
[[buses]]
name = "b"
kind = "tcp"
host = "127.0.0.1"
port = 1
[[nodes]]
name = "fridge1"
bus = "b"
unit = 2
roles = ["fridge"]
"""


def test_token_functions():
    a, b = new_token(), new_token()
    assert a != b and len(a) >= 43  # 256 bits in URL-safe base64
    assert verify_token(a, hash_token(a))
    assert not verify_token(b, hash_token(a))
    assert hash_token(a) != a and len(hash_token(a)) == 64


def test_users_cli_prints_a_token_stored_only_hashed(tmp_path: Path):
    config = tmp_path / "site.toml"
    data = tmp_path / "data"
    config.write_text(site_toml(data))
    added = nsp_edge("users", "add", "anna", "--role", "operator", "--config", str(config))
    assert added.returncode == 0, added.stderr
    token = added.stdout.strip().splitlines()[-1].split()[-1]
    assert len(token) >= 43

    # Hashed at rest: the token string is nowhere in the database files, its digest is.
    raw = b"".join(p.read_bytes() for p in data.iterdir() if p.name.startswith("site.db"))
    assert token.encode() not in raw
    assert hash_token(token).encode() in raw
    conn = open_db(data / "site.db")
    user = UserStore(conn).authenticate(token)
    conn.close()
    assert user == User("anna", Role.OPERATOR, user.created_at if user else "")

    again = nsp_edge("users", "add", "anna", "--role", "admin", "--data", str(data))
    assert again.returncode == 2 and "already exists" in again.stderr
    bad = nsp_edge("users", "add", "bad name", "--role", "admin", "--data", str(data))
    assert bad.returncode == 2 and "name:" in bad.stderr

    listed = nsp_edge("users", "list", "--data", str(data))
    assert listed.returncode == 0
    assert [line.split()[:2] for line in listed.stdout.splitlines()] == [["anna", "operator"]]
    assert token not in listed.stdout

    removed = nsp_edge("users", "remove", "anna", "--config", str(config))
    assert removed.returncode == 0
    assert nsp_edge("users", "remove", "anna", "--data", str(data)).returncode == 1
    conn = open_db(data / "site.db")
    assert UserStore(conn).authenticate(token) is None
    conn.close()


class Site:
    def __init__(self, service: Service, clock: ManualClock, tokens: dict[str, str]) -> None:
        self.service, self.clock, self.tokens = service, clock, tokens
        self.app = create_app(service, manage_service=False)

        @self.app.post("/test/operator-only")
        def operator_only(user: NeedsOperator) -> dict[str, str]:
            return {"by": user.name}

    def client(self, address: str = "10.0.0.5") -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app, client=(address, 40000))
        return httpx.AsyncClient(transport=transport, base_url="http://edge")

    def auth(self, who: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[who]}"}


async def make_site(tmp_path: Path, require_auth_for_read: bool) -> AsyncIterator[Site]:
    clock = ManualClock()
    config = parse_config(site_toml(tmp_path / "data", require_auth_for_read))
    service = Service(config, clock, parts=Part.STORAGE)
    await service.start(run_poller=False)
    try:
        users = UserStore(service.storage.require().connection)
        tokens = {role.label: users.add(role.label, role, clock.now()) for role in Role}
        yield Site(service, clock, tokens)
    finally:
        await service.stop()


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    async for s in make_site(tmp_path, require_auth_for_read=False):
        yield s


@pytest.fixture
async def closed_site(tmp_path: Path) -> AsyncIterator[Site]:
    async for s in make_site(tmp_path, require_auth_for_read=True):
        yield s


async def test_roles_401_403(site: Site):
    async with site.client() as c:
        r = await c.post("/test/operator-only")
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        r = await c.post("/test/operator-only", headers={"Authorization": "Bearer nope"})
        assert r.status_code == 401
        r = await c.post("/test/operator-only", headers={"Authorization": "Basic abc"})
        assert r.status_code == 401
        r = await c.post("/test/operator-only", headers=site.auth("viewer"))
        assert r.status_code == 403 and "operator" in r.json()["detail"]
        for who in ("operator", "technician", "admin"):
            r = await c.post("/test/operator-only", headers=site.auth(who))
            assert r.status_code == 200 and r.json() == {"by": who}


async def test_failed_logins_are_rate_limited_per_address_and_logged_without_token(
        site: Site, caplog: pytest.LogCaptureFixture):
    caplog.set_level(logging.INFO)
    guesses = [new_token() for _ in range(10)]
    async with site.client("10.0.0.66") as attacker, site.client("10.0.0.7") as other:
        for guess in guesses:
            r = await attacker.post("/test/operator-only",
                                    headers={"Authorization": f"Bearer {guess}"})
            assert r.status_code == 401
        # The 11th attempt within a minute is refused, even with a valid token.
        r = await attacker.post("/test/operator-only", headers=site.auth("operator"))
        assert r.status_code == 429
        # Another address is not affected.
        r = await other.post("/test/operator-only", headers=site.auth("operator"))
        assert r.status_code == 200
        site.clock.advance(59)
        r = await attacker.post("/test/operator-only", headers=site.auth("operator"))
        assert r.status_code == 429
        site.clock.advance(2)  # the failures left the 60-s window
        r = await attacker.post("/test/operator-only", headers=site.auth("operator"))
        assert r.status_code == 200
    text = "\n".join(rec.getMessage() for rec in caplog.records)
    assert "10.0.0.66" in text and "authentication failed" in text
    for secret in [*guesses, *site.tokens.values()]:
        assert secret not in text


async def test_reading_is_open_on_an_open_site_but_a_wrong_token_is_refused(site: Site):
    async with site.client() as c:
        assert (await c.get("/metrics")).status_code == 200
        r = await c.get("/api/v1/history", params={"channel": "nope.x"})
        assert r.status_code == 404 and "channel" in r.json()["detail"]
        r = await c.get("/metrics", headers={"Authorization": "Bearer wrong"})
        assert r.status_code == 401


async def test_reading_needs_a_token_when_the_site_says_so(closed_site: Site):
    async with closed_site.client() as c:
        assert (await c.get("/metrics")).status_code == 401
        assert (await c.get("/api/v1/history", params={"channel": "x.y"})).status_code == 401
        assert (await c.get("/api/v1/site")).status_code == 401
        r = await c.get("/metrics", headers=closed_site.auth("viewer"))
        assert r.status_code == 200 and "nsp_storage_ok" in r.text
        r = await c.get("/api/v1/site", headers=closed_site.auth("viewer"))
        assert r.status_code == 200
