"""The storage part of the edge service: SQLite store (+ optional InfluxDB sink) and accounts.

Plugged into edge_server.service.COMPONENT_FACTORIES (StorageComponent) and
edge_server.api.app.APP_HOOKS (install_auth). Routers reach it with
`service.component(StorageComponent)`.

A relative [storage] data_dir is relative to the working directory of the nsp-edge process
(`nsp-edge run` and `nsp-edge users` alike); production configs use an absolute path.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from fastapi import FastAPI

from edge_server.auth import Authenticator, UserStore
from edge_server.state import SiteState
from edge_server.storage.sqlite import SqliteStorage

if TYPE_CHECKING:
    from edge_server.service import Service
    from edge_server.storage.influx import InfluxSink

log = logging.getLogger(__name__)

SITE_DB = "site.db"


def site_db_path(data_dir: Path) -> Path:
    return Path(data_dir) / SITE_DB


class StorageComponent:
    """Opens site.db in start(), stores every poll cycle, runs retention; optional Influx sink."""

    def __init__(self, service: Service) -> None:
        self.service = service
        self.data_dir = Path(service.config.storage.data_dir)
        self.storage: SqliteStorage | None = None
        self.influx: InfluxSink | None = None
        self.poll_cycles = 0

    async def start(self) -> None:
        settings = self.service.config.storage
        self.storage = SqliteStorage.from_settings(self.data_dir, settings, self.service.clock)
        if settings.influx is not None:
            from edge_server.storage.influx import InfluxSink

            token = os.environ.get(settings.influx.token_env, "")
            self.influx = InfluxSink.from_settings(
                settings.influx, self.data_dir, token, self.service.clock
            )
            self.influx.start()
        self.service.state.subscribe(self.on_cycle)
        log.info("storage: %s (raw %d d, 1-min %d d, 1-h %d d)%s", self.storage.path,
                 settings.raw_days, settings.minute_days, settings.hour_days,
                 f", InfluxDB sink {settings.influx.url}" if settings.influx else "")

    def on_cycle(self, state: SiteState, now: datetime) -> None:
        self.poll_cycles += 1
        if self.storage is not None:
            self.storage.on_cycle(state, now)
        if self.influx is not None:
            self.influx.on_cycle(state, now)

    async def stop(self) -> None:
        if self.influx is not None:
            self.influx.stop()
            self.influx = None
        if self.storage is not None:
            self.storage.close()
            self.storage = None

    def require(self) -> SqliteStorage:
        if self.storage is None:
            raise LookupError("storage is not started")
        return self.storage


def install_auth(app: FastAPI, service: Service) -> None:
    """App hook: app.state.auth, with the users table of site.db opened on first use."""
    app.state.auth = Authenticator(
        UserStore(site_db_path(Path(service.config.storage.data_dir))),
        service.clock,
        require_auth_for_read=service.config.api.require_auth_for_read,
    )
