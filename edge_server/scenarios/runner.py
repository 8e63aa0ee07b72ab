"""Run one scenario: real virtual nodes + the real poller + the rules, on injected time.

Each step: advance the nodes' virtual clocks by dt (world physics and the firmware's role
ticks), advance the edge's ManualClock by dt, one poll cycle (`Poller.poll_once`, which notifies
the rules engine), record readiness changes. The result holds the alerts raised and cleared,
the events, and the readiness timeline, plus which expected codes were missing and which
codes were not expected.

In scenarios the link to the C-NSP counts as up and a passed generator test 10 days before the
start is on record, so the site starts READY and every change of readiness comes from the
scenario itself.

A scenario with `extra["link_down_s"] = (from, to)` (seconds from its start) rehearses the
data link too (LinkRehearsal): a real hub on localhost (uvicorn, HubStore on disk), the real
outbox and Uplink sender, and the RadioFallback whose air goes straight into the same HubStore
through the hub's compact ingest. Between `from` and `to` the hub's HTTP server is stopped; the
result's `checks` say what the hub heard by radio and by the primary link (docs/radio.md).

A scenario with `extra["storage"]` (a dict of [storage] settings, `with_storage(s, thinning=..)`)
runs the real storage part too (site.db in the workdir, as at a site): the result's `storage`
says how many readings it kept. Without it, nothing stores readings (the rules need none), and
the generator-test scenarios (edge_server/gentest/scenario.py) always store, with the settings
given here. `stored(data_dir)` reads back what a run left in site.db (docs/storage.md, Thinning).

The result's `missed_polls` lists the poll cycles in which a node did not answer, as runs of
consecutive cycles (`MissedPolls`): an unplugged node's on purpose, or one that a loaded machine
answered too late for the short timeout. Two runs that are to be compared (thinning on and
off) compare only when they missed the same polls.
"""

from __future__ import annotations

import dataclasses
import math
import sqlite3
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from edge_server.clock import ManualClock
from edge_server.config import SiteConfig, parse_config
from edge_server.hub.app import HubSettings
from edge_server.hub.testing import RunningHub
from edge_server.poller import Poller
from edge_server.radio.budget import max_in_any_window
from edge_server.radio.fallback import RadioFallback
from edge_server.radio.hubair import HubAir
from edge_server.radio.settings import RadioSettings
from edge_server.rules.component import RulesEngine
from edge_server.scenarios.genset import GensetRehearsal
from edge_server.scenarios.library import Action, Scenario
from edge_server.scenarios.world import VirtualNodeWorld, WorldDriver
from edge_server.service import Part, Service
from edge_server.storage.db import open_db
from edge_server.uplink.client import Uplink
from edge_server.uplink.outbox import Outbox
from edge_server.uplink.protocol import parse_iso
from edge_server.uplink.settings import UplinkSettings

START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)

# The simulated world's site: 1570.8 L horizontal tank, a 20 kW set burning 3.4 l/h (50 % load).
# The site expects 75 % load, so the chart prior (4.9 l/h) differs from the truth and a
# scenario shows the learned rate taking over.
FUEL_TOML = """
[fuel]
tank_capacity_l = 1570
unusable_l = 20
expected_load_pct = 75
consumption_chart_lph = { "25" = 2.5, "50" = 3.4, "75" = 4.9, "100" = 6.1 }
"""


def with_storage(scenario: Scenario, *, thinning: bool) -> Scenario:
    """The scenario run with the real storage part, thinning on or off (module docstring)."""
    settings = {**_storage_settings(scenario), "thinning": thinning}
    return dataclasses.replace(scenario, extra={**scenario.extra, "storage": settings})


def _storage_settings(scenario: Scenario) -> dict[str, object]:
    settings = scenario.extra.get("storage", {})
    if not isinstance(settings, dict):
        raise ValueError("scenario extra storage: a dict of [storage] settings")
    return dict(settings)


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "{ " + ", ".join(f"{k} = {_toml_value(v)}" for k, v in value.items()) + " }"
    if isinstance(value, int | float):
        return repr(value)
    return f'"{value}"'


