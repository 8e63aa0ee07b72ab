"""The uplink inside the edge service: rules engine -> outbox -> hub, and hub acks -> site alerts.

Real parts: the edge Service with its rules and uplink parts, a real hub on
localhost, real SQLite on both ends. The rules raise NODE_OFFLINE alerts because no node answers
(the poller is not run). The sender runs as the service's own asyncio task; the test waits for
its effects by polling the hub's database with a short deadline.
"""

from __future__ import annotations

import asyncio
import time
import tomllib
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx

from edge_server.clock import ManualClock
from edge_server.config import SiteConfig
from edge_server.hub.testing import running_hub
from edge_server.service import Part, Service
from tests.conftest import ROOT
from tests.test_hub_api import schema_validator


async def until(cond: Callable[[], bool], what: str, timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_rules_messages_reach_the_hub_and_hub_acks_come_back(tmp_path: Path) -> None:
    clock = ManualClock(datetime(2026, 3, 1, tzinfo=UTC))
    with running_hub(tmp_path / "hub", clock=clock) as hub:
        raw = tomllib.loads((ROOT / "examples" / "site.toml").read_text())
        site_id = raw["site"]["id"]
        key_file = tmp_path / "site.key"
        key_file.write_text(hub.store.add_site(site_id, clock.now()))
        raw["storage"] = {"data_dir": str(tmp_path / "edge")}
        raw["uplink"] = {"enabled": True, "hub_url": hub.url, "key_file": str(key_file)}
        service = Service(
            SiteConfig.model_validate(raw), clock, parts=Part.RULES | Part.UPLINK
        )
        await service.start(run_poller=False)
        try:
            engine = service.rules.engine
            uplink = service.uplink
            assert engine is not None and uplink.uplink is not None
            for _ in range(20):
                clock.advance(60)
                engine.evaluate(service.state, clock.now())
            await until(lambda: len(hub.store.messages(site_id, "alert")) >= 1, "alerts at hub")
            await until(
                lambda: uplink.uplink is not None and uplink.uplink.outbox.pending() == 0,
                "outbox drained",
            )
            assert uplink.link_up() is True
            alerts = hub.store.messages(site_id, "alert")
            statuses = hub.store.messages(site_id, "status")
            assert {a["body"]["code"] for a in alerts} == {"NODE_OFFLINE"}
            assert statuses, "the rules engine's status reached the hub"
            for m in alerts:
                schema_validator("alert-body.json").validate(m["body"])
            schema_validator("status-body.json").validate(statuses[-1]["body"])

            first = alerts[0]["body"]["alert_id"]
            token = hub.store.add_user("olga", "operator")
            r = httpx.post(
                f"{hub.url}/api/v1/alerts/{site_id}/{first}/ack",
                headers={"Authorization": f"Bearer {token}"},
            )
            assert r.status_code == 200
            clock.advance(1)
            uplink.uplink.notify()  # the next exchange carries the ack back

            def acked_at_site() -> bool:
                return engine.store.get(int(first)).acknowledged_by == "olga (C-NSP)"

            await until(acked_at_site, "the hub's ack applied to the site's alert")
            uplink.uplink.notify()  # the site reports the acknowledged state
            await until(lambda: hub.store.pending_acks(site_id) == [], "hub sees site's ack")
            states = {a["alert_id"]: a["state"] for a in hub.store.alerts(False, 100)}
            assert states[first] == "acknowledged"
        finally:
            await service.stop()


async def test_disabled_uplink_starts_nothing(tmp_path: Path) -> None:
    raw = tomllib.loads((ROOT / "examples" / "site.toml").read_text())
    raw["storage"] = {"data_dir": str(tmp_path / "edge")}
    raw["uplink"] = {"enabled": False}
    service = Service(SiteConfig.model_validate(raw), ManualClock(), parts=Part.UPLINK)
    await service.start(run_poller=False)
    try:
        comp = service.uplink
        assert comp.uplink is None and comp.link_up() is None
        assert not (tmp_path / "edge" / "outbox.sqlite").exists()
    finally:
        await service.stop()
