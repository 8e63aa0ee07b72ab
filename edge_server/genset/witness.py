"""The run-sense witness: the power node's `gen_running` bit (its own run-sense input, wired
apart from the controller) and the controller's own running state (`NAME.controller_running`,
published by GensetMonitor) are two independent witnesses of one fact. When they disagree for
longer than `[rules] gen_witness_delay_s` (default 60 s), GENSET_WITNESS_DISAGREES is raised on
the controller (subject `NAME.controller_running`); it clears at the first cycle they agree.

Why 60 s: the two are read at different moments of a poll cycle (the node first, then the
controller) and each has its own threshold (the node's run-sense input against our speed
threshold below), so during a start (crank attempts and rests), the ramp to rated speed and a
stop they legitimately differ for a few cycles; 60 s covers that at the usual 2-10 s poll
interval, and still tells the operator within a minute, well before the start grace
(`gen_start_grace_s`, 120 s) decides GEN_FAILED_TO_START on the node's bit alone. What it
catches: a broken run-sense wire or node input (the set runs, the node says it does not, so an
outage looks like a failed start) and a controller that reports a stopped set that runs.

Unknown is never a disagreement: while either witness is unknown (node offline, controller off
the bus, its speed faulted) the sample is None, which never raises and never clears an alert.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from edge_server.rules.engine import Condition, Limit, Sample, Severity
from edge_server.rules.settings import RulesSettings
from edge_server.state import SiteState

CHANNEL = "controller_running"
# The controller says "running" above cranking speed: a starter turns a diesel at roughly
# 150-300 rpm, a 4-pole set runs at 1500 rpm (50 Hz) / 1800 rpm (60 Hz). 600 rpm is 40 % of
# 50 Hz rated speed, the same as 20 Hz of generator frequency, used when speed is not read.
RUNNING_RPM = 600.0
RUNNING_HZ = 20.0


def controller_running(values: dict[str, float]) -> bool | None:
    """The controller's own running state from its readings; None when neither is read."""
    if "engine_speed_rpm" in values:
        return values["engine_speed_rpm"] >= RUNNING_RPM
    if "gen_frequency_hz" in values:
        return values["gen_frequency_hz"] >= RUNNING_HZ
    return None


def _flag(state: SiteState, channel: str) -> bool | None:
    r = state.readings.get(channel)
    return None if r is None or not r.ok else bool(r.value)


class GensetWitnessDisagrees(Condition):
    code = "GENSET_WITNESS_DISAGREES"
    severity = Severity.WARNING
    text_en = ("Generator controller and power node disagree on whether the generator runs "
               "({subject}): check the run-sense wiring and the controller")
    text_nl = ("Regelaar en vermogensknooppunt zijn het oneens of het aggregaat draait "
               "({subject}): controleer de draaimelding-bedrading en de regelaar")

    def __init__(self, rules: RulesSettings) -> None:
        self.limit = Limit(0.5, delay_s=rules.gen_witness_delay_s)

    @staticmethod
    def _generators(state: SiteState) -> list[str]:
        return sorted(r.node for r in state.readings.values()
                      if r.name == CHANNEL and r.node not in state.nodes)

    @staticmethod
    def _power_node(state: SiteState) -> str | None:
        # the site's (first) power node carries the generator's run-sense input
        return next((n.name for n in state.nodes_with_role("power")), None)

    def samples(self, state: SiteState, now: datetime) -> Iterator[Sample]:
        node = self._power_node(state)
        for gen in self._generators(state):
            channel = f"{gen}.{CHANNEL}"
            ours = _flag(state, channel)
            theirs = None if node is None else _flag(state, f"{node}.gen_running")
            value = None if ours is None or theirs is None else float(ours != theirs)
            yield Sample(channel, value, channel)

    def history_channels(self, state: SiteState) -> list[str]:
        node = self._power_node(state)
        gens = [f"{g}.{CHANNEL}" for g in self._generators(state)]
        return [*gens, f"{node}.gen_running"] if node is not None and gens else []
