"""The register map: one definition, generated copies that must not drift, and the decoder."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from edge_server import regmap
from tests.conftest import FIRMWARE, ROOT


def test_firmware_table_is_generated_from_the_definition() -> None:
    current = (FIRMWARE / "nsp" / "regmap.py").read_text(encoding="utf-8")
    assert current == regmap.render_firmware(regmap.load()), (
        "firmware/nsp/regmap.py drifted: nsp-edge regmap --format firmware > firmware/nsp/regmap.py"
    )


def test_hw_document_is_generated_from_the_definition() -> None:
    current = (ROOT / "hw" / "modbus-map.md").read_text(encoding="utf-8")
    assert current == regmap.render_markdown(regmap.load()), (
        "hw/modbus-map.md drifted: nsp-edge regmap --format md > hw/modbus-map.md"
    )


def test_cli_prints_json_with_identity_block_first() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "edge_server.cli", "regmap", "--format", "json"],
        check=True, capture_output=True, text=True,
    ).stdout
    data = json.loads(out)
    assert data["map_version"] == regmap.load().version
    assert data["blocks"][0]["name"] == "identity" and data["blocks"][0]["start"] == 0
    names = [r["name"] for r in data["registers"][:14]]
    for needed in ("map_version", "node_id", "roles", "fw_major", "uptime_s", "reset_cause",
                   "free_heap_b", "config_crc"):
        assert needed in names


def test_whole_image_fits_one_read() -> None:
    assert regmap.load().image_size <= 125


@pytest.mark.parametrize(
    ("name", "words", "expected"),
    [
        ("fridge_temp_c", [512], 5.12),
        ("fridge_temp_c", [0xFFFF], -0.01),
        ("fridge_temp_c", [0xFE0C], -5.0),
        ("fridge_temp_c", [0x8000], None),  # not available: a sensor fault, never -327.68
        ("fuel_l", [0x0000, 0x3D5C], 1570.8),
        ("fuel_l", [0xFFFF, 0xFFFF], None),
        ("uptime_s", [0x0001, 0x0000], 65536),
        ("mains_present", [1], True),
        ("mains_present", [0], False),
        ("mains_present", [0xFFFF], None),
        ("battery_a", [0xFF38], -2.0),
        ("fuel_sender_ma", [4000], 4.0),
        ("run_hours_h", [0, 12345], 123.45),
    ],
)
def test_decode_table(name: str, words: list[int], expected: object) -> None:
    assert regmap.load().register(name).decode(words) == expected


def test_unknown_map_version_is_refused_clearly() -> None:
    with pytest.raises(regmap.UnknownMapVersion, match="version 99"):
        regmap.for_version(99)


def test_definition_errors_name_the_register() -> None:
    text = (ROOT / "edge_server" / "regmap" / "registers.toml").read_text(encoding="utf-8")
    broken = text.replace('name = "node_id"\naddress = 1', 'name = "node_id"\naddress = 0')
    with pytest.raises(ValueError, match="node_id overlaps map_version"):
        regmap.parse(broken)
