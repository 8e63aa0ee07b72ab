"""The storage part of the edge service: SQLite store (+ optional InfluxDB sink) and accounts.

Built by edge_server.service (first to start); routers reach the store through
edge_server.api.deps.Storage. Other parts write their events through `add_event` (the EventLog
protocol), which is a no-op before start and after stop.

A relative [storage] data_dir is relative to the working directory of the nsp-edge process
(`nsp-edge run` and `nsp-edge users` alike); production configs use an absolute path.
"""

from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from edge_server.clock import Clock
from edge_server.config import StorageSection
from edge_server.state import SiteState
from edge_server.storage.sqlite import SqliteStorage

if TYPE_CHECKING:
    from edge_server.storage.influx import InfluxSink

log = logging.getLogger(__name__)

SITE_DB = "site.db"


def site_db_path(data_dir: Path) -> Path:
    return Path(data_dir) / SITE_DB


class EventLog(Protocol):
    """Where a part records what the system itself did (storage's event log in site.db)."""

    def add_event(self, at: datetime, code: str, *, severity: str, text_en: str, text_nl: str,
                  data: dict[str, Any]) -> None: ...


class StorageComponent:
    """Opens site.db in start(), stores every poll cycle, runs retention; optional Influx sink."""

    def __init__(self, settings: StorageSection, state: SiteState, clock: Clock) -> None:
        self.settings = settings
        self.state = state
        self.clock = clock
        self.data_dir = Path(settings.data_dir)
        self.storage: SqliteStorage | None = None
        self.influx: InfluxSink | None = None
        self.poll_cycles = 0

    async def start(self) -> None:
        settings = self.settings
        self.storage = SqliteStorage.from_settings(self.data_dir, settings, self.clock)
        if settings.influx is not None:
            from edge_server.storage.influx import InfluxSink

            token = os.environ.get(settings.influx.token_env, "")
            self.influx = InfluxSink.from_settings(
                settings.influx, self.data_dir, token, self.clock
            )
            self.influx.start()
        self.state.subscribe(self.on_cycle)
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


    def add_event(self, at: datetime, code: str, *, severity: str, text_en: str, text_nl: str,
                  data: dict[str, Any]) -> None:
        """An event in site.db's log (EventLog); dropped with a warning while not started."""
        if self.storage is None:
            log.warning("event %s not stored: storage is not running", code)
            return
        self.storage.add_event(at, code, severity=severity, text_en=text_en, text_nl=text_nl,
                               data=data)
