"""The rules part of the edge service: evaluate after every poll cycle, store alerts, readiness.

    engine = RulesEngine(cfg.rules, cfg.fuel, conn=open_db(path), capacity=cfg.site.capacity)
    state.subscribe(engine.on_cycle)            # listener(state, now)
    engine.add_sink(outbox.put)                 # {"kind": "alert"|"status"|"event", "at", "body"}
    engine.uplink_up = lambda: uplink.link_up   # None/unset: readiness says "link unknown"

After a restart, `engine.restore(nodes, now)` rebuilds the cumulative windows, consecutive
runs, MKT and the fuel trackers (learned rate, leak watch) from the stored readings
(edge_server/rules/restore.py) before the first poll cycle; the open alerts stay the same
records (the store says which are open).

`RulesComponent` is the engine's life in the edge service (built by edge_server.service,
started in the FastAPI lifespan): it opens site.db, replays the history, joins the poll cycles,
and re-evaluates when no poll cycle came for data_stale_s, so DATA_STALE is raised even when the
poller itself has stalled.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
from collections.abc import Callable, Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from edge_server.clock import Clock
from edge_server.rules.alerts import Alert, AlertStore
from edge_server.rules.autonomy import AutonomyEstimate
from edge_server.rules.readiness import (
    Readiness,
    ReadinessInputs,
    assess,
    last_gentest,
)
from edge_server.rules.restore import RestoreReport, rebuild
from edge_server.rules.ruleset import RuleSet, _flag, fridge_temp_c, mains_present
from edge_server.rules.settings import FuelSettings, RulesSettings
from edge_server.state import NodeStatus, SiteState

log = logging.getLogger(__name__)

Message = dict[str, Any]
Sink = Callable[[Message], None]
STATUS_INTERVAL_S = 900.0  # a status message at least every 15 min, and on every change
RESTORE_WAIT_S = 1.0  # start() waits this long at most for the replay of the stored readings


class RulesEngine:
    def __init__(
        self,
        rules: RulesSettings,
        fuel: FuelSettings,
        *,
        conn: sqlite3.Connection,
        capacity: int = 15,
        uplink_up: Callable[[], bool | None] | None = None,
        status_interval_s: float = STATUS_INTERVAL_S,
    ) -> None:
        self.rules = rules
        self.fuel = fuel
        self.conn = conn
        self.ruleset = RuleSet(rules, fuel, capacity)
        self.store = AlertStore(conn)
        self.uplink_up = uplink_up
        self.status_interval_s = status_interval_s
        self.sinks: list[Sink] = []
        self.state: SiteState | None = None
        self.readiness: Readiness | None = None
        self.last_eval_at: datetime | None = None
        self._last_status: tuple[datetime, Message] | None = None
        self.resume_open_alerts()
        for subject, at in self.store.last_events("FUEL_REFUELLED").items():
            self.ruleset.obs.refuel_seed[subject.split(".")[0]] = at

    def resume_open_alerts(self) -> None:
        """The store says which alerts are open: exactly those tracks are active, so an alert
        open before a restart is neither raised again nor lost (it clears when the data says)."""
        ev = self.ruleset.evaluator
        for track in ev.tracks.values():
            track.active = False
        for alert in self.store.open_alerts():
            ev.resume(alert.code, alert.subject, alert.raised_at)

    def restore(self, nodes: Iterable[NodeStatus], now: datetime) -> RestoreReport | None:
        """Rebuild the time-dependent memory from the stored readings, then mark the open
        alerts (call once, at start, before the first evaluation). Never raises."""
        report = self.rebuild_history(nodes, now, self.conn)
        self.resume_open_alerts()
        return report

    def rebuild_history(
        self, nodes: Iterable[NodeStatus], now: datetime, conn: sqlite3.Connection
    ) -> RestoreReport | None:
        """The replay part of restore(): touches only the rule set and `conn`, so it may run
        in a worker thread with a connection of its own while nothing evaluates. Never
        raises: an unreadable history is logged and the windows start empty, as they did
        before there was a restore (None then)."""
        if self.last_eval_at is not None:
            log.warning("rules: restore after the first evaluation ignored")
            return None
        report: RestoreReport | None
        try:
            report = rebuild(self.ruleset, conn, nodes, now)
        except Exception as exc:  # a damaged history must not keep the rules from running
            self.ruleset.evaluator.tracks.clear()
            self.ruleset.obs.mkt.clear()
            self.ruleset.obs.trackers.clear()
            log.error("rules: could not rebuild the alert windows, MKT and fuel rate from the "
                      "stored readings (%s: %s): starting with empty windows",
                      type(exc).__name__, exc)
            report = None
        else:
            log.info("rules: windows, MKT and fuel trackers rebuilt from %s", report.describe())
        return report

    def add_sink(self, sink: Sink, *, durable: bool = False) -> None:
        """Every message goes to `sink`. A durable sink (the uplink's outbox) takes alert and
        event messages with an "id" that was committed together with the alert record
        (AlertStore's hand-off); it must call `handed_off(id)` once it holds the message."""
        self.sinks.append(sink)
        if durable:
            self.store.handoff = True

    def handed_off(self, msg_id: str) -> None:
        self.store.handed_off(msg_id)

    def pending_handoff(self) -> list[Message]:
        """Alert/event messages committed with their record but not yet handed to the sink
        (the process died in between): the durable sink takes them at its start."""
        return self.store.pending_handoff()

    def _emit(self, kind: str, at: datetime, body: Message) -> None:
        self._send({"kind": kind, "at": at.isoformat(), "body": body})

    def _send(self, msg: Message) -> None:
        for sink in self.sinks:
            try:
                sink(msg)
            except Exception:  # a broken sink must not stop the rules
                log.exception("alert sink %r failed", sink)

    def on_cycle(self, state: SiteState, now: datetime) -> None:
        """The state listener (SiteState.subscribe). A bug here must not stop the listeners
        after it (storage, uplink) nor the poll loop: it is logged with its traceback."""
        try:
            self.evaluate(state, now)
        except Exception:
            log.exception("rules evaluation failed at %s", now.isoformat())

    def evaluate(self, state: SiteState, now: datetime) -> list[Alert]:
        """Judge the rules, store and emit changes, update readiness; the changed records."""
        self.state = state
        self.last_eval_at = now
        changed: list[Alert] = []
        for tr in self.ruleset.evaluate(state, now):
            applied = self.store.apply(tr, now)
            if applied is None:
                continue
            alert, message = applied
            changed.append(alert)
            self._send(message)
        self.readiness = self.assess(now)
        status = self.status_body(now)
        last = self._last_status
        if last is None or _essence(last[1]) != _essence(status) or (
            (now - last[0]).total_seconds() >= self.status_interval_s
        ):
            self._last_status = (now, status)
            self._emit("status", now, status)
        return changed

    def autonomy(self, now: datetime) -> AutonomyEstimate | None:
        main = self.ruleset.obs.main_tracker()
        return None if main is None else main[1].estimate(now)

    def assess(self, now: datetime) -> Readiness:
        state = self.state
        power_known = False
        if state is not None:
            for node in state.nodes_with_role("power"):
                if (mains_present(state, node.name) is not None
                        or _flag(state, node.name, "gen_running") is not None):
                    power_known = True
        est = self.autonomy(now)
        up = self.uplink_up() if self.uplink_up is not None else None
        inputs = ReadinessInputs(
            now=now,
            power_data_known=power_known,
            open_alert_codes={a.code for a in self.store.open_alerts()},
            last_gentest=last_gentest(self.conn),
            autonomy_h=None if est is None else est.hours,
            uplink_up=up,
        )
        return assess(inputs, self.rules, self.fuel)

    def status_body(self, now: datetime) -> Message:
        """The uplink `status` body (docs/interfaces.md)."""
        readiness = self.readiness or self.assess(now)
        est = self.autonomy(now)
        state = self.state
        fridge: float | None = None
        occupancy: float | None = None
        mains: bool | None = None
        running: bool | None = None
        if state is not None:
            fridge_node = next(state.nodes_with_role("fridge"), None)
            if fridge_node is not None:
                fridge = fridge_temp_c(state, fridge_node.name)
            occ = state.by_role("entrance", "occupancy")
            occupancy = float(occ.value) if occ is not None and occ.ok and occ.value is not None \
                else None
            power_node = next(state.nodes_with_role("power"), None)
            if power_node is not None:
                mains = mains_present(state, power_node.name)
                running = _flag(state, power_node.name, "gen_running")
        return {
            "readiness": readiness.state.value,
            "reasons": [{"code": r.code, "text_en": r.text_en, "text_nl": r.text_nl}
                        for r in readiness.reasons],
            "fuel_autonomy_h": None if est is None or est.hours is None else round(est.hours, 1),
            "refuel_before": est.refuel_before.isoformat() if est and est.refuel_before else None,
            "fridge_temp_c": fridge,
            "occupancy": None if occupancy is None else int(occupancy),
            "open_alerts": self.store.count_open(),
            "mains_present": mains,
            "gen_running": running,
            # the fuel round at the C-NSP (docs/uplink-protocol.md)
            "fuel_l": None if est is None or est.fuel_l is None else round(est.fuel_l, 1),
            "fuel_usable_l": None if est is None or est.usable_l is None
            else round(est.usable_l, 1),
            "tank_usable_l": round(self.fuel.tank_capacity_l - self.fuel.unusable_l, 1),
            "burn_lph": None if est is None else round(est.rate_lph, 2),
        }

    def acknowledge(self, alert_id: int, by: str, now: datetime) -> Alert:
        alert, message = self.store.acknowledge(alert_id, by, now)
        self._send(message)
        return alert


def _essence(status: Message) -> tuple[Any, ...]:
    """What makes a status message worth sending at once (not the slowly moving numbers)."""
    return (status["readiness"], tuple(r["code"] for r in status["reasons"]),
            status["open_alerts"], status["mains_present"], status["gen_running"])


class RulesComponent:
    """Owns the RulesEngine and its connection to site.db (`db_path`)."""

    def __init__(
        self,
        rules: RulesSettings,
        fuel: FuelSettings,
        db_path: Path,
        state: SiteState,
        clock: Clock,
        *,
        capacity: int = 15,
    ) -> None:
        self.rules = rules
        self.fuel = fuel
        self.db_path = db_path
        self.state = state
        self.clock = clock
        self.capacity = capacity
        self.engine: RulesEngine | None = None
        self._watchdog: asyncio.Task[None] | None = None
        self._restore: asyncio.Task[None] | None = None

    async def start(self) -> None:
        from edge_server.storage.db import open_db

        conn = open_db(self.db_path)
        self.engine = RulesEngine(self.rules, self.fuel, conn=conn, capacity=self.capacity)
        # The replay of the stored readings (0.61 s for a 3-node site with 24 h windows, 12 s
        # with a 30-day MKT window; the fuel tracker adds 0.2 s on a 72 h outage, up to 0.5 s
        # with the default 24 h cap: benchmarks/bench_rules_restore.py; longer on a slow edge
        # computer) runs in a worker thread. start() waits for it at most RESTORE_WAIT_S, so
        # the poller (started after the components) is never held up longer; a longer replay
        # finishes in the background and the rules join the poll cycles when it is done.
        self._restore = asyncio.create_task(self._restore_then_join(), name="rules-restore")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.shield(self._restore), RESTORE_WAIT_S)
        if not self._restore.done():
            log.warning("rules: rebuilding from the stored readings takes longer than %.0f s: "
                        "polling starts now, the rules join when it is done", RESTORE_WAIT_S)

    async def _restore_then_join(self) -> None:
        from edge_server.storage.db import open_db

        engine = self.engine
        assert engine is not None
        nodes = list(self.state.nodes.values())
        now = self.clock.now()
        path = self.db_path

        def replay() -> None:
            history = open_db(path)  # its own connection: the engine's stays on the loop
            try:
                engine.rebuild_history(nodes, now, history)
            finally:
                history.close()

        try:
            await asyncio.to_thread(replay)
        except Exception:  # opening the file failed: rules run with empty windows
            log.exception("rules: could not open the stored readings")
        engine.resume_open_alerts()
        self.state.subscribe(engine.on_cycle)
        self._watchdog = asyncio.create_task(self._stale_watchdog(), name="rules-stale-watchdog")

    async def _stale_watchdog(self) -> None:
        period = self.rules.data_stale_s
        clock = self.clock
        while True:
            await asyncio.sleep(period / 2)
            self.check_stale(clock.now())

    def check_stale(self, now: datetime) -> bool:
        """Evaluate now if no poll cycle came for data_stale_s (the poller stalled); True if so."""
        engine = self.engine
        if engine is None:
            return False
        last = engine.last_eval_at
        stale_s = self.rules.data_stale_s
        if last is not None and (now - last).total_seconds() < stale_s:
            return False
        engine.on_cycle(self.state, now)
        return True

    async def stop(self) -> None:
        if self._restore is not None:
            with contextlib.suppress(Exception):
                await self._restore  # a thread cannot be cancelled; it ends by itself
            self._restore = None
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None
        if self.engine is not None:
            self.engine.conn.close()
            self.engine = None
