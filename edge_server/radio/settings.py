"""[radio] in site.toml: the backup LoRa link (docs/radio.md)."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator

from edge_server.radio.airtime import LoRaParams, airtime_s
from edge_server.radio.budget import ETSI_WINDOW_S

# A status packet on air: 24-byte frame + site id (up to 63) + SLIP framing; 40 bytes covers
# a site id of 13 characters, the usual length ("nsp-gemeente-1").
_STATUS_ON_AIR = 40


class RadioSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = False
    port: str = Field(default="", description="the modem's serial device, e.g. /dev/ttyUSB0")
    baudrate: Annotated[int, Field(ge=1200, le=115200)] = 9600
    # Must match the module's air data rate setting (its manual's table): the budget uses them.
    sf: Annotated[int, Field(ge=5, le=12)] = 9
    bw_hz: int = 125_000
    cr: Annotated[int, Field(ge=1, le=4)] = 1
    preamble: Annotated[int, Field(ge=6, le=65535)] = 8
    # ERC Rec 70-03 h1.4 (868.0-868.6 MHz): 1 %. Only a sub-band that allows more may raise it.
    duty_cycle: Annotated[float, Field(gt=0, le=0.1)] = 0.01
    # The radio takes over after the primary uplink has been down this long.
    fallback_after_min: Annotated[float, Field(ge=0, le=1440)] = 10.0
    # A status this often while the readiness does not change (a change goes at once).
    status_every_min: Annotated[float, Field(gt=0, le=1440)] = 5.0

    def params(self) -> LoRaParams:
        return LoRaParams(sf=self.sf, bw_hz=self.bw_hz, cr=self.cr, preamble=self.preamble)

    @model_validator(mode="after")
    def _checks(self) -> RadioSettings:
        if self.enabled and not self.port:
            raise ValueError("radio.port: set the modem's serial device (e.g. /dev/ttyUSB0)")
        try:
            p = self.params()
        except ValueError as exc:
            raise ValueError(f"radio: {exc}") from exc
        hourly = airtime_s(p, _STATUS_ON_AIR) * 60.0 / self.status_every_min
        budget = self.duty_cycle * ETSI_WINDOW_S
        # Statuses alone may use at most 2/3 of the budget: the rest is for alerts and changes.
        if hourly > budget * 2 / 3:
            need = airtime_s(p, _STATUS_ON_AIR) * 60.0 / (budget * 2 / 3)
            raise ValueError(
                f"radio.status_every_min: a status every {self.status_every_min:g} min at "
                f"SF{self.sf} takes {hourly:.1f} s of airtime an hour; the duty cycle allows "
                f"{budget:.0f} s and leaves a third for alerts: use at least {need:.1f} min or a "
                "lower spreading factor"
            )
        return self
