"""The controller's open alarms as our alerts: one alert per open alarm, by the state the
controller reports it in (GenComm page 8: 4 bits per alarm, 2 warning, 3 shutdown, 4 electrical
trip; a 1-bit alarm of another profile has its own severity):

    GENSET_SHUTDOWN         critical   the controller stopped the set (it will not start on an
                                       outage until the alarm is reset on site)
    GENSET_ELECTRICAL_TRIP  critical   the generator breaker opened (the set runs off load)
    GENSET_WARNING          warning    the set still runs; the cause needs a look

The subject is the alarm's channel `NAME.alarm_ALARM` (e.g. `gen.alarm_low_oil_pressure`), so
each open alarm is its own alert, raised in the cycle the controller reports it and cleared in
the cycle it no longer does (after a reset on the controller). GensetMonitor publishes each
alarm of the profile as that channel with its level (ALARM_LEVEL); while the controller is off
the bus the level is unavailable, which neither raises nor clears (NODE_OFFLINE's kin:
the controller's own `online`). The alarm's words in the sentence come from ALARM_WORDS: the
profiles' `text_en` / `text_nl` (every shipped profile, plus the site's own profile file when
the monitor loads it), else the alarm's name.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import ClassVar

from edge_server.genset.profile import Profile, load_profile, shipped
from edge_server.rules.engine import Condition, Limit, Sample, Severity
from edge_server.state import SiteState

PREFIX = "alarm_"
# the published level of an alarm channel: 0 not active
ALARM_LEVEL = {"warning": 1, "electrical_trip": 2, "shutdown": 3}

# alarm name -> (en, nl): the words of the alert sentence
ALARM_WORDS: dict[str, tuple[str, str]] = {}


def register_words(profile: Profile) -> None:
    for a in profile.alarms.alarm:
        ALARM_WORDS[a.name] = (a.text_en or a.name.replace("_", " "),
                               a.text_nl or a.name.replace("_", " "))


for _name in shipped():
    register_words(load_profile(_name))


def alarm_words(alarm: str) -> tuple[str, str]:
    words = alarm.replace("_", " ")
    return ALARM_WORDS.get(alarm, (words, words))


class GensetAlarm(Condition):
    """Open while the controller reports alarm `subject` at exactly this condition's level."""

    level: ClassVar[int]
    limit = Limit(0.5)

    def samples(self, state: SiteState, now: datetime) -> Iterator[Sample]:
        for r in sorted(state.readings.values(), key=lambda r: r.channel):
            if not r.name.startswith(PREFIX) or r.node in state.nodes:
                continue
            value = None if not r.ok or r.value is None else float(int(r.value) == self.level)
            yield Sample(r.channel, value, r.channel)

    def history_channels(self, state: SiteState) -> list[str]:
        return sorted(r.channel for r in state.readings.values()
                      if r.name.startswith(PREFIX) and r.node not in state.nodes)

    def texts(self, sample: Sample) -> tuple[str, str]:
        gen, _, channel = sample.subject.partition(".")
        en, nl = alarm_words(channel.removeprefix(PREFIX))
        return (self.text_en.format(subject=gen, alarm=en),
                self.text_nl.format(subject=gen, alarm=nl))


class GensetShutdown(GensetAlarm):
    code = "GENSET_SHUTDOWN"
    severity = Severity.CRITICAL
    level = ALARM_LEVEL["shutdown"]
    text_en = ("Generator {subject}: shutdown alarm \"{alarm}\": the controller stopped the set "
               "and it will not start on an outage until the alarm is reset on site")
    text_nl = ("Aggregaat {subject}: uitschakelalarm \"{alarm}\": de regelaar heeft het "
               "aggregaat gestopt; het start niet bij een stroomuitval tot het alarm ter "
               "plaatse is gereset")


class GensetElectricalTrip(GensetAlarm):
    code = "GENSET_ELECTRICAL_TRIP"
    severity = Severity.CRITICAL
    level = ALARM_LEVEL["electrical_trip"]
    text_en = ("Generator {subject}: electrical trip \"{alarm}\": the generator breaker is open, "
               "the set does not carry the site")
    text_nl = ("Aggregaat {subject}: elektrische uitschakeling \"{alarm}\": de "
               "generatorschakelaar is open, het aggregaat voedt de locatie niet")


class GensetWarning(GensetAlarm):
    code = "GENSET_WARNING"
    severity = Severity.WARNING
    level = ALARM_LEVEL["warning"]
    text_en = "Generator {subject}: warning \"{alarm}\": check the set"
    text_nl = "Aggregaat {subject}: waarschuwing \"{alarm}\": controleer het aggregaat"


CONDITIONS: tuple[type[GensetAlarm], ...] = (GensetShutdown, GensetElectricalTrip, GensetWarning)
