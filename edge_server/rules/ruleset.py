"""The NSP rule set: one small Condition class per alert code, all judged by engine.Evaluator.

Each condition reads the site state and returns one Sample per subject (a channel such as
"fridge1.fridge_temp_c", or a node name). A value that cannot be trusted -- node offline,
"not available" sentinel, a fault bit of that sensor, the DS18B20 power-on 85.0 °C -- is
returned as None, which the evaluator never turns into a value alarm (docs/rules.md). Sensor
faults have their own *_FAULT conditions.

Stateful measurements (fuel trend, MKT window, reboot detection) live in `Observations`,
updated once per poll cycle before the conditions run.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import ClassVar

from edge_server.genset.alarms import CONDITIONS as GENSET_ALARMS
from edge_server.genset.witness import GensetWitnessDisagrees
from edge_server.rules.autonomy import FuelTracker
from edge_server.rules.engine import (
    Condition,
    Evaluator,
    EventDetector,
    EventSpec,
    Limit,
    Sample,
    Severity,
    Timing,
    Transition,
)
from edge_server.rules.mkt import MktWindow
from edge_server.rules.settings import FuelSettings, RulesSettings
from edge_server.state import NodeStatus, SiteState, Value

MIN = 60.0

# Fault bits (edge_server/regmap/registers.toml)
FRIDGE_PROBE_BITS = 0b0111  # missing, CRC, power-on 85 °C
PF_FUEL = 0b000011  # fuel_open_loop, fuel_over_range
PF_STARTER = 0b000100
PF_BATTERY = 0b001000
PF_START_FAILED = 0b010000
PF_MAINS = 0b100000
GEN_STATE_START_FAILED = 3
GEN_STATE_COOLDOWN = 4
GEN_REASON_TEST = 2
DS18B20_POWER_ON_C = 85.0


def _value(state: SiteState, node: str, name: str) -> Value:
    r = state.readings.get(f"{node}.{name}")
    return r.value if r is not None and r.ok else None


def _num(state: SiteState, node: str, name: str) -> float | None:
    v = _value(state, node, name)
    return None if v is None else float(v)


def _flag(state: SiteState, node: str, name: str) -> bool | None:
    v = _value(state, node, name)
    return None if v is None else bool(v)


def _b(flag: bool) -> float:
    return 1.0 if flag else 0.0


def fridge_temp_c(state: SiteState, node: str) -> float | None:
    """The fridge temperature if it can be trusted, else None."""
    faults = _value(state, node, "fridge_faults")
    if faults is not None and int(faults) & FRIDGE_PROBE_BITS:
        return None
    temp = _num(state, node, "fridge_temp_c")
    if temp is None or temp == DS18B20_POWER_ON_C:
        return None
    return temp


def _power_faults(state: SiteState, node: str) -> int:
    v = _value(state, node, "power_faults")
    return 0 if v is None else int(v)


def _unless_fault(state: SiteState, node: str, name: str, fault_bits: int) -> float | None:
    """A power reading, or None while its sensor's fault bit is set: a fault is never a value."""
    if _power_faults(state, node) & fault_bits:
        return None
    return _num(state, node, name)


def fuel_l(state: SiteState, node: str) -> float | None:
    return _unless_fault(state, node, "fuel_l", PF_FUEL)


def mains_present(state: SiteState, node: str) -> bool | None:
    if _power_faults(state, node) & PF_MAINS:
        return None
    return _flag(state, node, "mains_present")


