"""The node register map: loaded from registers.toml, the one definition.

The edge decodes node replies with it; `render_firmware` and `render_markdown` produce the
firmware's table (firmware/nsp/regmap.py) and the human document (hw/modbus-map.md) from it.
"""

from __future__ import annotations

import json
import tomllib
from dataclasses import asdict, dataclass, field
from functools import cache
from importlib import resources
from typing import Any, Literal

RegType = Literal["u16", "i16", "u32", "i32", "bool"]
WORDS: dict[str, int] = {"u16": 1, "i16": 1, "bool": 1, "u32": 2, "i32": 2}
DEFAULT_NA: dict[str, int] = {
    "u16": 0xFFFF,
    "i16": 0x8000,
    "bool": 0xFFFF,
    "u32": 0xFFFFFFFF,
    "i32": 0x80000000,
}
ROLE_BITS: dict[str, int] = {"power": 1, "fridge": 2, "entrance": 4}
MAX_READ_REGISTERS = 125


class UnknownMapVersion(ValueError):
    """A node reports a register map version this edge cannot decode."""


@dataclass(frozen=True)
class Register:
    name: str
    address: int
    type: RegType
    description: str
    scale: float = 1.0
    unit: str = ""
    na: int | None = None
    access: Literal["r", "rw"] = "r"
    role: str | None = None
    default: int | None = None
    enum: dict[int, str] = field(default_factory=dict)
    bits: dict[int, str] = field(default_factory=dict)

    @property
    def words(self) -> int:
        return WORDS[self.type]

    @property
    def sentinel(self) -> int:
        return DEFAULT_NA[self.type] if self.na is None else self.na

    def raw_from_words(self, words: list[int]) -> int:
        """Combine 1 or 2 register words (high word first) into the raw unsigned integer."""
        if self.words == 1:
            return words[0] & 0xFFFF
        return ((words[0] & 0xFFFF) << 16) | (words[1] & 0xFFFF)

    def decode(self, words: list[int]) -> float | int | bool | None:
        """Decode this register's words to an SI value; None when the sentinel says n/a."""
        raw = self.raw_from_words(words)
        if raw == self.sentinel:
            return None
        if self.type == "bool":
            return bool(raw)
        if self.type == "i16" and raw & 0x8000:
            raw -= 0x10000
        elif self.type == "i32" and raw & 0x80000000:
            raw -= 0x100000000
        if self.scale == 1.0:
            return raw
        return round(raw * self.scale, 6)


@dataclass(frozen=True)
class Bit:
    name: str
    address: int
    description: str


@dataclass(frozen=True)
class Block:
    name: str
    start: int
    size: int
    description: str


@dataclass(frozen=True)
class RegisterMap:
    version: int
    blocks: dict[str, Block]
    registers: tuple[Register, ...]
    coils: tuple[Bit, ...]
    discrete_inputs: tuple[Bit, ...]

    @property
    def image_size(self) -> int:
        return max(b.start + b.size for b in self.blocks.values())

    def register(self, name: str) -> Register:
        for reg in self.registers:
            if reg.name == name:
                return reg
        raise KeyError(f"no register named {name!r} in map version {self.version}")

    def in_block(self, block: str) -> list[Register]:
        b = self.blocks[block]
        return [r for r in self.registers if b.start <= r.address < b.start + b.size]

    def decode_block(self, block: str, words: list[int]) -> dict[str, float | int | bool | None]:
        """Decode a whole block read (words starting at the block's first address)."""
        b = self.blocks[block]
        if len(words) < b.size:
            raise ValueError(f"block {block} needs {b.size} words, got {len(words)}")
        out: dict[str, float | int | bool | None] = {}
        for reg in self.in_block(block):
            off = reg.address - b.start
            out[reg.name] = reg.decode(words[off : off + reg.words])
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "map_version": self.version,
            "image_size": self.image_size,
            "word_order": "high word first",
            "blocks": [asdict(b) for b in self.blocks.values()],
            "registers": [
                {**asdict(r), "words": r.words, "na": r.sentinel} for r in self.registers
            ],
            "coils": [asdict(c) for c in self.coils],
            "discrete_inputs": [asdict(d) for d in self.discrete_inputs],
        }


