"""The generator-test part of the edge service: the runner on site.db, ticked after every poll
cycle; events into storage's event log, each finished test to the uplink (kind "gentest").
Built by edge_server.service with the poller (its command port), the event log, the uplink and,
on a site with a generator controller, the controller's commands (the test's command path:
edge_server.genset.control.gentest_commands)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from edge_server.clock import Clock
from edge_server.gentest.auto import AUTO_WHO, OutageCredit, OutageRun, should_start
from edge_server.gentest.record import KIND_OUTAGE, End, GenTestRecord, Outcome
from edge_server.gentest.runner import CommandPort, ControllerPort, GenTestRunner, Refused
from edge_server.gentest.schedule import Due, WindowSettings, next_due
from edge_server.gentest.settings import GenTestSettings
from edge_server.gentest.store import GenTestStore
from edge_server.localtime import for_people
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
        engine: Callable[[], tuple[float | None, float | None]] | None = None,
        zone: str = "Europe/Amsterdam",
        controller: ControllerPort | None = None,
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
        self.engine = engine  # (coolant °C, oil pressure kPa) from the controller
        self.controller = controller  # the test's commands go to it when given (else the relay)
        self.conn: sqlite3.Connection | None = None
        self.runner: GenTestRunner | None = None
        self._tick: asyncio.Task[Any] | None = None
        self._again = False
        # The monthly test without a person (gentest/auto.py): an outage that ran the set
        # credits it; [gentest] auto_start starts it in its window.
        self.outage = OutageRun(settings.min_duration_min * 60)
        self.zone = zone
        self._tried_window: datetime | None = None
        self._auto: asyncio.Task[Any] | None = None

    async def start(self) -> None:
        self.conn = open_db(self.db_path)
        store = GenTestStore(self.conn)
        purged = store.purge(self.clock.now())
        if purged:
            log.info("gentest: %d records older than 10 years removed", purged)
        self.runner = GenTestRunner(
            self.commands, self.state, self.clock, store, self.settings, self.site_id,
            on_event=self._event, on_finished=self._finished, load_pct=self.load_pct,
            electrical=self.electrical, engine=self.engine, controller=self.controller)
        self.state.subscribe(self.on_cycle)

    async def stop(self) -> None:
        if self._auto is not None:
            await asyncio.gather(self._auto, return_exceptions=True)
            self._auto = None
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
        if self.runner is None:
            return
        self._watch_outage(now)
        if not self.runner.busy:
            self._maybe_auto_start(now)
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

    # ------------------------------------------------------------------ without a person
    def _reading(self, name: str) -> Any:
        """From the test's witness: the power node, or the controller on a site without one
        (None: no witness, nothing to watch)."""
        return self.require().reading(name)

    def _watch_outage(self, now: datetime) -> None:
        mains, running = self._reading("mains_present"), self._reading("gen_running")
        credit = self.outage.feed(now, None if mains is None else bool(mains),
                                  None if running is None else bool(running))
        if credit is not None:
            self._credit(credit)

    def _credit(self, credit: OutageCredit) -> None:
        """Record the outage as the monthly test it was (kind outage_credit, PASSED)."""
        runner = self.require()
        day = for_people(credit.started_at, self.zone)[:10]
        rec = GenTestRecord(
            site_id=self.site_id, node=runner.power_node(self.settings.node),
            started_by="outage", started_at=credit.started_at, planned_s=credit.ran_s,
            outcome=Outcome.PASSED, end=End.OUTAGE_RUN, kind=KIND_OUTAGE,
            ended_at=credit.ended_at, ran_s=round(credit.ran_s, 1),
            notes=f"Gecrediteerd door de stroomuitval van {day} / credited by the outage of "
                  f"{day}")
        runner.store.insert(rec)
        self._event(credit.ended_at, "GENTEST_OUTAGE_CREDIT", "info",
                    f"The outage of {day} ran the generator for {credit.ran_s / 60:.0f} min: "
                    "it counts as the monthly test",
                    f"De stroomuitval van {day} liet het aggregaat {credit.ran_s / 60:.0f} min "
                    "draaien: telt als de maandelijkse test", {"test_id": rec.id})
        self._finished(rec)

    def _alarm_open(self) -> bool:
        return any(r.ok and isinstance(r.value, int | float) and r.value > 0
                   for ch, r in self.state.readings.items() if ch.endswith(".alarms_active"))

    def _maybe_auto_start(self, now: datetime) -> None:
        s = self.settings
        if not s.auto_start or (self._auto is not None and not self._auto.done()):
            return
        start, window = should_start(now, self.zone, s.auto_days, s.auto_from, s.auto_until,
                                     self.due(), self._alarm_open(), self._tried_window)
        if start:
            self._tried_window = window  # one try per window: a refusal is not hammered
            self._auto = asyncio.get_running_loop().create_task(self._auto_start(now),
                                                                name="gentest-auto")

    async def _auto_start(self, now: datetime) -> None:
        try:
            await self.require().start(AUTO_WHO, notes="Gepland / scheduled")
        except Refused as exc:
            self._event(now, "GENTEST_AUTO_REFUSED", "warning",
                        f"The scheduled generator test did not start: {exc.text_en}",
                        f"De geplande aggregaattest startte niet: {exc.text_nl}",
                        {"code": exc.code})

    async def idle(self) -> None:
        """Wait for the tick and the scheduled start of the last poll cycle (tests)."""
        for task in (self._auto, self._tick):
            if task is not None:
                await task

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