@dataclass
class Observations:
    """Per-cycle measurements that need history. Owned by the RuleSet."""

    rules: RulesSettings
    fuel: FuelSettings
    trackers: dict[str, FuelTracker] = field(default_factory=dict)
    mkt: dict[str, MktWindow] = field(default_factory=dict)
    # node -> last refuel time from the stored FUEL_REFUELLED events (survives a restart)
    refuel_seed: dict[str, datetime] = field(default_factory=dict)

    def update(self, state: SiteState, now: datetime) -> None:
        self.update_fuel(state, now)
        self.update_mkt(state, now)

    # The stored channels the fuel trackers read (rebuilt after a restart: restore.py).
    FUEL_INPUTS: ClassVar[tuple[str, ...]] = ("fuel_l", "power_faults", "gen_running")

    def update_fuel(self, state: SiteState, now: datetime) -> None:
        for node in state.nodes_with_role("power"):
            tracker = self.trackers.get(node.name)
            if tracker is None:
                tracker = self.trackers[node.name] = FuelTracker(
                    self.fuel, max_gap_s=self.rules.max_sample_gap_s)
                tracker.last_refuel_at = self.refuel_seed.get(node.name)
            tracker.update(now, fuel_l(state, node.name), _flag(state, node.name, "gen_running"))

    # The stored channels MKT is computed from, and how far back (rebuilt after a restart).
    MKT_INPUTS: ClassVar[tuple[str, ...]] = ("fridge_temp_c", "fridge_faults")

    def mkt_history_s(self) -> float:
        return self.rules.fridge_mkt_window_h * 3600

    def update_mkt(self, state: SiteState, now: datetime) -> None:
        t = now.timestamp()
        for node in state.nodes_with_role("fridge"):
            window = self.mkt.get(node.name)
            if window is None:
                r = self.rules
                # A full window holds up to one sample interval less than window_s: allow it.
                min_span_s = max(60.0, r.fridge_mkt_min_span_h * 3600 - r.max_sample_gap_s)
                window = self.mkt[node.name] = MktWindow(
                    r.fridge_mkt_window_h * 3600, dh_r=r.mkt_delta_h_over_r_k,
                    max_gap_s=r.max_sample_gap_s, min_span_s=min_span_s)
            window.add(t, fridge_temp_c(state, node.name))

    def main_tracker(self) -> tuple[str, FuelTracker] | None:
        for name, tracker in self.trackers.items():
            return name, tracker
        return None


class _Role(Condition):
    """A condition evaluated once per node with a role."""

    role = "power"
    # The registers value() reads when it reads nothing else (no node status, no tracker):
    # then stored readings of these rebuild the condition's memory after a restart.
    inputs: ClassVar[tuple[str, ...]] = ()

    def __init__(self, rules: RulesSettings, obs: Observations) -> None:
        self.rules = rules
        self.obs = obs
        self.limit = self.make_limit(rules)

    def make_limit(self, r: RulesSettings) -> Limit:
        raise NotImplementedError

    def value(self, state: SiteState, node: str, now: datetime) -> tuple[str, float | None]:
        """(register name the value came from, value or None)."""
        raise NotImplementedError

    def samples(self, state: SiteState, now: datetime) -> Iterator[Sample]:
        for node in state.nodes_with_role(self.role):
            reg, value = self.value(state, node.name, now)
            channel = f"{node.name}.{reg}"
            yield Sample(channel, value, channel)

    def history_channels(self, state: SiteState) -> list[str]:
        return [f"{node.name}.{reg}" for node in state.nodes_with_role(self.role)
                for reg in self.inputs]


# ------------------------------------------------------------------ fridge
class FridgeHigh(_Role):
    code = "FRIDGE_HIGH"
    severity = Severity.CRITICAL
    role = "fridge"
    unit = " °C"
    text_en = "Medicine fridge too warm ({subject}: {value}), above the limit for too long"
    text_nl = "Medicijnkoelkast te warm ({subject}: {value}), te lang boven de grens"
    inputs = Observations.MKT_INPUTS  # fridge_temp_c() reads the temperature and fault bits

    def make_limit(self, r: RulesSettings) -> Limit:
        timing = Timing(r.fridge_high_timing)
        return Limit(r.fridge_high_c, above=True, hysteresis=r.fridge_hysteresis_c, timing=timing,
                     delay_s=r.fridge_high_delay_min * MIN,
                     window_s=r.fridge_high_window_h * 3600 if timing is Timing.CUMULATIVE else 0)

    def value(self, state: SiteState, node: str, now: datetime) -> tuple[str, float | None]:
        return "fridge_temp_c", fridge_temp_c(state, node)


class FridgeHighInstant(FridgeHigh):
    code = "FRIDGE_HIGH_INSTANT"
    text_en = "Medicine fridge far too warm ({subject}: {value})"
    text_nl = "Medicijnkoelkast veel te warm ({subject}: {value})"

    def make_limit(self, r: RulesSettings) -> Limit:
        return Limit(r.fridge_high_instant_c, above=True, hysteresis=r.fridge_hysteresis_c,
                     timing=Timing.INSTANT)