def _int_keys(d: dict[str, str] | None) -> dict[int, str]:
    return {int(k): v for k, v in (d or {}).items()}


def parse(text: str) -> RegisterMap:
    """Parse and check a register map definition; raise ValueError naming the problem."""
    data = tomllib.loads(text)
    blocks = {
        name: Block(name, int(b["start"]), int(b["size"]), b["description"])
        for name, b in data["blocks"].items()
    }
    regs = []
    for r in data["registers"]:
        regs.append(
            Register(
                name=r["name"],
                address=int(r["address"]),
                type=r["type"],
                description=r["description"],
                scale=float(r.get("scale", 1.0)),
                unit=r.get("unit", ""),
                na=r.get("na"),
                access=r.get("access", "r"),
                role=r.get("role"),
                default=r.get("default"),
                enum=_int_keys(r.get("enum")),
                bits=_int_keys(r.get("bits")),
            )
        )
    rmap = RegisterMap(
        version=int(data["map_version"]),
        blocks=blocks,
        registers=tuple(sorted(regs, key=lambda r: r.address)),
        coils=tuple(Bit(c["name"], int(c["address"]), c["description"]) for c in data["coils"]),
        discrete_inputs=tuple(
            Bit(c["name"], int(c["address"]), c["description"]) for c in data["discrete_inputs"]
        ),
    )
    _check(rmap)
    return rmap


def _check(rmap: RegisterMap) -> None:
    used: dict[int, str] = {}
    names: set[str] = set()
    for reg in rmap.registers:
        if reg.type not in WORDS:
            raise ValueError(f"register {reg.name}: unknown type {reg.type!r}")
        if reg.name in names:
            raise ValueError(f"register {reg.name}: name used twice")
        names.add(reg.name)
        block = [b for b in rmap.blocks.values() if b.start <= reg.address < b.start + b.size]
        if not block or reg.address + reg.words > block[0].start + block[0].size:
            raise ValueError(f"register {reg.name} at {reg.address} is outside every block")
        for a in range(reg.address, reg.address + reg.words):
            if a in used:
                raise ValueError(f"register {reg.name} overlaps {used[a]} at address {a}")
            used[a] = reg.name
    if rmap.blocks["identity"].start != 0:
        raise ValueError("the identity block must start at address 0")
    if rmap.image_size > MAX_READ_REGISTERS:
        raise ValueError("the register image must fit one FC03 read (125 registers)")


@cache
def load() -> RegisterMap:
    """The register map this edge speaks (the one in registers.toml)."""
    text = resources.files(__package__).joinpath("registers.toml").read_text(encoding="utf-8")
    return parse(text)


KNOWN_VERSIONS: frozenset[int] = frozenset({1})


def for_version(version: int) -> RegisterMap:
    """The map for a node's reported version, or a clear refusal."""
    rmap = load()
    if version != rmap.version or version not in KNOWN_VERSIONS:
        raise UnknownMapVersion(
            f"node reports register map version {version}; this edge knows "
            f"{sorted(KNOWN_VERSIONS)}. Update the edge service or flash a matching firmware."
        )
    return rmap


def render_json(rmap: RegisterMap) -> str:
    return json.dumps(rmap.to_dict(), indent=2, ensure_ascii=False) + "\n"


def _fmt_scale(scale: float) -> str:
    return "1" if scale == 1.0 else f"{scale:g}"


