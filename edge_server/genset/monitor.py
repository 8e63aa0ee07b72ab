"""The site's generator controllers in the service: one GensetDriver per `[[generators]]` entry,
polled in every cycle on its bus's hub (after the nodes), its values written into the SiteState
as `NAME.CHANNEL` readings (units from the profile), plus `NAME.online`, `NAME.in_auto` (the
set starts by itself on an outage), `NAME.alarms_active`, `NAME.shutdown_alarm` and
`NAME.controller_running` (the controller's own running state, the second witness beside the
power node's run-sense: edge_server/genset/witness.py), `NAME.alarm_ALARM` per alarm of the
profile (its level, the alerts of edge_server/genset/alarms.py); the mode word
and the alarms' alert codes are in `last[NAME]`. A controller that does not answer marks its
readings unavailable; a faulted value is an unavailable reading, never a number.

`load_pct()` is what the generator test's LOAD criterion reads: the first controller's total kW
as % of its rated kW, None while it is offline or the value is faulted.
"""

from __future__ import annotations

import logging
from datetime import datetime

from edge_server.clock import Clock
from edge_server.genset.alarms import ALARM_LEVEL, PREFIX, register_words
from edge_server.genset.driver import GensetDriver, GensetReading
from edge_server.genset.profile import load_profile
from edge_server.genset.settings import GeneratorSection
from edge_server.genset.witness import CHANNEL as RUNNING
from edge_server.genset.witness import controller_running
from edge_server.poller import Poller
from edge_server.state import Quality, Reading, SiteState

log = logging.getLogger(__name__)


class GensetMonitor:
    def __init__(self, generators: list[GeneratorSection], poller: Poller, state: SiteState,
                 clock: Clock) -> None:
        self.state, self.clock = state, clock
        self.generators = generators
        self.drivers: dict[str, GensetDriver] = {}
        self.last: dict[str, GensetReading] = {}
        for gen in generators:
            # the profile was checked when the configuration was read (config.py)
            profile = load_profile(gen.profile)
            register_words(profile)  # the alerts' words for a site's own profile file
            driver = GensetDriver(profile, poller.hubs[gen.bus], gen.unit)
            self.drivers[gen.name] = driver
            poller.hubs[gen.bus].devices.append(
                lambda name=gen.name: self.poll(name))  # type: ignore[misc]

    async def start(self) -> None:
        pass  # polled by the poller's cycle; nothing to open

    async def stop(self) -> None:
        pass

    async def poll(self, name: str) -> None:
        reading = await self.drivers[name].read()
        self.last[name] = reading
        self._publish(name, reading, self.clock.now())

    def _publish(self, name: str, r: GensetReading, now: datetime) -> None:
        put = self.state.put
        put(Reading(name, "online", r.online, "", now, Quality.GOOD))
        profile = self.drivers[name].profile
        for ch in (*profile.identity, *profile.channels):
            value = r.values.get(ch.name, r.identity.get(ch.name))
            quality = Quality.GOOD if value is not None else Quality.UNAVAILABLE
            put(Reading(name, ch.name, value, ch.unit, now, quality))
        if not r.online:
            log.warning("genset %s: %s", name, r.error)
            alarms = [PREFIX + a.name for a in profile.alarms.alarm]
            for what in ("in_auto", "alarms_active", "shutdown_alarm", RUNNING, *alarms):
                put(Reading(name, what, None, "", now, Quality.UNAVAILABLE))
            return
        for ch_name, fault in r.faults.items():
            log.warning("genset %s: %s: %s", name, ch_name, fault)
        put(Reading(name, "in_auto", None if r.mode is None else r.mode == "auto", "", now,
                    Quality.GOOD if r.mode is not None else Quality.UNAVAILABLE))
        running = controller_running(r.values)
        put(Reading(name, RUNNING, running, "", now,
                    Quality.GOOD if running is not None else Quality.UNAVAILABLE))
        put(Reading(name, "alarms_active", len(r.alarms), "", now, Quality.GOOD))
        put(Reading(name, "shutdown_alarm", any(a.severity == "shutdown" for a in r.alarms), "",
                    now, Quality.GOOD))
        # one channel per alarm of the profile, its level (0: not active): GENSET_SHUTDOWN,
        # GENSET_ELECTRICAL_TRIP and GENSET_WARNING read them (edge_server/genset/alarms.py)
        open_ = {a.name: ALARM_LEVEL[a.severity] for a in r.alarms}
        for a in profile.alarms.alarm:
            put(Reading(name, PREFIX + a.name, open_.get(a.name, 0), "", now, Quality.GOOD))

    def electrical(self) -> tuple[float | None, float | None]:
        """(L1-N voltage, frequency) of the first controller; None where not read. L1 only: a
        single-phase set reads 0 V on L2 and L3, which is no fault."""
        r = self.last.get(self.generators[0].name) if self.generators else None
        if r is None or not r.online:
            return None, None
        return r.values.get("gen_l1n_v"), r.values.get("gen_frequency_hz")

    def engine(self) -> tuple[float | None, float | None]:
        """(coolant °C, oil pressure kPa) of the first controller; None where not read."""
        r = self.last.get(self.generators[0].name) if self.generators else None
        if r is None or not r.online:
            return None, None
        return r.values.get("coolant_temp_c"), r.values.get("oil_pressure_kpa")

    def load_pct(self) -> float | None:
        if not self.generators:
            return None
        gen = self.generators[0]
        r = self.last.get(gen.name)
        if r is None or not r.online or "gen_kw" not in r.values:
            return None
        return round(100.0 * r.values["gen_kw"] / gen.rated_kw, 1)
