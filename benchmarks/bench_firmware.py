"""Firmware Modbus request path on the real MicroPython interpreter (unix port, 96 KB heap):
microseconds per FC03 request of 60 registers through the PDU engine alone and through the RTU
framer (CRC both ways), and bytes allocated per request (gc.mem_alloc before/after; target 0)."""

from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

from edge_server.vnode import FIRMWARE, find_micropython

N = 20000

SCRIPT = r"""
import gc, struct, time
from nsp.image import Image
from nsp.modbus import Engine
from nsp.rtu import RtuFramer
from nsp.crc import crc16
N = __N__
def bench_engine(engine, req, resp, n):
    h = engine.handle
    for _ in range(n):
        h(1, req, 0, 5, resp, 0)
def bench_rtu(framer, frame, k, n):
    for _ in range(n):
        framer.feed(frame, k)
        framer.process()
img = Image()
engine = Engine(img, 1)
req = bytearray(struct.pack(">BHH", 3, 20, 60))
resp = bytearray(260)
body = bytes([1]) + bytes(req)
c = crc16(body, 0, len(body))
frame = bytearray(body + bytes([c & 0xFF, c >> 8]))
framer = RtuFramer(engine)
def run(name, n):
    # explicit calls (a *args call would allocate its tuple and spoil the figure)
    if name == "engine":
        bench_engine(engine, req, resp, n)
    else:
        bench_rtu(framer, frame, len(frame), n)
def measure(name):
    # locals only: assigning a new global would grow the module dict (an allocation)
    run(name, 10)
    gc.collect()
    a0 = gc.mem_alloc()
    t0 = time.ticks_us()
    run(name, N)
    dt = time.ticks_diff(time.ticks_us(), t0)
    a1 = gc.mem_alloc()
    print("%s %.2f %.3f" % (name, dt / N, (a1 - a0) / N))
measure("engine")
measure("rtu")
""".replace("__N__", str(N))


def main() -> list[tuple[str, str]]:
    with tempfile.TemporaryDirectory() as d:
        script = Path(d) / "bench.py"
        script.write_text(SCRIPT)
        env = dict(os.environ, MICROPYPATH=f"{FIRMWARE}:.frozen")
        proc = subprocess.run([find_micropython(), "-X", "heapsize=96k", str(script)],
                              capture_output=True, text=True, env=env, timeout=300)
    if proc.returncode != 0:
        raise RuntimeError(f"micropython failed: {proc.stderr}")
    rows: list[tuple[str, str]] = []
    for line in proc.stdout.splitlines():
        name, us, alloc = line.split()
        label = "PDU engine" if name == "engine" else "RTU framer (CRC in and out + engine)"
        rows.append((f"FC03 x 60 registers, {label}", f"{float(us):.1f} us/request"))
        rows.append((f"bytes allocated per request, {label}", f"{float(alloc):.3f} B (target 0)"))
    return rows


if __name__ == "__main__":
    for figure, value in main():
        print(f"{figure}: {value}")
