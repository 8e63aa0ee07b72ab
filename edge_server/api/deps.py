"""FastAPI dependencies shared by the routers: the running Service and read access."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request

from edge_server.service import Service


def get_service(request: Request) -> Service:
    service = request.app.state.service
    if not isinstance(service, Service):
        raise RuntimeError("app.state.service is not set: build the app with create_app(service)")
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


def site_read_access(request: Request) -> Any:
    """Reading the site: edge_server.auth.read_access once an Authenticator is installed.

    Until the auth component installs app.state.auth (see app.py), reads are open, which is the
    default for a closed site LAN (api.require_auth_for_read = false).
    """
    if getattr(request.app.state, "auth", None) is None:
        return None
    from edge_server.auth import read_access

    return read_access(request)


SiteReader = Annotated[Any, Depends(site_read_access)]