class FridgeLow(FridgeHigh):
    code = "FRIDGE_LOW"
    severity = Severity.WARNING
    text_en = "Medicine fridge too cold ({subject}: {value})"
    text_nl = "Medicijnkoelkast te koud ({subject}: {value})"

    def make_limit(self, r: RulesSettings) -> Limit:
        return Limit(r.fridge_low_c, above=False, hysteresis=r.fridge_hysteresis_c,
                     delay_s=r.fridge_low_delay_min * MIN)


class FridgeFreeze(FridgeHigh):
    code = "FRIDGE_FREEZE"
    text_en = "Medicine fridge freezing ({subject}: {value}): vaccines may be damaged"
    text_nl = "Medicijnkoelkast vriest ({subject}: {value}): vaccins kunnen beschadigd zijn"

    def make_limit(self, r: RulesSettings) -> Limit:
        return Limit(r.fridge_freeze_c, above=False, inclusive=True,
                     hysteresis=r.fridge_hysteresis_c, delay_s=r.fridge_freeze_delay_min * MIN)


class FridgeProbeFault(_Role):
    code = "FRIDGE_PROBE_FAULT"
    severity = Severity.WARNING
    role = "fridge"
    text_en = "Fridge temperature probe fault or unplugged ({subject})"
    text_nl = "Storing of losgeraakte temperatuurvoeler koelkast ({subject})"
    inputs = ()  # needs the node's online status, which is not stored

    def make_limit(self, r: RulesSettings) -> Limit:
        return Limit(0.5, delay_s=r.fridge_probe_fault_delay_min * MIN)

    def value(self, state: SiteState, node: str, now: datetime) -> tuple[str, float | None]:
        status = state.nodes.get(node)
        if status is None or not status.online:
            return "fridge_faults", None  # node offline: NODE_OFFLINE says so, not the probe
        return "fridge_faults", _b(fridge_temp_c(state, node) is None)


class FridgeMkt(FridgeHigh):
    code = "FRIDGE_MKT"
    text_en = "Mean kinetic temperature over the window too high ({subject}: {value})"
    text_nl = "Gemiddelde kinetische temperatuur te hoog ({subject}: {value})"
    inputs = ()  # its value is the MKT window, rebuilt by Observations.update_mkt

    def make_limit(self, r: RulesSettings) -> Limit:
        return Limit(r.fridge_mkt_limit_c, above=True, hysteresis=0.2, timing=Timing.INSTANT)

    def value(self, state: SiteState, node: str, now: datetime) -> tuple[str, float | None]:
        window = self.obs.mkt.get(node)
        return "fridge_temp_c", None if window is None else window.value()


class FridgeDoorOpen(_Role):
    code = "FRIDGE_DOOR_OPEN"
    severity = Severity.WARNING
    role = "fridge"
    unit = " s"
    text_en = "Fridge door open too long ({subject}: {value})"
    text_nl = "Koelkastdeur te lang open ({subject}: {value})"

    def make_limit(self, r: RulesSettings) -> Limit:
        return Limit(r.fridge_door_open_min * MIN, timing=Timing.INSTANT)

    def value(self, state: SiteState, node: str, now: datetime) -> tuple[str, float | None]:
        door = _flag(state, node, "door_open")
        if door is False:
            return "door_open_s", 0.0
        return "door_open_s", None if door is None else _num(state, node, "door_open_s")


# ------------------------------------------------------------------ fuel
class FuelLow(_Role):
    code = "FUEL_LOW"
    severity = Severity.WARNING
    unit = " %"
    text_en = "Fuel low ({subject}: {value} of the tank)"
    text_nl = "Brandstof laag ({subject}: {value} van de tank)"
    inputs = ("fuel_l", "power_faults")

    def make_limit(self, r: RulesSettings) -> Limit:
        return Limit(self.obs.fuel.low_pct, above=False, hysteresis=2.0, delay_s=MIN)

    def value(self, state: SiteState, node: str, now: datetime) -> tuple[str, float | None]:
        litres = fuel_l(state, node)
        return "fuel_l", None if litres is None else 100 * litres / self.obs.fuel.tank_capacity_l


