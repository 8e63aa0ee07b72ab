"""The edge service: one asyncio process, composed here and nowhere else.

    service = Service(config, SystemClock())          # builds the parts: no I/O, no tasks
    app = create_app(service)                          # edge_server.api.app; its lifespan
                                                       # calls service.start() / stop()

The parts and what each is given (an arrow: "is handed to"):

    SiteState ─▶ Poller                     (the poller writes every cycle into the state)
    SiteState, Clock ─▶ StorageComponent     site.db: readings, aggregates, events; InfluxDB sink
    SiteState, Clock ─▶ RulesComponent       alerts, readiness, fuel autonomy (its own site.db
                                             connection)
    RulesComponent, StorageComponent (event log), Clock ─▶ UplinkComponent
                                             outbox + sender to the C-NSP hub; puts itself in
                                             as the rules' sink and link check, hands the hub's
                                             acknowledgements back to the rules
    Poller (bus hubs), SiteState, Clock ─▶ GensetMonitor ([[generators]])
                                             generator controllers polled on their bus's hub
                                             in every cycle (docs/generators.md)
    Poller, SiteState, Clock, StorageComponent (event log), UplinkComponent,
    GensetMonitor (load, commands) ─▶ GenTestComponent
                                             generator tests, commanded through the controller
                                             when the site has one (else the node's relay);
                                             finished records to the uplink
    RulesComponent, UplinkComponent, Clock ─▶ RadioFallback ([radio] enabled)
                                             the backup LoRa link while the uplink is down
                                             (docs/radio.md)

They start in the order of `_parts` (storage, rules, uplink, genset monitor, generator
tests, radio, then the poller's task) and stop in the reverse order. No part imports this
module: each gets what it uses in its constructor, so a test builds just the parts it needs
with `parts=Part.STORAGE | Part.RULES` and the same wiring. The API reaches the parts through
the typed dependencies in edge_server.api.deps. Everything that opens a file, a socket or a
task happens in start(), inside the FastAPI lifespan, never at import time or in a constructor.

Scenario runners with a ManualClock call `await service.start(run_poller=False)` and then
`await service.poller.poll_once()` after every `clock.advance(...)`.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from pathlib import Path
from typing import Protocol

from edge_server.clock import Clock, SystemClock
from edge_server.config import SiteConfig
from edge_server.crisis.component import CrisisComponent
from edge_server.genset.control import gentest_commands
from edge_server.genset.monitor import GensetMonitor
from edge_server.gentest.component import GenTestComponent
from edge_server.poller import Poller
from edge_server.radio.fallback import RadioFallback, build_fallback
from edge_server.rules.component import RulesComponent
from edge_server.state import SiteState
from edge_server.storage.component import StorageComponent, site_db_path
from edge_server.uplink.component import UplinkComponent

log = logging.getLogger(__name__)


class Part(enum.Flag):
    """The parts of the service besides the poller and the site state (always there)."""

    STORAGE = enum.auto()
    RULES = enum.auto()
    UPLINK = enum.auto()
    GENTEST = enum.auto()
    RADIO = enum.auto()  # built only when [radio] enabled = true
    GENSET = enum.auto()  # built only when [[generators]] names a controller
    CRISIS = enum.auto()  # bulletins from the C-NSP (kiosk page), emergency reports
    NONE = 0
    ALL = STORAGE | RULES | UPLINK | GENTEST | RADIO | GENSET | CRISIS


class Lifecycle(Protocol):
    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class Service:
    def __init__(
        self, config: SiteConfig, clock: Clock | None = None, *, parts: Part = Part.ALL
    ) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.state = SiteState(config.site.id)
        self.poller = Poller(config, self.state, self.clock)
        site_db = site_db_path(Path(config.storage.data_dir))

        self.storage = (
            StorageComponent(config.storage, self.state, self.clock)
            if Part.STORAGE in parts else None
        )
        self.rules = (
            RulesComponent(config.rules, config.fuel, site_db, self.state, self.clock,
                           capacity=config.site.capacity)
            if Part.RULES in parts else None
        )
        self.uplink = (
            UplinkComponent(config.site.id, config.uplink, Path(config.storage.data_dir),
                            self.clock, rules=self.rules, events=self.storage)
            if Part.UPLINK in parts else None
        )
        # After the uplink: it listens to the hub's replies (edge_server/crisis/component.py).
        self.crisis = (
            CrisisComponent(config.site.id, config.site.name, Path(config.storage.data_dir),
                            self.clock, uplink=self.uplink, rules=self.rules)
            if Part.CRISIS in parts else None
        )
        self.genset = (
            GensetMonitor(config.generators, self.poller, self.state, self.clock)
            if Part.GENSET in parts and config.generators else None
        )
        self.gentest = (
            GenTestComponent(config.site.id, config.gentest, config.rules, site_db,
                             self.poller, self.state, self.clock,
                             events=self.storage, uplink=self.uplink,
                             load_pct=None if self.genset is None else self.genset.load_pct,
                             electrical=None if self.genset is None else self.genset.electrical,
                             engine=None if self.genset is None else self.genset.engine,
                             zone=config.site.timezone,
                             controller=gentest_commands(self.genset, self.state, self.storage))
            if Part.GENTEST in parts else None
        )
        # The backup radio reads the rules' status and alerts, the crisis part's undelivered
        # reports and the uplink's link state.
        self.radio: RadioFallback | None = (
            build_fallback(config.site.id, config.radio, self.uplink, self.rules, self.clock,
                           self.crisis)
            if Part.RADIO in parts and config.radio.enabled and self.uplink and self.rules
            else None
        )
        # The start order; stop() walks it backwards.
        self._parts: tuple[Lifecycle, ...] = tuple(
            p for p in (self.storage, self.rules, self.uplink, self.crisis, self.genset,
                        self.gentest, self.radio)
            if p is not None
        )
        self._started: list[Lifecycle] = []
        self._poll_task: asyncio.Task[None] | None = None
        self.started = False

    async def start(self, *, run_poller: bool = True) -> None:
        """Start the parts in order, then start polling (unless run_poller=False)."""
        for part in self._parts:
            await part.start()
            self._started.append(part)
        if run_poller:
            self._poll_task = asyncio.create_task(self.poller.run(), name="poller")
        self.started = True
        log.info("edge service for site %s started: %d nodes on %d buses, parts: %s",
                 self.config.site.id, len(self.config.nodes), len(self.config.buses),
                 ", ".join(type(p).__name__ for p in self._started) or "none")

    async def stop(self) -> None:
        if self._poll_task is not None:
            self.poller.stop()
            try:
                await asyncio.wait_for(self._poll_task, timeout=self.config.poll.timeout_s * 4 + 2)
            except TimeoutError:
                self._poll_task.cancel()
            self._poll_task = None
        for part in reversed(self._started):
            try:
                await part.stop()
            except Exception:  # stop the others anyway
                log.exception("stopping %s failed", type(part).__name__)
        self._started.clear()
        self.poller.close()
        self.started = False
