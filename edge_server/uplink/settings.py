"""Settings of the uplink to the C-NSP hub ([uplink] in site.toml).

The site key is a secret: the TOML names where to find it (an environment variable or a key file),
never the key itself. `load_key()` reads it and refuses a missing key with a clear message.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, model_validator


class UplinkSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")
    enabled: bool = False
    hub_url: str = Field(default="", description="e.g. https://cnsp.example.nl (no trailing path)")
    # Further instances of the same hub (one database behind them), tried in this order when the
    # one before does not answer or answers 5xx; the primary (hub_url) is tried again every
    # primary_retry_s while another one serves (docs/uplink-protocol.md, "Failover").
    hub_urls: list[str] = Field(default=[], max_length=8)
    primary_retry_s: Annotated[float, Field(gt=0, le=86400)] = 300.0
    key_env: str = Field(default="NSP_SITE_KEY", description="environment variable holding the key")
    key_file: Path | None = Field(default=None, description="file holding the key (mode 0600)")
    batch_size: Annotated[int, Field(ge=1, le=500)] = 100
    backoff_min_s: Annotated[float, Field(gt=0, le=3600)] = 2.0
    backoff_max_s: Annotated[float, Field(gt=0, le=86400)] = 300.0
    timeout_s: Annotated[float, Field(gt=0, le=120)] = 10.0
    # The link counts as up while the last successful exchange is younger than this.
    link_up_within_s: Annotated[float, Field(gt=0, le=86400)] = 120.0
    # How often a status is sent while nothing changes (the hub marks a silent site UNKNOWN).
    status_interval_s: Annotated[float, Field(gt=0, le=3600)] = 60.0
    # Dead letters (messages the hub refused for good) go back to the outbox this often, in case
    # the hub was fixed meanwhile (it deduplicates by id); 0 = only by hand (`uplink requeue`).
    dead_letter_retry_h: Annotated[float, Field(ge=0, le=720)] = 6.0

    @model_validator(mode="after")
    def _checks(self) -> UplinkSettings:
        if self.backoff_max_s < self.backoff_min_s:
            raise ValueError("uplink.backoff_max_s must be >= uplink.backoff_min_s")
        if self.enabled and not self.hub_url.startswith(("http://", "https://")):
            raise ValueError("uplink.hub_url: set the C-NSP hub URL (http:// or https://)")
        for i, url in enumerate(self.hub_urls):
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"uplink.hub_urls[{i}]: {url!r} is not an http:// or https:// "
                                 "URL of another instance of the C-NSP hub")
        return self

    def urls(self) -> list[str]:
        """The hub's instances in the order to try them: hub_url first (no trailing '/')."""
        out: list[str] = []
        for url in [self.hub_url, *self.hub_urls]:
            if url and url.rstrip("/") not in out:
                out.append(url.rstrip("/"))
        return out

    def load_key(self) -> bytes:
        """The site key from key_file, else from the environment variable key_env."""
        if self.key_file is not None:
            try:
                text = self.key_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(f"uplink.key_file: cannot read {self.key_file}: {exc}") from exc
            where = f"file {self.key_file}"
        else:
            text = os.environ.get(self.key_env, "").strip()
            where = f"environment variable {self.key_env}"
        if len(text) < 16:
            raise ValueError(
                f"uplink: no usable site key in {where} (need the key printed by "
                "`nsp-edge hub add-site`, at least 16 characters)"
            )
        return text.encode("utf-8")
