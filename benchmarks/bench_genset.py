"""Generator controller: one poll cycle of every page of the DSE GenComm profile (the driver's
merged reads through the poller's BusHub, with its RTU inter-frame gap) over RTU at 19,200 baud,
through bench_rtu's relay that paces bytes like a real line, against the line's frame-timing
ceiling for the same requests: per read (8 + 5 + 2N) bytes x 11 bits / 19,200 plus two t3.5 gaps
(docs/sources.md). The virtual controller is `nsp-edge genset-sim --rtu` in its own process.
Also the time to render a generator-test PDF report of a 30-minute test (180 samples).

    master (driver) --pty-- relay (paced) --pty-- nsp-edge genset-sim --rtu
"""

from __future__ import annotations

import asyncio
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from benchmarks.bench_rtu import BAUD, CHAR_S, T35_S, _pty_pair
from edge_server.config import RtuBus
from edge_server.genset.driver import GensetDriver
from edge_server.genset.profile import load_profile
from edge_server.modbus_client import BusClient
from edge_server.poller import BusHub

UNIT = 10
CYCLES = 12
ROOT = Path(__file__).resolve().parent.parent


def ceiling_cycle_s(reads: list[tuple[int, int]]) -> float:
    return sum((8 + 5 + 2 * n) * CHAR_S + 2 * T35_S for _, n in reads)


async def _cycles(port: str) -> tuple[list[float], int, list[tuple[int, int]]]:
    profile = load_profile("dse-gencomm")
    bus = RtuBus(name="gen", kind="rtu", port=port, baudrate=BAUD, parity="N", stopbits=2)
    hub = BusHub(bus, BusClient(bus, timeout_s=1.0, retries=0))
    driver = GensetDriver(profile, hub, UNIT)
    times: list[float] = []
    offline = 0
    try:
        await driver.read()  # warm-up (opens the port)
        for _ in range(CYCLES):
            t0 = time.perf_counter()
            r = await driver.read()
            times.append(time.perf_counter() - t0)
            offline += not r.online
    finally:
        hub.client.close()
    return times, offline, driver.reads


def _pdf_s() -> tuple[float, int]:
    from edge_server.gentest.record import End, GenTestRecord, Outcome, Sample
    from edge_server.gentest.report import render_pdf
    from edge_server.gentest.settings import GenTestSettings

    at = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
    rec = GenTestRecord("nsp-a", "power", "anna", at, 1800.0, id=7, outcome=Outcome.NOT_VERIFIED,
                        end=End.COMPLETED, ended_at=at + timedelta(minutes=31), ran_s=1800.0,
                        start_time_s=6.0, crank_min_v=9.9, fuel_start_l=400, fuel_end_l=398.2,
                        samples=[Sample(i * 10.0, 13.6, True, "running") for i in range(180)])
    times, size = [], 0
    for _ in range(5):
        t0 = time.perf_counter()
        size = len(render_pdf(rec, "Buurthuis De Linde", GenTestSettings()))
        times.append(time.perf_counter() - t0)
    return statistics.median(times), size


def main() -> list[tuple[str, str]]:
    with tempfile.TemporaryDirectory() as tmp:
        d = Path(tmp)
        procs = [_pty_pair(d, "ctrl", "relayA"), _pty_pair(d, "relayB", "master")]
        relay = subprocess.Popen([sys.executable, "-m", "benchmarks.bench_rtu", "--relay",
                                  str(d / "relayA"), str(d / "relayB")], cwd=ROOT,
                                 stdout=subprocess.PIPE)
        sim = subprocess.Popen([sys.executable, "-m", "edge_server.cli", "genset-sim", "--unit",
                                str(UNIT), "--rtu", str(d / "ctrl"), "--baud", str(BAUD),
                                "--mode", "test"], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL)
        try:
            assert relay.stdout is not None and sim.stdout is not None
            relay.stdout.readline()  # "ready"
            sim.stdout.readline()  # "genset-sim: unit 10 on rtu ..."
            times, offline, reads = asyncio.run(_cycles(str(d / "master")))
        finally:
            for p in (sim, relay, *procs):
                p.terminate()
                p.wait(timeout=5)
    ceiling = ceiling_cycle_s(reads)
    median = statistics.median(times)
    pdf_s, pdf_bytes = _pdf_s()
    words = sum(n for _, n in reads)
    return [
        ("DSE GenComm poll cycle over RTU 19,200 baud (paced relay), median of "
         f"{CYCLES}", f"{median * 1000:.0f} ms ({len(reads)} reads, {words} registers, "
                     f"{offline} offline)"),
        ("frame-timing ceiling for the same reads", f"{ceiling * 1000:.0f} ms"),
        ("line efficiency (ceiling / achieved)", f"{ceiling / median:.3f}"),
        ("generator-test PDF report (180 samples), median of 5",
         f"{pdf_s * 1000:.0f} ms ({pdf_bytes / 1024:.0f} KiB)"),
    ]


if __name__ == "__main__":
    for figure, value in main():
        print(f"{figure}: {value}")
