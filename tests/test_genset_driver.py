"""The generator-controller driver (edge_server/genset/driver.py) against the virtual DSE
controller, a real pymodbus server, over TCP and over RTU (a socat pty pair), through the
poller's BusHub and BusClient: values at the GenComm addresses, alarms mapped to our alert
codes, the control key with its complement; a controller answering exceptions, one off the bus
and an unplugged sensor give a clear fault, never a plausible wrong value."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from edge_server.config import RtuBus, TcpBus
from edge_server.genset.driver import GensetDriver, blocks
from edge_server.genset.engine import EngineModel
from edge_server.genset.profile import load_profile
from edge_server.genset.sim import VirtualController
from edge_server.modbus_client import BusClient
from edge_server.poller import BusHub
from tests.test_fw_modbus_rtu import pty_pair  # noqa: F401  (fixture)

DSE = load_profile("dse-gencomm")
UNIT = 10


def tcp_hub(port: int) -> BusHub:
    bus = TcpBus(name="gen", kind="tcp", host="127.0.0.1", port=port)
    return BusHub(bus, BusClient(bus, timeout_s=0.5, retries=0))


@pytest.fixture
async def ctrl() -> AsyncIterator[VirtualController]:
    c = VirtualController(DSE, EngineModel(mode="test", load_kw=lambda _t: 14.0), unit=UNIT)
    await c.start_tcp("127.0.0.1", 0)
    try:
        yield c
    finally:
        await c.stop()


def test_reads_are_merged_per_page() -> None:
    reads = GensetDriver(DSE, tcp_hub(1), UNIT).reads
    # page 4: offsets 0..25 (engine, generator) and 35..41 (mains) in two requests
    assert [r for r in reads if r[0] // 256 == 4] == [(1024, 26), (1059, 7)]
    assert all(start // 256 == (start + n - 1) // 256 for start, n in reads)
    assert blocks([(0, 1), (5, 2), (300, 1)], 64) == [(0, 7), (300, 1)]
    assert blocks([(0, 1), (70, 1)], 64) == [(0, 1), (70, 1)]


async def test_driver_reads_a_running_set_over_tcp(ctrl: VirtualController) -> None:
    for _ in range(40):
        ctrl.step(0.5)
    hub = tcp_hub(ctrl.port)
    try:
        r = await GensetDriver(DSE, hub, UNIT).read()
    finally:
        hub.client.close()
    assert r.online and r.error is None and r.faults == {}
    assert r.identity == {"manufacturer_code": 1, "model_number": 7320,
                          "serial_number": 21_04_0815}
    assert r.mode == "test"
    v = r.values
    assert v["gen_frequency_hz"] == 50.0 and v["engine_speed_rpm"] == 1500
    assert v["gen_l1n_v"] == pytest.approx(230.0, abs=0.2)
    assert v["gen_kw"] == 14.0 and v["gen_load_pct"] == pytest.approx(43.8, abs=0.05)
    assert v["mains_l1n_v"] == 231.0 and v["mains_frequency_hz"] == 50.0
    assert v["oil_pressure_kpa"] > 300 and 15 <= v["coolant_temp_c"] < 30
    assert v["starts"] == 1 and r.alarms == []


async def test_alarms_map_to_alert_codes_and_commands_use_the_key(
        ctrl: VirtualController) -> None:
    ctrl.engine.fault = "low_oil_pressure"
    for _ in range(80):
        ctrl.step(0.5)
    hub = tcp_hub(ctrl.port)
    driver = GensetDriver(DSE, hub, UNIT)
    try:
        r = await driver.read()
        assert [(a.code, a.severity) for a in r.alarms] == [("GENSET_LOW_OIL_PRESSURE",
                                                             "shutdown")]
        assert r.alarms[0].text_nl == "Lage oliedruk"
        await driver.command("reset_alarms")
        await driver.command("auto")
        r = await driver.read()
        assert r.alarms == [] and r.mode == "auto"
        assert ctrl.commands == ["reset_alarms", "auto"] and ctrl.rejected_writes == 0
        with pytest.raises(KeyError, match="no command 'explode'"):
            await driver.command("explode")
    finally:
        hub.client.close()


async def test_exceptions_off_bus_and_unplugged_sensor_are_faults(
        ctrl: VirtualController) -> None:
    hub = tcp_hub(ctrl.port)
    driver = GensetDriver(DSE, hub, UNIT)
    try:
        ctrl.unplug.add("oil_pressure_kpa")
        ctrl.engine.coolant_c = 260.0  # past the channel's 200 °C: a broken sender
        ctrl.refresh()
        r = await driver.read()
        assert r.online and "oil_pressure_kpa" not in r.values
        assert "sentinel" in r.faults["oil_pressure_kpa"].reason
        assert "coolant_temp_c" not in r.values
        assert r.faults["coolant_temp_c"].reason.startswith("out of range -50..200")
        ctrl.fail_reads = True
        r = await driver.read()
        assert not r.online and r.values == {} and r.error is not None
        assert "exception" in r.error.lower()
        await ctrl.stop()  # off the bus
        r = await driver.read()
        assert not r.online and r.values == {} and "no answer" in (r.error or "")
    finally:
        hub.client.close()


async def test_driver_over_rtu_on_a_pty(pty_pair: tuple[str, str]) -> None:  # noqa: F811
    ctrl = VirtualController(DSE, EngineModel(mode="test", load_kw=lambda _t: 9.5), unit=UNIT)
    for _ in range(40):
        ctrl.step(0.5)
    # a pty refuses parity bits: no parity with two stop bits (the same 11-bit character)
    await ctrl.start_rtu(pty_pair[0], baudrate=19200, parity="N", stopbits=2)
    bus = RtuBus(name="gen", kind="rtu", port=pty_pair[1], baudrate=19200, parity="N",
                 stopbits=2)
    hub = BusHub(bus, BusClient(bus, timeout_s=1.0, retries=1))
    try:
        r = await GensetDriver(DSE, hub, UNIT).read()
        assert r.online, r.error
        assert r.values["gen_frequency_hz"] == 50.0 and r.values["gen_kw"] == 9.5
        assert r.identity["manufacturer_code"] == 1
    finally:
        hub.client.close()
        await ctrl.stop()
