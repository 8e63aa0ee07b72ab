"""The generator test runner: a state machine on injected time, driven by the SiteState.

    runner = GenTestRunner(poller, state, clock, store, settings, site_id)
    record = await runner.start("anna")      # refusals raise Refused (NL + EN text)
    ...after every poll cycle: await runner.tick()
    await runner.abort(record.id, "piet")

Phases: STARTING (start command sent; wait for gen_running, at most start_confirm_s) ->
RUNNING (duration_min of running; cool-down after the stop does not count) -> finished with an
Outcome (PASSED / FAILED / NOT_VERIFIED / ABORTED), how it ended and a verdict per criterion.
A test planned shorter than min_duration_min starts only when marked a short exercise and is
never PASSED; a criterion not measured (the load, without a controller) makes it NOT_VERIFIED.
Two command paths, recorded in the test as `commanded_via`:
- "controller": the site has a generator controller whose profile can start a test
  (`[[generators]]`, the first one; edge_server.genset.control.GentestCommands): the test starts
  with `test_on_load` (else `start`) and ends with `auto` in every case (completed, failed, an
  operator's abort, mains lost, the node silent): an NSP set is left in AUTO, where it stops by
  itself with mains present and carries the site without. GensetControl applies its
  interlocks and writes GENSET_COMMAND with who gave it, the test's id and who started it.
  A failed `auto` is tried again after every cycle until the controller takes it.
- "relay": no such controller: `Poller.write_coil` on the power node's remote-start relay,
  which applies the edge's interlocks (the node applies its own too).
The power node's run-sense says whether the set runs on both paths. A site with a commandable
controller but no power node ([[generators]], no node with the power role) has the controller as
its witness: mains present is its own mains voltage (MAINS_CHANNEL) above
edge_server.genset.control.MAINS_PRESENT_V, running its speed, the battery, fuel level (%) and
run hours its channels; what it does not measure (the battery's dip while cranking; fuel or run
hours where the profile has no such channel) is "not measured", so such a test is NOT_VERIFIED,
never PASSED on it. Without a mains witness (no power node, and no commandable controller
that measures mains) a test is refused, NO_POWER_NODE, naming what to add.
Safety rules kept here:
- never start unless mains is known present, the node is online and the set is not running
  (nor, on the controller path, the controller's set, nor with a shutdown alarm open);
- mains lost during the test: ABORTED (MAINS_LOST) and NO stop command: the set carries the site
  (the controller path puts the controller in AUTO, which never stops a set without mains);
- an operator's abort stops the set only while mains is known present.
Every command and every end is logged and written as an event with who gave it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from edge_server import regmap
from edge_server.clock import Clock
from edge_server.genset.control import MAINS_PRESENT_V, GensetRefused
from edge_server.gentest.record import (
    KIND_MONTHLY,
    KIND_SHORT,
    OUTCOME_TEXTS,
    Criterion,
    End,
    GenTestRecord,
    Outcome,
    Sample,
)
from edge_server.gentest.settings import GenTestSettings
from edge_server.gentest.store import GenTestStore
from edge_server.state import SiteState

log = logging.getLogger(__name__)
COIL = "gen_test_run"
RUNNER = "gentest-runner"  # who, for commands the runner gives by itself (end of the test)


class CommandPort(Protocol):
    """What the runner needs of edge_server.poller.Poller."""

    async def write_coil(self, node: str, coil_name: str, value: bool, who: str) -> None: ...


class Refused(Exception):
    """A start or abort that is not carried out: HTTP 409 with both texts."""

    def __init__(self, code: str, text_en: str, text_nl: str) -> None:
        super().__init__(text_en)
        self.code, self.text_en, self.text_nl = code, text_en, text_nl

    def to_json(self) -> dict[str, str]:
        return {"error": self.code, "text_en": self.text_en, "text_nl": self.text_nl}


class ControllerPort(Protocol):
    """What the runner needs of the site's generator controller
    (edge_server.genset.control.GentestCommands); `command` raises GensetRefused."""

    name: str
    start_command: str | None
    channels: frozenset[str]  # what the controller's profile measures

    def check(self, command: str) -> None: ...

    def reading(self, channel: str) -> Any: ...

    async def command(self, command: str, who: str, context: dict[str, Any]) -> None: ...

    def running(self) -> bool | None: ...

    def shutdown_alarm(self) -> bool | None: ...


VIA_CONTROLLER, VIA_RELAY = "controller", "relay"
MAINS_CHANNEL = "mains_l1n_v"  # a controller that measures mains can be the mains witness
# the power node's readings the runner needs, and the controller's channel for each when the
# controller is the witness; not here (the crank minimum, gen_state...): not measured
WITNESS_CHANNELS = {"gen_running": "controller_running", "starter_battery_v": "battery_v",
                    "run_hours_h": "run_hours_h", "fuel_pct": "fuel_level_pct"}
ADD_POWER_NODE_EN = ('add a node with roles = ["power"] (its mains sense and run-sense), or a '
                     "[[generators]] controller whose profile has [control] with test_on_load "
                     f"(or start) and auto and measures mains (channel {MAINS_CHANNEL})")
ADD_POWER_NODE_NL = ('voeg een knooppunt toe met roles = ["power"] (netstroom- en draaimelding), '
                     "of een [[generators]]-regelaar waarvan het profiel [control] heeft met "
                     f"test_on_load (of start) en auto en die netstroom meet (kanaal "
                     f"{MAINS_CHANNEL})")


def _why(exc: Exception) -> str:
    return exc.text_en if isinstance(exc, GensetRefused) else str(exc)


# event sink: (at, code, severity, text_en, text_nl, data)
EventSink = Callable[[datetime, str, str, str, str, dict[str, Any]], None]


@dataclass
class _Release:
    """A test request left on the node (mains lost, node silent): released once mains has been
    back, known present and not carried by the set, for release_after_mains_s."""

    test_id: int
    node: str
    mains_since: datetime | None = None
    # "controller": the controller did not take the test's `auto`: it is sent again every cycle
    # (AUTO is always safe); "relay": the coil, released once mains is back for good
    via: str = VIA_RELAY
    started_by: str = ""


@dataclass
class _Active:
    record: GenTestRecord
    phase: str = "STARTING"  # STARTING | RUNNING
    offline_since: datetime | None = None
    last_sample_s: float | None = None
    # load readings of the loaded part (RUNNING, after load_warmup_s); None: a cycle without one
    loads: list[float | None] = field(default_factory=list)
    volts: list[float | None] = field(default_factory=list)
    freqs: list[float | None] = field(default_factory=list)
    in_auto: bool = False  # the controller took the test's `auto` (controller path)
    fuel_pct_start: float | None = None  # the controller's fuel level (controller witness)


class GenTestRunner:
    def __init__(
        self,
        commands: CommandPort,
        state: SiteState,
        clock: Clock,
        store: GenTestStore,
        settings: GenTestSettings,
        site_id: str,
        *,
        on_event: EventSink | None = None,
        on_finished: Callable[[GenTestRecord], None] | None = None,
        load_pct: Callable[[], float | None] | None = None,
        electrical: Callable[[], tuple[float | None, float | None]] | None = None,
        engine: Callable[[], tuple[float | None, float | None]] | None = None,
        controller: ControllerPort | None = None,
    ) -> None:
        self.commands = commands
        self.state = state
        self.clock = clock
        self.store = store
        self.settings = settings
        self.site_id = site_id
        self.on_event = on_event
        self.on_finished = on_finished
        # % of rated kW as a generator controller measures it (None: not measured); without a
        # source the LOAD criterion is not measured and no test can PASS
        self.load_pct = load_pct
        # (L1-N voltage, frequency) from the controller; None: no controller, and the
        # VOLTAGE / FREQUENCY criteria are left to the technician's fill-in on the report
        self.electrical = electrical
        self.engine = engine  # (coolant °C, oil pressure kPa) from the controller, for the plot
        # the command path: the controller when its profile can start a test, else the relay
        self.controller = (controller if controller is not None
                           and controller.start_command is not None else None)
        self.active: _Active | None = None
        self.release: _Release | None = None
        # start, tick and abort await Modbus writes: one at a time, so an abort arriving while
        # a tick stops the set cannot finish the same test twice
        self._lock = asyncio.Lock()
        rmap = regmap.load()
        self._gen_states = rmap.register("gen_state").enum
        self._reasons = rmap.register("gen_run_reason").enum
        self._last_cmd = rmap.register("last_command").enum

    # ------------------------------------------------------------------ inputs
    def power_node(self, node: str | None = None) -> str:
        name = node or self.settings.node
        if name is None:
            first = next(self.state.nodes_with_role("power"), None)
            if first is None:
                return self._controller_witness()
            return first.name
        status = self.state.nodes.get(name)
        if status is None or "power" not in status.roles:
            raise Refused("NO_POWER_NODE", f"{name} is not a configured power node",
                          f"{name} is geen ingesteld stroomknooppunt")
        return name

    def _controller_witness(self) -> str:
        """The controller as the mains witness of a site without a power node; raises Refused
        saying what is missing."""
        ctl = self.controller
        if ctl is None:
            raise Refused("NO_POWER_NODE",
                          "No power node and no generator controller that can command a test: "
                          + ADD_POWER_NODE_EN,
                          "Geen stroomknooppunt en geen aggregaatregelaar die een test kan "
                          "bedienen: " + ADD_POWER_NODE_NL)
        if MAINS_CHANNEL not in ctl.channels:
            raise Refused("NO_POWER_NODE",
                          f"No power node, and generator controller {ctl.name} does not measure "
                          f"mains (its profile has no {MAINS_CHANNEL} channel): a test never "
                          "starts without a mains witness; " + ADD_POWER_NODE_EN,
                          f"Geen stroomknooppunt, en aggregaatregelaar {ctl.name} meet geen "
                          f"netstroom (zijn profiel heeft geen kanaal {MAINS_CHANNEL}): een test "
                          "start nooit zonder netstroommelding; " + ADD_POWER_NODE_NL)
        return ctl.name

    def witness_is_controller(self, node: str) -> bool:
        """`node` names the controller standing in for a power node (the site has none)."""
        return (self.controller is not None and node == self.controller.name
                and node not in self.state.nodes)

    def reading(self, name: str) -> Any:
        """One of the power node's readings (mains_present, gen_running...) from the test's
        witness, None when there is none or it is not read (the outage credit watches it)."""
        try:
            node = self.power_node()
        except Refused:
            return None
        return self._value(node, name)

    def _value(self, node: str, name: str) -> Any:
        if self.witness_is_controller(node):
            return self._from_controller(name)
        r = self.state.get(f"{node}.{name}")
        return r.value if r is not None and r.ok else None

    def _from_controller(self, name: str) -> Any:
        ctl = self.controller
        assert ctl is not None
        if name == "mains_present":  # the interlock GensetControl applies too
            volts = ctl.reading(MAINS_CHANNEL)
            if isinstance(volts, bool) or not isinstance(volts, int | float):
                return None
            return float(volts) >= MAINS_PRESENT_V
        channel = WITNESS_CHANNELS.get(name)
        if channel is None or (channel not in ctl.channels and channel != "controller_running"):
            return None
        value = ctl.reading(channel)
        return bool(value) if name == "gen_running" and value is not None else value

    def _enum(self, node: str, name: str, table: dict[int, str]) -> str | None:
        v = self._value(node, name)
        return None if v is None else table.get(int(v), str(v))

    def _online(self, node: str) -> bool:
        if self.witness_is_controller(node):
            assert self.controller is not None
            return self.controller.reading("online") is True
        status = self.state.nodes.get(node)
        return status is not None and status.online

    # ------------------------------------------------------------------ events
    def _event(self, code: str, en: str, nl: str, data: dict[str, Any],
               severity: str = "info") -> None:
        at = self.clock.now()
        log.info("gentest %s: %s (%s)", code, en, ", ".join(f"{k}={v}" for k, v in data.items()))
        if self.on_event is not None:
            try:
                self.on_event(at, code, severity, en, nl, data)
            except Exception:  # the event log must not break a running test
                log.exception("gentest: writing event %s failed", code)

    @property
    def via(self) -> str:
        """The command path a test started now takes: "controller" or "relay"."""
        return VIA_RELAY if self.controller is None else VIA_CONTROLLER

    async def _ctl(self, test_id: int, started_by: str, node: str, command: str, who: str,
                   why: str) -> None:
        """One command to the controller, logged as an event with who gave it and who started
        the test (GensetControl logs it too, and refuses it behind its interlocks: raises
        GensetRefused)."""
        assert self.controller is not None
        name = self.controller.name
        code = "GENTEST_AUTO_COMMAND" if command == "auto" else "GENTEST_START_COMMAND"
        self._event(code,
                    f"Generator test {test_id}: {command} command to controller {name} by {who} "
                    f"({why}; test started by {started_by})",
                    f"Aggregaattest {test_id}: opdracht {command} aan regelaar {name} door "
                    f"{who} ({why}; test gestart door {started_by})",
                    {"test_id": test_id, "node": node, "generator": name, "command": command,
                     "who": who, "started_by": started_by, "via": VIA_CONTROLLER})
        await self.controller.command(command, who,
                                      {"test_id": test_id, "started_by": started_by})

    async def _to_auto(self, rec: GenTestRecord, who: str, why: str) -> bool:
        """The controller back in AUTO (always allowed: AUTO never stops a set without mains);
        False when it did not take it (tried again after every cycle: _maybe_release)."""
        act = self.active
        try:
            await self._ctl(rec.id, rec.started_by, rec.node, "auto", who, why)
        except GensetRefused as exc:
            rec.reasons.append(f"AUTO command to the controller failed: {exc.text_en} "
                               "(sent again every cycle)")
            return False
        if act is not None and act.record is rec:
            act.in_auto = True
        return True

    async def _command(self, rec: GenTestRecord, value: bool, who: str, why: str) -> None:
        """One coil write, logged as an event with who gave it (raises what the poller raises)."""
        word_en, word_nl = ("start", "start") if value else ("stop", "stop")
        self._event(f"GENTEST_{word_en.upper()}_COMMAND",
                    f"Generator test {rec.id}: {word_en} command by {who} ({why})",
                    f"Aggregaattest {rec.id}: {word_nl}commando door {who} ({why})",
                    {"test_id": rec.id, "node": rec.node, "who": who, "value": value})
        await self.commands.write_coil(rec.node, COIL, value, who)

    # ------------------------------------------------------------------ start
    def check_start(self, node: str | None = None) -> str:
        """The power node a test would start on now; raises Refused when it may not start
        (a test running, node offline, mains absent or unknown, generator already running).
        start() calls it; the site page shows its refusal before anyone presses the button."""
        if self.active is not None:
            raise Refused("TEST_RUNNING",
                          f"Generator test {self.active.record.id} is already running",
                          f"Aggregaattest {self.active.record.id} loopt al")
        name = self.power_node(node)
        if not self._online(name):
            if self.witness_is_controller(name):
                raise Refused("NODE_OFFLINE",
                              f"Generator controller {name} (the mains witness: the site has no "
                              "power node) does not answer",
                              f"Aggregaatregelaar {name} (de netstroommelding: de locatie heeft "
                              "geen stroomknooppunt) reageert niet")
            raise Refused("NODE_OFFLINE", f"Power node {name} does not answer",
                          f"Stroomknooppunt {name} reageert niet")
        mains = self._value(name, "mains_present")
        if mains is not True:
            what_en, what_nl = ("absent", "afwezig") if mains is False else ("unknown", "onbekend")
            raise Refused("MAINS_ABSENT",
                          f"Mains is {what_en}: a test never starts while the site may need "
                          "the generator",
                          f"Netstroom is {what_nl}: een test start nooit als de locatie het "
                          "aggregaat nodig kan hebben")
        ctl = self.controller
        if self._value(name, "gen_running") is True or (ctl is not None
                                                       and ctl.running() is True):
            raise Refused("GEN_RUNNING", "The generator is already running",
                          "Het aggregaat draait al")
        if ctl is not None:
            if ctl.shutdown_alarm() is True:
                raise Refused("CONTROLLER_ALARM",
                              f"Generator controller {ctl.name} has a shutdown alarm open: the set "
                              "cannot start; find the cause and reset it on site first",
                              f"Aggregaatregelaar {ctl.name} heeft een uitschakelalarm: het "
                              "aggregaat kan niet starten; zoek de oorzaak en reset het eerst "
                              "ter plaatse")
            assert ctl.start_command is not None
            try:
                ctl.check(ctl.start_command)
            except GensetRefused as exc:
                raise Refused(exc.code, exc.text_en, exc.text_nl) from None
        return name

    def progress(self) -> dict[str, Any] | None:
        """The running test as the site page shows it, on the runner's clock; None when no test
        runs. `ran_s` counts from the first cycle that saw the set running (as the verdict
        does), so `progress` stays 0 while STARTING."""
        act = self.active
        if act is None:
            return None
        rec = act.record
        now = self.clock.now()
        ran = 0.0 if rec.running_at is None else (now - rec.running_at).total_seconds()
        ran = min(max(ran, 0.0), rec.planned_s)
        return {
            "id": rec.id, "node": rec.node, "phase": act.phase, "started_by": rec.started_by,
            "started_at": rec.started_at.isoformat(),
            "running_at": None if rec.running_at is None else rec.running_at.isoformat(),
            "elapsed_s": round((now - rec.started_at).total_seconds(), 1),
            "ran_s": round(ran, 1), "planned_s": rec.planned_s,
            "remaining_s": round(rec.planned_s - ran, 1),
            "progress": round(ran / rec.planned_s, 4) if rec.planned_s > 0 else 0.0,
            "start_confirm_s": self.settings.start_confirm_s,
            "commanded_via": rec.commanded_via,
        }

    async def start(self, who: str, *, node: str | None = None, notes: str = "",
                    short_exercise: bool = False) -> GenTestRecord:
        """Start a test now; raises Refused (mains absent/unknown, test running, node offline,
        generator already running, shorter than the site minimum and not marked a short
        exercise, command refused or not confirmed)."""
        async with self._lock:
            return await self._start(who, node, notes, short_exercise)

    def check_duration(self, short_exercise: bool) -> str:
        """The kind of test the settings give; raises Refused when [gentest] duration_min is
        below min_duration_min and the test is not marked a short exercise."""
        s = self.settings
        if short_exercise:
            return KIND_SHORT
        if s.duration_min < s.min_duration_min:
            raise Refused(
                "TOO_SHORT",
                f"A test of {s.duration_min:g} min is shorter than the site minimum of "
                f"{s.min_duration_min:g} min under load: it can never pass as the monthly test. "
                "Mark it a short exercise, or set [gentest] duration_min >= min_duration_min",
                f"Een test van {s.duration_min:g} min is korter dan het minimum van "
                f"{s.min_duration_min:g} min onder last: hij kan nooit slagen als maandelijkse "
                "test. Markeer hem als korte oefenrun, of zet [gentest] duration_min >= "
                "min_duration_min")
        return KIND_MONTHLY

    async def _start(self, who: str, node: str | None, notes: str,
                     short_exercise: bool) -> GenTestRecord:
        from edge_server.poller import CommandFailed, CommandRejected

        if not who.strip():
            raise Refused("NO_WHO", "A test needs the name of who starts it",
                          "Een test heeft de naam nodig van wie hem start")
        kind = self.check_duration(short_exercise)
        name = self.check_start(node)
        now = self.clock.now()
        rec = GenTestRecord(
            site_id=self.site_id, node=name, started_by=who, started_at=now,
            planned_s=self.settings.duration_min * 60, notes=notes, kind=kind,
            starter_v_before=self._value(name, "starter_battery_v"),
            fuel_start_l=self._value(name, "fuel_l"),
            run_hours_start_h=self._value(name, "run_hours_h"), commanded_via=self.via,
        )
        self.store.insert(rec)
        try:
            if self.controller is not None:
                assert self.controller.start_command is not None
                await self._ctl(rec.id, who, name, self.controller.start_command, who,
                                "test start")
            else:
                await self._command(rec, True, who, "test start")
        except (CommandRejected, CommandFailed, GensetRefused) as exc:
            exc_text = _why(exc)
            # No test took place: the row goes, the refusal stays in the event log.
            with self.store.conn:
                self.store.conn.execute("DELETE FROM gentests WHERE id = ?", (rec.id,))
            self._event("GENTEST_START_REFUSED", f"Start of generator test refused: {exc_text}",
                        f"Start van aggregaattest geweigerd: {exc_text}",
                        {"node": name, "who": who, "via": rec.commanded_via}, "warning")
            raise Refused("COMMAND_REFUSED",
                          f"The start command was not carried out: {exc_text}",
                          f"Het startcommando is niet uitgevoerd: {exc_text}") from None
        self.active = _Active(rec, fuel_pct_start=self._value(name, "fuel_pct"))
        self.release = None  # the new test owns the request now
        self._sample(self.active, now)
        return rec

    # ------------------------------------------------------------------ tick
    async def tick(self) -> GenTestRecord | None:
        """Judge the latest site state (call after every poll cycle); returns the record when
        the test finished in this tick."""
        async with self._lock:
            return await self._tick()

    @property
    def busy(self) -> bool:
        """A test runs or a test request waits to be released: tick after every cycle."""
        return self.active is not None or self.release is not None

    async def _tick(self) -> GenTestRecord | None:
        act = self.active
        if act is None:
            await self._maybe_release()
            return None
        rec, s = act.record, self.settings
        now = self.clock.now()
        node = rec.node
        witness = self.witness_is_controller(node)
        # a controller standing in for the power node that answers but no longer reads mains
        # is no witness either: the same delay, then the same end
        if not self._online(node) or (witness and self._value(node, "mains_present") is None):
            act.offline_since = act.offline_since or now
            if (now - act.offline_since).total_seconds() >= s.offline_abort_s:
                if witness:
                    rec.reasons.append("controller (the mains witness) offline or its mains "
                                       "reading lost: AUTO is sent until it takes it")
                    await self._to_auto(rec, RUNNER, "controller silent")
                elif self.controller is not None:
                    rec.reasons.append("power node offline: the controller is put back in AUTO")
                    await self._to_auto(rec, RUNNER, "power node silent")
                else:
                    rec.reasons.append("node offline: no command sent; the node ends its test "
                                       "run by itself (test_max_s)")
                return self._finish(Outcome.ABORTED, End.NODE_OFFLINE, None)
            return None
        act.offline_since = None
        self._sample(act, now)
        mains = self._value(node, "mains_present")
        if mains is False:
            # The set carries (or is about to carry) the site: never stop it.
            rec.reasons.append("mains lost during the test: generator NOT stopped")
            if self.controller is not None and await self._to_auto(
                    rec, RUNNER, "mains lost: the set carries the site in AUTO"):
                rec.reasons.append("controller put in AUTO: it carries the site and stops by "
                                   "itself when mains is back")
            return self._finish(Outcome.ABORTED, End.MAINS_LOST, None)
        running = self._value(node, "gen_running")
        gen_state = self._enum(node, "gen_state", self._gen_states)
        elapsed = (now - rec.started_at).total_seconds()
        if act.phase == "STARTING":
            if running is True:
                act.phase = "RUNNING"
                rec.running_at = now
                rec.start_time_s = round(elapsed, 1)
                crank = self._value(node, "starter_battery_min_v")
                if crank is not None and (rec.crank_min_v is None or crank < rec.crank_min_v):
                    rec.crank_min_v = crank
                return None
            # the node keeps the lowest voltage of the current crank (reset when a crank
            # starts); after >= 1 s it is this test's crank, also when the set never starts
            crank = self._value(node, "starter_battery_min_v")
            if crank is not None and elapsed >= 1.0 and (rec.crank_min_v is None
                                                         or crank < rec.crank_min_v):
                rec.crank_min_v = crank
            if self.controller is not None:
                # the node never saw a command: its start_failed may be an old one; the
                # controller's own lockout (FAIL TO START is a shutdown alarm) tells
                if self.controller.shutdown_alarm() is True and elapsed >= 1.0:
                    rec.reasons.append("controller reports a shutdown alarm (fail to start)")
                    return await self._fail_to_start()
            else:
                last = self._enum(node, "last_command", self._last_cmd)
                # >= 1 s: the node has ticked since the command (before that its registers may
                # still show the previous test's start_failed)
                failed = gen_state == "start_failed" or last in ("start_failed",
                                                                 "refused_mains_absent")
                if failed and elapsed >= 1.0:
                    rec.reasons.append(f"node reports {last if last != 'accepted' else gen_state}")
                    return await self._fail_to_start()
            if elapsed >= s.start_confirm_s:
                rec.reasons.append(f"not running {s.start_confirm_s:g} s after the command")
                return await self._fail_to_start()
            return None
        # RUNNING
        crank = self._value(node, "starter_battery_min_v")
        if crank is not None and (rec.crank_min_v is None or crank < rec.crank_min_v):
            rec.crank_min_v = crank
        assert rec.running_at is not None
        ran = (now - rec.running_at).total_seconds()
        if ran >= s.load_warmup_s:  # warm-up does not count toward the load criterion
            act.loads.append(None if self.load_pct is None else self.load_pct())
            if self.electrical is not None:
                volts, hz = self.electrical()
                act.volts.append(volts)
                act.freqs.append(hz)
        if running is False:
            rec.reasons.append(f"generator stopped by itself after {ran:.0f} s")
            rec.ran_s = round(ran, 1)
            await self._stop(rec, RUNNER, "generator stopped during the test")
            return self._finish(Outcome.FAILED, End.GEN_STOPPED, None)
        if ran >= rec.planned_s:
            rec.ran_s = round(ran, 1)
            await self._stop(rec, RUNNER, "test duration reached")
            return self._finish(None, End.COMPLETED, None)
        return None

    def _sample(self, act: _Active, now: datetime) -> None:
        rec = act.record
        t_s = (now - rec.started_at).total_seconds()
        starting = act.phase == "STARTING"  # every cycle while cranking: the dip is short
        if (not starting and act.last_sample_s is not None
                and t_s - act.last_sample_s < self.settings.sample_every_s):
            return
        act.last_sample_s = t_s
        load = None if self.load_pct is None else self.load_pct()
        volts, hz = (None, None) if self.electrical is None else self.electrical()
        coolant, oil = (None, None) if self.engine is None else self.engine()
        rec.samples.append(Sample(
            t_s, self._value(rec.node, "starter_battery_v"), self._value(rec.node, "gen_running"),
            self._enum(rec.node, "gen_state", self._gen_states), load, volts, hz, coolant, oil))

    async def _fail_to_start(self) -> GenTestRecord:
        assert self.active is not None
        rec = self.active.record
        # Release the start request (mains is present here, so the interlocks allow it).
        await self._stop(rec, RUNNER, "no start confirmed")
        return self._finish(Outcome.FAILED, End.FAILED_TO_START, None)

    async def _stop(self, rec: GenTestRecord, who: str, why: str) -> bool:
        """End the test's run: the controller back in AUTO (controller path; with mains absent
        the set goes on carrying the site), or the relay's stop command, only while mains is
        known present (write_coil refuses otherwise too). False: the set may still be asked to
        run by the test."""
        from edge_server.poller import CommandFailed, CommandRejected

        if self.controller is not None:
            return await self._to_auto(rec, who, why)
        if self._value(rec.node, "mains_present") is not True:
            rec.reasons.append("stop command not sent: mains absent or unknown")
            return False
        try:
            await self._command(rec, False, who, why)
        except (CommandRejected, CommandFailed) as exc:
            rec.reasons.append(f"stop command failed: {exc}")
            return False
        return True

    # ------------------------------------------------------------------ abort
    async def abort(self, test_id: int, who: str) -> GenTestRecord:
        async with self._lock:
            return await self._abort(test_id, who)

    async def _abort(self, test_id: int, who: str) -> GenTestRecord:
        act = self.active
        if act is None or act.record.id != test_id:
            raise Refused("NOT_RUNNING", f"Generator test {test_id} is not running",
                          f"Aggregaattest {test_id} loopt niet")
        rec = act.record
        rec.ended_by = who
        self._event("GENTEST_ABORT", f"Generator test {rec.id} aborted by {who}",
                    f"Aggregaattest {rec.id} afgebroken door {who}",
                    {"test_id": rec.id, "who": who})
        if rec.running_at is not None:
            rec.ran_s = round((self.clock.now() - rec.running_at).total_seconds(), 1)
        stopped = await self._stop(rec, who, "aborted by an operator")
        if not stopped:
            rec.reasons.append("generator left running (it may carry the site)")
        done = self._finish(Outcome.ABORTED, End.BY_OPERATOR, who)
        if not stopped and self.controller is None:  # the controller path: _finish retries AUTO
            self.release = _Release(done.id, done.node)
        return done

    async def _maybe_release(self) -> None:
        """Release a test request left on the node once mains is back for good; never while the
        set may carry the site (mains absent or unknown, or gen_run_reason mains_lost)."""
        rel = self.release
        if rel is None:
            return
        from edge_server.poller import CommandFailed, CommandRejected

        if rel.via == VIA_CONTROLLER:
            if self.controller is None:
                self.release = None
                return
            try:
                await self._ctl(rel.test_id, rel.started_by, rel.node, "auto", RUNNER,
                                f"test {rel.test_id}: AUTO again, the controller did not take "
                                "it")
            except GensetRefused as exc:
                log.warning("gentest: AUTO after test %d failed (%s); trying again",
                            rel.test_id, exc.text_en)
                return
            self.release = None
            return
        now = self.clock.now()
        mains = self._value(rel.node, "mains_present") if self._online(rel.node) else None
        reason = self._enum(rel.node, "gen_run_reason", self._reasons)
        if mains is not True or reason == "mains_lost":
            rel.mains_since = None
            return
        rel.mains_since = rel.mains_since or now
        if (now - rel.mains_since).total_seconds() < self.settings.release_after_mains_s:
            return
        why = (f"release the request of test {rel.test_id}: mains back for "
               f"{self.settings.release_after_mains_s:g} s")
        self._event("GENTEST_STOP_COMMAND",
                    f"Generator test {rel.test_id}: stop command by {RUNNER} ({why})",
                    f"Aggregaattest {rel.test_id}: stopcommando door {RUNNER} (verzoek "
                    "ingetrokken: netstroom terug)",
                    {"test_id": rel.test_id, "node": rel.node, "who": RUNNER, "value": False})
        try:
            await self.commands.write_coil(rel.node, COIL, False, RUNNER)
        except (CommandRejected, CommandFailed) as exc:
            log.warning("gentest: releasing test %d failed (%s); trying again", rel.test_id, exc)
            rel.mains_since = None
            return
        self.release = None

    # ------------------------------------------------------------------ verdict
    def _criteria(self, rec: GenTestRecord) -> list[Criterion]:
        s = self.settings
        out: list[Criterion] = []

        def add(code: str, ok: bool | None, value: float | str | None, limit: str, en: str,
                nl: str) -> None:
            out.append(Criterion(code, ok, value, limit, en, nl))

        ctl = self.controller if self.witness_is_controller(rec.node) else None
        st = rec.start_time_s
        add("START_TIME", st is not None and st <= s.max_start_s, st, f"<= {s.max_start_s:g} s",
            "Start time (command to running)", "Starttijd (commando tot draaien)")
        cv = rec.crank_min_v
        if ctl is not None:
            # a controller reads the battery now and then, not its lowest point while cranking:
            # a polled value would pass a dip it never saw
            add("CRANK_VOLTAGE", None, None, f">= {s.crank_min_v:g} V",
                "Starter battery while cranking: not measured (no power node)",
                "Startaccu tijdens starten: niet gemeten (geen stroomknooppunt)")
        else:
            add("CRANK_VOLTAGE", cv is not None and cv >= s.crank_min_v, cv,
                f">= {s.crank_min_v:g} V",
                "Starter battery while cranking" + ("" if cv is not None else ": not measured"),
                "Startaccu tijdens starten" + ("" if cv is not None else ": niet gemeten"))
        ran = rec.ran_s
        add("RUN_DURATION", ran is not None and ran >= rec.planned_s, ran,
            f">= {rec.planned_s:g} s", "Run under load (cool-down not counted)",
            "Gedraaid onder last (afkoelen telt niet)")
        if ctl is not None:
            self._controller_fuel(ctl, add)
        else:
            fuel_ok = rec.fuel_start_l is not None and rec.fuel_end_l is not None
            add("FUEL_SENSOR", fuel_ok, rec.fuel_used_l, "level read before and after",
                "Fuel level sensor" + ("" if fuel_ok else ": fault (no reading)"),
                "Brandstofniveausensor" + ("" if fuel_ok else ": storing (geen waarde)"))
        rh = None
        if rec.run_hours_start_h is not None and rec.run_hours_end_h is not None:
            rh = round(rec.run_hours_end_h - rec.run_hours_start_h, 2)
        need = (ran or 0) / 3600 - s.run_hours_tolerance_h
        if ctl is not None and WITNESS_CHANNELS["run_hours_h"] not in ctl.channels:
            add("RUN_HOURS", None, None, f">= {max(need, 0):.2f} h",
                "Run-hour meter: not measured (no power node; the controller's profile has no "
                "run hours)",
                "Urenteller: niet gemeten (geen stroomknooppunt; het profiel van de regelaar "
                "heeft geen draaiuren)")
        else:
            add("RUN_HOURS", rh is not None and rh >= need, rh, f">= {max(need, 0):.2f} h",
                "Run-hour meter advanced", "Urenteller liep op")
        loads = [] if self.active is None else self.active.loads
        limit = f">= {s.min_load_pct:g} % nameplate kW"
        if not loads or any(v is None for v in loads):
            # one cycle without a reading is enough: the whole loaded part must be measured
            add("LOAD", None, None, limit,
                "Load: not measured by the system (no generator controller reading); the test "
                "is not verified",
                "Belasting: niet gemeten door het systeem (geen meting van de "
                "aggregaatregelaar); de test is niet geverifieerd")
        else:
            low = round(min(v for v in loads if v is not None), 1)
            add("LOAD", low >= s.min_load_pct, low, limit,
                "Lowest load while loaded (warm-up not counted)",
                "Laagste belasting onder last (opwarmen telt niet)")
        if self.electrical is not None:
            act = self.active
            for code, got, lo, hi, unit, en, nl in (
                    ("VOLTAGE", [] if act is None else act.volts, s.voltage_min_v,
                     s.voltage_max_v, "V", "Generator voltage L-N while loaded",
                     "Generatorspanning F-N onder last"),
                    ("FREQUENCY", [] if act is None else act.freqs, s.frequency_min_hz,
                     s.frequency_max_hz, "Hz", "Generator frequency while loaded",
                     "Generatorfrequentie onder last")):
                band = f"{lo:g}-{hi:g} {unit}"
                if not got or any(v is None for v in got):
                    add(code, None, None, band, en + ": not measured", nl + ": niet gemeten")
                    continue
                vals = [v for v in got if v is not None]
                add(code, lo <= min(vals) and max(vals) <= hi,
                    f"{min(vals):g}-{max(vals):g}", band, en, nl)
        return out

    def _controller_fuel(self, ctl: ControllerPort,
                         add: Callable[[str, bool | None, float | str | None, str, str, str],
                                       None]) -> None:
        """FUEL_SENSOR from the controller's fuel level (%) before and after: no such channel
        is "not measured"; a channel without a reading is a sensor fault, as on the node."""
        limit = "level read before and after"
        if WITNESS_CHANNELS["fuel_pct"] not in ctl.channels:
            add("FUEL_SENSOR", None, None, limit,
                "Fuel level sensor: not measured (no power node; the controller's profile has "
                "no fuel level)",
                "Brandstofniveausensor: niet gemeten (geen stroomknooppunt; het profiel van de "
                "regelaar heeft geen brandstofniveau)")
            return
        act = self.active
        start = None if act is None else act.fuel_pct_start
        end = self._value(ctl.name, "fuel_pct")
        if start is None or end is None:
            add("FUEL_SENSOR", False, None, limit,
                "Fuel level sensor (controller): fault (no reading)",
                "Brandstofniveausensor (regelaar): storing (geen waarde)")
            return
        add("FUEL_SENSOR", True, f"{round(start, 1):g} -> {round(end, 1):g} %", limit,
            "Fuel level sensor", "Brandstofniveausensor")

    def _judge(self, rec: GenTestRecord) -> Outcome:
        """The outcome of a test that ran its planned duration: FAILED when a criterion is not
        met; NOT_VERIFIED when it is a short exercise or a criterion was not measured (never
        PASSED on what the system did not see); PASSED only when everything was measured and
        met for at least the site minimum under load."""
        failed = [c for c in rec.criteria if c.ok is False]
        rec.reasons.extend(f"{c.code}: {c.value} (limit {c.limit})" for c in failed)
        if failed:
            return Outcome.FAILED
        verified = True
        if rec.kind == KIND_SHORT or rec.planned_s < self.settings.min_duration_min * 60:
            rec.reasons.append(
                f"short exercise ({rec.planned_s / 60:g} min; site minimum "
                f"{self.settings.min_duration_min:g} min under load): does not count as the "
                "monthly test")
            verified = False
        unmeasured = [c.code for c in rec.criteria if c.ok is None]
        if unmeasured:
            rec.reasons.append(f"not measured: {', '.join(unmeasured)}: the test is not "
                               "verified")
            verified = False
        return Outcome.PASSED if verified else Outcome.NOT_VERIFIED

    def _finish(self, outcome: Outcome | None, end: End, who: str | None) -> GenTestRecord:
        assert self.active is not None
        rec = self.active.record
        now = self.clock.now()
        rec.ended_at = now
        rec.ended_by = rec.ended_by or who
        node = rec.node
        rec.fuel_end_l = self._value(node, "fuel_l")
        rec.run_hours_end_h = self._value(node, "run_hours_h")
        rec.criteria = self._criteria(rec)
        if outcome is None:
            outcome = self._judge(rec)
        rec.outcome, rec.end = outcome, end
        act = self.active
        assert act is not None
        self.active = None
        if self.controller is not None and rec.commanded_via == VIA_CONTROLLER:
            if not act.in_auto:  # AUTO was not taken (or not sent): again every cycle
                self.release = _Release(rec.id, node, via=VIA_CONTROLLER,
                                        started_by=rec.started_by)
        elif end in (End.MAINS_LOST, End.NODE_OFFLINE):
            self.release = _Release(rec.id, node)
        self.store.update(rec)
        en, nl = OUTCOME_TEXTS[outcome]
        severity = "info" if outcome is Outcome.PASSED or end is End.BY_OPERATOR else "warning"
        self._event("GENTEST_FINISHED", f"Generator test {rec.id}: {en}",
                    f"Aggregaattest {rec.id}: {nl}",
                    {"test_id": rec.id, "outcome": outcome.value, "end": end.value,
                     "kind": rec.kind, "who": rec.ended_by or RUNNER,
                     "reasons": rec.reasons}, severity)
        if self.on_finished is not None:
            try:
                self.on_finished(rec)
            except Exception:
                log.exception("gentest: on_finished failed for test %d", rec.id)
        return rec
