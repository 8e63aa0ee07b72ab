"""Rebuild the rules' time-dependent memory from the stored readings after a restart.

A restart of the edge (power cut of the edge computer, update, crash) must not forget that the
medicine fridge was above 8 °C for 6 of the last 24 h. The cumulative windows, the consecutive
runs and pending clears, and the MKT windows are rebuilt by replaying the raw readings of
site.db (`readings`, kept `raw_days` >= 1 day, so every window up to 24 h is there in full)
through the SAME code as live samples: the conditions' own samples() on a SiteState that holds
the stored values, `Evaluator.replay` (= `Evaluator.step`) and `Observations.update_mkt`. So the
lost-data policy of docs/rules.md applies to stored data unchanged: a stored gap (value NULL) is
unknown, and time between two stored rows longer than max_sample_gap_s (the edge was down, the
poller stalled) counts for nothing -- neither in range nor beyond -- the same as live.

What is replayed: every condition that declares `history_channels()` (its value is a function of
stored readings alone) and whose limit needs memory (`Limit.history_s` > 0), over that history;
the MKT window (fridge_mkt_window_h) of every fridge; and the fuel tracker of every power node
(`Observations.update_fuel` = `FuelTracker.update`, the live code: the learned rate, refuels,
the leak watch), from far enough back to hold learn_window_h of generator *running* time, found
by walking the stored gen_running readings backwards (running time is not wall time), capped at
fuel_history_cap_s() (24 h, or 2 x learn_window_h), and at least the leak window.
FUEL_AUTONOMY_LOW and FUEL_LEAK are then judged from the rebuilt tracker at the first live
cycle (FUEL_LEAK is instant: no track).
Not replayed, starting empty as before: conditions that need the node's online status
(NODE_OFFLINE, DATA_STALE, *_SENSOR_FAULT, FRIDGE_PROBE_FAULT).
Whether an alert is open is the alert store's to say, not the replay's (RulesEngine.restore).
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from edge_server.rules.engine import Condition
from edge_server.rules.ruleset import Observations, RuleSet
from edge_server.state import NodeStatus, Quality, Reading, SiteState
from edge_server.storage.sqlite import from_ms, readings_newest_first, stored_readings, to_ms

# How far back (wall time) the fuel tracker's history is read at most: 24 h, or twice
# learn_window_h when that is longer (learn_window_h may be set up to 72 h). In an outage the
# generator carries the site most of the time (mains-outage-72h: 60 of 72 h), so learn_window_h
# of running lies well inside twice that of wall time (a 72 h outage with the default 6 h: 6 h
# back). The cap bounds a restart *outside* an outage, when only short exercise runs are stored
# and the walk back never collects learn_window_h: each wall hour replayed costs ~27 ms (3
# channels every 2 s; benchmarks/bench_rules_restore.py), so 24 h adds ~0.6 s, 7 days ~4.8 s. A
# rate learned from an exercise run longer ago is forgotten at a restart (the live tracker would
# keep it): the chart prior takes over, as it did before there was a fuel restore.
MIN_FUEL_HISTORY_S = 24 * 3600.0


def fuel_history_cap_s(learn_window_h: float) -> float:
    return max(MIN_FUEL_HISTORY_S, 2 * learn_window_h * 3600)


@dataclass(frozen=True, slots=True)
class RestoreReport:
    channels: int  # channels asked for
    rows: int  # stored readings replayed
    instants: int  # distinct stored times (replay steps)
    oldest: datetime | None  # the oldest replayed reading
    seconds: float  # wall time of the rebuild
    fuel_from: datetime | None = None  # the fuel trackers' history starts here (no power node)

    def describe(self) -> str:
        since = "nothing stored" if self.oldest is None else f"since {self.oldest.isoformat()}"
        fuel = "" if self.fuel_from is None else f", fuel from {self.fuel_from.isoformat()}"
        return (f"{self.rows} stored readings of {self.channels} channels ({since}{fuel}), "
                f"{self.instants} instants, in {self.seconds * 1000:.0f} ms")


def history_plan(ruleset: RuleSet, state: SiteState) -> tuple[
    dict[str, float], dict[str, list[tuple[int, float, Condition]]], set[str]
]:
    """(seconds of history per channel; per channel the replayed conditions as (evaluator
    order, seconds of history it needs, condition); the MKT channels)."""
    ev = ruleset.evaluator
    horizon: dict[str, float] = {}
    users: dict[str, list[tuple[int, float, Condition]]] = {}
    for order, cond in enumerate(ev.conditions):
        need = cond.limit.history_s(ev.max_gap_s)
        if need <= 0:
            continue
        for channel in cond.history_channels(state):
            horizon[channel] = max(horizon.get(channel, 0.0), need)
            users.setdefault(channel, []).append((order, need, cond))
    mkt_channels = {f"{node.name}.{reg}" for node in state.nodes_with_role("fridge")
                    for reg in Observations.MKT_INPUTS}
    for channel in mkt_channels:
        horizon[channel] = max(horizon.get(channel, 0.0), ruleset.obs.mkt_history_s())
    return horizon, users, mkt_channels


def fuel_history_since_ms(
    conn: sqlite3.Connection, ruleset: RuleSet, state: SiteState, now_ms: int
) -> int | None:
    """Where the replay of the fuel trackers starts (None: no power node): back far enough
    that the stored gen_running readings hold learn_window_h of running time -- counted as
    FuelTracker.update counts it: the time after a running sample, up to max_sample_gap_s --
    plus one max gap before the oldest running sample needed (the refuel check's recent
    median); at least the leak window plus one max gap; at most fuel_history_cap_s()."""
    power = [node.name for node in state.nodes_with_role("power")]
    if not power:
        return None
    fuel, gap_ms = ruleset.fuel, int(ruleset.evaluator.max_gap_s * 1000)
    cap_ms = now_ms - int(fuel_history_cap_s(fuel.learn_window_h) * 1000)
    need_ms = fuel.learn_window_h * 3_600_000
    since = now_ms - int(fuel.leak_window_min * 60_000) - gap_ms
    for node in power:
        run_ms = 0
        newer: int | None = None
        oldest_running: int | None = None
        for t_ms, value in readings_newest_first(conn, f"{node}.gen_running", now_ms, cap_ms):
            if value:  # running from t_ms until the newer sample
                oldest_running = t_ms
                if newer is not None and newer - t_ms <= gap_ms:
                    run_ms += newer - t_ms
                    if run_ms >= need_ms:
                        break
            newer = t_ms
        if oldest_running is not None:
            since = min(since, oldest_running - gap_ms)
    return max(cap_ms, since)


def rebuild(
    ruleset: RuleSet, conn: sqlite3.Connection, nodes: Iterable[NodeStatus], now: datetime
) -> RestoreReport:
    """Replay the stored readings up to `now` into ruleset (its tracks and MKT windows are
    replaced). Raises on unreadable history (sqlite3.Error, a value that is not a number):
    the caller decides what an empty start means."""
    started = time.perf_counter()
    ev, obs = ruleset.evaluator, ruleset.obs
    ev.tracks.clear()
    obs.mkt.clear()
    obs.trackers.clear()
    state = SiteState("restore")  # private: the live state is the poller's
    for node in nodes:  # online: replayed conditions read stored values only
        state.add_node(NodeStatus(node.name, node.unit_id, node.bus, node.roles, online=True))
    horizon, users, mkt_channels = history_plan(ruleset, state)
    now_ms = to_ms(now)
    since_ms = {ch: now_ms - int(s * 1000) for ch, s in horizon.items()}
    fuel_since = fuel_history_since_ms(conn, ruleset, state, now_ms)
    fuel_channels: set[str] = set()
    if fuel_since is not None:
        fuel_channels = {f"{node.name}.{reg}" for node in state.nodes_with_role("power")
                         for reg in Observations.FUEL_INPUTS}
        for channel in fuel_channels:
            since_ms[channel] = min(since_ms.get(channel, fuel_since), fuel_since)
    rows = stored_readings(conn, since_ms, now_ms)
    instants = 0
    i, n = 0, len(rows)
    while i < n:
        t_ms = rows[i][0]
        at = from_ms(t_ms)
        touched: dict[int, Condition] = {}
        mkt = fuel = False
        while i < n and rows[i][0] == t_ms:  # all rows of one instant, then one step
            _, channel, value = rows[i]
            node_name, name = channel.split(".", 1)
            if value is None:
                state.put(Reading(node_name, name, None, "", at, Quality.UNAVAILABLE))
            else:
                state.put(Reading(node_name, name, float(value), "", at, Quality.GOOD))
            for order, need_s, cond in users.get(channel, ()):
                # Each condition from its own horizon on (FRIDGE_LOW needs 75 min, not the
                # 24 h of FRIDGE_HIGH on the same channel): a third of the replay time.
                if now_ms - t_ms <= need_s * 1000:
                    touched[order] = cond
            mkt = mkt or channel in mkt_channels
            fuel = fuel or (channel in fuel_channels and t_ms >= (fuel_since or 0))
            i += 1
        instants += 1
        if fuel:  # the live order: fuel, MKT, then the conditions (RuleSet.evaluate)
            obs.update_fuel(state, at)
        if mkt:
            obs.update_mkt(state, at)
        for k in sorted(touched):  # the evaluator's order, as live
            ev.replay(touched[k], state, at)
    return RestoreReport(len(since_ms), n, instants, from_ms(rows[0][0]) if rows else None,
                         time.perf_counter() - started,
                         None if fuel_since is None else from_ms(fuel_since))
