"""Generator-controller profiles: a TOML file per controller family (register, type, scale, unit,
channel name, alarm bits), so a technician adds a ComAp, Smartgen or Mebay controller without
writing Python. docs/generators.md describes the format; edge_server/genset/profiles/ ships
`dse-gencomm` (Deep Sea Electronics GenComm) and `smartgen-hgm6100n`.

    profile = load_profile("dse-gencomm")          # a shipped profile by name
    profile = load_profile(Path("/etc/nsp/x.toml"))  # or a file

A bad profile raises ProfileError naming the file, the entry and the fix, at start.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

PROFILES_DIR = Path(__file__).parent / "profiles"

RegType = Literal["u16", "s16", "u32", "s32"]
WORDS = {"u16": 1, "s16": 1, "u32": 2, "s32": 2}
Group = Literal["identity", "engine", "generator", "mains", "status"]
Mode = Literal["stop", "auto", "manual", "test"]
Command = Literal["stop", "auto", "manual", "test_on_load", "start", "reset_alarms"]
Severity = Literal["warning", "electrical_trip", "shutdown"]

_STRICT = ConfigDict(extra="forbid", frozen=True)


class Channel(BaseModel):
    """One value: raw register(s) * scale = value in `unit`, valid only within [min, max]."""

    model_config = _STRICT
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    address: Annotated[int, Field(ge=0, le=65535)]  # 0-based, as on the wire
    type: RegType = "u16"
    scale: float = 1.0
    unit: str = ""
    group: Group
    min: float | None = None  # out of [min, max]: a fault (an unplugged sensor), never a value
    max: float | None = None
    source: str = ""  # the page / table of the maker's document

    @property
    def words(self) -> int:
        return WORDS[self.type]


class Alarm(BaseModel):
    """An alarm field: `width` bits from `bit` (0 = least significant) of register `address`;
    `states` (in [alarms]) maps the field's value to active/inactive and a severity."""

    model_config = _STRICT
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    code: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$")]  # our alert code
    address: Annotated[int, Field(ge=0, le=65535)]
    bit: Annotated[int, Field(ge=0, le=15)] = 0
    width: Annotated[int, Field(ge=1, le=16)] = 1
    severity: Severity | None = None  # for 1-bit alarms: the severity when set
    text_en: str = ""
    text_nl: str = ""
    source: str = ""

    @model_validator(mode="after")
    def _fits(self) -> Alarm:
        if self.bit + self.width > 16:
            raise ValueError(f"bit {self.bit} + width {self.width} is past bit 15: lower bit or "
                             "width")
        return self


class AlarmState(BaseModel):
    model_config = _STRICT
    value: Annotated[int, Field(ge=0, le=65535)]
    active: bool
    severity: Severity | None = None
    meaning: str = ""


class Alarms(BaseModel):
    model_config = _STRICT
    # multi-bit fields (DSE page 8: 4 bits per alarm): what each value means; 1-bit alarms need
    # none (1 = active with the alarm's own severity)
    states: list[AlarmState] = []
    alarm: list[Alarm] = []


class ModeRegister(BaseModel):
    model_config = _STRICT
    address: Annotated[int, Field(ge=0, le=65535)]
    values: dict[str, Mode]  # raw value (as a TOML key: "0") -> mode
    source: str = ""


class Control(BaseModel):
    """How commands are written. `key_complement`: the key and its ones' complement to two
    registers in ONE write (DSE's system control key, page 16, registers 4104/4105); `coil`:
    a function-05 coil per command (Smartgen)."""

    model_config = _STRICT
    method: Literal["key_complement", "coil"]
    address: Annotated[int, Field(ge=0, le=65535)] | None = None  # key register (key_complement)
    commands: dict[Command, Annotated[int, Field(ge=0, le=65535)]]
    source: str = ""

    @model_validator(mode="after")
    def _address(self) -> Control:
        if self.method == "key_complement" and self.address is None:
            raise ValueError("method key_complement needs address (the key register; the "
                             "complement goes to address + 1)")
        return self


