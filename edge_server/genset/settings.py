"""`[[generators]]`: the site's generator controllers (docs/generators.md)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class GeneratorSection(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Annotated[str, Field(pattern=r"^[a-z0-9_]{1,32}$")]  # state channels: NAME.gen_kw
    bus: str
    unit: Annotated[int, Field(ge=1, le=247)]
    profile: str = Field("dse-gencomm", description="a shipped profile name or a profile file")
    rated_kw: Annotated[float, Field(gt=0, le=5000, description="nameplate kW (load %)")]
