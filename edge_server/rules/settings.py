"""Per-site settings of the rules, alerts, readiness and fuel autonomy ([rules] and [fuel] in site.toml).

Every default comes from ../shared/DOMAIN.md (see docs/rules.md for the sources).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class RulesSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")


class FuelSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