def site_toml(scenario: Scenario, world: WorldDriver, data_dir: Path) -> str:
    storage = "".join(f"{key} = {_toml_value(value)}\n"
                      for key, value in _storage_settings(scenario).items())
    lines = [
        f'[site]\nid = "scenario-{scenario.name}"\nname = "Scenario {scenario.name}"\n',
        f'[storage]\ndata_dir = "{data_dir}"\n{storage}',
        # Short timeouts: an unplugged node must not slow every step down.
        "[poll]\ninterval_s = 60\ntimeout_s = 0.2\nretries = 0\nbackoff_max_s = 30\n",
        FUEL_TOML,
    ]
    for spec in scenario.nodes:
        host, port = world.endpoint(spec.name)
        lines.append(f'[[buses]]\nname = "{spec.name}-tcp"\nkind = "tcp"\nhost = "{host}"\n'
                     f"port = {port}\n")
    for spec in scenario.nodes:
        roles = ", ".join(f'"{r}"' for r in spec.roles)
        lines.append(f'[[nodes]]\nname = "{spec.name}"\nbus = "{spec.name}-tcp"\n'
                     f"unit = {spec.unit}\nroles = [{roles}]\n")
    return "\n".join(lines)


class MissedPolls:
    """Which nodes missed which poll cycles: runs of consecutive cycles in which a node's read
    timed out, as [node, first_at, last_at, cycles] (times ISO, UTC), in the order they began."""

    def __init__(self, poller: Poller) -> None:
        self.poller = poller
        self.runs: list[list[Any]] = []
        self._seen = {name: r.status.counters.timeouts for name, r in poller.nodes.items()}
        self._open: dict[str, list[Any]] = {}  # node -> its run in self.runs, while it lasts

    def note(self, at: datetime) -> None:
        """After a poll cycle at `at`."""
        for name, runner in self.poller.nodes.items():
            timeouts = runner.status.counters.timeouts
            missed, self._seen[name] = timeouts != self._seen[name], timeouts
            run = self._open.get(name)
            if not missed:
                self._open.pop(name, None)
            elif run is None:
                self._open[name] = run = [name, at.isoformat(), at.isoformat(), 1]
                self.runs.append(run)
            else:
                run[2], run[3] = at.isoformat(), run[3] + 1


def _apply(world: WorldDriver, action: Action) -> None:
    if action.op == "offline":
        world.offline(action.node, bool(action.value))
    else:
        world.set(action.node, action.key, action.value)


def _seed_gentest(conn: Any, at: datetime) -> None:
    with conn:
        conn.execute("CREATE TABLE IF NOT EXISTS gentests (started_at TEXT, passed INTEGER)")
        conn.execute("INSERT INTO gentests(started_at, passed) VALUES (?, 1)", (at.isoformat(),))


RADIO_SLICE_S = 30.0  # the radio decides this often inside a poll step (virtual seconds)


