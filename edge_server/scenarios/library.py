"""The scenarios shipped with NSP Site Monitor: what happens to the site, and which alert codes
the rules must raise (nothing else). Each runs in well under two minutes of wall time.

A scenario is a list of phases; a phase applies its actions to the virtual nodes' worlds, then
runs for duration_s of virtual time in steps of step_s (each step: advance the nodes, advance
the edge clock, one poll cycle, the rules evaluate).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from edge_server.scenarios.world import NodeSpec

MIN = 60.0
H = 3600.0

NODES = (NodeSpec("power", 1, ("power",)), NodeSpec("fridge", 2, ("fridge",)))


@dataclass(frozen=True)
class Action:
    node: str
    op: str  # "set" | "offline"
    key: str = ""
    value: object = None

    def describe(self) -> str:
        if self.op == "offline":
            return f"{self.node}: {'unplugged' if self.value else 'plugged in again'}"
        return f"{self.node}: {self.key} = {self.value!r}"


def world(node: str, key: str, value: object) -> Action:
    return Action(node, "set", key, value)


def unplug(node: str, value: bool = True) -> Action:
    return Action(node, "offline", value=value)


@dataclass(frozen=True)
class Phase:
    label: str
    duration_s: float
    step_s: float = MIN
    actions: tuple[Action, ...] = ()
    tick_ms: int = 1000  # the firmware's role tick inside each step (coarser = faster)


@dataclass(frozen=True)
class Scenario:
    name: str
    title_en: str
    title_nl: str
    phases: tuple[Phase, ...]
    expected: frozenset[str]  # must be raised (alert codes and event codes)
    allowed: frozenset[str] = frozenset()  # may be raised, need not be
    nodes: tuple[NodeSpec, ...] = NODES
    notes: str = ""
    extra: dict[str, object] = field(default_factory=dict)

    @property
    def duration_s(self) -> float:
        return sum(p.duration_s for p in self.phases)


SETTLE = Phase("site running normally", 15 * MIN, MIN)

SCENARIOS: tuple[Scenario, ...] = (
    Scenario(
        "fridge-power-loss",
        "The medicine fridge loses power for 12 hours (after 12 hours of normal running)",
        "De medicijnkoelkast zit 12 uur zonder stroom (na 12 uur normaal bedrijf)",
        (
            SETTLE,
            # MKT is judged over a full 24 h window: 12 h of normal running first.
            Phase("fridge running normally", 12 * H - SETTLE.duration_s, 10 * MIN,
                  tick_ms=10000),
            Phase("fridge unpowered: warming towards the room", 12 * H + 10 * MIN, 5 * MIN,
                  (world("fridge", "fridge_powered", False),), tick_ms=5000),
        ),
        frozenset({"FRIDGE_HIGH_INSTANT", "FRIDGE_MKT", "FRIDGE_HIGH"}),
        notes="The box warms to the room (20 °C) over hours; the probe vial lags ~20 min. "
              "> 15 °C: FRIDGE_HIGH_INSTANT; MKT over the window > 8 °C; 10 h > 8 °C: FRIDGE_HIGH.",
    ),
    Scenario(
        "fridge-probe-unplugged",
        "The fridge probe is unplugged for 20 minutes, then plugged in again",
        "De koelkastvoeler is 20 minuten losgetrokken en daarna weer ingeplugd",
        (
            SETTLE,
            Phase("probe unplugged", 20 * MIN, MIN,
                  (world("fridge", "fridge_probe_unplugged", True),)),
            Phase("probe plugged in again (reads 85.0 °C at power-on)", 30 * MIN, 30,
                  (world("fridge", "fridge_probe_unplugged", False),)),
        ),
        frozenset({"FRIDGE_PROBE_FAULT"}),
        notes="A sensor fault must never raise a value alarm: no FRIDGE_HIGH* from 85.0 °C.",
    ),
    Scenario(
        "fridge-door-left-open",
        "The fridge door is left open for 20 minutes",
        "De koelkastdeur staat 20 minuten open",
        (
            SETTLE,
            Phase("door open", 20 * MIN, 30, (world("fridge", "door_open", True),)),
            Phase("door closed, fridge cools down again", 2 * H, MIN,
                  (world("fridge", "door_open", False),)),
        ),
        frozenset({"FRIDGE_DOOR_OPEN"}),
        notes="The glycol vial buffers the air: no temperature alarm for a 20-minute opening.",
    ),
    Scenario(
        "fuel-leak",
        "Fuel leaks (or is stolen) from the tank at 20 l/h while the generator is stopped",
        "Brandstof lekt (of wordt gestolen) uit de tank, 20 l/u, terwijl het aggregaat stilstaat",
        (
            SETTLE,
            Phase("leaking", 2 * H, MIN, (world("power", "fuel_leak_lph", 20.0),)),
            Phase("leak fixed", 75 * MIN, MIN, (world("power", "fuel_leak_lph", 0.0),)),
        ),
        frozenset({"FUEL_LEAK"}),
    ),
    Scenario(
        "node-unplugged",
        "The fridge node's cable is pulled for 10 minutes",
        "De kabel van het koelkastknooppunt is 10 minuten losgetrokken",
        (
            SETTLE,
            Phase("fridge node unplugged", 10 * MIN, 30, (unplug("fridge"),)),
            Phase("plugged in again", 10 * MIN, 30, (unplug("fridge", False),)),
        ),
        frozenset({"NODE_OFFLINE"}),
        notes="Its values become unavailable: no FRIDGE_PROBE_FAULT, no value alarm, no reboot.",
    ),
    Scenario(
        "starter-battery-weak",
        "The generator starter battery is weak; then mains fails for an hour",
        "De startaccu van het aggregaat is zwak; daarna valt de netstroom een uur uit",
        (
            SETTLE,
            Phase("starter battery weak (rests at 12.1 V)", 20 * MIN, MIN,
                  (world("power", "starter_battery_weak", True),)),
            Phase("mains lost: the generator cranks on the weak battery", H, 30,
                  (world("power", "mains_present", False),)),
            Phase("mains back", 15 * MIN, 30, (world("power", "mains_present", True),)),
        ),
        frozenset({"STARTER_BATTERY_LOW", "MAINS_LOST", "GEN_RUNNING_ON_OUTAGE",
                   "MAINS_RESTORED"}),
        notes="Resting below 12.2 V for 10 min, and the crank sags below 9 V: the site is "
              "NOT_READY (the generator may not start next time).",
    ),
)

# Beyond the required set: the rehearsal every pilot must run (a long loss of mains), and the
# generator that does not start.
SCENARIOS += (
    Scenario(
        "mains-outage-72h",
        "Mains fails for 72 hours; the generator carries the site",
        "De netstroom valt 72 uur uit; het aggregaat levert de stroom",
        (
            SETTLE,
            Phase("mains lost: the generator starts", 30 * MIN, MIN,
                  (world("power", "mains_present", False),)),
            Phase("72 h on the generator", 72 * H - 30 * MIN, 10 * MIN, tick_ms=10000),
            Phase("mains back", 30 * MIN, MIN, (world("power", "mains_present", True),)),
        ),
        frozenset({"MAINS_LOST", "GEN_RUNNING_ON_OUTAGE", "MAINS_RESTORED"}),
        nodes=NODES[:1],  # the power node alone: a 72 h world is the slow part
        notes="The set burns 3.4 l/h (50 % load); the site's chart prior says 4.9 l/h (75 %): "
              "the learned rate replaces the prior; no FUEL_LEAK while running; READY.",
    ),
    Scenario(
        "generator-fails-to-start",
        "Mains fails and the generator does not start",
        "De netstroom valt uit en het aggregaat start niet",
        (
            SETTLE,
            Phase("generator will not start", 5 * MIN, MIN,
                  (world("power", "gen_will_start", False),)),
            Phase("mains lost", 30 * MIN, 30, (world("power", "mains_present", False),)),
        ),
        frozenset({"MAINS_LOST", "GEN_FAILED_TO_START"}),
        notes="Three cranks of 10 s with rests, then lockout: the site is NOT_READY.",
    ),
)

# Two witnesses of one generator (docs/generators.md, "The run-sense witness"): the virtual DSE
# controller beside the power node (scenarios/genset.py). In the node's world the set does not
# start -- what the node sees when its run-sense wire is cut -- while the controller's set starts
# on the outage and carries the site.
SCENARIOS += (
    Scenario(
        "genset-witness-disagrees",
        "Mains fails; the generator runs, but the power node's run-sense says it does not",
        "De netstroom valt uit; het aggregaat draait, maar de draaimelding van het "
        "vermogensknooppunt zegt van niet",
        (
            SETTLE,
            Phase("the power node's run-sense sees no running set", 5 * MIN, MIN,
                  (world("power", "gen_will_start", False),)),
            Phase("mains lost: the controller starts the set", 30 * MIN, 30,
                  (world("power", "mains_present", False),)),
            Phase("mains back: the set cools down and stops", 15 * MIN, 30,
                  (world("power", "mains_present", True),)),
        ),
        frozenset({"MAINS_LOST", "GEN_FAILED_TO_START", "GENSET_WITNESS_DISAGREES",
                   "MAINS_RESTORED"}),
        nodes=NODES[:1],
        notes="The controller says running (1500 rpm), the node says not: after 60 s "
              "GENSET_WITNESS_DISAGREES, before the node's bit alone gives GEN_FAILED_TO_START "
              "(120 s); it clears when the set has stopped after mains is back.",
        extra={"genset": {"mode": "auto"}},
    ),
)

# The crisis rehearsed (issue: radio backup): mains AND the data link fail together at t=0 (after
# the settling quarter hour); the runner stops the hub's HTTP server for link_down_s and the
# radio fallback takes over (scenarios/runner.py LinkRehearsal, docs/radio.md).
T0 = SETTLE.duration_s
SCENARIOS += (
    Scenario(
        "blackout-and-link-down-72h",
        "Mains and the data link fail together; the backup radio tells the C-NSP for 70 hours",
        "Netstroom en datalijn vallen samen uit; de noodradio informeert het C-NSP 70 uur lang",
        (
            SETTLE,
            Phase("mains and the data link fail: the generator starts", 30 * MIN, MIN,
                  (world("power", "mains_present", False),)),
            Phase("on the generator, heard only by radio", 20 * H - 30 * MIN, 10 * MIN,
                  tick_ms=10000),
            Phase("t=20 h: the fridge door is left open", 2 * H, MIN,
                  (world("fridge", "door_open", True),), tick_ms=5000),
            Phase("door closed again", 38 * H, 10 * MIN,
                  (world("fridge", "door_open", False),), tick_ms=10000),
            # The learned rate jumps: autonomy below 72 h, then below 24 h (NOT_READY).
            Phase("t=60 h: fuel runs low (drawn off at 150 l/h for 4 h)", 4 * H, 5 * MIN,
                  (world("power", "fuel_leak_lph", 150.0),), tick_ms=10000),
            Phase("fuel no longer drawn off", 6 * H, 10 * MIN,
                  (world("power", "fuel_leak_lph", 0.0),), tick_ms=10000),
            Phase("t=70 h: the data link is back", 2 * H, MIN, tick_ms=10000),
        ),
        # Two hours open: the air passes 15 °C, FRIDGE_HIGH_INSTANT is the critical alert the
        # radio must carry.
        frozenset({"MAINS_LOST", "GEN_RUNNING_ON_OUTAGE", "FRIDGE_DOOR_OPEN",
                   "FRIDGE_HIGH_INSTANT", "FUEL_LOW", "FUEL_AUTONOMY_LOW"}),
        extra={"link_down_s": (T0, T0 + 70 * H), "radio": {"sf": 12}},
        notes="Expected: the radio takes over 10 min after the link fails; the hub knows each "
              "change of readiness within 15 min by radio, each critical alert too, never over "
              "36 s of airtime in any hour; from t=70 h every alert and event goes over the "
              "primary link once, in order.",
    ),
)

# The monthly generator test (NFPA 110 §8.4). Not in SCENARIOS: it needs the generator-test
# runner, which scenarios.runner does not drive; edge_server.gentest.scenario runs it
# (`nsp-edge gentest scenario`, tests/test_gentest_scenario.py). The test starts with phase 1.
GENERATOR_MONTHLY_TEST = Scenario(
    "generator-monthly-test",
    "The monthly generator test: 30 min under load, started by a technician",
    "De maandelijkse test van het aggregaat: 30 min onder last, gestart door een monteur",
    (
        SETTLE,
        Phase("test started: the set cranks", 30, 2, tick_ms=500),
        Phase("test run", 31 * MIN, MIN),
        Phase("after the test: cool-down", 10 * MIN, MIN),
    ),
    frozenset(),
    frozenset({"MAINS_LOST", "GEN_RUNNING_ON_OUTAGE", "GEN_FAILED_TO_START", "MAINS_RESTORED"}),
    nodes=NODES[:1],
    notes="Variants: world gen_will_start=false -> FAILED_TO_START; mains cut during the run "
          "-> ABORTED_MAINS_LOST and the set is NOT stopped.",
    extra={"gentest_start_phase": 1},
)


# The monthly test against the virtual DSE controller (scenarios/genset.py) beside the power
# node: run by edge_server.gentest.scenario (also through `nsp-edge scenario run`), each with the
# test's expected outcome. The node's test relay is wired to the controller's remote start on
# load; the controller measures the load (20 kW set, 10 kW site load: 50 %).
TEST_START = GENERATOR_MONTHLY_TEST.phases[1]
COOL_DOWN = GENERATOR_MONTHLY_TEST.phases[3]


def genset(key: str, value: object) -> Action:
    return Action("genset", "set", key, value)


def gentest(name: str, en: str, nl: str, outcome: str, run: tuple[Phase, ...],
            start: tuple[Action, ...] = (), genset_spec: dict[str, object] | None = None,
            duration_min: float | None = None, notes: str = "") -> Scenario:
    extra: dict[str, object] = {"gentest_start_phase": 1, "gentest_outcome": outcome,
                                "genset": genset_spec or {"mode": "auto"}}
    if duration_min is not None:
        extra["gentest_duration_min"] = duration_min
    return Scenario(name, en, nl,
                    (SETTLE, Phase(TEST_START.label, TEST_START.duration_s, TEST_START.step_s,
                                   start, TEST_START.tick_ms), *run),
                    frozenset(), GENERATOR_MONTHLY_TEST.allowed, nodes=NODES[:1], notes=notes,
                    extra=extra)


GENTEST_RUN = Phase("test run: on load", 31 * MIN, MIN)
GENTEST_SCENARIOS = (
    gentest("gentest-pass", "The monthly test: 31 min at 50 % load, every criterion measured",
            "De maandelijkse test: 31 min op 50 % last, elk criterium gemeten", "PASSED",
            (GENTEST_RUN, COOL_DOWN)),
    gentest("gentest-too-short", "A 2-minute run, marked a short exercise",
            "Een run van 2 minuten, gemarkeerd als korte oefenrun", "NOT_VERIFIED",
            (Phase("test run: on load", 3 * MIN, MIN), COOL_DOWN), duration_min=2,
            notes="Below the site minimum of 30 min under load: never PASSED."),
    gentest("gentest-no-load",
            "The monthly test while the controller answers every read with an exception",
            "De maandelijkse test terwijl de regelaar elke leesopdracht met een fout beantwoordt",
            "NOT_VERIFIED", (GENTEST_RUN, COOL_DOWN),
            genset_spec={"mode": "auto", "fail_reads": True},
            notes="The set runs 31 min on load, but no load is measured: NOT VERIFIED, never "
                  "PASSED."),
    gentest("gentest-fail-to-start", "The monthly test: the set does not start",
            "De maandelijkse test: het aggregaat start niet", "FAILED",
            (Phase("waiting for the set", 5 * MIN, 30),),
            start=(world("power", "gen_will_start", False), genset("crank_fails", True)),
            notes="Three cranks, then the controller's FAIL TO START shutdown: FAILED "
                  "(FAILED_TO_START); the site is NOT_READY."),
    gentest("gentest-shutdown-low-oil",
            "The monthly test: 10 min in, the controller shuts the set down on low oil pressure",
            "De maandelijkse test: na 10 min legt de regelaar het aggregaat stil op lage "
            "oliedruk", "FAILED",
            (Phase("test run: on load", 10 * MIN, MIN),
             Phase("oil pressure falls: shutdown", 21 * MIN, MIN,
                   (genset("fault", "low_oil_pressure"),)), COOL_DOWN),
            notes="The node's run-sense sees the set stop: FAILED (GEN_STOPPED)."),
    gentest("gentest-outage-during-test",
            "The monthly test: 10 min in, mains fails for 20 min",
            "De maandelijkse test: na 10 min valt de netstroom 20 min uit", "ABORTED",
            (Phase("test run: on load", 10 * MIN, MIN),
             Phase("mains lost: the set carries the site", 20 * MIN, MIN,
                   (world("power", "mains_present", False),)),
             Phase("mains back", 10 * MIN, MIN, (world("power", "mains_present", True),))),
            notes="The test stops counting (ABORTED, MAINS_LOST); the set is never commanded "
                  "to stop while mains is absent and keeps carrying the site; the test request "
                  "is released 5 min after mains is back."),
)
OUTAGE_CREDIT = Scenario(
    "outage-credits-monthly-test",
    "Mains fails for 45 min while the monthly test is due: the set carries the site; the "
    "outage is credited as the test and the scheduled test does not start",
    "De netstroom valt 45 min uit terwijl de maandtest aan de beurt is: het aggregaat levert "
    "de stroom; de uitval telt als de test en de geplande test start niet",
    (SETTLE,
     Phase("mains lost: the set carries the site", 45 * MIN, MIN,
           (world("power", "mains_present", False),)),
     Phase("mains back", 20 * MIN, MIN, (world("power", "mains_present", True),))),
    frozenset(), GENERATOR_MONTHLY_TEST.allowed, nodes=NODES[:1],
    notes="The seeded last test is 31 days old (due); [gentest] auto_start is on, its window "
          "10:05-11:00 (CET) after the outage (09:15-10:00). Expected: a record of kind "
          "outage_credit, PASSED, 'credited by the outage of 2026-03-02', and no start command "
          "in the window.",
    extra={"gentest_start_phase": -1, "gentest_outcome": "PASSED",
           "gentest_auto": ("10:05", "11:00"), "genset": {"mode": "auto"}})
SCENARIOS += (*GENTEST_SCENARIOS, OUTAGE_CREDIT)

BY_NAME = {s.name: s for s in SCENARIOS}


def get(name: str) -> Scenario:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(
            f"scenario: no scenario {name!r}; known: {', '.join(BY_NAME)} "
            "(see `nsp-edge scenario list`)"
        ) from None
