"""Bad input from the generator controller: an unplugged sensor on the virtual DSE controller,
over real TCP, decodes as a fault, never a number, on unsigned AND signed registers (GenComm's
signed sentinels are at the top of the positive range, 0x7FF8-0x7FFF / 0x7FFFFFF8-0x7FFFFFFF,
not -1..-8), a value outside its channel's range is a fault too, and the other channels and the
nodes keep polling."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge_server.clock import ManualClock
from edge_server.config import parse_config
from edge_server.genset.codec import Fault, decode, encode
from edge_server.genset.driver import GensetDriver
from edge_server.genset.engine import EngineModel
from edge_server.genset.monitor import GensetMonitor
from edge_server.genset.profile import load_profile
from edge_server.genset.sim import VirtualController
from edge_server.poller import Poller
from edge_server.state import SiteState
from tests.conftest import free_port
from tests.test_genset_driver import tcp_hub
from tests.test_genset_service import ctrl, site  # noqa: F401  (fixture)

DSE = load_profile("dse-gencomm")
SMARTGEN = load_profile("smartgen-hgm6100n")
T0 = datetime(2026, 5, 4, 10, tzinfo=UTC)
UNPLUGGED = ("gen_kw", "oil_pressure_kpa", "coolant_temp_c")


@pytest.mark.parametrize(("name", "words"), [
    ("gen_kw", [0x7FFF, 0xFFFC]), ("gen_kw", [0x7FFF, 0xFFF8]), ("gen_kw", [0x7FFF, 0xFFFF]),
    ("coolant_temp_c", [0x7FFC]), ("coolant_temp_c", [0x7FF8]), ("gen_pf", [0x7FFF]),
    ("oil_pressure_kpa", [0xFFFC]), ("gen_l1n_v", [0xFFFF, 0xFFF8]),
])
def test_signed_and_unsigned_sentinels_are_faults(name: str, words: list[int]) -> None:
    got = decode(DSE.channel(name), words, DSE.profile)
    assert isinstance(got, Fault) and "sentinel" in got.reason


@pytest.mark.parametrize(("name", "value"), [
    ("gen_kw", -0.004), ("gen_kw", -12.5), ("gen_kw", 14.0), ("coolant_temp_c", -4.0),
    ("coolant_temp_c", 85.0), ("gen_pf", -0.8),
])
def test_negative_values_of_signed_channels_still_decode(name: str, value: float) -> None:
    """A real negative reading (reverse power, frost) is a number: -1..-8 are no sentinels."""
    ch = DSE.channel(name)
    assert decode(ch, encode(ch, value, DSE.profile), DSE.profile) == value


def test_out_of_range_is_a_fault_on_either_side() -> None:
    ch = DSE.channel("coolant_temp_c")
    for value in (-51.0, 201.0):
        got = decode(ch, encode(ch, value, DSE.profile), DSE.profile)
        assert isinstance(got, Fault) and got.reason.startswith("out of range -50..200")


def test_a_profile_without_sentinels_still_faults_an_unplugged_signed_sensor() -> None:
    """SmartGen declares no sentinels: the simulator writes the type's largest number, which is
    past the channel's range: a fault by range, never a value."""
    sim = VirtualController(SMARTGEN, EngineModel(), unit=1)
    sim.unplug.add("coolant_temp_c")
    sim.refresh()
    ch = SMARTGEN.channel("coolant_temp_c")
    got = decode(ch, sim.words[ch.address:ch.address + 1], SMARTGEN.profile)
    assert isinstance(got, Fault) and got.reason.startswith("out of range")


async def test_unplugged_kw_oil_and_coolant_over_tcp_are_faults_and_polling_goes_on(
        tmp_path: Path, ctrl: VirtualController) -> None:  # noqa: F811
    config = parse_config(site(ctrl.port, tmp_path))
    clock = ManualClock(T0)
    state = SiteState("nsp-test")
    poller = Poller(config, state, clock)
    monitor = GensetMonitor(config.generators, poller, state, clock)
    await poller.poll_once()
    assert monitor.load_pct() == 43.8  # 14 of 32 kW: the set is read before the unplugging
    ctrl.unplug.update(UNPLUGGED)
    ctrl.refresh()
    for _ in range(2):  # two cycles: a fault stays a fault, never the last number
        clock.advance(2)
        await poller.poll_once()
    r = monitor.last["gen"]
    assert r.online
    for name in UNPLUGGED:
        assert name not in r.values and "sentinel" in r.faults[name].reason
        reading = state.get(f"gen.{name}")
        assert reading is not None and not reading.ok and reading.value is None
    assert monitor.load_pct() is None  # no load measured: never -0.004 kW
    # every other channel of the controller keeps its value
    assert r.values["gen_frequency_hz"] == 50.0 and r.values["gen_l1n_v"] == 230.0
    assert r.values["engine_speed_rpm"] == 1500
    ok = state.get("gen.gen_frequency_hz")
    assert ok is not None and ok.ok and ok.at == clock.now()
    # the power node on its (dead) bus was polled in the same cycles: offline, not stuck
    assert not state.nodes["power"].online
    ctrl.unplug.clear()  # plugged back in: numbers again
    ctrl.refresh()
    clock.advance(2)
    await poller.poll_once()
    assert monitor.last["gen"].faults == {} and monitor.load_pct() == 43.8


async def test_genset_sim_command_unplugs_sensors_and_refuses_an_unknown_one() -> None:
    """`nsp-edge genset-sim --unplug` as a real process: the driver reads kW and coolant as
    faults over TCP while frequency and speed are numbers; a channel the profile lacks is
    refused with the list of channels."""
    exe = Path(sys.executable).with_name("nsp-edge")
    tcp = f"127.0.0.1:{free_port()}"
    bad = subprocess.run([str(exe), "genset-sim", "--unit", "10", "--tcp", tcp,
                          "--unplug", "gen_kwh"], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 2 and "gen_kwh: no such channel" in bad.stderr
    assert "gen_kw," in bad.stderr
    proc = await asyncio.create_subprocess_exec(
        str(exe), "genset-sim", "--unit", "10", "--tcp", tcp, "--mode", "test",
        "--step-s", "0.1", "--unplug", "gen_kw", "--unplug", "coolant_temp_c",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
        port = int(line.rsplit(":", 1)[1])
        hub = tcp_hub(port)
        try:
            r = await GensetDriver(DSE, hub, 10).read()
        finally:
            hub.client.close()
        assert r.online, r.error
        assert set(r.faults) == {"gen_kw", "coolant_temp_c"}
        assert "gen_kw" not in r.values and "coolant_temp_c" not in r.values
        assert "engine_speed_rpm" in r.values and "gen_frequency_hz" in r.values
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 30)
    assert proc.returncode == 0
