"""The FastAPI app of the edge service: `create_app(service)`.

To add a resource: write edge_server/api/<resource>.py with `router = APIRouter(...)` and add
it to ROUTERS below (one line). Routes get the Service with `service: ServiceDep`
(edge_server.api.deps) and a component with `service.component(TheComponent)`.
State-changing routes take edge_server.auth's Operator/Technician/Admin dependency.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractContextManager, asynccontextmanager, nullcontext
from importlib import resources

import uvicorn
from fastapi import APIRouter, FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles

from edge_server.api import alerts, gentest, history, metrics, readiness, site
from edge_server.service import Service
from edge_server.storage.component import install_auth

# ---------------------------------------------------------------------------------------------
# ROUTERS, one per resource. Add yours here (H4a: history/metrics/users; H4b: alerts/readiness;
# H5: uplink status).
ROUTERS: list[APIRouter] = [
    site.router,
    history.router,
    metrics.router,
    alerts.router,
    readiness.router,
    gentest.router,
]

# App hooks: functions called with (app, service) after the routers are added, e.g. to install
# app.state.auth (H4a's Authenticator). They run in create_app, so do no I/O in them; open
# resources in a Service component instead.
APP_HOOKS: list[Callable[[FastAPI, Service], None]] = [install_auth]
# ---------------------------------------------------------------------------------------------

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
    for hook in APP_HOOKS:
        hook(app, service)

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
        uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="on")
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