def render_markdown(rmap: RegisterMap) -> str:
    lines = [
        "# Modbus register map (generated: do not edit)",
        "",
        f"Map version **{rmap.version}**. Generated from `edge_server/regmap/registers.toml` by",
        "`nsp-edge regmap --format md`; `tests/test_regmap.py` fails when this file drifts.",
        "",
        "- One register image of "
        f"{rmap.image_size} registers, readable with FC03 and FC04 at the same addresses",
        "  (0-based; mbpoll needs `-0` or adds 1). Writes (FC06/FC16) only where access is `rw`,",
        "  else exception 02.",
        "- 32-bit values: two registers, high word first.",
        "- value = raw × scale. `n/a` is the raw value meaning *not available* (sensor fault or",
        "  role not configured): never a reading.",
        "- Bool registers hold 0/1.",
        "",
    ]
    for block in rmap.blocks.values():
        end = block.start + block.size - 1
        lines += [f"## {block.name} ({block.start}-{end})", "", block.description, ""]
        lines += [
            "| addr | name | type | scale | unit | n/a | access | description |",
            "|---:|---|---|---:|---|---:|---|---|",
        ]
        for r in rmap.in_block(block.name):
            desc = r.description
            if r.enum:
                desc += " " + ", ".join(f"{k}={v}" for k, v in r.enum.items())
            if r.bits:
                desc += " Bits: " + ", ".join(f"{k}={v}" for k, v in r.bits.items())
            if r.default is not None:
                desc += f" Default raw {r.default}."
            lines.append(
                f"| {r.address} | `{r.name}` | {r.type} | {_fmt_scale(r.scale)} | {r.unit} "
                f"| 0x{r.sentinel:X} | {r.access} | {desc} |"
            )
        lines.append("")
    for title, bits in (("Coils (FC01/05/15)", rmap.coils),
                        ("Discrete inputs (FC02)", rmap.discrete_inputs)):
        lines += [f"## {title}", "", "| addr | name | description |", "|---:|---|---|"]
        lines += [f"| {b.address} | `{b.name}` | {b.description} |" for b in bits]
        lines.append("")
    return "\n".join(lines)


def render_firmware(rmap: RegisterMap) -> str:
    """A MicroPython module of const() addresses: the firmware's copy of the map."""
    out = [
        "# Generated from edge_server/regmap/registers.toml by"
        " `nsp-edge regmap --format firmware`.",
        "# Do not edit: tests/test_regmap.py fails when this file drifts from the definition.",
        "from micropython import const",
        "",
        f"MAP_VERSION = const({rmap.version})",
        f"IMAGE_SIZE = const({rmap.image_size})",
        f"N_COILS = const({len(rmap.coils)})",
        f"N_DISCRETE = const({len(rmap.discrete_inputs)})",
        "NA_U16 = const(0xFFFF)",
        "NA_I16 = const(0x8000)",
        "NA_U32 = const(0xFFFFFFFF)",
        "",
        "# Blocks: (start, size)",
    ]
    for b in rmap.blocks.values():
        out.append(f"BLOCK_{b.name.upper()} = ({b.start}, {b.size})")
    out += ["", "# Registers (address; 32-bit values take this and the next address)"]
    for r in rmap.registers:
        out.append(f"R_{r.name.upper()} = const({r.address})  # {r.type} {r.unit}".rstrip())
    out += ["", "# Writable registers: (address, default raw value)"]
    rw = [(r.address, r.default if r.default is not None else 0) for r in rmap.registers
          if r.access == "rw"]
    out.append("WRITABLE = (" + "".join(f"({a}, {d}), " for a, d in rw) + ")")
    out += ["", "# Bits inside bit-field registers"]
    for r in rmap.registers:
        for bit, name in r.bits.items():
            out.append(f"B_{name.upper()} = const({1 << bit})  # {r.name}")
    out += ["", "# Enum values"]
    for r in rmap.registers:
        for val, name in r.enum.items():
            out.append(f"{r.name.upper()}_{name.upper()} = const({val})")
    out += ["", "# Coils"]
    out += [f"C_{c.name.upper()} = const({c.address})" for c in rmap.coils]
    out += ["", "# Discrete inputs"]
    out += [f"D_{d.name.upper()} = const({d.address})" for d in rmap.discrete_inputs]
    return "\n".join(out) + "\n"


RENDERERS = {"json": render_json, "md": render_markdown, "firmware": render_firmware}
