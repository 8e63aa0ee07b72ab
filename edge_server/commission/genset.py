"""Commissioning the site's generator controllers (`[[generators]]`): each one read once through
GensetDriver (read-only: `read()` only ever calls read_registers) and checked like a node:

- it answers (else FAIL, with where to look);
- its identity (manufacturer, model, serial) is read: PASS with the numbers, WARN when faulted;
- open alarms: a shutdown or electrical trip is a FAIL, a warning a WARN, none a PASS;
- control mode: anything but AUTO is a FAIL with the fix -- an NSP generator must start by
  itself on an outage, and a controller in STOP, MANUAL or TEST does not.

The checks are site checks of the report (`site_checks` in --json, `site_problems` in --record).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Protocol, TypeVar

from edge_server.commission.assess import Check
from edge_server.commission.texts import Level
from edge_server.genset.driver import GensetDriver
from edge_server.genset.profile import load_profile
from edge_server.genset.settings import GeneratorSection
from edge_server.modbus_client import BusClient

T = TypeVar("T")

# key -> (nl, en); str.format fields: {name} {unit} {bus} and the key's own
TEXTS: dict[str, tuple[str, str]] = {
    "offline": (
        "Aggregaatregelaar {name} (unit {unit}, {bus}) antwoordt niet: {detail}. Controleer de "
        "RS-485/netwerkaansluiting van de regelaar, het slave-id ({unit}) en de baudrate in de "
        "communicatie-instellingen van de regelaar.",
        "Generator controller {name} (unit {unit}, {bus}) does not answer: {detail}. Check the "
        "controller's RS-485/network connection, its slave id ({unit}) and the baud rate in the "
        "controller's communication settings.",
    ),
    "identity": (
        "Aggregaatregelaar {name} (unit {unit}, {bus}): fabrikant {manufacturer}, model "
        "{model}, serienummer {serial} (profiel {profile}).",
        "Generator controller {name} (unit {unit}, {bus}): manufacturer {manufacturer}, model "
        "{model}, serial {serial} (profile {profile}).",
    ),
    "identity_fault": (
        "Aggregaatregelaar {name}: identiteit niet leesbaar ({fields}): controleer of het "
        "profiel {profile} bij deze regelaar hoort.",
        "Generator controller {name}: identity not readable ({fields}): check that profile "
        "{profile} fits this controller.",
    ),
    "no_alarms": ("Aggregaatregelaar {name}: geen open alarmen.",
                  "Generator controller {name}: no open alarms."),
    "alarm": (
        "Aggregaatregelaar {name}: alarm open: {text_nl} ({severity}, {alarm_code}). Verhelp "
        "de oorzaak en reset het alarm op de regelaar.",
        "Generator controller {name}: open alarm: {text_en} ({severity}, {alarm_code}). Fix "
        "the cause and reset the alarm on the controller.",
    ),
    "auto": ("Aggregaatregelaar {name} staat op AUTO: start zelf bij stroomuitval.",
             "Generator controller {name} is in AUTO: it starts by itself on an outage."),
    "not_auto": (
        "Aggregaatregelaar {name} staat op {mode}, niet op AUTO: bij stroomuitval start het "
        "aggregaat dan niet vanzelf. Zet de regelaar op AUTO (de AUTO-toets op het paneel van "
        "de regelaar) en start de controle opnieuw.",
        "Generator controller {name} is in {mode}, not in AUTO: on an outage the generator "
        "will not start by itself. Put the controller in AUTO (the AUTO button on the "
        "controller's panel) and run the check again.",
    ),
    "mode_unknown": (
        "Aggregaatregelaar {name}: bedrijfsstand onbekend (niet gelezen of onbekende waarde): "
        "controleer op het paneel dat de regelaar op AUTO staat en dat profiel {profile} bij "
        "deze regelaar hoort.",
        "Generator controller {name}: control mode unknown (not read or an unknown value): "
        "check on its panel that the controller is in AUTO and that profile {profile} fits "
        "this controller.",
    ),
    "value_fault": (
        "Aggregaatregelaar {name}: {channel} niet bruikbaar ({fault}): controleer die sensor "
        "en zijn bedrading op de motor.",
        "Generator controller {name}: {channel} not usable ({fault}): check that sensor and "
        "its wiring on the engine.",
    ),
}
MODE_WORDS = {"stop": "STOP", "manual": "MANUAL", "test": "TEST", "auto": "AUTO"}
ALARM_LEVEL = {"shutdown": Level.FAIL, "electrical_trip": Level.FAIL, "warning": Level.WARN}


class ReadClient(Protocol):
    async def read_registers(self, unit: int, address: int, count: int) -> list[int]: ...


class _Direct:
    """The driver's Hub on one commissioning client: no poller, no bus lock needed (the
    commissioning reads of one bus run one after the other)."""

    def __init__(self, client: ReadClient) -> None:
        self.client = client

    async def call(self, request: Callable[[BusClient], Awaitable[T]]) -> T:
        return await request(self.client)  # type: ignore[arg-type]  # read_registers only


def _check(level: Level, code: str, key: str, **params: object) -> Check:
    nl, en = TEXTS[key]
    return Check(level, code, {"nl": nl.format(**params), "en": en.format(**params)})


async def check_generator(gen: GeneratorSection, client: ReadClient, where: str) -> list[Check]:
    profile = load_profile(gen.profile)
    driver = GensetDriver(profile, _Direct(client), gen.unit)
    r = await driver.read()
    who = {"name": gen.name, "unit": gen.unit, "bus": where, "profile": profile.profile.name}
    if not r.online:
        return [_check(Level.FAIL, "genset_offline", "offline", detail=r.error, **who)]
    checks: list[Check] = []
    faulted = [c.name for c in profile.identity if c.name in r.faults]
    if faulted:
        checks.append(_check(Level.WARN, "genset_identity", "identity_fault",
                             fields=", ".join(faulted), **who))
    else:
        ident = {k: int(v) for k, v in r.identity.items()}
        checks.append(_check(Level.PASS, "genset_identity", "identity",
                             manufacturer=ident.get("manufacturer_code", "?"),
                             model=ident.get("model_number", "?"),
                             serial=ident.get("serial_number", "?"), **who))
    if r.mode == "auto":
        checks.append(_check(Level.PASS, "genset_mode", "auto", **who))
    elif r.mode is None:
        checks.append(_check(Level.FAIL, "genset_mode", "mode_unknown", **who))
    else:
        checks.append(_check(Level.FAIL, "genset_mode", "not_auto",
                             mode=MODE_WORDS.get(r.mode, r.mode.upper()), **who))
    for a in r.alarms:
        checks.append(_check(ALARM_LEVEL.get(a.severity, Level.WARN), "genset_alarm", "alarm",
                             text_nl=a.text_nl, text_en=a.text_en, severity=a.severity,
                             alarm_code=a.code, **who))
    if not r.alarms:
        checks.append(_check(Level.PASS, "genset_alarms", "no_alarms", **who))
    for channel, fault in r.faults.items():
        if channel not in faulted:
            checks.append(_check(Level.WARN, "genset_value_fault", "value_fault",
                                 channel=channel, fault=fault, **who))
    return checks


async def check_generators(generators: list[GeneratorSection],
                           clients: Mapping[str, ReadClient],
                           where: Mapping[str, str]) -> list[Check]:
    """Every controller, in config order (clients and where by bus name)."""
    out: list[Check] = []
    for gen in generators:
        out += await check_generator(gen, clients[gen.bus], where[gen.bus])
    return out