class FuelAutonomyLow(_Role):
    code = "FUEL_AUTONOMY_LOW"
    severity = Severity.WARNING
    unit = " h"
    text_en = "Fuel autonomy below target ({subject}: {value})"
    text_nl = "Brandstofautonomie onder het doel ({subject}: {value})"

    def make_limit(self, r: RulesSettings) -> Limit:
        return Limit(self.obs.fuel.autonomy_target_h, above=False, hysteresis=2.0,
                     delay_s=5 * MIN)

    def value(self, state: SiteState, node: str, now: datetime) -> tuple[str, float | None]:
        tracker = self.obs.trackers.get(node)
        return "fuel_l", None if tracker is None else tracker.estimate(now).hours


class FuelLeak(_Role):
    code = "FUEL_LEAK"
    severity = Severity.CRITICAL
    unit = " L"
    text_en = "Fuel level falls while the generator is stopped: leak or theft ({subject}: {value})"
    text_nl = ("Brandstofniveau daalt terwijl het aggregaat stilstaat: lek of diefstal "
               "({subject}: {value})")

    def make_limit(self, r: RulesSettings) -> Limit:
        leak = self.obs.fuel.leak_l
        return Limit(leak, above=True, hysteresis=leak / 2, timing=Timing.INSTANT)

    def value(self, state: SiteState, node: str, now: datetime) -> tuple[str, float | None]:
        tracker = self.obs.trackers.get(node)
        return "fuel_l", None if tracker is None else tracker.leak_drop_l()


class FuelSensorFault(_Role):
    code = "FUEL_SENSOR_FAULT"
    severity = Severity.WARNING
    text_en = "Fuel level sender fault ({subject})"
    text_nl = "Storing brandstofniveaumeter ({subject})"
    register = "fuel_l"
    bits = PF_FUEL

    def make_limit(self, r: RulesSettings) -> Limit:
        return Limit(0.5, delay_s=r.sensor_fault_delay_min * MIN)

    def value(self, state: SiteState, node: str, now: datetime) -> tuple[str, float | None]:
        status = state.nodes.get(node)
        if status is None or not status.online:
            return self.register, None
        bad = bool(_power_faults(state, node) & self.bits) or _num(
            state, node, self.register) is None
        return self.register, _b(bad)


class FuelOld(_Role):
    code = "FUEL_OLD"
    severity = Severity.WARNING
    unit = " months"
    text_en = "Fuel is old ({subject}: {value} since the last refuel): have it checked"
    text_nl = "Brandstof is oud ({subject}: {value} sinds laatste tankbeurt): laat controleren"

    def make_limit(self, r: RulesSettings) -> Limit:
        return Limit(self.obs.fuel.max_age_months, timing=Timing.INSTANT)

    def value(self, state: SiteState, node: str, now: datetime) -> tuple[str, float | None]:
        tracker = self.obs.trackers.get(node)
        return "fuel_l", None if tracker is None else tracker.fuel_age_months(now)


# ------------------------------------------------------------------ batteries
class StarterBatteryLow(_Role):
    code = "STARTER_BATTERY_LOW"
    severity = Severity.CRITICAL
    unit = " V"
    text_en = "Generator starter battery low ({subject}: {value})"
    text_nl = "Startaccu aggregaat te laag ({subject}: {value})"
    inputs: ClassVar[tuple[str, ...]] = ("starter_battery_v", "gen_running", "power_faults")

    def make_limit(self, r: RulesSettings) -> Limit:
        return Limit(r.starter_battery_low_v, above=False, hysteresis=0.2,
                     delay_s=r.starter_battery_delay_min * MIN)

    def value(self, state: SiteState, node: str, now: datetime) -> tuple[str, float | None]:
        running = _flag(state, node, "gen_running")
        if _power_faults(state, node) & PF_STARTER or running is not False:
            # Running: the alternator charges it, the voltage says nothing about the battery.
            return "starter_battery_v", None
        return "starter_battery_v", _num(state, node, "starter_battery_v")


