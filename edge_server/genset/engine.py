"""The virtual controller's engine: a standby diesel set on injected time (step(dt_s)).

Deliberately simple, first-order physics with numbers of a ~40 kVA / 32 kW set at 50 Hz (our
choice, docs/generators.md): crank 3 s (fails when told to: three attempts, then a FAIL TO START
shutdown), speed settling to 1500 rpm (time constant 1.2 s), frequency = rpm / 30 (4 poles),
voltage following speed to 230 V, load in kW from a site load profile when the set is on load,
coolant from ambient toward 85 °C (time constant 8 min), fuel burned at 0.8 L/h + 0.25 L/kWh
(the tank is the caller's: the same litres as the power node's fuel sender) and shutdown alarms
(low oil pressure, high coolant temperature, overspeed, fail to start) that latch until reset.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

RATED_RPM = 1500.0
CRANK_S = 3.0
CRANK_ATTEMPTS = 3
REST_S = 5.0  # between crank attempts
COOLDOWN_S = 60.0  # off load before the stop


@dataclass
class EngineModel:
    rated_kw: float = 32.0
    load_kw: Callable[[float], float] = lambda _t: 12.0  # site load at time t (s)
    tank_l: list[float] = field(default_factory=lambda: [400.0])  # shared with the fuel sender
    tank_capacity_l: float = 500.0
    ambient_c: float = 15.0
    # faults to inject (the scenarios and tests): the next start fails / a shutdown develops
    crank_fails: bool = False
    fault: str | None = None  # "low_oil_pressure" | "high_coolant_temp" | "over_speed"
    mains_present: bool = True
    mains_v: float = 231.0  # the grid's L-N voltage while present (a sagging grid: lower)

    t_s: float = 0.0
    mode: str = "auto"  # stop | auto | manual | test
    state: str = "off"  # off | cranking | resting | running | cooldown
    manual_run: bool = False
    rpm: float = 0.0
    coolant_c: float = 15.0
    oil_kpa: float = 0.0
    run_s: float = 0.0
    starts: int = 0
    alarms: dict[str, str] = field(default_factory=dict)  # name -> warning|shutdown|...
    _phase_s: float = 0.0
    _attempt: int = 0

    # ------------------------------------------------------------------ what the set does
    def wants_run(self) -> bool:
        if any(sev == "shutdown" for sev in self.alarms.values()) or self.mode == "stop":
            return False
        if self.mode == "test":
            return True
        if self.mode == "manual":
            return self.manual_run
        return not self.mains_present  # auto: start on an outage

    def on_load(self) -> bool:
        """The set carries the site: test on load, or an outage in auto/manual."""
        return self.state == "running" and (self.mode == "test" or not self.mains_present)

    @property
    def frequency_hz(self) -> float:
        return self.rpm / 30.0

    @property
    def voltage_v(self) -> float:
        return 230.0 * min(1.0, self.rpm / RATED_RPM) if self.state in ("running",
                                                                          "cooldown") else 0.0

    @property
    def kw(self) -> float:
        return round(min(self.load_kw(self.t_s), self.rated_kw * 1.1), 2) if self.on_load() else 0.0

    @property
    def running(self) -> bool:
        return self.state in ("running", "cooldown")

    def reset_alarms(self) -> None:
        self.alarms.clear()
        self._attempt = 0

    # ------------------------------------------------------------------ time
    def step(self, dt_s: float) -> None:
        self.t_s += dt_s
        self._phase_s += dt_s
        want = self.wants_run()
        if self.state == "off":
            if want:
                self._to("cranking")
                self._attempt = 1
        elif self.state == "cranking":
            self.rpm = 200.0  # starter speed
            if not want:
                self._to("off")
            elif self._phase_s >= CRANK_S:
                if self.crank_fails:
                    if self._attempt >= CRANK_ATTEMPTS:
                        self.alarms["fail_to_start"] = "shutdown"
                        self._to("off")
                    else:
                        self._to("resting")
                else:
                    self.starts += 1
                    self._to("running")
        elif self.state == "resting":
            self.rpm = 0.0
            if not want:
                self._to("off")
            elif self._phase_s >= REST_S:
                self._attempt += 1
                self._to("cranking")
        elif self.state == "running":
            if not want:
                shutdown = any(s == "shutdown" for s in self.alarms.values())
                self._to("off" if shutdown else "cooldown")
        elif self.state == "cooldown":
            if want:
                self._to("running")
            elif self._phase_s >= COOLDOWN_S or any(s == "shutdown"
                                                     for s in self.alarms.values()):
                self._to("off")
        self._physics(dt_s)

    def _to(self, state: str) -> None:
        self.state, self._phase_s = state, 0.0

    def _physics(self, dt_s: float) -> None:
        k = 1.0 - math.exp(-dt_s / 1.2)
        if self.running:
            target = RATED_RPM * (1.17 if self.fault == "over_speed" else 1.0)
            self.rpm += (target - self.rpm) * k
            self.run_s += dt_s
            hot = 112.0 if self.fault == "high_coolant_temp" else 85.0
            self.coolant_c += (hot - self.coolant_c) * (1.0 - math.exp(-dt_s / 480.0))
            oil = 60.0 if self.fault == "low_oil_pressure" else 380.0
            self.oil_kpa += (oil - self.oil_kpa) * (1.0 - math.exp(-dt_s / 2.0))
            litres = (0.8 + 0.25 * self.kw) * dt_s / 3600.0
            self.tank_l[0] = max(0.0, self.tank_l[0] - litres)
            self._protect()
        else:
            if self.state != "cranking":
                self.rpm += (0.0 - self.rpm) * k
            self.oil_kpa += (0.0 - self.oil_kpa) * (1.0 - math.exp(-dt_s / 2.0))
            self.coolant_c += (self.ambient_c - self.coolant_c) * (1.0 - math.exp(-dt_s / 1800.0))

    def _protect(self) -> None:
        """The controller's own shutdowns (DSE defaults are of this order; docs/generators.md)."""
        if self.state == "running" and self._phase_s > 10.0 and self.oil_kpa < 100.0:
            self.alarms["low_oil_pressure"] = "shutdown"
        if self.coolant_c > 105.0:
            self.alarms["high_coolant_temp"] = "shutdown"
        if self.rpm > RATED_RPM * 1.14:
            self.alarms["over_speed"] = "shutdown"
        if any(s == "shutdown" for s in self.alarms.values()):
            self._to("off")

    @property
    def fuel_level_pct(self) -> float:
        return 100.0 * self.tank_l[0] / self.tank_capacity_l
