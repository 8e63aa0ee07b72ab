"""The virtual DSE controller: its engine model on injected time, and the real pymodbus server at
the GenComm addresses, read by mbpoll (identity, a frequency, a kW value) and commanded with the
system control key and its complement (one function-16 write; without the complement: refused)."""

from __future__ import annotations

import asyncio
import re
import subprocess
from collections.abc import AsyncIterator

import pytest

from edge_server.genset.engine import EngineModel
from edge_server.genset.profile import load_profile
from edge_server.genset.sim import VirtualController
from tests.conftest import need_tool

DSE = load_profile("dse-gencomm")


def run_for(e: EngineModel, seconds: float, dt: float = 0.5) -> None:
    for _ in range(round(seconds / dt)):
        e.step(dt)


def test_engine_starts_on_an_outage_settles_and_burns_fuel_with_load() -> None:
    e = EngineModel(load_kw=lambda _t: 16.0, tank_l=[400.0])
    run_for(e, 30)
    assert e.state == "off" and e.kw == 0.0  # auto, mains present: stays off
    e.mains_present = False
    run_for(e, 1)
    assert e.state == "cranking"
    run_for(e, 15)
    assert e.state == "running" and e.starts == 1
    assert e.frequency_hz == pytest.approx(50.0, abs=0.05)
    assert e.voltage_v == pytest.approx(230, abs=0.5)
    assert e.kw == 16.0 and e.on_load()
    cold = e.coolant_c
    before = e.tank_l[0]
    run_for(e, 3600, dt=5)
    assert cold < 40 < e.coolant_c < 86  # rising toward 85 °C
    assert before - e.tank_l[0] == pytest.approx(0.8 + 0.25 * 16.0, rel=0.01)  # L in one hour
    e.mains_present = True
    run_for(e, 2)
    assert e.state == "cooldown" and e.kw == 0.0
    run_for(e, 70)
    assert e.state == "off"


@pytest.mark.parametrize("fault", ["low_oil_pressure", "high_coolant_temp", "over_speed"])
def test_shutdown_alarms_latch_until_reset(fault: str) -> None:
    e = EngineModel(mode="test", fault=fault, coolant_c=104.0)  # a hot engine: quick
    run_for(e, 120)
    assert e.alarms == {fault: "shutdown"} and e.state == "off"
    e.fault = None
    run_for(e, 30)
    assert e.state == "off"  # latched
    e.reset_alarms()
    run_for(e, 20)
    assert e.state == "running"


def test_crank_that_fails_three_times_is_fail_to_start() -> None:
    e = EngineModel(mode="test", crank_fails=True)
    run_for(e, 60)
    assert e.alarms == {"fail_to_start": "shutdown"} and e.state == "off" and e.starts == 0


@pytest.fixture
async def ctrl() -> AsyncIterator[VirtualController]:
    c = VirtualController(DSE, EngineModel(mode="test", load_kw=lambda _t: 12.5), unit=10)
    await c.start_tcp("127.0.0.1", 0)
    try:
        yield c
    finally:
        await c.stop()


async def mbpoll(port: int, *args: str) -> list[str]:
    tool = need_tool("mbpoll", "apt-get install -y mbpoll")
    proc = await asyncio.create_subprocess_exec(
        tool, "-m", "tcp", "-p", str(port), "-a", "10", "-0", "-1", "-o", "2", *args,
        "127.0.0.1", stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err.decode()
    return re.findall(r"^\[\d+\]:\s+(-?\d+)", out.decode(), re.M)


async def test_mbpoll_reads_identity_frequency_and_kw_at_the_gencomm_addresses(
        ctrl: VirtualController) -> None:
    for _ in range(40):
        ctrl.step(0.5)
    # page 0 offsets 0-3: manufacturer 1 (DSE), model, serial (32 bits, high word first)
    ident = await mbpoll(ctrl.port, "-t", "4", "-r", "0", "-c", "4")
    assert ident[:2] == ["1", "7320"]
    assert (int(ident[2]) << 16) + int(ident[3]) == 21_04_0815
    # page 4 offset 7: generator frequency in 0.1 Hz
    assert await mbpoll(ctrl.port, "-t", "4", "-r", str(4 * 256 + 7), "-c", "1") == ["500"]
    # page 6 offsets 0-1: generator total watts, signed 32 bits, high word first
    assert await mbpoll(ctrl.port, "-t", "4:int", "-B", "-r", str(6 * 256), "-c", "1") == [
        "12500"]


async def test_control_key_needs_its_complement_in_the_same_write(
        ctrl: VirtualController) -> None:
    from pymodbus.client import AsyncModbusTcpClient

    client = AsyncModbusTcpClient("127.0.0.1", port=ctrl.port)
    await client.connect()
    try:
        bad = await client.write_registers(4104, [35700, 0], device_id=10)
        assert bad.isError() and ctrl.engine.mode == "test" and ctrl.rejected_writes == 1
        alone = await client.write_registers(4104, [35700], device_id=10)
        assert alone.isError() and ctrl.engine.mode == "test"
        ok = await client.write_registers(4104, [35700, 0xFFFF - 35700], device_id=10)
        assert not ok.isError() and ctrl.engine.mode == "stop" and ctrl.commands == ["stop"]
        mode = await client.read_holding_registers(772, count=1, device_id=10)
        assert mode.registers == [0]  # page 3: stop
    finally:
        client.close()


async def test_an_unplugged_sensor_reads_the_gencomm_sentinel(ctrl: VirtualController) -> None:
    ctrl.unplug.add("oil_pressure_kpa")
    ctrl.refresh()
    assert await mbpoll(ctrl.port, "-t", "4", "-r", "1024", "-c", "1") == ["65532"]
