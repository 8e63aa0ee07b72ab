"""RTU line efficiency: a pymodbus RTU master polling 60 registers from the virtual node through a
relay that paces bytes like a real 19,200 baud line (11 bits per character), versus the line's
physical ceiling (docs/sources.md): (8 + 5 + 2N) bytes x 11 bits / 19,200 plus two t3.5 gaps
(2.005 ms each) per poll. Target: achieved / ceiling >= 0.85.

    master --pty pair B-- relay (paced both ways) --pty pair A-- virtual node
"""

from __future__ import annotations

import asyncio
import os
import select
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import tty
from pathlib import Path

from pymodbus import FramerType
from pymodbus.client import AsyncModbusSerialClient

from edge_server.vnode import VirtualNode

BAUD = 19200
CHAR_S = 11 / BAUD
T35_S = 0.002005
N_REGS = 60
UNIT = 1
DURATION_S = 5.0


def ceiling_polls_per_s(n_regs: int = N_REGS) -> float:
    per_poll_s = (8 + 5 + 2 * n_regs) * CHAR_S + 2 * T35_S
    return 1 / per_poll_s


def _pump(src: int, dst: int, stop: threading.Event) -> None:
    """Copy src -> dst, each byte delivered one character time after the previous one ends."""
    line_free_at = 0.0
    while not stop.is_set():
        ready, _, _ = select.select([src], [], [], 0.05)
        if not ready:
            continue
        try:
            data = os.read(src, 512)
        except OSError:
            return
        # Bytes handed over together go out back to back, as a UART sends them; each is delivered
        # when its last bit is on the wire. Times are absolute, so a late wake-up of this thread
        # does not stretch the line (only delays that one byte).
        line_free_at = max(line_free_at, time.perf_counter())
        for b in data:
            line_free_at += CHAR_S
            while (left := line_free_at - time.perf_counter()) > 0:
                time.sleep(left if left > 0.0003 else 0)
            os.write(dst, bytes([b]))


def _pty_pair(d: Path, a: str, b: str) -> subprocess.Popen[bytes]:
    socat = shutil.which("socat") or "/usr/bin/socat"
    proc = subprocess.Popen([socat, f"pty,raw,echo=0,link={d / a}", f"pty,raw,echo=0,link={d / b}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 5
    while not ((d / a).exists() and (d / b).exists()):
        if time.monotonic() > deadline:
            raise RuntimeError("socat did not create the pty pair")
        time.sleep(0.02)
    return proc


async def _poll(port: str, duration_s: float) -> tuple[int, int]:
    client = AsyncModbusSerialClient(port, framer=FramerType.RTU, baudrate=BAUD, timeout=1,
                                     retries=0)
    await client.connect()
    ok = failed = 0
    try:
        await client.read_holding_registers(20, count=N_REGS, device_id=UNIT)  # warm-up
        end = time.perf_counter() + duration_s
        while time.perf_counter() < end:
            try:
                rr = await client.read_holding_registers(20, count=N_REGS, device_id=UNIT)
                if rr.isError():
                    failed += 1
                else:
                    ok += 1
            except Exception:
                failed += 1
    finally:
        client.close()
    return ok, failed


def main() -> list[tuple[str, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        procs = [_pty_pair(d, "node", "relayA"), _pty_pair(d, "relayB", "master")]
        # The relay runs in its own process: sharing the master's GIL would slow the master.
        relay = subprocess.Popen([sys.executable, "-m", "benchmarks.bench_rtu", "--relay",
                                  str(d / "relayA"), str(d / "relayB")],
                                 cwd=Path(__file__).resolve().parent.parent,
                                 stdout=subprocess.PIPE)
        try:
            assert relay.stdout is not None
            relay.stdout.readline()  # "ready": both pty ends are open and pumping
            with VirtualNode(unit=UNIT, roles=(), rtu=str(d / "node"), baud=BAUD, control=False):
                t0 = time.perf_counter()
                ok, failed = asyncio.run(_poll(str(d / "master"), DURATION_S))
                elapsed = time.perf_counter() - t0
        finally:
            relay.terminate()
            relay.wait(timeout=5)
            for p in procs:
                p.terminate()
                p.wait(timeout=5)
    achieved = ok / elapsed
    ceiling = ceiling_polls_per_s()
    return [
        ("RTU polls of 60 registers at 19,200 baud (paced relay), achieved",
         f"{achieved:.2f} polls/s ({failed} failed)"),
        ("line ceiling (8+5+2N bytes x 11 bit / 19200 + 2 x t3.5)", f"{ceiling:.2f} polls/s"),
        ("line efficiency (target >= 0.85)", f"{achieved / ceiling:.3f}"),
    ]


def relay(path_a: str, path_b: str) -> None:
    """Pace bytes both ways between two pty ends until terminated."""
    fds = []
    for path in (path_a, path_b):
        fd = os.open(path, os.O_RDWR | os.O_NOCTTY)
        tty.setraw(fd)
        fds.append(fd)
    stop = threading.Event()
    threads = [threading.Thread(target=_pump, args=(fds[1], fds[0], stop), daemon=True),
               threading.Thread(target=_pump, args=(fds[0], fds[1], stop), daemon=True)]
    for t in threads:
        t.start()
    print("ready", flush=True)
    for t in threads:
        t.join()


if __name__ == "__main__" and sys.argv[1:2] == ["--relay"]:
    relay(sys.argv[2], sys.argv[3])
elif __name__ == "__main__":
    for figure, value in main():
        print(f"{figure}: {value}")
