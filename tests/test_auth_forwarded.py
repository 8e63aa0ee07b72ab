"""Forwarded headers count only from configured proxies (the failed-login limit, the log).

Before: uvicorn's proxy_headers (on by default, trusting 127.0.0.1) let any local client pick its
address with X-Forwarded-For, so a guesser slipped past the lockout by changing the header.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from pydantic import ValidationError

from edge_server.api.app import serving
from edge_server.auth import Authenticator, Operator, UserStore, client_address, parse_networks
from edge_server.clock import ManualClock
from edge_server.config import ApiSection
from edge_server.hub.testing import free_port

PROXY = parse_networks(["10.0.0.5", "192.168.7.0/24"])


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.9", "1.2.3.4", "203.0.113.9"),  # not a proxy: the header is anyone's
        ("127.0.0.1", "1.2.3.4", "127.0.0.1"),  # localhost is no proxy unless configured
        ("10.0.0.5", "1.2.3.4", "1.2.3.4"),
        ("10.0.0.5", "6.6.6.6, 1.2.3.4", "1.2.3.4"),  # the client wrote 6.6.6.6 itself
        ("10.0.0.5", "1.2.3.4, 192.168.7.20", "1.2.3.4"),  # two proxies in a row
        ("10.0.0.5", "garbage", "10.0.0.5"),
        ("10.0.0.5", "192.168.7.20", "10.0.0.5"),  # only proxies: the nearest one
        ("10.0.0.5", None, "10.0.0.5"),
    ],
)
def test_client_address_believes_forwarded_for_only_from_a_proxy(
    peer, forwarded, expected
) -> None:
    assert client_address(peer, forwarded, PROXY) == expected


def test_a_bad_proxy_entry_names_the_field() -> None:
    with pytest.raises(ValidationError, match="trusted_proxies"):
        ApiSection(trusted_proxies=["10.0.0.300"])


def test_a_spoofed_forwarded_for_does_not_escape_the_lockout(tmp_path: Path) -> None:
    """The edge's own serving path (uvicorn as the edge runs it), a real socket."""
    clock = ManualClock()
    auth = Authenticator(UserStore(tmp_path / "users.db"), clock, max_failures=3)
    app = FastAPI()
    app.state.auth = auth

    @app.get("/guarded")
    def guarded(_user: Operator) -> dict[str, str]:
        return {"ok": "yes"}

    async def run() -> list[int]:
        port = free_port()
        async with serving(app, "127.0.0.1", port), httpx.AsyncClient() as client:
            codes = []
            for i in range(6):
                r = await client.get(
                    f"http://127.0.0.1:{port}/guarded",
                    headers={"Authorization": "Bearer wrong", "X-Forwarded-For": f"10.9.9.{i}"},
                )
                codes.append(r.status_code)
            return codes

    try:
        codes = asyncio.run(run())
    finally:
        auth.users.close()
    assert codes == [401, 401, 401, 429, 429, 429]
