"""The commissioning checklist as pure functions: one node's register image -> checks and values.

No I/O here: `assess_node` takes the words a node answered (or why it did not answer), the
expectation from the site config, and returns a NodeReport that renders as text (Dutch or
English) or JSON. The register map is the only source of names, units, enums and fault bits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

from edge_server import regmap
from edge_server.commission.texts import (
    BIT_TEXTS,
    FAULTS_OF,
    LANGS,
    Lang,
    Level,
    bit_text,
    label,
    message,
)

ROLE_BLOCKS = tuple(regmap.ROLE_BITS)  # "power", "fridge", "entrance": block name = role name
FREE_HEAP_MIN_B = 16 * 1024  # below this a gc pause or a new role can run the node out of heap
STARTER_MIN_V = 12.2  # 12 V lead-acid at rest below ~12.2 V is under ~60 % charged
SITE_BATTERY_V = (10.5, 15.0)  # 12 V bank: below is deep discharge, above is a charger fault
WATCHED_RESETS = {"watchdog": "reset_watchdog", "soft": "reset_soft"}


@dataclass(frozen=True)
class Check:
    level: Level
    code: str
    text: dict[str, str]  # lang -> sentence

    @classmethod
    def msg(cls, level: Level, code: str, key: str, **params: object) -> Check:
        return cls(level, code, {lang: message(key, lang, **params) for lang in LANGS})


@dataclass(frozen=True)
class Target:
    """A node to commission: from the site config, or found by a scan (roles unknown)."""

    name: str
    bus: str
    unit: int
    roles: tuple[str, ...] | None = None  # None: no expectation (bench check without a config)


@dataclass
class NodeReport:
    target: Target
    where: str  # "tcp 127.0.0.1:502" / "rtu /dev/ttyUSB0 19200 baud"
    values: dict[str, Any] = field(default_factory=dict)  # decoded registers of the shown blocks
    blocks: tuple[str, ...] = ()  # blocks shown, identity first
    checks: list[Check] = field(default_factory=list)
    answered: bool = False

    @property
    def level(self) -> Level:
        worst = max((c.level for c in self.checks), default=Level.PASS)
        return Level.PASS if worst == Level.INFO else worst


@dataclass
class SiteReport:
    nodes: list[NodeReport]
    checks: list[Check] = field(default_factory=list)

    @property
    def level(self) -> Level:
        levels = [n.level for n in self.nodes] + [c.level for c in self.checks]
        worst = max(levels, default=Level.PASS)
        return Level.PASS if worst == Level.INFO else worst

    @property
    def exit_code(self) -> int:
        return {Level.PASS: 0, Level.WARN: 1, Level.FAIL: 2}[self.level]


def _role_names(bits: int) -> list[str]:
    return [name for name, bit in regmap.ROLE_BITS.items() if bits & bit]


def _role_list(roles: list[str] | tuple[str, ...], lang: Lang) -> str:
    if not roles:
        return label("none", lang)
    return ", ".join(f"{r} ({bit_text('roles', r, lang)})" for r in roles)


def _fmt_uptime(seconds: int) -> str:
    d, rest = divmod(seconds, 86400)
    h, rest = divmod(rest, 3600)
    m, s = divmod(rest, 60)
    return f"{d}d {h:02d}:{m:02d}:{s:02d}" if d else f"{h:02d}:{m:02d}:{s:02d}"


def no_answer(target: Target, where: str, error: str, timeout_s: float, port_error: bool,
              ) -> NodeReport:
    report = NodeReport(target, where)
    if port_error:
        report.checks.append(port_error_check(where, error))
    else:
        report.checks.append(Check.msg(Level.FAIL, "no_answer", "no_answer" + _tcp(where),
                                       unit=target.unit, bus=where, timeout=timeout_s))
    return report


def _tcp(where: str) -> str:
    """The hint matches the transport: a TCP node has no adapter, wiring or baud rate."""
    return "_tcp" if where.startswith("tcp") else ""


def port_error_check(where: str, detail: str) -> Check:
    """The bus's port cannot be opened (serial) or connected (TCP)."""
    return Check.msg(Level.FAIL, "port_error", "port_error" + _tcp(where), bus=where,
                     detail=detail)