class ProfileInfo(BaseModel):
    model_config = _STRICT
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]*$")]
    maker: str
    models: list[str] = []
    document: str  # the maker's document the addresses come from (title, version)
    word_order: Literal["high_first", "low_first"] = "high_first"  # 32-bit values
    # raw values at or above these mean "no value" (open circuit, not fitted, over range...):
    # a fault, never shown as a value
    fault_u16: Annotated[int, Field(ge=0, le=65535)] | None = None
    fault_u32: Annotated[int, Field(ge=0, le=0xFFFFFFFF)] | None = None
    # the same for the signed types, as the signed number: raw values from these up to the
    # largest positive number (GenComm: 0x7FF8-0x7FFF, 0x7FFFFFF8-0x7FFFFFFF) are no value
    fault_s16: Annotated[int, Field(ge=0, le=0x7FFF)] | None = None
    fault_s32: Annotated[int, Field(ge=0, le=0x7FFFFFFF)] | None = None
    max_block: Annotated[int, Field(ge=1, le=125)] = 64  # registers per read (Modbus: <= 125)


class Profile(BaseModel):
    model_config = _STRICT
    profile: ProfileInfo
    identity: list[Channel] = []
    channels: list[Channel]
    mode: ModeRegister | None = None
    alarms: Alarms = Alarms()
    control: Control | None = None

    @model_validator(mode="after")
    def _unique(self) -> Profile:
        seen: set[str] = set()
        for i, ch in enumerate([*self.identity, *self.channels]):
            if ch.name in seen:
                raise ValueError(f"channel {i}: {ch.name!r} appears twice: give each channel "
                                 "its own name")
            seen.add(ch.name)
        codes: set[str] = set()
        multi = {s.value for s in self.alarms.states}
        for i, a in enumerate(self.alarms.alarm):
            if a.name in codes:
                raise ValueError(f"alarms.alarm {i}: {a.name!r} appears twice")
            codes.add(a.name)
            if a.width > 1 and not multi:
                raise ValueError(f"alarms.alarm {i} ({a.name}): width {a.width} needs "
                                 "[[alarms.states]] saying what each value means")
            if a.width == 1 and a.severity is None:
                raise ValueError(f"alarms.alarm {i} ({a.name}): a 1-bit alarm needs severity "
                                 "(warning, electrical_trip or shutdown)")
        return self

    def channel(self, name: str) -> Channel:
        for ch in (*self.identity, *self.channels):
            if ch.name == name:
                return ch
        raise KeyError(f"profile {self.profile.name}: no channel {name!r}")


class ProfileError(ValueError):
    """A profile that cannot be used: the file, the entry and the fix."""


def _entry(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out or "(top level)"


def _fix(kind: str) -> str:
    return {
        "missing": "add it",
        "extra_forbidden": "remove it or check its spelling (docs/generators.md lists the keys)",
        "literal_error": "use one of the allowed words",
        "string_pattern_mismatch": "names are lower_case_with_underscores, codes UPPER_CASE",
    }.get(kind, "correct the value (docs/generators.md)")


def parse_profile(text: str, origin: str) -> Profile:
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{origin}: not valid TOML ({exc}); fix the syntax") from None
    try:
        return Profile.model_validate(raw)
    except ValidationError as exc:
        lines = [f"{origin}: {_entry(tuple(e['loc']))}: {e['msg']}; fix: {_fix(e['type'])}"
                 for e in exc.errors()]
        raise ProfileError("\n".join(lines)) from None


def shipped() -> list[str]:
    return sorted(p.stem for p in PROFILES_DIR.glob("*.toml"))


def load_profile(name_or_path: str | Path) -> Profile:
    """A shipped profile by name (`dse-gencomm`) or a profile file by path."""
    path = Path(name_or_path)
    if isinstance(name_or_path, str) and "/" not in name_or_path and not path.suffix:
        path = PROFILES_DIR / f"{name_or_path}.toml"
        if not path.exists():
            raise ProfileError(f"profile {name_or_path!r}: no such shipped profile; use one of "
                               f"{', '.join(shipped())} or the path of a profile file")
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ProfileError(f"{path}: cannot be read ({exc.strerror}); give the path of a "
                           "profile file") from None
    return parse_profile(text, str(path))
