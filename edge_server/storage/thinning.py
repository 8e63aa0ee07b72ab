"""Which polls the store keeps: a deadband per channel and a heartbeat (docs/storage.md, Thinning).

    thin = Thinning.from_settings(settings)          # [storage] thinning, heartbeat_s, deadband
    thin.deadband("fridge1.fridge_temp_c")           # 0.1 (°C)

A GOOD reading is stored when it differs from the last STORED value of its channel by at least the
channel's deadband, or when the heartbeat is due (heartbeat_s since the last stored row). States
(bool, enum and fault-bit registers) have deadband 0: every change is stored. "Unavailable" is
always stored (as a gap row, once per outage). Rules and alerts never see this: they run on the
live SiteState of every poll; the 1-minute aggregates are counted from every poll as well
(SqliteStorage keeps them in memory until the minute closes), so they stay exact.

Deadband of a channel "<node>.<register>": [storage.deadband] in site.toml when it names the
register, else DEFAULT_DEADBAND below, else the register map's resolution (its scale: a change of
one count), else the resolution of a generator controller's channel ("<generator>.<channel>",
the shipped profiles of edge_server/genset/profiles; the finest where two profiles differ), else
0 (any change). [storage.deadband] keys name a measured register of the map or a channel of a
shipped controller profile; anything else is refused with the key and where names come from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Any

from edge_server.genset.profile import load_profile, shipped
from edge_server.regmap import Register, load

# Default deadbands in the register's unit: well under what each sensor can tell apart, so a
# stored series is within this of every poll. Fridge and room: a temperature logger for vaccines
# must be accurate to +/-0.5 °C (CDC Vaccine Storage & Handling Toolkit, docs/sources.md);
# 0.1 °C is a fifth of that. Battery and starter voltages: 0.05 V is
# ~0.5 % state of charge on a 12 V lead-acid battery; rules judge whole tenths of a volt.
DEFAULT_DEADBAND: dict[str, float] = {
    "fridge_temp_c": 0.1,
    "ambient_temp_c": 0.2,
    "fridge_min_c": 0.1,
    "fridge_max_c": 0.1,
    "battery_v": 0.05,
    "starter_battery_v": 0.05,
    "starter_battery_min_v": 0.05,
    "battery_a": 0.2,
    "battery_w": 5.0,
    "battery_soc_pct": 0.5,
    "fuel_sender_ma": 0.05,
    "fuel_level_pct": 0.5,
    "fuel_l": 1.0,
    "net_rssi_dbm": 3.0,
}

# Relative slack so that a move of exactly one deadband (0.30 - 0.20 = 0.0999999...) counts.
_EPS = 1e-9


def is_state(reg: Register) -> bool:
    """A state, not a measurement: stored on every change, never thinned by a deadband."""
    return reg.type == "bool" or bool(reg.enum) or bool(reg.bits)


def check_deadband(deadband: Mapping[str, float]) -> None:
    """ValueError naming the first key of [storage.deadband] that is not a measured register."""
    regs = _registers()
    for name in deadband:
        reg = regs.get(name)
        if reg is None and name in _controller_channels():
            continue
        if reg is None:
            raise ValueError(
                f"storage.deadband.{name}: no register {name!r} in the register map and no "
                f"channel {name!r} in a generator controller profile "
                f"({', '.join(shipped())}); use a register name from hw/modbus-map.md (e.g. "
                "fridge_temp_c = 0.1) or a controller channel from edge_server/genset/profiles "
                "(e.g. coolant_temp_c = 1)"
            )
        if is_state(reg):
            raise ValueError(
                f"storage.deadband.{name}: {name} is a state ({reg.type}"
                f"{', enum' if reg.enum else ''}{', bits' if reg.bits else ''}); every change of "
                "a state is stored: remove it from [storage.deadband]"
            )


@dataclass(frozen=True)
class Thinning:
    heartbeat_s: float = 300.0
    overrides: Mapping[str, float] = field(default_factory=dict)  # register -> deadband

    @classmethod
    def from_settings(cls, storage: Any) -> Thinning | None:
        """None when [storage] thinning = false (every poll stored, as before)."""
        if not getattr(storage, "thinning", False):
            return None
        return cls(float(storage.heartbeat_s), dict(storage.deadband))

    def deadband(self, channel: str) -> float:
        name = channel.split(".", 1)[-1]
        reg = _registers().get(name)
        if reg is not None and is_state(reg):
            return 0.0
        if name in self.overrides:
            return float(self.overrides[name])
        if name in DEFAULT_DEADBAND:
            return DEFAULT_DEADBAND[name]
        if reg is not None and reg.scale != 1.0:
            return reg.scale
        if reg is None and name in _controller_channels():
            return _controller_channels()[name]
        return 0.0

    def moved(self, channel_deadband: float, last: float, value: float) -> bool:
        if value == last:
            return False
        return abs(value - last) >= channel_deadband * (1 - _EPS)


@cache
def _registers() -> dict[str, Register]:
    return {r.name: r for r in load().registers}


@cache
def _controller_channels() -> dict[str, float]:
    """Channel name -> resolution (scale) of the shipped generator-controller profiles' measured
    channels; the finest where two profiles differ. Their states (running, in_auto, alarms)
    are not profile channels: deadband 0."""
    found: dict[str, float] = {}
    for profile in shipped():
        for ch in load_profile(profile).channels:
            scale = abs(ch.scale)
            found[ch.name] = min(found.get(ch.name, scale), scale)
    return found
