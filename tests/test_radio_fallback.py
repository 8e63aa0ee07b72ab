"""The edge's radio fallback over 72 accelerated hours: takes over after the primary link has
been down 10 min, statuses on change and every 5 min, critical alerts first, never past the duty
cycle, every frame accepted by a real hub store; stops when the primary link is back."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from edge_server.clock import ManualClock
from edge_server.hub.store import HubStore
from edge_server.hub.testing import sample_status
from edge_server.radio.budget import max_in_any_window
from edge_server.radio.fallback import RadioFallback
from edge_server.radio.hubair import HubAir
from edge_server.radio.queue import Priority
from edge_server.radio.settings import RadioSettings

T0 = datetime(2026, 3, 1, 0, 0, tzinfo=UTC)
H = 3600.0


def test_72_hours_down_by_radio(tmp_path: Path) -> None:
    clock = ManualClock(T0)
    store = HubStore(tmp_path / "hub")
    key = store.add_site("nsp-a", T0).encode()
    settings = RadioSettings(sf=12, fallback_after_min=10, status_every_min=5)
    air = HubAir(store, clock, settings.params())
    world: dict[str, Any] = {"up": False, "readiness": "DEGRADED", "alerts": []}

    def status(now: datetime) -> dict[str, Any]:
        return sample_status(world["readiness"], at=now, reasons=["POWER_UNKNOWN"])

    fb = RadioFallback("nsp-a", key, settings, clock, air, lambda: world["up"], status,
                       lambda: list(world["alerts"]))
    changes = {20 * H: "alert", 60 * H: "NOT_READY", 70 * H: "up"}
    seen_at: dict[str, float] = {}
    t = 0.0
    while t < 72 * H:
        for when, what in list(changes.items()):
            if t >= when:
                del changes[when]
                seen_at[what] = t
                if what == "alert":
                    world["alerts"].append({"alert_id": "5", "code": "FRIDGE_HIGH",
                                            "severity": "critical", "state": "raised",
                                            "raised_at": clock.now().isoformat(), "value": 9.1,
                                            "subject": "fridge1", "kind": "alert"})
                elif what == "up":
                    world["up"] = True
                else:
                    world["readiness"] = what
        fb.tick(clock.now())
        clock.advance(5.0)
        t += 5.0
    assert air.refused == [] and air.duplicates == 0  # every frame stored, once
    first = air.heard[0][0]
    assert 600 <= first < 610  # after 10 min down, not before
    assert max_in_any_window(air.log) <= 36.0 + 1e-6
    alert_heard = next(at for at, kind in air.heard if kind == "alert")
    assert alert_heard - seen_at["alert"] <= 15 * 60
    [sent_alert] = [s for s in fb.sent if s.kind == "alert"]
    assert sent_alert.priority is Priority.CRITICAL_ALERT
    change = next(s for s in fb.sent if s.payload.get("readiness") == "NOT_READY")
    assert (change.at - T0).total_seconds() - seen_at["NOT_READY"] <= 15 * 60
    assert all(at < seen_at["up"] + 5 for at, _k in air.heard)  # the radio stops
    gaps = [b - a for (a, _), (b, _) in zip(air.heard, air.heard[1:], strict=False)]
    assert max(gaps[:-1]) <= 5 * 60 + 5  # a status at least every 5 min while down
    assert store.site("nsp-a") is not None
    [hub_alert] = store.alerts(True, 10, "nsp-a")
    assert hub_alert["alert_id"] == "5"
    store.close()


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({"enabled": True}, "radio.port"),
        ({"sf": 12, "status_every_min": 1}, "radio.status_every_min"),
        ({"bw_hz": 100_000}, "bandwidth"),
        ({"duty_cycle": 0.5}, "duty_cycle"),
    ],
)
def test_bad_radio_settings_name_the_field(settings: dict[str, Any], named: str) -> None:
    with pytest.raises(ValidationError, match=named):
        RadioSettings(**settings)