def exception_reply(target: Target, where: str, detail: str) -> NodeReport:
    report = NodeReport(target, where, answered=True)
    report.checks.append(Check.msg(Level.FAIL, "exception_reply", "exception_reply",
                                   unit=target.unit, detail=detail))
    return report


def assess_node(target: Target, where: str, words: list[int]) -> NodeReport:
    """Checks for one node from the words read at address 0 (the whole image, or at least the
    map version when the node's map is unknown)."""
    report = NodeReport(target, where, answered=True)
    version = words[0] if words else -1
    try:
        rmap = regmap.for_version(version)
    except regmap.UnknownMapVersion:
        known = ", ".join(str(v) for v in sorted(regmap.KNOWN_VERSIONS))
        report.values["map_version"] = version
        report.checks.append(Check.msg(Level.FAIL, "map_version", "map_unknown",
                                       version=version, known=known))
        return report
    if len(words) < rmap.image_size:
        report.checks.append(Check.msg(Level.FAIL, "exception_reply", "exception_reply",
                                       unit=target.unit,
                                       detail=f"{len(words)} of {rmap.image_size} registers"))
        return report
    ident = rmap.decode_block("identity", words[: rmap.blocks["identity"].size])
    board_roles = _role_names(int(ident["roles"] or 0))
    shown = ["identity"] + [r for r in ROLE_BLOCKS
                            if r in board_roles or (target.roles and r in target.roles)]
    report.blocks = tuple(shown)
    for block in shown:
        b = rmap.blocks[block]
        report.values.update(rmap.decode_block(block, words[b.start : b.start + b.size]))
    settings = rmap.blocks["settings"]
    settings_values = rmap.decode_block("settings", words[settings.start:])
    report.checks.append(Check.msg(Level.PASS, "map_version", "map_ok", version=version))
    _identity_checks(report, ident, board_roles)
    for role in board_roles:
        _fault_checks(report, rmap, role)
    if "power" in board_roles:
        _power_checks(report)
    if "fridge" in board_roles:
        _fridge_checks(report, settings_values)
    return report


def _identity_checks(report: NodeReport, ident: dict[str, Any], board_roles: list[str]) -> None:
    target, add = report.target, report.checks.append
    node_id = ident["node_id"]
    if node_id != target.unit:
        add(Check.msg(Level.FAIL, "node_id", "node_id_wrong", node_id=node_id, unit=target.unit))
    else:
        add(Check.msg(Level.PASS, "node_id", "node_id_ok", node_id=node_id, unit=target.unit))
    if target.roles is not None and sorted(target.roles) != sorted(board_roles):
        add(Check(Level.FAIL, "roles", {
            lang: message("roles_wrong", lang, board=_role_list(board_roles, lang),
                          expected=_role_list(target.roles, lang), node=target.name)
            for lang in LANGS}))
    elif not board_roles:
        add(Check.msg(Level.FAIL, "roles", "roles_none"))
    else:
        add(Check(Level.PASS, "roles", {lang: message("roles_ok", lang,
                                                      board=_role_list(board_roles, lang))
                                        for lang in LANGS}))
    fw = f"{ident['fw_major']}.{ident['fw_minor']}.{ident['fw_patch']}"
    add(Check.msg(Level.INFO, "firmware", "firmware", fw=fw,
                  uptime=_fmt_uptime(int(ident["uptime_s"] or 0)), boots=ident["boot_count"]))
    cause = regmap.load().register("reset_cause").enum.get(int(ident["reset_cause"] or 0),
                                                           "unknown")
    if cause in WATCHED_RESETS:
        level = Level.WARN if cause == "watchdog" else Level.INFO
        add(Check.msg(level, "reset_cause", WATCHED_RESETS[cause]))
    else:
        add(Check.msg(Level.PASS, "reset_cause", "reset_ok", cause=cause))
    if ident["crash_count"]:
        add(Check.msg(Level.WARN, "crash_count", "crashes", count=ident["crash_count"]))
    _bits_checks(report, "status", int(ident["status"] or 0))
    heap = ident["free_heap_b"]
    if heap is not None and heap < FREE_HEAP_MIN_B:
        add(Check.msg(Level.WARN, "free_heap", "heap_low", heap=heap, limit=FREE_HEAP_MIN_B))
    else:
        add(Check.msg(Level.PASS, "free_heap", "heap_ok", heap=heap))
    if ident["crc_errors"]:
        add(Check.msg(Level.WARN, "crc_errors", "bus_crc", crc=ident["crc_errors"],
                      rx=ident["rx_frames"]))
    else:
        add(Check.msg(Level.PASS, "crc_errors", "bus_ok", rx=ident["rx_frames"]))
    if ident["exceptions"]:
        add(Check.msg(Level.INFO, "exceptions", "exceptions", count=ident["exceptions"]))