class LinkRehearsal:
    """Mains and the data link fail together: the primary uplink to a real hub, the radio
    fallback beside it, and the checks of what the hub heard (module docstring)."""

    def __init__(self, scenario: Scenario, config: SiteConfig, clock: ManualClock,
                 workdir: Path) -> None:
        span = scenario.extra["link_down_s"]
        if not isinstance(span, tuple) or len(span) != 2:
            raise ValueError("scenario extra link_down_s: a (from_s, to_s) pair")
        down, up = span
        self.down_at = START + timedelta(seconds=float(down))
        self.up_at = START + timedelta(seconds=float(up))
        self.site_id = config.site.id
        self.clock = clock
        self.radio_settings = RadioSettings.model_validate(scenario.extra.get("radio", {}))
        self.hub = RunningHub(workdir / "hub", clock, HubSettings(), 0)
        self.key = self.hub.store.add_site(self.site_id, clock.now()).encode()
        self.hub_up = False
        self.outbox = Outbox(workdir / "edge-data" / "outbox.sqlite")
        self.uplink: Uplink | None = None
        self.radio: RadioFallback | None = None
        self.air = HubAir(self.hub.store, clock, self.radio_settings.params())
        self.engine: RulesEngine | None = None
        self.sent_ids: list[str] = []  # non-status messages, in the order the outbox took them
        self.last_status_id = ""
        self.link_up_seen: datetime | None = None  # the primary link's first success after `up`
        self.radio_summary: dict[str, Any] = {}

    def start(self, engine: RulesEngine) -> None:
        self.hub.start()
        self.hub_up = True
        settings = UplinkSettings(enabled=True, hub_url=self.hub.url, backoff_min_s=2.0,
                                  backoff_max_s=300.0, timeout_s=2.0)
        self.uplink = Uplink(self.site_id, self.key, settings, self.outbox, self.clock)
        self.engine = engine
        engine.add_sink(self._put, durable=True)
        engine.uplink_up = self.uplink.link_up
        self.radio = RadioFallback(
            self.site_id, self.key, self.radio_settings, self.clock, self.air,
            self.uplink.link_up, engine.status_body,
            lambda: [a.to_json() for a in engine.store.open_alerts()])

    def _put(self, message: dict[str, Any]) -> None:
        # What the service's UplinkComponent.put does, plus the record the checks compare with.
        assert self.uplink is not None and self.engine is not None
        msg_id = message.get("id")
        held = self.uplink.enqueue(str(message["kind"]), dict(message["body"]),
                                   parse_iso(message["at"]), msg_id)
        if msg_id is not None:
            self.engine.handed_off(str(msg_id))
        if message["kind"] == "status":
            self.last_status_id = held
        elif held not in self.sent_ids:
            self.sent_ids.append(held)

    def _link(self) -> None:
        now = self.clock.now()
        want = not (self.down_at <= now < self.up_at)
        if want and not self.hub_up:
            self.hub.start()
        elif not want and self.hub_up:
            self.hub.stop()
        self.hub_up = want

    def advance(self, seconds: float) -> None:
        """Advance the clock by `seconds`, the radio deciding every RADIO_SLICE_S."""
        assert self.radio is not None
        left = seconds
        while left > 1e-9:
            dt = min(RADIO_SLICE_S, left)
            self.clock.advance(dt)
            left -= dt
            self._link()
            self.radio.tick(self.clock.now())

    async def after_poll(self) -> None:
        assert self.uplink is not None
        await self.uplink.tick()
        if (self.link_up_seen is None and self.clock.now() >= self.up_at
                and self.uplink.link_up()):
            self.link_up_seen = self.clock.now()

    async def drain(self) -> None:
        """After the last step: the sender finishes what is queued (the link is up by then)."""
        assert self.uplink is not None
        for _ in range(20):
            if self.outbox.pending() == 0:
                break
            self.clock.advance(max(0.0, self.uplink.next_attempt_mono - self.clock.monotonic()))
            await self.uplink.attempt()

    def close(self) -> None:
        self.hub.close()
        self.outbox.close()

    async def aclose(self) -> None:
        if self.uplink is not None:
            await self.uplink.aclose()
        self.close()

    # -- what the hub heard ---------------------------------------------------------------------
    def checks(self, timeline: list[dict[str, Any]], alerts: list[dict[str, Any]]
               ) -> list[dict[str, Any]]:
        rs = self.radio_settings
        msgs = self.hub.store.messages(self.site_id)
        by_radio = [m for m in msgs if m["body"].get("via") == "radio"]
        by_ip = [m for m in msgs if m["body"].get("via") is None]
        t_down = self.down_at.timestamp()
        heard = [(parse_iso(m["received_at"]).timestamp(), m) for m in by_radio]
        checks: list[dict[str, Any]] = []

        def check(name: str, ok: bool, measured: object, limit: str) -> None:
            checks.append({"check": name, "passed": bool(ok), "measured": measured,
                           "limit": limit})

        first = (heard[0][0] - t_down) / 60 if heard else None
        check("radio_takes_over_after_min", first is not None
              and rs.fallback_after_min <= first <= rs.fallback_after_min + 3,
              None if first is None else round(first, 2),
              f"{rs.fallback_after_min:g} min after the link fails (+3 min: the sender's "
              "next attempt and the radio's slice)")
        # Each change of readiness while the link is down: the first radio status heard after
        # it that shows it (or a later change that replaced it in the radio's queue).
        lags: list[float] = []
        missed = 0
        statuses = [(t, m["body"]) for t, m in heard if m["kind"] == "status"]
        changes = [e for e in timeline if self.down_at <= parse_iso(e["at"]) < self.up_at]
        for i, entry in enumerate(changes):
            at = parse_iso(entry["at"]).timestamp()
            states = {e["state"] for e in changes[i:]}
            got = next((t for t, b in statuses if t >= at and b.get("readiness") in states),
                       None)
            if got is None:
                missed += 1
            else:
                lags.append(got - at)
        worst = max(lags, default=0.0) / 60
        check("readiness_by_radio_within_min", missed == 0 and worst <= 15,
              {"changes": len(changes), "missed": missed, "max_min": round(worst, 2)},
              "every change of readiness while the link is down, within 15 min")
        radio_alerts = {str(m["body"].get("alert_id")): t for t, m in heard
                        if m["kind"] == "alert"}
        critical = [a for a in alerts if a["severity"] == "critical"
                    and self.down_at <= parse_iso(a["raised_at"]) < self.up_at]
        alert_lags = [radio_alerts[str(a["id"])] - parse_iso(a["raised_at"]).timestamp()
                      for a in critical if str(a["id"]) in radio_alerts]
        check("critical_alerts_by_radio", len(alert_lags) == len(critical) > 0
              and max(alert_lags, default=0) <= 15 * 60,
              {"critical": len(critical), "by_radio": len(alert_lags),
               "median_s": round(statistics.median(alert_lags), 1) if alert_lags else None,
               "max_s": round(max(alert_lags), 1) if alert_lags else None},
              "each critical alert raised while the link is down, within 15 min")
        busiest = max_in_any_window(self.air.log)
        limit = rs.duty_cycle * 3600
        check("airtime_max_in_any_hour_s", busiest <= limit + 1e-6,
              {"max_s": round(busiest, 3), "packets": len(self.air.log),
               "total_s": round(sum(a for _t, a in self.air.log), 1)},
              f"<= {limit:g} s in any hour ({rs.duty_cycle:.0%} duty cycle, SF{rs.sf})")
        check("radio_frames_refused", not self.air.refused, len(self.air.refused),
              "0 (every frame verified and stored by the hub)")
        up = self.link_up_seen
        after = [t for t, _m in heard if up is not None and t > up.timestamp() + RADIO_SLICE_S]
        check("radio_stops_when_link_returns", up is not None and not after,
              {"link_up_at": None if up is None else up.isoformat(),
               "radio_frames_after": len(after)}, "no radio frame once the primary link is up")
        ip_ids = [m["id"] for m in by_ip if m["kind"] != "status"]
        check("primary_link_exactly_once_in_order", ip_ids == self.sent_ids,
              {"sent": len(self.sent_ids), "hub_holds": len(ip_ids),
               "missing": len(set(self.sent_ids) - set(ip_ids)),
               "duplicates": len(ip_ids) - len(set(ip_ids))},
              "every alert and event message the edge queued, once, in the edge's order")
        last = [m["id"] for m in by_ip if m["kind"] == "status"][-1:]
        check("latest_status_by_primary_link", last == [self.last_status_id] and
              self.outbox.pending() == 0, {"outbox_pending": self.outbox.pending()},
              "the edge's latest status is the hub's last by the primary link; outbox empty")
        check("dead_letters", self.outbox.dead_letter_count() == 0,
              self.outbox.dead_letter_count(), "0")
        self.radio_summary = {"frames": len(by_radio), "statuses": len(statuses),
                              "alerts": len(radio_alerts),
                              "sf": rs.sf, "fallback_after_min": rs.fallback_after_min,
                              "status_every_min": rs.status_every_min}
        return checks