class StarterBatteryCrank(StarterBatteryLow):
    """Same code, judged on the lowest voltage during the last crank (a weak battery sags)."""

    text_en = "Generator starter battery weak: sagged to {value} while cranking ({subject})"
    text_nl = "Startaccu aggregaat zwak: zakte tot {value} bij het starten ({subject})"
    inputs = ("starter_battery_min_v", "power_faults")

    def make_limit(self, r: RulesSettings) -> Limit:
        return Limit(r.starter_battery_crank_min_v, above=False, hysteresis=0.5,
                     timing=Timing.INSTANT)

    def value(self, state: SiteState, node: str, now: datetime) -> tuple[str, float | None]:
        name = "starter_battery_min_v"
        return name, _unless_fault(state, node, name, PF_STARTER)


class BatteryLow(_Role):
    code = "BATTERY_LOW"
    severity = Severity.WARNING
    unit = " %"
    text_en = "Site battery low ({subject}: {value})"
    text_nl = "Accu van de locatie bijna leeg ({subject}: {value})"
    inputs = ("battery_soc_pct", "power_faults")

    def make_limit(self, r: RulesSettings) -> Limit:
        return Limit(r.battery_low_soc_pct, above=False, hysteresis=5.0,
                     delay_s=r.battery_delay_min * MIN)

    def value(self, state: SiteState, node: str, now: datetime) -> tuple[str, float | None]:
        return "battery_soc_pct", _unless_fault(state, node, "battery_soc_pct", PF_BATTERY)


class BatteryLowVoltage(BatteryLow):
    """Same code, on the voltage: a second, independent gauge (coulomb counting drifts; a
    voltage this low for minutes means a low battery whatever the SoC estimate says)."""

    unit = " V"
    inputs = ("battery_v", "power_faults")

    def make_limit(self, r: RulesSettings) -> Limit:
        return Limit(r.battery_low_v, above=False, hysteresis=0.2,
                     delay_s=r.battery_delay_min * MIN)

    def value(self, state: SiteState, node: str, now: datetime) -> tuple[str, float | None]:
        return "battery_v", _unless_fault(state, node, "battery_v", PF_BATTERY)


class BatterySensorFault(FuelSensorFault):
    code = "BATTERY_SENSOR_FAULT"
    text_en = "Site battery monitor fault ({subject})"
    text_nl = "Storing accumeter van de locatie ({subject})"
    register = "battery_v"
    bits = PF_BATTERY


# ------------------------------------------------------------------ mains and generator
MAINS_RESTORED = EventSpec("MAINS_RESTORED", Severity.INFO, "Mains power restored ({subject})",
                           "Netstroom hersteld ({subject})")


class MainsLost(_Role):
    code = "MAINS_LOST"
    severity = Severity.WARNING
    clear_event = MAINS_RESTORED
    text_en = "Mains power lost ({subject})"
    text_nl = "Netstroom uitgevallen ({subject})"
    inputs = ("mains_present", "power_faults")

    def make_limit(self, r: RulesSettings) -> Limit:
        return Limit(0.5, delay_s=r.mains_lost_delay_s)

    def value(self, state: SiteState, node: str, now: datetime) -> tuple[str, float | None]:
        mains = mains_present(state, node)
        return "mains_present", None if mains is None else _b(not mains)


class GenRunningOnOutage(_Role):
    code = "GEN_RUNNING_ON_OUTAGE"
    severity = Severity.INFO
    text_en = "Generator carries the site during the power outage ({subject})"
    text_nl = "Aggregaat levert de stroom tijdens de stroomstoring ({subject})"

    def make_limit(self, r: RulesSettings) -> Limit:
        return Limit(0.5, timing=Timing.INSTANT)

    def value(self, state: SiteState, node: str, now: datetime) -> tuple[str, float | None]:
        mains = mains_present(state, node)
        running = _flag(state, node, "gen_running")
        if mains is None or running is None:
            return "gen_running", None
        return "gen_running", _b(not mains and running)