def _bits_checks(report: NodeReport, register: str, raw: int) -> list[str]:
    """One check per set bit, worded from BIT_TEXTS; returns the names of the set bits."""
    reg = regmap.load().register(register)
    names = []
    for bit in range(16):
        if not raw & (1 << bit):
            continue
        name = reg.bits.get(bit, f"bit{bit}")
        names.append(name)
        text = BIT_TEXTS.get(f"{register}.{name}")
        if text is None:  # only a map newer than this file: tests/test_commission.py forbids it
            report.checks.append(Check(Level.WARN, name, {
                lang: f"{register}: {name} ({reg.description})" for lang in LANGS}))
        else:
            report.checks.append(Check(text.level, name, {"nl": text.nl, "en": text.en}))
    return names


def _fault_checks(report: NodeReport, rmap: regmap.RegisterMap, role: str) -> None:
    register = f"{role}_faults"
    raw = report.values.get(register)
    if raw is None:
        return
    if not _bits_checks(report, register, int(raw)):
        report.checks.append(Check(Level.PASS, register, {
            lang: message("faults_none", lang, role=bit_text("roles", role, lang))
            for lang in LANGS}))


def _power_checks(report: NodeReport) -> None:
    v, add = report.values, report.checks.append
    cooling_down = regmap.load().register("gen_state").enum.get(v["gen_state"]) == "cooldown"
    if v["gen_running"] and not v["relay_on"] and v["mains_present"] and not cooling_down:
        add(Check.msg(Level.WARN, "gen_sense", "gen_without_relay"))
    if v["mains_present"] is False and not v["gen_running"]:
        add(Check.msg(Level.WARN, "mains_sense", "mains_absent"))
    if v["relay_on"]:
        add(Check.msg(Level.WARN, "relay_on", "relay_on"))
    starter = v["starter_battery_v"]
    if starter is not None and not v["gen_running"] and starter < STARTER_MIN_V:
        add(Check.msg(Level.WARN, "starter_battery", "starter_low", volts=starter,
                      limit=STARTER_MIN_V))
    battery = v["battery_v"]
    if battery is not None and not SITE_BATTERY_V[0] <= battery <= SITE_BATTERY_V[1]:
        add(Check.msg(Level.WARN, "battery_v", "battery_range", volts=battery,
                      lo=SITE_BATTERY_V[0], hi=SITE_BATTERY_V[1]))


def _fridge_checks(report: NodeReport, settings: dict[str, Any]) -> None:
    v, add = report.values, report.checks.append
    temp, lo, hi = v["fridge_temp_c"], settings["fridge_low_c"], settings["fridge_high_c"]
    if temp is not None and lo is not None and hi is not None and not lo <= temp <= hi:
        add(Check.msg(Level.WARN, "fridge_range", "fridge_range", temp=temp, lo=lo, hi=hi))
    if v["door_open"]:
        add(Check.msg(Level.WARN, "door_open", "door_open"))
    if v["fridge_alarm"]:
        add(Check.msg(Level.WARN, "fridge_alarm", "fridge_alarm"))


