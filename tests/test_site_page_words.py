"""The site page's technical details show enum values and fault bits as words in Dutch and
English ("netstroom weg", not `mains_lost`): every word of the register map has a translation
in site.js's WORDS table, so a register added later fails here until it has one."""

from __future__ import annotations

import re

from edge_server import regmap
from tests.conftest import ROOT


def site_js_words() -> dict[str, tuple[str, str]]:
    text = (ROOT / "edge_server" / "static" / "site.js").read_text(encoding="utf-8")
    table = text[text.index("const WORDS = {"):text.index("};", text.index("const WORDS = {"))]
    return {k: (nl, en) for k, nl, en in
            re.findall(r'(\w+): \["([^"]+)", "([^"]+)"\]', table)}


def test_every_enum_value_and_fault_bit_has_dutch_and_english_words() -> None:
    words = site_js_words()
    assert len(words) > 20
    needed = {name for r in regmap.load().registers
              for table in (r.enum, r.bits) if table for name in table.values()}
    assert sorted(needed - words.keys()) == []
    # a Dutch word is a translation, not the identifier again (test/test is the same word)
    assert [k for k, (nl, _en) in words.items() if nl == k and k != "test"] == []
