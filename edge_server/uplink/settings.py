"""Settings of the uplink to the C-NSP hub ([uplink] in site.toml)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class UplinkSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = False
