"""FastAPI dependencies shared by the routers: the running Service (auth: edge_server.auth)."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from edge_server.auth import ReadAccess
from edge_server.service import Service


def get_service(request: Request) -> Service:
    service = request.app.state.service
    if not isinstance(service, Service):
        raise RuntimeError("app.state.service is not set: build the app with create_app(service)")
    return service


ServiceDep = Annotated[Service, Depends(get_service)]

# Reading the site: a viewer token only when the site sets api.require_auth_for_read = true
# (edge_server.auth.read_access; the Authenticator is installed by create_app's hooks).
SiteReader = ReadAccess
