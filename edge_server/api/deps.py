"""FastAPI dependencies shared by the routers: the running Service and its parts, typed.

    def route(storage: Storage, engine: Rules, ...) -> ...

A part that is not built into this service (a test's `parts=`) or not started yet (the lifespan
is still starting, or already stopping) answers 503 with which part and why. Authentication
lives in edge_server.auth (Operator, Technician, Admin, ReadAccess).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, HTTPException, Path, Request, status

from edge_server.auth import ReadAccess
from edge_server.gentest.component import GenTestComponent
from edge_server.rules.component import RulesEngine
from edge_server.service import Service
from edge_server.storage.sqlite import SqliteStorage


def get_service(request: Request) -> Service:
    service = request.app.state.service
    if not isinstance(service, Service):
        raise RuntimeError("app.state.service is not set: build the app with create_app(service)")
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


def _unavailable(what: str) -> HTTPException:
    return HTTPException(status.HTTP_503_SERVICE_UNAVAILABLE,
                         f"{what} is not running (service starting or stopped)")


def get_storage(service: ServiceDep) -> SqliteStorage:
    if service.storage is None or service.storage.storage is None:
        raise _unavailable("storage")
    return service.storage.storage


def get_rules_engine(service: ServiceDep) -> RulesEngine:
    if service.rules is None or service.rules.engine is None:
        raise _unavailable("the rules component")
    return service.rules.engine


def get_gentest(service: ServiceDep) -> GenTestComponent:
    if service.gentest is None or service.gentest.runner is None:
        raise _unavailable("the generator-test component")
    return service.gentest


Storage = Annotated[SqliteStorage, Depends(get_storage)]
Rules = Annotated[RulesEngine, Depends(get_rules_engine)]
GenTests = Annotated[GenTestComponent, Depends(get_gentest)]

# A record id in a path (alerts, generator tests): SQLite's INTEGER is 64-bit signed, so an id
# past 2^63 - 1 is refused as 422 at the door instead of overflowing in the query (a 500).
RecordId = Annotated[int, Path(ge=1, le=2**63 - 1, description="the record's id")]

# Reading the site: a viewer token only when the site sets api.require_auth_for_read = true
# (edge_server.auth.read_access; the Authenticator is installed by create_app).
SiteReader = ReadAccess
