"""The generator-test part of the edge service: the runner on site.db, ticked after every poll
cycle; events into storage's event log, each finished test to the uplink (kind "gentest").
Built by edge_server.service with the poller (its command port), the event log and the uplink."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_server.clock import Clock
from edge_server.gentest.record import GenTestRecord
from edge_server.gentest.runner import CommandPort, GenTestRunner
from edge_server.gentest.schedule import Due, WindowSettings, next_due
from edge_server.gentest.settings import GenTestSettings
from edge_server.gentest.store import GenTestStore
from edge_server.state import SiteState
from edge_server.storage.component import EventLog
from edge_server.storage.db import open_db
from edge_server.uplink.component import UplinkComponent

if TYPE_CHECKING:
    import sqlite3

log = logging.getLogger(__name__)


def uplink_body(rec: GenTestRecord) -> dict[str, Any]:
    """The body of an uplink message of kind "gentest" (docs/schemas/gentest-body.json)."""
    return rec.to_json()


class GenTestComponent:
    def __init__(
        self,
        site_id: str,
        settings: GenTestSettings,
        window: WindowSettings,
        db_path: Path,
        commands: CommandPort,
        state: SiteState,
        clock: Clock,
        *,
        events: EventLog | None = None,
        uplink: UplinkComponent | None = None,
        load_pct: Callable[[], float | None] | None = None,
        electrical: Callable[[], tuple[float | None, float | None]] | None = None,
    ) -> None:
        self.site_id = site_id
        self.settings = settings
        self.window = window
        self.db_path = db_path
        self.commands = commands
        self.state = state
        self.clock = clock
        self.events = events
        self.uplink = uplink
        self.load_pct = load_pct  # % of rated kW from a generator controller (None: unmeasured)
        self.electrical = electrical  # (volts, hertz) from the controller
        self.conn: sqlite3.Connection | None = None
        self.runner: GenTestRunner | None = None
        self._tick: asyncio.Task[Any] | None = None
        self._again = False

    async def start(self) -> None:
        self.conn = open_db(self.db_path)
        store = GenTestStore(self.conn)
        purged = store.purge(self.clock.now())
        if purged:
            log.info("gentest: %d records older than 10 years removed", purged)
        self.runner = GenTestRunner(
            self.commands, self.state, self.clock, store, self.settings, self.site_id,
            on_event=self._event, on_finished=self._finished, load_pct=self.load_pct,
            electrical=self.electrical)
        self.state.subscribe(self.on_cycle)

    async def stop(self) -> None:
        if self._tick is not None:
            await asyncio.gather(self._tick, return_exceptions=True)
            self._tick = None
        self.runner = None
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def require(self) -> GenTestRunner:
        if self.runner is None:
            raise LookupError("the generator-test component is not started")
        return self.runner

    # a state listener is synchronous; the runner's commands are not: one tick task at a time
    def on_cycle(self, state: SiteState, now: datetime) -> None:
        if self.runner is None or not self.runner.busy:
            return
        if self._tick is not None and not self._tick.done():
            self._again = True
            return
        self._tick = asyncio.get_running_loop().create_task(self._run_ticks(), name="gentest")

    async def _run_ticks(self) -> None:
        while self.runner is not None:
            self._again = False
            try:
                await self.runner.tick()
            except Exception:
                log.exception("gentest: tick failed")
            if not self._again:
                return

    async def idle(self) -> None:
        """Wait for the tick of the last poll cycle (tests and scenarios)."""
        if self._tick is not None:
            await self._tick

    def due(self) -> Due:
        runner = self.require()
        return next_due(self.clock.now(), self.window, runner.store.last_passed_at())

    # ------------------------------------------------------------------ sinks
    def _event(self, at: datetime, code: str, severity: str, en: str, nl: str,
               data: dict[str, Any]) -> None:
        if self.events is not None:
            self.events.add_event(at, code, severity=severity, text_en=en, text_nl=nl, data=data)

    def _finished(self, rec: GenTestRecord) -> None:
        if self.uplink is None:
            return
        assert rec.ended_at is not None
        self.uplink.put({"kind": "gentest", "at": rec.ended_at.isoformat(),
                         "body": uplink_body(rec)})
