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


def decode(ch: Channel, words: list[int], info: ProfileInfo) -> float | Fault:
    """The channel's value from its words (len == ch.words)."""
    raw = words[0] if ch.words == 1 else _join(words, info)
    if ch.type == "u16" and info.fault_u16 is not None and raw >= info.fault_u16:
        return Fault("sensor fault or not fitted (controller sentinel)", raw)
    if ch.type == "u32" and info.fault_u32 is not None and raw >= info.fault_u32:
        return Fault("sensor fault or not fitted (controller sentinel)", raw)
    signed = raw
    if ch.type == "s16" and raw >= 0x8000:
        signed = raw - 0x10000
    elif ch.type == "s32" and raw >= 0x80000000:
        signed = raw - 0x100000000
    value = signed * ch.scale
    if (ch.min is not None and value < ch.min - 1e-9) or (ch.max is not None
                                                          and value > ch.max + 1e-9):
        return Fault(f"out of range {ch.min:g}..{ch.max:g} {ch.unit}".rstrip(), raw)
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
