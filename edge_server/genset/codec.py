"""Raw Modbus words <-> channel values, by a profile's channel (type, scale, word order).

Shared by the driver (decode) and the virtual controller (encode), so both read the same
profile the same way. A raw value past the profile's fault sentinels, or a value outside the
channel's [min, max], decodes to a Fault: never a plausible wrong value."""

from __future__ import annotations

from dataclasses import dataclass

from edge_server.genset.profile import Channel, ProfileInfo


@dataclass(frozen=True)
class Fault:
    """No value: why (sentinel, out of range); the raw number for the log."""

    reason: str
    raw: int

    def __str__(self) -> str:
        return f"{self.reason} (raw {self.raw})"


def _join(words: list[int], info: ProfileInfo) -> int:
    hi, lo = (words[0], words[1]) if info.word_order == "high_first" else (words[1], words[0])
    return (hi << 16) | lo


SENTINEL = "sensor fault or not fitted (controller sentinel)"
# largest number of each type: the GenComm "unimplemented" value, the top of its sentinel range
TOP = {"u16": 0xFFFF, "u32": 0xFFFFFFFF, "s16": 0x7FFF, "s32": 0x7FFFFFFF}


def _signed(raw: int, ch: Channel) -> int:
    bits = 16 * ch.words
    return raw - (1 << bits) if ch.type[0] == "s" and raw >= 1 << (bits - 1) else raw


def sentinel_from(ch: Channel, info: ProfileInfo) -> int | None:
    """The lowest raw number (signed for s16/s32) that is a sentinel for this channel's type."""
    return {"u16": info.fault_u16, "u32": info.fault_u32, "s16": info.fault_s16,
            "s32": info.fault_s32}[ch.type]


def decode(ch: Channel, words: list[int], info: ProfileInfo) -> float | Fault:
    """The channel's value from its words (len == ch.words). Sentinels are checked on every
    type: GenComm puts them at the top of the unsigned range (0xFFF8-0xFFFF) and, for signed
    registers, at the top of the POSITIVE range (0x7FF8-0x7FFF), never at -1..-8: DSE GenComm
    "Unimplemented register and field values" (55x GenComm 1.29, p. 11: 16-bit signed 0x7FFF,
    32-bit signed 0x7FFFFFFF, "the largest positive number"). A value outside [min, max] is a
    fault too."""
    raw = words[0] if ch.words == 1 else _join(words, info)
    signed = _signed(raw, ch)
    start = sentinel_from(ch, info)
    if start is not None and start <= signed <= TOP[ch.type]:
        return Fault(SENTINEL, raw)
    value = signed * ch.scale
    if (ch.min is not None and value < ch.min - 1e-9) or (ch.max is not None
                                                          and value > ch.max + 1e-9):
        lo = "" if ch.min is None else f"{ch.min:g}"
        hi = "" if ch.max is None else f"{ch.max:g}"
        return Fault(f"out of range {lo}..{hi} {ch.unit}".rstrip(), raw)
    return round(value, 6)


def encode(ch: Channel, value: float, info: ProfileInfo) -> list[int]:
    """The words that decode to `value` (the virtual controller's side)."""
    raw = round(value / ch.scale)
    bits = 16 * ch.words
    raw &= (1 << bits) - 1  # two's complement for the signed types
    if ch.words == 1:
        return [raw]
    hi, lo = raw >> 16, raw & 0xFFFF
    return [hi, lo] if info.word_order == "high_first" else [lo, hi]
