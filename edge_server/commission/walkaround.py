"""`--test-io`: ask the technician to act ("open the fridge door now") and confirm what the node
saw, by reading it again until the expected change appears or the step's time is up.

Still read-only: the technician changes the world, the tool only reads. Time is counted in poll
intervals passed to the injected `sleep`, so tests move the simulated world instead of waiting.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from edge_server import regmap
from edge_server.commission.assess import Check, NodeReport, format_value
from edge_server.commission.probe import ReadBus, read_node
from edge_server.commission.texts import LANGS, Lang, Level, io_message

Values = dict[str, Any]


def _fault(values: Values, register: str, bit_name: str) -> bool:
    raw = values.get(register)
    bits = regmap.load().register(register).bits
    return raw is not None and any(n == bit_name and int(raw) & (1 << b) for b, n in bits.items())


@dataclass(frozen=True)
class Step:
    role: str
    key: str  # IO_MESSAGES key: the prompt; key.ok / key.fail: the results
    seen: Callable[[Values, Values], bool]  # (values before the prompt, values now)


STEPS: tuple[Step, ...] = (
    Step("fridge", "door_open", lambda _, v: v.get("door_open") is True),
    Step("fridge", "door_closed", lambda _, v: v.get("door_open") is False),
    Step("entrance", "walk_in",
         lambda b, v: (v.get("visitors_in") or 0) > (b.get("visitors_in") or 0)),
    Step("power", "fuel_unplug", lambda _, v: _fault(v, "power_faults", "fuel_open_loop")),
    Step("power", "fuel_replug", lambda _, v: not _fault(v, "power_faults", "fuel_open_loop")
         and v.get("fuel_sender_ma") is not None),
)


async def walk_around(
    client: ReadBus, report: NodeReport, lang: Lang, say: Callable[[str], None],
    sleep: Callable[[float], Awaitable[None]], step_timeout_s: float = 60.0,
    poll_s: float = 0.5,
) -> list[Check]:
    """Run the steps for the roles the node has; one PASS or FAIL check per step."""
    board_roles = [r for r in regmap.ROLE_BITS if report.values.get(f"{r}_faults") is not None]
    checks: list[Check] = []
    values = report.values
    who = f"{report.target.name}({report.target.unit})"
    for step in (s for s in STEPS if s.role in board_roles):
        say(f"{who} [{step.key}] {io_message(step.key, lang)}")
        before, waited, seen = values, 0.0, False
        while waited < step_timeout_s:
            await sleep(poll_s)
            waited += poll_s
            now = await read_node(client, report.target)
            if not now.answered:
                checks.extend(c for c in now.checks if c.level == Level.FAIL)
                return checks
            values = now.values
            if step.seen(before, values):
                seen = True
                break
        result = f"{step.key}.ok" if seen else f"{step.key}.fail"
        ma = format_value("fuel_sender_ma", values.get("fuel_sender_ma"), lang)
        check = Check(Level.PASS if seen else Level.FAIL, f"io_{step.key}", {
            lg: io_message(result, lg, seconds=round(waited, 1), ma=ma) for lg in LANGS})
        say(f"{who} {check.level.name}  {check.text[lang]}")
        checks.append(check)
    return checks

