"""Firmware roles on the real MicroPython interpreter (unix port, 64-bit) with the simulated
world: heap of the full role set, main-loop cycle time, size of the firmware built for the ESP32.

- heap: retained bytes after boot (firmware vs the sim's fakes, measured apart), the live-heap
  high-water over a simulated hour (gc.collect + gc.mem_alloc each simulated minute), and the
  smallest -X heapsize that runs that hour (8 KB steps);
- cycle: microseconds per tick of all three roles (world step excluded), 1 s virtual steps;
- size: total .mpy bytes of firmware/nsp + main.py for -march=xtensawin.
The unix port's pointers are 8 bytes, an ESP32's 4: heap figures here are upper bounds for
the board.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from edge_server.vnode import FIRMWARE, find_micropython

HOUR_S = 3600


def _mpy_cross() -> str:
    exe = Path(find_micropython()).parent / "mpy-cross"
    return str(exe) if exe.exists() else "mpy-cross"


def _compile(out: Path, march: str | None = None) -> int:
    total = 0
    srcs = list((FIRMWARE / "nsp").rglob("*.py"))
    if march is None:
        srcs += list((FIRMWARE / "sim").glob("*.py")) + [FIRMWARE / "tests" / "soak.py"]
    elif (FIRMWARE / "main.py").exists():
        srcs.append(FIRMWARE / "main.py")
    for src in srcs:
        if src.parent.name in ("sim", "tests"):
            rel = Path(src.name)
        else:
            rel = src.relative_to(FIRMWARE)
        dst = (out / rel).with_suffix(".mpy")
        dst.parent.mkdir(parents=True, exist_ok=True)
        cmd = [_mpy_cross()] + (["-march=" + march] if march else []) + ["-o", str(dst), str(src)]
        subprocess.run(cmd, check=True)
        total += dst.stat().st_size
    return total


def _soak(lib: Path, d: Path, heap: str, seconds: int) -> tuple[bool, dict[str, str]]:
    proc = subprocess.run(
        [find_micropython(), "-X", f"heapsize={heap}", "-m", "soak",
         str(d / f"s{heap}.json"), str(seconds)],
        capture_output=True, text=True, timeout=300, cwd=d, env={"MICROPYPATH": f"{lib}:.frozen"},
    )
    words = [w.partition("=") for line in proc.stdout.splitlines() for w in line.split()]
    fields = {k: v for k, _, v in words if v}
    return "SOAK OK" in proc.stdout, fields


def main() -> list[tuple[str, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        lib = d / "lib"
        _compile(lib)
        xtensa = _compile(d / "xtensawin", "xtensawin")
        ok, f = _soak(lib, d, "256k", HOUR_S)
        if not ok:
            raise RuntimeError(f"soak failed: {f}")
        smallest = "none up to 192 KB"
        for kb in range(96, 200, 8):
            if _soak(lib, d, f"{kb}k", HOUR_S)[0]:
                smallest = f"{kb} KB"
                break
    return [
        ("firmware heap retained after boot, all roles (unix 64-bit)",
         f"{int(f['fw']) / 1024:.1f} KB"),
        ("sim fakes + world heap (not on the board)", f"{int(f['sim']) / 1024:.1f} KB"),
        ("live heap high-water over a simulated hour, firmware + sim",
         f"{int(f['peak']) / 1024:.1f} KB"),
        ("live heap high-water over a simulated hour, firmware share (minus sim)",
         f"{(int(f['peak']) - int(f['sim'])) / 1024:.1f} KB"),
        ("smallest -X heapsize running 1 simulated hour, firmware + sim", smallest),
        ("main-loop cycle, tick of all three roles (unix port)", f"{int(f['tick_us'])} us"),
        ("firmware/nsp + main.py compiled for xtensawin", f"{xtensa / 1024:.1f} KB .mpy"),
    ]


if __name__ == "__main__":
    for figure, value in main():
        print(f"{figure}: {value}")
