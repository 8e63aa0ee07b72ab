"""The FastAPI app of the edge service: `create_app(service)`.

One router per resource (edge_server/api/<resource>.py, listed in ROUTERS). Routes get the
Service with `service: ServiceDep` and its parts through the typed dependencies of
edge_server.api.deps (`storage: Storage`, `engine: Rules`, `gentests: GenTests`); state-changing
routes take edge_server.auth's Operator/Technician/Admin dependency. The Authenticator (users in
site.db, opened on first use) is installed here, in create_app: no I/O happens at import time.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from importlib import resources
from pathlib import Path

import uvicorn
from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from edge_server.api import alerts, generators, gentest, history, metrics, readiness, site
from edge_server.auth import Authenticator, UserStore
from edge_server.crisis import kiosk, reports_api
from edge_server.service import Service
from edge_server.storage.component import site_db_path

ROUTERS: list[APIRouter] = [
    site.router,
    history.router,
    metrics.router,
    alerts.router,
    readiness.router,
    gentest.router,
    generators.router,  # commands to the generator's controller, behind interlocks
    kiosk.router,  # /kiosk and /api/v1/kiosk for residents (edge_server/crisis/kiosk.py)
    reports_api.router,  # emergency reports by staff (edge_server/crisis/reports_api.py)
]

STATIC_DIR = resources.files("edge_server").joinpath("static")


def create_app(service: Service, *, manage_service: bool = True) -> FastAPI:
    """The app for `service`. With manage_service the lifespan starts and stops the service
    (the normal case); tests that drive the service themselves pass False."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if manage_service:
            await service.start()
        try:
            yield
        finally:
            if manage_service:
                await service.stop()

    app = FastAPI(
        title="NSP Site Monitor - edge",
        description="Site values, alerts and readiness of one noodsteunpunt.",
        lifespan=lifespan,
    )
    app.state.service = service
    for router in ROUTERS:
        app.include_router(router)
    app.state.auth = Authenticator(
        UserStore(site_db_path(Path(service.config.storage.data_dir))),
        service.clock,
        require_auth_for_read=service.config.api.require_auth_for_read,
        trusted_proxies=service.config.api.trusted_proxies,
    )

    static_path = str(STATIC_DIR)
    app.mount("/static", StaticFiles(directory=static_path), name="static")

    @app.get("/", include_in_schema=False)
    def site_page() -> FileResponse:
        return FileResponse(f"{static_path}/index.html", media_type="text/html")

    return app


class _InLoopServer(uvicorn.Server):
    # The caller owns the signals (the demo stops its nodes too); uvicorn must not take them.
    def capture_signals(self) -> AbstractContextManager[None]:  # type: ignore[override]
        return nullcontext()


@asynccontextmanager
async def serving(app: FastAPI, host: str, port: int) -> AsyncIterator[uvicorn.Server]:
    """Serve `app` with uvicorn inside the running event loop (the demo and tests use this);
    the lifespan runs, so the service starts and stops with it."""
    server = _InLoopServer(
        # proxy_headers=False: X-Forwarded-For only from [api] trusted_proxies (edge_server/auth.py)
        uvicorn.Config(
            app, host=host, port=port, log_level="warning", lifespan="on", proxy_headers=False
        )
    )
    task = asyncio.create_task(server.serve(), name="uvicorn")
    try:
        while not server.started:
            if task.done():
                task.result()  # raises why it could not start
                raise RuntimeError(f"the web server on {host}:{port} did not start")
            await asyncio.sleep(0.02)
        yield server
    finally:
        server.should_exit = True
        await task
