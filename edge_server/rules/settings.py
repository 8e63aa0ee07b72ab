"""Per-site settings of rules, alerts, readiness and fuel autonomy ([rules], [fuel] in site.toml).

Every default comes from docs/sources.md (see docs/rules.md for the sources); every one is
a setting, never a constant in the rule code.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Minutes = Annotated[float, Field(ge=0, le=60 * 24 * 30)]
TimingName = Literal["instant", "consecutive", "cumulative"]


class RulesSettings(BaseModel):
    """[rules]: thresholds, delays and timing kinds of the alert rules."""

    model_config = ConfigDict(extra="forbid")

    # Medicine fridge (2-8 °C, WHO 30-day recorder, Fridge-tag, USP <1160>)
    fridge_high_c: float = 8.0
    fridge_high_timing: TimingName = "cumulative"  # WHO: > 8 °C for 10 h; LogTag "accumulative"
    fridge_high_delay_min: Minutes = 600.0
    fridge_high_window_h: Annotated[float, Field(gt=0, le=24 * 30)] = 24.0  # cumulative window
    # An instant alarm well above the range: excursions up to 15 °C are tolerated <= 24 h (DOMAIN).
    fridge_high_instant_c: float = 15.0
    fridge_low_c: float = 2.0
    fridge_low_delay_min: Minutes = 30.0  # same as the node's local alarm delay (1800 s)
    fridge_freeze_c: float = -0.5  # WHO: <= -0.5 °C for 60 min
    fridge_freeze_delay_min: Minutes = 60.0
    fridge_hysteresis_c: Annotated[float, Field(ge=0, le=5)] = 0.5  # logger accuracy ±0.5 °C
    fridge_probe_fault_delay_min: Minutes = 10.0  # Berlinger Fridge-tag factory setting
    fridge_mkt_limit_c: float = 8.0
    fridge_mkt_window_h: Annotated[float, Field(gt=0, le=24 * 30)] = 24.0
    # MKT is judged only over a (nearly) full window: over a short span a brief excursion would
    # dominate (USP <1160>: the MKT of the period that includes the excursion).
    fridge_mkt_min_span_h: Annotated[float, Field(gt=0, le=24 * 30)] = 24.0
    mkt_delta_h_over_r_k: Annotated[float, Field(gt=0)] = 10000.0
    fridge_door_open_min: Minutes = 5.0

    # Batteries: 12 V lead-acid resting 12.24 V = 50 %; cranking below ~9 V = weak
    starter_battery_low_v: float = 12.2
    starter_battery_crank_min_v: float = 9.0
    starter_battery_delay_min: Minutes = 10.0
    battery_low_soc_pct: Annotated[float, Field(ge=0, le=100)] = 30.0
    battery_low_v: float = 11.9  # used when the state of charge is not available
    battery_delay_min: Minutes = 5.0
    sensor_fault_delay_min: Minutes = 5.0  # fuel sender, battery monitor

    # Mains and generator
    mains_lost_delay_s: Annotated[float, Field(ge=0, le=3600)] = 5.0
    gen_start_grace_s: Annotated[float, Field(ge=0, le=3600)] = 120.0  # 3 cranks of 30 s + rests
    gen_unexpected_delay_min: Minutes = 10.0
    # controller and power node disagree on "running": start/stop transients (genset/witness.py)
    gen_witness_delay_s: Annotated[float, Field(ge=0, le=3600)] = 60.0

    # Nodes and data
    node_offline_delay_s: Annotated[float, Field(ge=0, le=86400)] = 60.0
    data_stale_s: Annotated[float, Field(gt=0, le=86400)] = 120.0
    # A sample older than this is not held: the time between two evaluations beyond it is unknown.
    max_sample_gap_s: Annotated[float, Field(gt=0, le=86400)] = 900.0

    # Occupancy: None = the site's capacity ([site] capacity, 10-15 by the framework)
    occupancy_max: Annotated[int, Field(ge=1, le=500)] | None = None
    occupancy_delay_min: Minutes = 1.0

    # Readiness
    gentest_min_days: Annotated[float, Field(ge=0)] = 20.0  # NFPA 110: monthly, 20-40 days apart
    gentest_max_days: Annotated[float, Field(gt=0)] = 40.0

    @model_validator(mode="after")
    def _ranges(self) -> RulesSettings:
        if not self.fridge_freeze_c < self.fridge_low_c < self.fridge_high_c:
            raise ValueError(
                "rules.fridge_low_c: need fridge_freeze_c < fridge_low_c < fridge_high_c "
                f"(got {self.fridge_freeze_c} / {self.fridge_low_c} / {self.fridge_high_c})"
            )
        if self.fridge_high_instant_c <= self.fridge_high_c:
            raise ValueError("rules.fridge_high_instant_c: must be above fridge_high_c")
        if self.fridge_high_timing == "cumulative" and (
            self.fridge_high_delay_min > self.fridge_high_window_h * 60
        ):
            raise ValueError(
                "rules.fridge_high_delay_min: a cumulative time longer than fridge_high_window_h "
                "can never be reached; shorten the delay or widen the window"
            )
        if self.fridge_mkt_min_span_h > self.fridge_mkt_window_h:
            raise ValueError("rules.fridge_mkt_min_span_h: must not exceed fridge_mkt_window_h")
        if self.gentest_min_days > self.gentest_max_days:
            raise ValueError("rules.gentest_min_days: must not exceed gentest_max_days")
        return self


# Published diesel consumption charts (l/h at 25/50/75/100 % load), docs/sources.md.
DEFAULT_CHART: dict[int, float] = {25: 4.9, 50: 6.8, 75: 9.1, 100: 11.0}  # 30 kW set


class FuelSettings(BaseModel):
    """[fuel]: the tank, the consumption chart (prior) and the autonomy target."""

    model_config = ConfigDict(extra="forbid")

    tank_capacity_l: Annotated[float, Field(gt=0, le=100000)] = 500.0
    unusable_l: Annotated[float, Field(ge=0)] = 10.0  # below the pick-up pipe
    low_pct: Annotated[float, Field(ge=0, le=100)] = 25.0  # FUEL_LOW below this % of capacity
    autonomy_target_h: Annotated[float, Field(gt=0, le=24 * 60)] = 72.0  # framework: 72 h
    autonomy_critical_h: Annotated[float, Field(ge=0, le=24 * 60)] = 24.0  # NOT_READY below
    refuel_lead_time_h: Annotated[float, Field(ge=0, le=24 * 14)] = 12.0
    # Consumption chart: load % -> l/h (keys in TOML are strings: "25" = 4.9).
    consumption_chart_lph: dict[int, float] = Field(default_factory=lambda: dict(DEFAULT_CHART))
    expected_load_pct: Annotated[float, Field(gt=0, le=110)] = 50.0
    learn_window_h: Annotated[float, Field(gt=0, le=72)] = 6.0
    learn_min_span_h: Annotated[float, Field(gt=0, le=24)] = 0.5
    learn_full_weight_h: Annotated[float, Field(gt=0, le=48)] = 2.0
    refuel_jump_l: Annotated[float, Field(gt=0)] = 20.0  # a rise above this is a refuel
    leak_l: Annotated[float, Field(gt=0)] = 5.0  # FUEL_LEAK: drop while stopped
    leak_window_min: Annotated[float, Field(gt=0, le=24 * 60)] = 60.0
    last_refuel_date: date | None = None
    max_age_months: Annotated[float, Field(gt=0, le=120)] = 12.0  # diesel keeps 6-12 months

    @field_validator("consumption_chart_lph")
    @classmethod
    def _chart(cls, chart: dict[int, float]) -> dict[int, float]:
        if not chart:
            raise ValueError("needs at least one point, e.g. {\"50\" = 6.8}")
        for load, lph in chart.items():
            if not 0 < load <= 110:
                raise ValueError(f"load {load} % is outside 1-110 %")
            if lph <= 0:
                raise ValueError(f"consumption at {load} % must be > 0 l/h (got {lph})")
        return dict(sorted(chart.items()))

    @model_validator(mode="after")
    def _tank(self) -> FuelSettings:
        if self.unusable_l >= self.tank_capacity_l:
            raise ValueError("fuel.unusable_l: must be below fuel.tank_capacity_l")
        if self.autonomy_critical_h > self.autonomy_target_h:
            raise ValueError("fuel.autonomy_critical_h: must not exceed fuel.autonomy_target_h")
        return self

    def chart_lph(self, load_pct: float) -> float:
        """The consumption chart at load_pct, linear between points, flat beyond the ends."""
        pts = sorted(self.consumption_chart_lph.items())
        if load_pct <= pts[0][0]:
            return pts[0][1]
        for (l0, r0), (l1, r1) in zip(pts, pts[1:], strict=False):
            if load_pct <= l1:
                return r0 + (r1 - r0) * (load_pct - l0) / (l1 - l0)
        return pts[-1][1]