def site_checks(site: SiteReport) -> None:
    """Checks across nodes: one firmware version everywhere."""
    versions = sorted({f"{n.values['fw_major']}.{n.values['fw_minor']}.{n.values['fw_patch']}"
                       for n in site.nodes if "fw_major" in n.values})
    if len(versions) > 1:
        site.checks.append(Check.msg(Level.WARN, "fw_differ", "fw_differ",
                                     versions=", ".join(versions)))


# ---------------------------------------------------------------- rendering
def format_value(name: str, value: Any, lang: Lang) -> str:
    """A decoded value with its unit, as the technician reads it."""
    reg = regmap.load().register(name)
    if value is None:
        return label("na", lang)
    if reg.enum:
        return str(reg.enum.get(int(value), value))
    if reg.bits:
        return ", ".join(b for i, b in reg.bits.items() if int(value) & (1 << i)) or "-"
    if reg.type == "bool":
        return "1" if value else "0"
    if isinstance(value, float) or reg.scale != 1.0:
        decimals = max(0, round(-math.log10(reg.scale))) if reg.scale < 1 else 0
        text = f"{value:.{decimals}f}"
    else:
        text = str(value)
    return f"{text} {reg.unit}".rstrip()


def value_faults(report: NodeReport, name: str) -> list[str]:
    """The fault bits set that concern this reading."""
    rmap = regmap.load()
    out = []
    for bit_name in FAULTS_OF.get(name, ()):
        for role in ROLE_BLOCKS:
            register = f"{role}_faults"
            raw = report.values.get(register)
            if raw is None:
                continue
            for bit, n in rmap.register(register).bits.items():
                if n == bit_name and int(raw) & (1 << bit):
                    out.append(bit_name)
    return out


def shown_values(report: NodeReport) -> list[str]:
    """The readings shown in the values table: role blocks, without the fault words."""
    rmap = regmap.load()
    return [r.name for block in report.blocks if block != "identity"
            for r in rmap.in_block(block) if not r.bits]


def render_node(report: NodeReport, lang: Lang) -> list[str]:
    t = report.target
    lines = [f"{label('node', lang)} {t.name} (unit {t.unit}, {report.where}): "
             f"{report.level.name}"]
    names = shown_values(report)
    if names:
        lines.append(f"  {label('values', lang)}")
        for name in names:
            faults = value_faults(report, name)
            mark = f"  [{', '.join(faults)}]" if faults else ""
            lines.append(f"    {name:<22} {format_value(name, report.values[name], lang)}{mark}")
    lines.append(f"  {label('checklist', lang)}")
    for check in report.checks:
        lines.append(f"    {check.level.name:<4}  {check.text[lang]}")
    return lines


def render_text(site: SiteReport, lang: Lang) -> str:
    lines: list[str] = []
    for node in site.nodes:
        lines += render_node(node, lang)
        lines.append("")
    for check in site.checks:
        lines.append(f"{check.level.name:<4}  {check.text[lang]}")
    lines.append(f"{label('overall', lang)}: {site.level.name} (exit {site.exit_code})")
    return "\n".join(lines) + "\n"


def to_json(site: SiteReport, lang: Lang) -> dict[str, Any]:
    def check(c: Check) -> dict[str, Any]:
        return {"level": c.level.name, "code": c.code, "text": c.text[lang]}

    nodes = []
    for n in site.nodes:
        values = {name: {"value": n.values[name], "unit": regmap.load().register(name).unit,
                         "text": format_value(name, n.values[name], lang),
                         "faults": value_faults(n, name)}
                  for name in n.values}
        nodes.append({
            "name": n.target.name, "bus": n.target.bus, "unit": n.target.unit,
            "where": n.where, "expected_roles": list(n.target.roles) if n.target.roles is not None
            else None, "answered": n.answered, "result": n.level.name, "values": values,
            "checks": [check(c) for c in n.checks],
        })
    return {"report": "nsp-edge commission", "report_version": 1, "lang": lang,
            "result": site.level.name, "exit_code": site.exit_code,
            "site_checks": [check(c) for c in site.checks], "nodes": nodes}


