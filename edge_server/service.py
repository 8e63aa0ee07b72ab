"""The edge service: one asyncio process built from a SiteConfig and a Clock.

    service = Service(config, SystemClock())
    app = create_app(service)          # edge_server.api.app: the lifespan calls start()/stop()

Order of the parts: state -> poller -> components (storage, rules/alerts/readiness, uplink outbox).
The poller and state are made in __init__ (cheap, no I/O); everything that opens a file, a
socket or a task is made in start(), i.e. inside the FastAPI lifespan, never at import time.

How another part plugs in (see COMPONENT_FACTORIES below):

    class Storage:                       # any object with async start()/stop()
        def __init__(self, service: Service) -> None: ...
        async def start(self) -> None:   # open the database, then
            self.service.state.subscribe(self.on_cycle)   # called after every poll cycle
        async def stop(self) -> None: ...

    COMPONENT_FACTORIES.append(Storage)  # or add it to the list below, in start order

A router reaches a component with `service.component(Storage)`.
Scenario runners with a ManualClock call `await service.start(run_poller=False)` and then
`await service.poller.poll_once()` after every `clock.advance(...)`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol, TypeVar

from edge_server.clock import Clock, SystemClock
from edge_server.config import SiteConfig
from edge_server.poller import Poller
from edge_server.state import SiteState

log = logging.getLogger(__name__)


class Component(Protocol):
    """A part of the service with a life: started after the poller exists, stopped in reverse."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


ComponentFactory = Callable[["Service"], Component]
C = TypeVar("C")

# ---------------------------------------------------------------------------------------------
# PLUG-IN POINTS, in start order. Each engineer adds ONE line for their part (a class taking the
# Service, or a function returning a Component; return objects, do no I/O in the constructor).
#   H4a storage (SQLite, InfluxDB sink):            e.g. storage.StorageComponent
#   H4b rules / alerts / readiness:                 e.g. rules.RulesComponent
#   H5  uplink outbox (delivery to the C-NSP hub):  e.g. uplink.UplinkComponent
def _storage_component(service: Service) -> Component:
    """H4a: site.db (readings, aggregates, events, users) + optional InfluxDB sink; first."""
    from edge_server.storage.component import StorageComponent

    return StorageComponent(service)


COMPONENT_FACTORIES: list[ComponentFactory] = [_storage_component]


def _rules_component(service: Service) -> Component:
    """H4b: rules, alerts (site.db), readiness; after storage, before the uplink (its sink)."""
    from edge_server.rules.component import RulesComponent

    return RulesComponent(service)


COMPONENT_FACTORIES.append(_rules_component)


def _uplink_component(service: Service) -> Component:
    """H5: outbox + sender to the C-NSP hub; appended so it starts after storage and rules."""
    from edge_server.uplink.component import UplinkComponent

    return UplinkComponent(service)


COMPONENT_FACTORIES.append(_uplink_component)


def _gentest_component(service: Service) -> Component:
    """R2-B: generator tests (runner, gentests table, schedule); after storage and the uplink."""
    from edge_server.gentest.component import GenTestComponent

    return GenTestComponent(service)


COMPONENT_FACTORIES.append(_gentest_component)
# ---------------------------------------------------------------------------------------------


class Service:
    def __init__(
        self,
        config: SiteConfig,
        clock: Clock | None = None,
        *,
        factories: list[ComponentFactory] | None = None,
    ) -> None:
        self.config = config
        self.clock: Clock = clock or SystemClock()
        self.state = SiteState(config.site.id)
        self.poller = Poller(config, self.state, self.clock)
        self._factories = list(COMPONENT_FACTORIES if factories is None else factories)
        self.components: list[Component] = []
        self._poll_task: asyncio.Task[None] | None = None
        self.started = False

    async def start(self, *, run_poller: bool = True) -> None:
        """Build and start the components, then start polling (unless run_poller=False)."""
        for factory in self._factories:
            component = factory(self)
            await component.start()
            self.components.append(component)
        if run_poller:
            self._poll_task = asyncio.create_task(self.poller.run(), name="poller")
        self.started = True
        log.info("edge service for site %s started: %d nodes on %d buses, %d components",
                 self.config.site.id, len(self.config.nodes), len(self.config.buses),
                 len(self.components))

    async def stop(self) -> None:
        if self._poll_task is not None:
            self.poller.stop()
            try:
                await asyncio.wait_for(self._poll_task, timeout=self.config.poll.timeout_s * 4 + 2)
            except TimeoutError:
                self._poll_task.cancel()
            self._poll_task = None
        for component in reversed(self.components):
            try:
                await component.stop()
            except Exception:  # stop the others anyway
                log.exception("stopping %s failed", type(component).__name__)
        self.components.clear()
        self.poller.close()
        self.started = False

    def add_component(self, component: Component) -> None:
        """Add an already built component (tests); start() does not start it, you do."""
        self.components.append(component)

    def component(self, kind: type[C]) -> C:
        """The running component of this type; LookupError when that part is not running."""
        for c in self.components:
            if isinstance(c, kind):
                return c
        raise LookupError(f"{kind.__name__} is not running in this service")
