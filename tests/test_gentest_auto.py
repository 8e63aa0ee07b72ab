"""The monthly test without a person: an outage that ran the set for the minimum is credited as
the monthly test (and moves the schedule); with [gentest] auto_start the edge starts the test
itself in its window, never while mains is absent, once per window. The real Service with a
pymodbus power node (the fixtures of test_gentest_api.py), real SQLite; a ManualClock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from edge_server.gentest.auto import OutageRun, in_window, should_start
from edge_server.gentest.schedule import DueStatus, next_due
from edge_server.gentest.settings import GenTestSettings
from edge_server.hub.testing import running_hub
from edge_server.rules.settings import RulesSettings
from tests.test_gentest_api import IDLE, Site, start_site
from tests.test_hub_api import schema_validator
from tests.test_hub_board import send
from tests.test_poller import Peer, image, make_peer, peers  # noqa: F401  (fixture)

OUTAGE = {**IDLE, "mains_present": 0, "gen_running": 1, "gen_state": 2, "gen_run_reason": 1}


def auto_site(tmp_path: Path, peers: list[Peer], **gentest: Any  # noqa: F811
              ) -> AsyncIterator[Site]:
    """The site of test_gentest_api on Monday 2026-05-04 12:00 in Amsterdam (CEST)."""
    return start_site(tmp_path, peers, gentest=GenTestSettings(**gentest))


async def test_an_outage_that_ran_the_set_counts_as_the_monthly_test(
        tmp_path: Path, peers: list[Peer]) -> None:  # noqa: F811
    async for site in auto_site(tmp_path, peers):
        store = site.gentest.require().store
        site.node(**OUTAGE)  # a short outage first: 10 min is no monthly test
        for _ in range(10):
            await site.cycle(60)
        site.node(**IDLE)
        await site.cycle(60)
        assert store.list() == []
        site.node(**OUTAGE)
        for _ in range(40):
            await site.cycle(60)
        assert store.list() == []  # credited when mains is back, not during the outage
        site.node(**{**IDLE, "gen_running": 1})  # mains back, the set cools down
        await site.cycle(60)
        [rec] = store.list()
        assert (rec.kind, rec.outcome.value, rec.end and rec.end.value) == (
            "outage_credit", "PASSED", "OUTAGE_RUN")
        assert rec.ran_s == pytest.approx(39 * 60)  # the 40 cycles' first only starts it
        assert "stroomuitval van 2026-05-04" in rec.notes and rec.counts_as_monthly
        assert site.gentest.due().status is DueStatus.TOO_EARLY  # the schedule moved
        assert [e["data"]["test_id"] for e in site.events("GENTEST_OUTAGE_CREDIT")] == [rec.id]
        assert site.coil_writes() == []  # nothing was commanded
        # at the hub: a valid gentest message, and the board's cell says "ok", credited
        body = rec.to_json()
        schema_validator("gentest-body.json").validate(body)
        with running_hub(tmp_path / "hub", clock=site.clock) as hub:
            key = hub.store.add_site("nsp-linde", site.clock.now()).encode()
            send(hub, "nsp-linde", key, [("gentest", body)])
            token = hub.store.add_user("olga", "operator")
            sites = httpx.get(hub.url + "/api/v1/sites",
                              headers={"Authorization": f"Bearer {token}"}).json()["sites"]
        cell = sites[0]["gentest"]
        assert cell["state"] == "ok" and cell["last"]["end"] == "OUTAGE_RUN"
        assert cell["last"]["kind"] == "outage_credit"


async def test_the_edge_starts_the_due_test_in_its_window_once(
        tmp_path: Path, peers: list[Peer]) -> None:  # noqa: F811
    async for site in auto_site(tmp_path, peers, auto_start=True, auto_days=["mon"],
                                auto_from="12:30", auto_until="14:00"):
        await site.cycle(60)
        assert site.coil_writes() == []  # 12:01: before the window
        site.node(**{**IDLE, "mains_present": 0})
        site.clock.advance(30 * 60)  # 12:31, mains absent: refused, once in this window
        await site.cycle(2)
        await site.cycle(2)
        assert site.coil_writes() == []
        refused = site.events("GENTEST_AUTO_REFUSED")
        assert [e["data"]["code"] for e in refused] == ["MAINS_ABSENT"]
        # the next Monday's window, mains present: the edge starts it
        site.node(**IDLE)
        site.clock.advance(7 * 86400)
        await site.cycle(2)
        assert site.coil_writes() == [True]
        [rec] = site.gentest.require().store.list()
        assert rec.started_by == "schedule" and rec.kind == "monthly"
        starts = site.events("GENTEST_START_COMMAND")
        assert [e["data"]["who"] for e in starts] == ["schedule"]


def test_window_and_decision_in_the_sites_zone() -> None:
    zone = "Europe/Amsterdam"
    winter = datetime(2026, 1, 6, 9, 30, tzinfo=UTC)  # Tuesday 10:30 CET
    assert in_window(winter, zone, ["tue"], "10:00", "12:00") is not None
    assert in_window(winter, zone, ["wed"], "10:00", "12:00") is None
    summer = datetime(2026, 7, 7, 9, 30, tzinfo=UTC)  # Tuesday 11:30 CEST
    assert in_window(summer, zone, ["tue"], "11:00", "12:00") is not None
    assert in_window(summer, zone, ["tue"], "10:00", "11:00") is None  # would be in UTC+1
    due = next_due(winter, RulesSettings(), None)
    ok, window = should_start(winter, zone, ["tue"], "10:00", "12:00", due, False, None)
    assert ok and window is not None
    assert should_start(winter, zone, ["tue"], "10:00", "12:00", due, True, None)[0] is False
    assert should_start(winter, zone, ["tue"], "10:00", "12:00", due, False, window)[0] is False


def test_outage_run_ignores_unknown_time() -> None:
    run = OutageRun(30 * 60)
    t = datetime(2026, 1, 6, 9, 0, tzinfo=UTC)
    assert run.feed(t, False, True) is None
    for minute in range(1, 60):  # the run-sense unknown for an hour: no run time
        assert run.feed(t.replace(minute=minute), False, None) is None
    assert run.feed(t.replace(hour=10), True, False) is None


def test_settings_name_the_field() -> None:
    with pytest.raises(ValueError, match="gentest.auto_days"):
        GenTestSettings(auto_days=["dinsdag"])
    with pytest.raises(ValueError, match="HH:MM"):
        GenTestSettings(auto_from="10")
    with pytest.raises(ValueError, match="window must hold the test"):
        GenTestSettings(auto_from="10:00", auto_until="10:30")
