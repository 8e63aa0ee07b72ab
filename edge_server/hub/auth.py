"""What every hub router shares: the error it raises and the operator it serves.

    raise HubError(422, "invalid", "field: what is wrong and what to do")
    async def route(who: User) -> ...      # (name, role) of the bearer token's operator; else 401

A module of its own so that the routers in their own modules (hub/bulletins.py, hub/reports.py)
and hub/app.py, which includes them, import it without importing each other.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from edge_server.hub.store import HubStore


class HubError(Exception):
    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers


def _user(request: Request) -> tuple[str, str]:
    """(name, role) of the operator whose bearer token came with the request; else 401."""
    auth = request.headers.get("authorization", "")
    scheme, _, token = auth.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise HubError(401, "no_token", "Authorization: Bearer TOKEN required")
    store: HubStore = request.app.state.store
    found = store.user_for_token(token.strip())
    if found is None:
        raise HubError(401, "bad_token", "token not recognised")
    return found


User = Annotated[tuple[str, str], Depends(_user)]


def require_operator(who: tuple[str, str], action: str) -> str:
    """The operator's name if the role may act (operator or admin); else 403 naming the action."""
    name, role = who
    if role not in ("operator", "admin"):
        raise HubError(403, "forbidden", f"{action} needs the operator role")
    return name