_CHECK_SCHEMA: dict[str, Any] = {
    "type": "object", "additionalProperties": False, "required": ["level", "code", "text"],
    "properties": {"level": {"enum": ["INFO", "PASS", "WARN", "FAIL"]},
                   "code": {"type": "string"}, "text": {"type": "string"}},
}
REPORT_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "nsp-edge commission report",
    "type": "object", "additionalProperties": False,
    "required": ["report", "report_version", "lang", "result", "exit_code", "site_checks",
                 "nodes"],
    "properties": {
        "report": {"const": "nsp-edge commission"},
        "report_version": {"const": 1},
        "lang": {"enum": list(LANGS)},
        "result": {"enum": ["PASS", "WARN", "FAIL"]},
        "exit_code": {"enum": [0, 1, 2]},
        "site_checks": {"type": "array", "items": _CHECK_SCHEMA},
        "nodes": {"type": "array", "items": {
            "type": "object", "additionalProperties": False,
            "required": ["name", "bus", "unit", "where", "expected_roles", "answered", "result",
                         "values", "checks"],
            "properties": {
                "name": {"type": "string"}, "bus": {"type": "string"},
                "unit": {"type": "integer", "minimum": 1, "maximum": 247},
                "where": {"type": "string"},
                "expected_roles": {"anyOf": [{"type": "null"}, {"type": "array", "items": {
                    "enum": list(regmap.ROLE_BITS)}}]},
                "answered": {"type": "boolean"},
                "result": {"enum": ["PASS", "WARN", "FAIL"]},
                "values": {"type": "object", "additionalProperties": {
                    "type": "object", "additionalProperties": False,
                    "required": ["value", "unit", "text", "faults"],
                    "properties": {"value": {"type": ["number", "boolean", "null"]},
                                   "unit": {"type": "string"}, "text": {"type": "string"},
                                   "faults": {"type": "array", "items": {"type": "string"}}}}},
                "checks": {"type": "array", "items": _CHECK_SCHEMA},
            }}},
    },
}


# Move on every read: not news during a walk-around.
WATCH_QUIET = frozenset({"uptime_s", "rx_frames", "free_heap_b", "door_open_s"})
WATCH_ANALOG_STEP = 0.05  # an analog reading is news when it moves 5 % (or goes n/a or back)


def _worth_showing(name: str, old: Any, new: Any) -> bool:
    if name in WATCH_QUIET or old == new:
        return False
    reg = regmap.load().register(name)
    analog = reg.scale != 1.0 or reg.unit not in ("", "s")
    if not analog or old is None or new is None:
        return True
    return bool(abs(new - old) > WATCH_ANALOG_STEP * max(abs(old), abs(new)))


def changes(old: SiteReport, new: SiteReport, lang: Lang) -> list[str]:
    """What differs between two reads (the --watch walk-around): values and check results."""
    out: list[str] = []
    for before, after in zip(old.nodes, new.nodes, strict=True):
        who = f"{after.target.name}({after.target.unit})"
        for name in after.values:
            if name in before.values and _worth_showing(name, before.values[name],
                                                        after.values[name]):
                a = format_value(name, before.values[name], lang)
                b = format_value(name, after.values[name], lang)
                out.append(message("watch_changed", lang, node=who, what=name, old=a, new=b))
        old_checks = {(c.code, c.level) for c in before.checks}
        new_checks = {(c.code, c.level) for c in after.checks}
        for c in after.checks:
            if (c.code, c.level) not in old_checks and c.level >= Level.WARN:
                out.append(f"{who}: {c.level.name}  {c.text[lang]}")
        for c in before.checks:
            if (c.code, c.level) not in new_checks and c.level >= Level.WARN and \
                    c.code not in {x.code for x in after.checks}:
                out.append(f"{who}: {label('check', lang)} {c.code}: {c.level.name} → PASS")
        if before.level != after.level:
            out.append(message("watch_changed", lang, node=who, what=label("overall", lang),
                               old=before.level.name, new=after.level.name))
    return out
