"""Commands to a generator controller, behind the same interlocks as the power node's relay.

    control = GensetControl(monitor, state, events)
    await control.command("gen", "auto", who="anna")   # GensetRefused (NL + EN) or done

The interlocks (our rules for an NSP, stricter than the controller's own):
- `start`, `test_on_load`, `manual`: only while mains is known present. A start or a test never
  happens while the site may need the set, and MANUAL takes away the start on an outage.
- `stop`: only while mains is known present: never a stop while the set carries the site in an
  outage (or may have to: mains unknown counts as absent).
- `auto` (what an NSP's set must be in) and `reset_alarms`: always.
Mains is the power node's `mains_present` where the site has one; else the controller's own mains
voltage (above 180 V on L1 is present); unknown on both is refused.
Every command is logged with who gave it: GENSET_COMMAND when carried out, GENSET_COMMAND_REFUSED
with the reason, GENSET_COMMAND_FAILED when the controller did not take the write.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from edge_server.genset.monitor import GensetMonitor
from edge_server.modbus_client import ModbusError
from edge_server.state import SiteState
from edge_server.storage.component import EventLog

NEED_MAINS = frozenset({"start", "test_on_load", "manual", "stop"})
ALWAYS = frozenset({"auto", "reset_alarms"})
MAINS_PRESENT_V = 180.0  # below EN 50160's 207 V: a sagging grid is still a grid


@dataclass
class GensetRefused(Exception):
    code: str
    text_en: str
    text_nl: str

    def to_json(self) -> dict[str, str]:
        return {"error": self.code, "text_en": self.text_en, "text_nl": self.text_nl}


class GensetControl:
    def __init__(self, monitor: GensetMonitor, state: SiteState,
                 events: EventLog | None = None) -> None:
        self.monitor, self.state, self.events = monitor, state, events

    def mains_present(self, name: str) -> bool | None:
        power = next(self.state.nodes_with_role("power"), None)
        if power is not None:
            r = self.state.get(f"{power.name}.mains_present")
            if r is not None and r.ok:
                return bool(r.value)
        v = self.state.get(f"{name}.mains_l1n_v")
        if v is not None and v.ok and isinstance(v.value, int | float):
            return float(v.value) >= MAINS_PRESENT_V
        return None

    def check(self, name: str, command: str) -> None:
        """Raises GensetRefused when the command may not be given now."""
        driver = self.monitor.drivers.get(name)
        if driver is None:
            raise GensetRefused("UNKNOWN_GENERATOR", f"No generator named {name!r}",
                                f"Geen aggregaat met de naam {name!r}")
        ctl = driver.profile.control
        known = sorted(ctl.commands) if ctl is not None else []
        if command not in known or command not in NEED_MAINS | ALWAYS:
            raise GensetRefused(
                "UNKNOWN_COMMAND",
                f"{command!r} is not a command of {name}: give one of "
                f"{', '.join(c for c in known if c in NEED_MAINS | ALWAYS)}",
                f"{command!r} is geen opdracht voor {name}: kies uit "
                f"{', '.join(c for c in known if c in NEED_MAINS | ALWAYS)}")
        if command in NEED_MAINS and self.mains_present(name) is not True:
            what_en, what_nl = (("absent", "afwezig") if self.mains_present(name) is False
                                else ("unknown", "onbekend"))
            if command == "stop":
                raise GensetRefused(
                    "MAINS_ABSENT",
                    f"Mains is {what_en}: the generator is never stopped while it may carry the "
                    "site",
                    f"Netstroom is {what_nl}: het aggregaat wordt nooit gestopt als het de "
                    "locatie van stroom kan moeten voorzien")
            raise GensetRefused(
                "MAINS_ABSENT",
                f"Mains is {what_en}: no {command.replace('_', ' ')} while the site may need "
                "the generator (AUTO is always allowed)",
                f"Netstroom is {what_nl}: geen {command.replace('_', ' ')} als de locatie het "
                "aggregaat nodig kan hebben (AUTO mag altijd)")

    async def command(self, name: str, command: str, who: str,
                      context: dict[str, Any] | None = None) -> dict[str, Any]:
        """Carry out one command or raise GensetRefused; `context` goes into the event's data
        (the generator test: its id and who started it)."""
        data: dict[str, Any] = {"generator": name, "command": command, "who": who,
                                **(context or {})}
        try:
            self.check(name, command)
        except GensetRefused as exc:
            self._event("GENSET_COMMAND_REFUSED", "warning",
                        f"Generator command {command} by {who} refused: {exc.text_en}",
                        f"Opdracht {command} aan het aggregaat door {who} geweigerd: "
                        f"{exc.text_nl}", {**data, "code": exc.code})
            raise
        try:
            await self.monitor.drivers[name].command(command)
        except ModbusError as exc:
            self._event("GENSET_COMMAND_FAILED", "warning",
                        f"Generator command {command} by {who} not taken: {exc}",
                        f"Opdracht {command} aan het aggregaat door {who} niet aangenomen: "
                        f"{exc}", data)
            raise GensetRefused("COMMAND_FAILED", f"The controller did not take it: {exc}",
                                f"De regelaar nam de opdracht niet aan: {exc}") from None
        why_en = why_nl = ""
        if context and "test_id" in context:
            why_en = (f" (generator test {context['test_id']}, started by "
                      f"{context.get('started_by', '?')})")
            why_nl = (f" (aggregaattest {context['test_id']}, gestart door "
                      f"{context.get('started_by', '?')})")
        self._event("GENSET_COMMAND", "info", f"Generator command {command} by {who}{why_en}",
                    f"Opdracht {command} aan het aggregaat door {who}{why_nl}", data)
        return data

    def _event(self, code: str, severity: str, en: str, nl: str, data: dict[str, Any]) -> None:
        if self.events is not None:
            self.events.add_event(self.monitor.clock.now(), code, severity=severity,
                                  text_en=en, text_nl=nl, data=data)


class GentestCommands:
    """One controller as the generator test's command path (edge_server.gentest.runner): the
    test starts with the profile's `test_on_load` (else `start`) and ends with `auto`, through
    GensetControl's interlocks and audit. A profile without those commands (no [control]) is
    no path: the test then uses the power node's relay."""

    def __init__(self, control: GensetControl, name: str) -> None:
        self.control, self.name = control, name
        profile = control.monitor.drivers[name].profile
        ctl = profile.control
        # what the controller measures: a site without a power node takes its mains voltage,
        # running state, battery, fuel and run hours from here (the runner's mains witness)
        self.channels = frozenset(c.name for c in profile.channels)
        known = set() if ctl is None else set(ctl.commands)
        start = next((c for c in ("test_on_load", "start") if c in known), None)
        self.start_command: str | None = start if "auto" in known else None

    def check(self, command: str) -> None:
        self.control.check(self.name, command)

    async def command(self, command: str, who: str, context: dict[str, Any]) -> None:
        await self.control.command(self.name, command, who, context)

    def reading(self, channel: str) -> Any:
        """NAME.CHANNEL in the site state (also "online"); None while it is not read."""
        r = self.control.state.get(f"{self.name}.{channel}")
        return None if r is None or not r.ok else r.value

    def _flag(self, channel: str) -> bool | None:
        v = self.reading(channel)
        return None if v is None else bool(v)

    def running(self) -> bool | None:
        """The controller's own running state (speed); None while it is not read."""
        return self._flag("controller_running")

    def shutdown_alarm(self) -> bool | None:
        return self._flag("shutdown_alarm")

    def mode(self) -> str | None:
        r = self.control.monitor.last.get(self.name)
        return None if r is None or not r.online else r.mode


def gentest_commands(monitor: GensetMonitor | None, state: SiteState,
                  events: EventLog | None) -> GentestCommands | None:
    """The site's first controller as the test's command path, None when it has none (or its
    profile cannot start a test and put the set back in AUTO)."""
    if monitor is None or not monitor.generators:
        return None
    port = GentestCommands(GensetControl(monitor, state, events), monitor.generators[0].name)
    return port if port.start_command is not None else None