class GenFailedToStart(_Role):
    code = "GEN_FAILED_TO_START"
    severity = Severity.CRITICAL
    text_en = "Generator failed to start ({subject})"
    text_nl = "Aggregaat is niet gestart ({subject})"
    inputs = ("gen_state", "gen_running", "mains_present", "power_faults")

    def make_limit(self, r: RulesSettings) -> Limit:
        return Limit(0.5, delay_s=r.gen_start_grace_s)

    def value(self, state: SiteState, node: str, now: datetime) -> tuple[str, float | None]:
        gen_state = _value(state, node, "gen_state")
        running = _flag(state, node, "gen_running")
        if gen_state == GEN_STATE_START_FAILED or _power_faults(state, node) & PF_START_FAILED:
            return "gen_state", 1.0
        mains = mains_present(state, node)
        if running is None or mains is None:
            return "gen_state", None
        return "gen_state", _b(not mains and not running)


class GenRunningUnexpected(_Role):
    code = "GEN_RUNNING_UNEXPECTED"
    severity = Severity.WARNING
    text_en = "Generator runs while mains is present and no test is on ({subject})"
    text_nl = "Aggregaat draait terwijl er netstroom is en er geen test loopt ({subject})"
    inputs = ("gen_running", "mains_present", "gen_run_reason", "gen_state", "power_faults")

    def make_limit(self, r: RulesSettings) -> Limit:
        return Limit(0.5, delay_s=r.gen_unexpected_delay_min * MIN)

    def value(self, state: SiteState, node: str, now: datetime) -> tuple[str, float | None]:
        running = _flag(state, node, "gen_running")
        mains = mains_present(state, node)
        if running is None or mains is None:
            return "gen_running", None
        expected = (_value(state, node, "gen_run_reason") == GEN_REASON_TEST
                    or _value(state, node, "gen_state") == GEN_STATE_COOLDOWN)
        return "gen_running", _b(running and mains and not expected)


# ------------------------------------------------------------------ nodes, data, occupancy
class _PerNode(Condition):
    def __init__(self, rules: RulesSettings, obs: Observations) -> None:
        self.rules = rules
        self.obs = obs
        self.limit = self.make_limit(rules)

    def make_limit(self, r: RulesSettings) -> Limit:
        raise NotImplementedError

    def node_value(self, node: NodeStatus, now: datetime) -> float | None:
        raise NotImplementedError

    def samples(self, state: SiteState, now: datetime) -> Iterator[Sample]:
        for node in state.nodes.values():
            yield Sample(node.name, self.node_value(node, now))


class NodeOffline(_PerNode):
    code = "NODE_OFFLINE"
    severity = Severity.CRITICAL
    text_en = "Node {subject} does not answer"
    text_nl = "Knooppunt {subject} reageert niet"

    def make_limit(self, r: RulesSettings) -> Limit:
        return Limit(0.5, delay_s=r.node_offline_delay_s)

    def node_value(self, node: NodeStatus, now: datetime) -> float | None:
        return _b(not node.online)


class DataStale(_PerNode):
    code = "DATA_STALE"
    severity = Severity.WARNING
    unit = " s"
    text_en = "No fresh data from node {subject} for {value}"
    text_nl = "Geen verse gegevens van knooppunt {subject} sinds {value}"

    def make_limit(self, r: RulesSettings) -> Limit:
        return Limit(r.data_stale_s, timing=Timing.INSTANT)

    def node_value(self, node: NodeStatus, now: datetime) -> float | None:
        # An offline node is NODE_OFFLINE; stale is "says online, but nothing new arrives".
        if not node.online or node.last_ok is None:
            return None
        return (now - node.last_ok).total_seconds()


class OccupancyHigh(_Role):
    code = "OCCUPANCY_HIGH"
    severity = Severity.WARNING
    role = "entrance"
    unit = " people"
    text_en = "More people inside than the site can hold ({subject}: {value})"
    text_nl = "Meer mensen binnen dan de locatie aankan ({subject}: {value})"
    inputs = ("occupancy",)

    def __init__(self, rules: RulesSettings, obs: Observations, capacity: int) -> None:
        self.capacity = rules.occupancy_max or capacity
        super().__init__(rules, obs)

    def make_limit(self, r: RulesSettings) -> Limit:
        return Limit(self.capacity, above=True, hysteresis=1.0, delay_s=r.occupancy_delay_min * MIN)

    def value(self, state: SiteState, node: str, now: datetime) -> tuple[str, float | None]:
        return "occupancy", _num(state, node, "occupancy")