async def run_scenario(
    scenario: Scenario,
    workdir: Path,
    *,
    world: WorldDriver | None = None,
    progress: Callable[[str], None] | None = None,
) -> dict[str, Any]:
    """Run `scenario` with its files under workdir; the result dict (see module docstring)."""
    wall_start = time.monotonic()
    say = progress or (lambda _text: None)
    world = world or VirtualNodeWorld(scenario.nodes)
    world.start()
    gens = GensetRehearsal.of(scenario.extra)  # extra["genset"]: the virtual controller
    conn = None
    service: Service | None = None
    link: LinkRehearsal | None = None
    try:
        clock = ManualClock(START)
        if gens is not None:
            await gens.start()
        toml = site_toml(scenario, world, workdir / "edge-data")
        config = parse_config(toml if gens is None else toml + gens.toml())
        parts = Part.NONE if gens is None else Part.GENSET
        if "storage" in scenario.extra:
            parts |= Part.STORAGE
        service = Service(config, clock, parts=parts)
        await service.start(run_poller=False)
        conn = open_db(workdir / "edge-data" / "site.db")
        _seed_gentest(conn, START - timedelta(days=10))
        engine = RulesEngine(config.rules, config.fuel, conn=conn,
                             capacity=config.site.capacity, uplink_up=lambda: True)
        if "link_down_s" in scenario.extra:
            link = LinkRehearsal(scenario, config, clock, workdir)
            link.start(engine)
        service.state.subscribe(engine.on_cycle)
        timeline: list[dict[str, Any]] = []
        phases: list[dict[str, Any]] = []

        def note_readiness() -> None:
            r = engine.readiness
            if r is None:
                return
            entry = {"at": r.at.isoformat(), "state": r.state.value,
                     "reasons": [x.code for x in r.reasons]}
            if not timeline or (timeline[-1]["state"], timeline[-1]["reasons"]) != (
                entry["state"], entry["reasons"]
            ):
                timeline.append(entry)

        missed = MissedPolls(service.poller)
        await service.poller.poll_once()
        missed.note(clock.now())
        if link is not None:
            await link.after_poll()
        for phase in scenario.phases:
            say(f"{clock.now().isoformat()}  {phase.label}")
            phases.append({"at": clock.now().isoformat(), "label": phase.label,
                           "actions": [a.describe() for a in phase.actions]})
            for action in phase.actions:
                if gens is None or not gens.apply(action):
                    _apply(world, action)
            for _ in range(math.ceil(phase.duration_s / phase.step_s - 1e-9)):
                world.advance(int(phase.step_s * 1000), phase.tick_ms)
                if gens is not None:
                    gens.advance(phase.step_s)
                if link is None:
                    clock.advance(phase.step_s)
                else:
                    link.advance(phase.step_s)
                await service.poller.poll_once()
                missed.note(clock.now())
                note_readiness()
                if link is not None:
                    await link.after_poll()
            estimate = engine.autonomy(clock.now())
            phases[-1]["autonomy_at_end"] = None if estimate is None else estimate.to_json()

        if link is not None:
            await link.drain()
        records = engine.store.query(open_only=False, limit=100000)
        records.reverse()  # oldest first
        alerts = [
            {"id": a.id, "code": a.code, "subject": a.subject, "severity": a.severity,
             "raised_at": a.raised_at.isoformat(),
             "cleared_at": a.cleared_at.isoformat() if a.cleared_at else None,
             "text_en": a.text_en, "text_nl": a.text_nl}
            for a in records if a.kind == "alert"
        ]
        events = [{"code": a.code, "subject": a.subject, "at": a.raised_at.isoformat(),
                   "text_en": a.text_en, "text_nl": a.text_nl}
                  for a in records if a.kind == "event"]
        raised = {a.code for a in records}
        missing = sorted(scenario.expected - raised)
        unexpected = sorted(raised - scenario.expected - scenario.allowed)
        autonomy = engine.autonomy(clock.now())
        extra: dict[str, Any] = {}
        if service.storage is not None:
            service.storage.require().flush()  # the readings still waiting for their commit
            extra["storage"] = {"thinning": config.storage.thinning,
                                "readings": stored(workdir / "edge-data")["readings"]}
        if link is not None:
            checks = link.checks(timeline, alerts)
            extra |= {"link": {"down_at": link.down_at.isoformat(),
                               "up_at": link.up_at.isoformat(), "radio": link.radio_summary},
                      "checks": checks}
        return {
            "scenario": scenario.name,
            "title_en": scenario.title_en,
            "title_nl": scenario.title_nl,
            "started_at": START.isoformat(),
            "ended_at": clock.now().isoformat(),
            "virtual_duration_h": round(scenario.duration_s / 3600, 3),
            "wall_s": round(time.monotonic() - wall_start, 2),
            "phases": phases,
            "alerts": alerts,
            "events": events,
            "readiness": timeline,
            "autonomy": None if autonomy is None else autonomy.to_json(),
            "expected": sorted(scenario.expected),
            "missing": missing,
            "unexpected": unexpected,
            "missed_polls": missed.runs,
            **extra,
            "passed": not missing and not unexpected
            and all(c["passed"] for c in extra.get("checks", [])),
        }
    finally:
        if link is not None:
            await link.aclose()
        if service is not None:
            await service.stop()
        if conn is not None:
            conn.close()
        if gens is not None:
            await gens.stop()
        world.stop()


def stored(data_dir: Path) -> dict[str, Any]:
    """What a run left in `data_dir`/site.db: the number of stored readings (gap rows
    included) and every alert and event row of the rules, oldest first."""
    conn = sqlite3.connect(f"file:{data_dir / 'site.db'}?mode=ro", uri=True)
    try:
        readings = conn.execute("SELECT count(*) FROM readings").fetchone()[0]
        cols = ("kind", "code", "subject", "severity", "raised_at", "acknowledged_at",
                "cleared_at", "text_en", "text_nl", "channel", "value")
        rows = conn.execute(f"SELECT {', '.join(cols)} FROM alerts ORDER BY id").fetchall()
    finally:
        conn.close()
    return {"readings": int(readings), "alerts": [dict(zip(cols, r, strict=True)) for r in rows]}