class NodeRebooted(EventDetector):
    spec = EventSpec("NODE_REBOOTED", Severity.INFO, "Node {subject} restarted",
                     "Knooppunt {subject} is herstart")

    def __init__(self) -> None:
        self._seen: dict[str, tuple[float | None, float | None]] = {}

    def detect(self, state: SiteState, now: datetime) -> Iterable[Sample]:
        out: list[Sample] = []
        for node in state.nodes.values():
            uptime = _num(state, node.name, "uptime_s")
            boots = _num(state, node.name, "boot_count")
            if uptime is None:
                v = node.identity.get("uptime_s")
                uptime = None if v is None else float(v)
            if boots is None:
                v = node.identity.get("boot_count")
                boots = None if v is None else float(v)
            prev = self._seen.get(node.name)
            if prev is not None:
                up0, boots0 = prev
                if (boots is not None and boots0 is not None and boots > boots0) or (
                    uptime is not None and up0 is not None and uptime < up0
                ):
                    out.append(Sample(node.name, boots, f"{node.name}.boot_count"))
            if uptime is not None or boots is not None:
                self._seen[node.name] = (
                    uptime if uptime is not None else (prev[0] if prev else None),
                    boots if boots is not None else (prev[1] if prev else None),
                )
        return out


class Refuelled(EventDetector):
    """FUEL_REFUELLED: the tank level jumped up (a delivery). Tells the C-NSP the resupply
    arrived, and restarts the fuel age (FUEL_OLD)."""

    spec = EventSpec("FUEL_REFUELLED", Severity.INFO, "Tank refuelled: +{value} L ({subject})",
                     "Tank bijgevuld: +{value} L ({subject})")

    def __init__(self, obs: Observations) -> None:
        self.obs = obs
        self._seen: dict[str, datetime | None] = {}

    def detect(self, state: SiteState, now: datetime) -> Iterable[Sample]:
        out: list[Sample] = []
        for node, tracker in self.obs.trackers.items():
            last = tracker.last_refuel_at
            if node not in self._seen:
                self._seen[node] = last  # a seeded (stored) refuel is not a new one
            elif last is not None and last != self._seen[node]:
                self._seen[node] = last
                channel = f"{node}.fuel_l"
                out.append(Sample(channel, round(tracker.last_refuel_l, 1), channel))
        return out


@dataclass
class RuleSet:
    """All conditions and detectors of a site, their observations and the evaluator."""

    rules: RulesSettings
    fuel: FuelSettings
    capacity: int = 15
    obs: Observations = field(init=False)
    evaluator: Evaluator = field(init=False)

    def __post_init__(self) -> None:
        self.obs = Observations(self.rules, self.fuel)
        r, o = self.rules, self.obs
        conditions: list[Condition] = [
            FridgeHigh(r, o), FridgeHighInstant(r, o), FridgeLow(r, o), FridgeFreeze(r, o),
            FridgeProbeFault(r, o), FridgeMkt(r, o), FridgeDoorOpen(r, o),
            FuelLow(r, o), FuelAutonomyLow(r, o), FuelLeak(r, o), FuelSensorFault(r, o),
            FuelOld(r, o),
            StarterBatteryLow(r, o), StarterBatteryCrank(r, o), BatteryLow(r, o),
            BatteryLowVoltage(r, o), BatterySensorFault(r, o),
            MainsLost(r, o), GenRunningOnOutage(r, o), GenFailedToStart(r, o),
            GenRunningUnexpected(r, o), GensetWitnessDisagrees(r), *(c() for c in GENSET_ALARMS),
            NodeOffline(r, o), DataStale(r, o), OccupancyHigh(r, o, self.capacity),
        ]
        self.evaluator = Evaluator(conditions, [NodeRebooted(), Refuelled(o)],
                                   max_gap_s=r.max_sample_gap_s)

    def codes(self) -> list[str]:
        seen: dict[str, None] = {}
        for c in self.evaluator.conditions:
            seen[c.code] = None
        for d in self.evaluator.detectors:
            seen[d.spec.code] = None
        seen[MAINS_RESTORED.code] = None
        return list(seen)

    def evaluate(self, state: SiteState, now: datetime) -> list[Transition]:
        """One poll cycle: update the observations, then judge every condition."""
        self.obs.update(state, now)
        return self.evaluator.evaluate(state, now)
