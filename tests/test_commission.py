"""`nsp-edge commission` against real virtual nodes (the firmware on MicroPython) over Modbus TCP
and over RTU through a socat pty pair, plus the pure checks and the "every bit has a sentence"
rule. No sleeps: the nodes run on a virtual clock moved with the control op `advance`."""

from __future__ import annotations

import asyncio
import getpass
import io
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import jsonschema  # type: ignore[import-untyped]
import pytest
from pymodbus.client import AsyncModbusTcpClient

from edge_server import cli, regmap
from edge_server.clock import SystemClock
from edge_server.commands.commission import commission_main
from edge_server.commission.assess import (
    REPORT_SCHEMA,
    SiteReport,
    Target,
    assess_node,
    changes,
)
from edge_server.commission.texts import BIT_TEXTS, FAULTS_OF, IO_MESSAGES, MESSAGES, Level
from edge_server.commission.walkaround import STEPS
from edge_server.config import load_config
from edge_server.hub.testing import running_hub
from edge_server.modbus_client import BusClient
from edge_server.uplink.client import Uplink
from edge_server.uplink.outbox import Outbox
from edge_server.vnode import VirtualNode
from tests.conftest import refused_port
from tests.test_fw_modbus_rtu import pty_pair  # noqa: F401  (fixture: socat pty pair)
from tests.test_hub_api import schema_validator
from tests.vnode_fixtures import vnode_factory  # noqa: F401  (fixture)

Factory = Callable[..., VirtualNode]
FUEL_OPEN_NL = "Brandstofsensor: open kring (lusstroom onder 3,6 mA): controleer de bedrading " \
    "van de 4-20 mA-lus (B1, A1) en de 24 V-lusvoeding (PS1)."
FUEL_OPEN_EN = "Fuel sender: open circuit (loop current below 3.6 mA): check the 4-20 mA loop " \
    "wiring (B1, A1) and the 24 V loop supply (PS1)."


def start(factory: Factory, unit: int, roles: tuple[str, ...], **kw: Any) -> VirtualNode:
    node = factory(unit=unit, roles=roles, virtual_clock=True, **kw)
    node.control({"op": "advance", "ms": 5_000})  # probes converted, fuel filter settled
    return node


def site_toml(tmp_path: Path, nodes: list[tuple[str, VirtualNode | int, int, list[str]]],
              timeout_s: float = 0.5) -> Path:
    """A site.toml with one TCP bus per node: (name, node or port, unit, roles)."""
    text = f'[site]\nid = "nsp-test-01"\n[poll]\ntimeout_s = {timeout_s}\nretries = 0\n'
    for name, node, unit, roles in nodes:
        port = node if isinstance(node, int) else node.tcp_port
        text += (f'[[buses]]\nname = "{name}-bus"\nkind = "tcp"\nhost = "127.0.0.1"\n'
                 f'port = {port}\n')
        text += (f'[[nodes]]\nname = "{name}"\nbus = "{name}-bus"\nunit = {unit}\n'
                 f'roles = {json.dumps(roles)}\n')
    path = tmp_path / "site.toml"
    path.write_text(text)
    return path


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = cli.main(["commission", *argv])
    out, err = capsys.readouterr()
    return rc, out, err


# ---------------------------------------------------------------- the register map's bits
def test_every_map_bit_has_dutch_and_english_text() -> None:
    rmap = regmap.load()
    bits = {f"{r.name}.{b}" for r in rmap.registers for b in r.bits.values()}
    missing = sorted(k for k in bits if k not in BIT_TEXTS or not BIT_TEXTS[k].nl.strip()
                     or not BIT_TEXTS[k].en.strip())
    assert not missing, f"bits in registers.toml without NL+EN text in commission/texts.py: " \
        f"{missing}"
    assert sorted(set(BIT_TEXTS) - bits) == [], "texts for bits the map no longer has"
    fault_bits = {b for r in rmap.registers if r.name.endswith("_faults") for b in r.bits.values()}
    for reading, faults in FAULTS_OF.items():
        rmap.register(reading)  # KeyError: a reading that is not in the map
        assert set(faults) <= fault_bits, (reading, faults)
    for step in STEPS:  # --test-io: a prompt and both results, in both languages
        for key in (step.key, f"{step.key}.ok", f"{step.key}.fail"):
            assert all(IO_MESSAGES[key]), key
    for key, (nl, en) in MESSAGES.items():
        assert nl.strip() and en.strip() and nl != en or key in (
            "node_id_ok", "watch_changed"), key


# ---------------------------------------------------------------- pure checks
def image(**values: int) -> list[int]:
    """A register image of a healthy power node, with raw values overridden by name."""
    rmap = regmap.load()
    words = [0] * rmap.image_size
    raw = {"map_version": 1, "node_id": 1, "roles": 1, "fw_minor": 1, "free_heap_b": 60000,
           "reset_cause": 1, "mains_present": 1, "fuel_sender_ma": 12000, "fuel_level_pct": 500,
           "fuel_l": 7000, "starter_battery_v": 1270, "starter_battery_min_v": 0xFFFF,
           "battery_v": 1280, "battery_soc_pct": 900, "fridge_low_c": 200,
           "fridge_high_c": 800, **values}
    for name, value in raw.items():
        reg = rmap.register(name)
        if reg.words == 2:
            words[reg.address: reg.address + 2] = [value >> 16, value & 0xFFFF]
        else:
            words[reg.address] = value
    return words


def levels(words: list[int], roles: tuple[str, ...] = ("power",)) -> dict[str, Level]:
    report = assess_node(Target("power", "bus", 1, roles), "tcp x", words)
    return {c.code: c.level for c in report.checks}


def test_pure_checks_flag_what_a_technician_must_see() -> None:
    assert max(levels(image()).values()) <= Level.PASS
    assert levels(image(reset_cause=3))["reset_cause"] == Level.WARN  # watchdog
    assert levels(image(crc_errors=4))["crc_errors"] == Level.WARN
    assert levels(image(status=2))["safe_mode"] == Level.FAIL
    assert levels(image(status=1))["config_error"] == Level.FAIL
    assert levels(image(free_heap_b=9000))["free_heap"] == Level.WARN
    assert levels(image(gen_running=1))["gen_sense"] == Level.WARN  # relay off, mains on
    assert "gen_sense" not in levels(image(gen_running=1, gen_state=4))  # cooling down after
    assert levels(image(mains_present=0))["mains_sense"] == Level.WARN  # and no generator
    assert levels(image(relay_on=1, gen_running=1, gen_state=2))["relay_on"] == Level.WARN
    assert levels(image(starter_battery_v=1190))["starter_battery"] == Level.WARN
    report = assess_node(Target("power", "bus", 1, ("power",)), "tcp x", image(crc_errors=4))
    crc = next(c for c in report.checks if c.code == "crc_errors")
    assert "120 ohm" in crc.text["en"] and "biasing" in crc.text["nl"]


def test_watch_shows_news_not_noise() -> None:
    target = Target("power", "bus", 1, ("power",))
    before = SiteReport([assess_node(target, "tcp x", image())])
    after = SiteReport([assess_node(target, "tcp x", image(
        uptime_s=9, free_heap_b=50000, battery_v=1282, starter_battery_v=1190, mains_present=0,
        fuel_sender_ma=0xFFFF, power_faults=1))])
    lines = changes(before, after, "en")
    assert "power(1): mains_present: 1 → 0" in lines
    assert "power(1): fuel_sender_ma: 12.000 mA → n/a" in lines
    assert "power(1): starter_battery_v: 12.70 V → 11.90 V" in lines  # 6 %: news
    assert not [x for x in lines if "battery_v:" in x and "starter" not in x]  # 0.2 %: noise
    assert not [x for x in lines if "uptime_s" in x or "free_heap_b" in x]
    assert any(x.startswith("power(1): FAIL  Fuel sender: open circuit") for x in lines)
    assert "power(1): Overall: PASS → FAIL" in lines


def test_unknown_map_version_is_refused_with_the_fix() -> None:
    report = assess_node(Target("power", "bus", 1, ("power",)), "tcp x", [7])
    assert report.level == Level.FAIL and not report.blocks
    text = report.checks[0].text
    assert "versie 7" in text["nl"] and "flash" in text["nl"]
    assert "Update the edge service or flash a matching firmware" in text["en"]


# ---------------------------------------------------------------- real nodes over TCP
def test_healthy_site_passes_and_json_validates(vnode_factory: Factory, tmp_path: Path,  # noqa: F811
                                                capsys: pytest.CaptureFixture[str]) -> None:
    nodes = [start(vnode_factory, 1, ("power",)), start(vnode_factory, 2, ("fridge",)),
             start(vnode_factory, 3, ("entrance",))]
    cfg = site_toml(tmp_path, [("power", nodes[0], 1, ["power"]),
                               ("fridge", nodes[1], 2, ["fridge"]),
                               ("entrance", nodes[2], 3, ["entrance"])])
    t0 = time.monotonic()
    rc, out, _ = run_cli(capsys, "--config", str(cfg))
    seconds = time.monotonic() - t0
    assert rc == 0, out
    assert "Totaal: PASS (exit 0)" in out
    assert "fuel_sender_ma" in out and " mA" in out and "fridge_temp_c          5.00 °C" in out
    assert seconds < 5, seconds  # measured ~0.1 s for three nodes (docs/commissioning.md)
    rc, out, _ = run_cli(capsys, "--config", str(cfg), "--json", "--lang", "en")
    report = json.loads(out)
    jsonschema.validate(report, REPORT_SCHEMA)
    assert rc == 0 and report["result"] == "PASS" and len(report["nodes"]) == 3
    assert report["nodes"][1]["values"]["fridge_temp_c"]["unit"] == "°C"


def test_fuel_sender_open_fails_in_dutch_and_english(
        vnode_factory: Factory, tmp_path: Path,  # noqa: F811
        capsys: pytest.CaptureFixture[str]) -> None:
    node = start(vnode_factory, 1, ("power",))
    node.control({"op": "set", "key": "fuel_sender_open", "value": True})
    node.control({"op": "advance", "ms": 5_000})
    cfg = site_toml(tmp_path, [("power", node, 1, ["power"])])
    rc, out, _ = run_cli(capsys, "--config", str(cfg))
    assert rc == 2
    assert f"FAIL  {FUEL_OPEN_NL}" in out
    assert "[fuel_open_loop]" in out and "Totaal: FAIL (exit 2)" in out
    rc, out, _ = run_cli(capsys, "--config", str(cfg), "--lang", "en")
    assert rc == 2 and f"FAIL  {FUEL_OPEN_EN}" in out and "Overall: FAIL" in out
    rc, out, _ = run_cli(capsys, "--config", str(cfg), "--json")
    report = json.loads(out)
    jsonschema.validate(report, REPORT_SCHEMA)
    values = report["nodes"][0]["values"]
    assert values["fuel_sender_ma"]["faults"] == ["fuel_open_loop"]
    assert {"level": "FAIL", "code": "fuel_open_loop", "text": FUEL_OPEN_NL} in \
        report["nodes"][0]["checks"]


def test_probe_unplugged_fails_after_the_missing_delay(
        vnode_factory: Factory, capsys: pytest.CaptureFixture[str]) -> None:  # noqa: F811
    node = start(vnode_factory, 2, ("fridge",))
    node.control({"op": "set", "key": "fridge_probe_unplugged", "value": True})
    node.control({"op": "advance", "ms": 30_000})
    argv = ("--tcp", f"127.0.0.1:{node.tcp_port}", "--unit", "2", "--json")
    report = json.loads(run_cli(capsys, *argv)[1])
    fridge = report["nodes"][0]
    assert fridge["values"]["fridge_temp_c"]["value"] is None  # n/a at once, no fault bit yet
    assert "fridge_probe_missing" not in {c["code"] for c in fridge["checks"]}
    node.control({"op": "advance", "ms": 600_000})  # probe_missing_s default 600 s
    rc, out, _ = run_cli(capsys, *argv[:-1])
    assert rc == 2
    assert "FAIL  Koelkastsensor (T1) geeft al langer dan probe_missing_s geen meting" in out
    assert "4,7k pull-up" in out and "n.b.  [fridge_probe_missing]" in out


def test_wrong_unit_and_roles_fail_naming_both(vnode_factory: Factory, tmp_path: Path,  # noqa: F811
                                               capsys: pytest.CaptureFixture[str]) -> None:
    node = start(vnode_factory, 3, ("power",))
    cfg = site_toml(tmp_path, [("fridge", node, 5, ["fridge"])])
    rc, out, _ = run_cli(capsys, "--config", str(cfg))
    assert rc == 2
    assert "node_id op het bord is 3, maar site.toml verwacht unit 5" in out
    assert "Rollen op het bord: power (stroom en aggregaat); site.toml verwacht: fridge " \
        "(medicijnkoelkast)" in out
    cfg = site_toml(tmp_path, [("fridge", node, 3, ["fridge", "power"])])
    rc, out, _ = run_cli(capsys, "--config", str(cfg), "--lang", "en")
    assert rc == 2 and "node_id 3 = unit 3" in out
    assert "Roles on the board: power (power and generator); site.toml expects: fridge " \
        "(medicine fridge), power (power and generator)" in out


def test_silent_unit_is_a_clear_error_within_the_timeout(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    async def serve() -> tuple[int, str, str, float]:
        async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await reader.read(-1)  # accepts the connection, never answers
            writer.close()

        server = await asyncio.start_server(swallow, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        cfg = site_toml(tmp_path, [("power", port, 1, ["power"])], timeout_s=0.3)
        args = cli.build_parser().parse_args(["commission", "--config", str(cfg)])
        out = io.StringIO()
        t0 = time.monotonic()
        rc = await commission_main(args, out=out)
        server.close()
        await server.wait_closed()
        return rc, out.getvalue(), str(port), time.monotonic() - t0

    rc, out, port, seconds = asyncio.run(serve())
    assert rc == 2
    assert f"Geen antwoord van unit 1 op tcp 127.0.0.1:{port} binnen 0.3 s" in out
    assert "A/B" not in out and "baudrate" not in out  # no serial hints for a TCP node
    # the unit itself, then unit 255 (whoever is there over TCP): two timeouts of 0.3 s
    assert seconds < 0.3 * 2 + 0.5, seconds


def test_port_missing_and_bad_config_are_clear(tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = run_cli(capsys, "--rtu", str(tmp_path / "ttyUSB9"), "--unit", "1")
    assert rc == 2 and "Kan rtu" in out and "niet openen" in out and "dialout" in out
    with refused_port() as port:
        rc, out, _ = run_cli(capsys, "--tcp", f"127.0.0.1:{port}", "--units", "1-3")
    # the hint matches the transport: over TCP no USB adapter, wiring or baud rate
    assert rc == 2 and "Kan geen verbinding maken met tcp 127.0.0.1" in out and "ping" in out
    assert "USB" not in out and "dialout" not in out
    bad = tmp_path / "bad.toml"
    bad.write_text('[site]\nid = "nsp-x1"\n[[buses]]\nname = "b"\nkind = "rtu"\nport = "/dev/x"\n'
                   'baudrate = 19201\n[[nodes]]\nname = "p"\nbus = "b"\nunit = 1\n'
                   'roles = ["power"]\n')
    rc, _, err = run_cli(capsys, "--config", str(bad))
    assert rc == 2 and "buses[0].baudrate" in err and "fix: one of 1200" in err
    good = site_toml(tmp_path, [("power", 1502, 1, ["power"])])
    rc, _, err = run_cli(capsys, "--config", str(good), "--unit", "7")
    assert rc == 2 and "--unit 7: geen knooppunt met die unit" in err and "wel: 1" in err


def test_scan_over_tcp_finds_exactly_the_node(vnode_factory: Factory,  # noqa: F811
                                              capsys: pytest.CaptureFixture[str]) -> None:
    node = start(vnode_factory, 4, ("entrance",))
    rc, out, _ = run_cli(capsys, "--tcp", f"127.0.0.1:{node.tcp_port}", "--units", "1-6",
                         "--json")
    report = json.loads(out)
    jsonschema.validate(report, REPORT_SCHEMA)
    assert rc == 0 and [n["unit"] for n in report["nodes"]] == [4]
    assert report["site_checks"][0]["code"] == "scan_found"
    rc, out, _ = run_cli(capsys, "--tcp", f"127.0.0.1:{node.tcp_port}", "--units", "1-2")
    assert rc == 2 and "Geen enkele unit in 1-2 antwoordde op tcp" in out


# ---------------------------------------------------------------- --watch and read-only
def test_watch_shows_the_door_and_never_writes(vnode_factory: Factory, tmp_path: Path,  # noqa: F811
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    writes: list[str] = []

    async def refuse(self: BusClient, *args: Any, **kw: Any) -> None:
        writes.append(repr(args))
        raise AssertionError("commission wrote to a node")

    monkeypatch.setattr(BusClient, "write_coil", refuse)
    monkeypatch.setattr(BusClient, "write_register", refuse)
    node = start(vnode_factory, 1, ("power", "fridge"))
    cfg = site_toml(tmp_path, [("node", node, 1, ["power", "fridge"])])
    story = iter([("door_open", True), ("door_open", False)])

    async def walk_around(seconds: float) -> None:  # instead of waiting: the technician acts
        assert seconds == 5
        key, value = next(story)
        node.control({"op": "set", "key": key, "value": value})
        node.control({"op": "advance", "ms": 5_000})  # the door input is debounced

    args = cli.build_parser().parse_args(["commission", "--config", str(cfg), "--watch", "5"])
    out = io.StringIO()
    rc = asyncio.run(commission_main(args, out=out, iterations=2, sleep=walk_around))
    text = out.getvalue()
    assert "node(1): door_open: 0 → 1" in text
    assert "node(1): WARN  Koelkastdeur open" in text
    assert "node(1): door_open: 1 → 0" in text
    assert rc == 0 and writes == []

    async def relay_and_coil() -> tuple[list[int], list[bool]]:
        assert node.tcp_port is not None
        client = AsyncModbusTcpClient("127.0.0.1", port=node.tcp_port, timeout=2)
        await client.connect()
        try:
            relay = await client.read_holding_registers(22, count=1, device_id=1)
            coils = await client.read_coils(0, count=1, device_id=1)
            return list(relay.registers), list(coils.bits[:1])
        finally:
            client.close()

    assert asyncio.run(relay_and_coil()) == ([0], [False])  # relay_on 0, gen_test_run coil 0
    assert node.control({"op": "get"})["world"]["relay_on"] is False


# ---------------------------------------------------------------- RTU through a pty pair
def test_rtu_scan_and_silent_unit(vnode_factory: Factory,  # noqa: F811
                                  pty_pair: tuple[str, str],  # noqa: F811
                                  capsys: pytest.CaptureFixture[str]) -> None:
    start(vnode_factory, 9, ("fridge",), rtu=pty_pair[0], tcp=False)
    rc, out, _ = run_cli(capsys, "--rtu", pty_pair[1], "--parity", "N", "--units", "7-11")
    assert rc == 0, out
    assert "Gevonden op rtu" in out and ": 9 (" in out and "unit9 (unit 9" in out
    assert "Geen storingen (medicijnkoelkast)." in out
    t0 = time.monotonic()
    rc, out, _ = run_cli(capsys, "--rtu", pty_pair[1], "--parity", "N", "--unit", "4",
                          "--timeout", "0.3")
    seconds = time.monotonic() - t0
    assert rc == 2 and "Geen antwoord van unit 4 op rtu" in out and "binnen 0.6 s" in out
    assert seconds < 0.6 + 0.5, seconds  # 2 tries of 0.3 s, no unit-255 probe on RTU


# ---------------------------------------------------------------- --test-io
def _act(node: VirtualNode, *changes: tuple[str, bool, int]) -> None:
    for key, value, then_ms in changes:
        node.control({"op": "set", "key": key, "value": value})
        node.control({"op": "advance", "ms": then_ms, "step_ms": 50})


def test_test_io_confirms_what_the_node_saw(vnode_factory: Factory,  # noqa: F811
                                            tmp_path: Path) -> None:
    node = start(vnode_factory, 1, ("power", "fridge", "entrance"))
    cfg = site_toml(tmp_path, [("all", node, 1, ["power", "fridge", "entrance"])])
    actions = {  # what the technician does after each prompt, on the simulated site
        "door_open": [("door_open", True, 2_000)],
        "door_closed": [("door_open", False, 2_000)],
        "walk_in": [("beam_a_blocked", True, 150), ("beam_b_blocked", True, 250),
                    ("beam_a_blocked", False, 150), ("beam_b_blocked", False, 2_000)],
        "fuel_unplug": [("fuel_sender_open", True, 5_000)],
        "fuel_replug": [("fuel_sender_open", False, 5_000)],
    }
    out = io.StringIO()
    done: list[str] = []

    async def technician(seconds: float) -> None:
        assert seconds == 0.5
        prompt = [line for line in out.getvalue().splitlines() if "] " in line][-1]
        key = prompt.split("[", 1)[1].split("]", 1)[0]
        if key not in done:
            done.append(key)
            _act(node, *actions[key])

    args = cli.build_parser().parse_args(["commission", "--config", str(cfg), "--test-io"])
    rc = asyncio.run(commission_main(args, out=out, sleep=technician))
    text = out.getvalue()
    assert done == list(actions), text
    assert "all(1) [door_open] Open nu de koelkastdeur." in text
    assert "PASS  Deur open gezien na 0.5 s (door_open = 1)." in text
    assert "PASS  Binnenkomst geteld na 0.5 s (visitors_in +1)." in text
    assert "PASS  Open kring gezien na 0.5 s (fuel_open_loop)." in text
    assert "PASS  Brandstofsensor weer gezien na 0.5 s" in text
    assert rc == 0, text


def test_test_io_fails_when_nothing_happens(vnode_factory: Factory,  # noqa: F811
                                            capsys: pytest.CaptureFixture[str]) -> None:
    node = start(vnode_factory, 2, ("fridge",))
    sleeps: list[float] = []

    async def nobody(seconds: float) -> None:
        sleeps.append(seconds)

    args = cli.build_parser().parse_args(
        ["commission", "--tcp", f"127.0.0.1:{node.tcp_port}", "--unit", "2", "--test-io",
         "--io-timeout", "2", "--lang", "en", "--json"])
    rc = asyncio.run(commission_main(args, sleep=nobody))
    out, err = capsys.readouterr()
    assert rc == 2 and len(sleeps) == 4 + 1  # door open: 4 x 0.5 s; door closed: seen at once
    assert "unit2(2) [door_open] Open the fridge door now." in err
    report = json.loads(out)
    jsonschema.validate(report, REPORT_SCHEMA)
    check = next(c for c in report["nodes"][0]["checks"] if c["code"] == "io_door_open")
    assert check["level"] == "FAIL" and "No open door seen within 2 s" in check["text"]


# ---------------------------------------------------------------- --record: to the C-NSP hub
def test_record_travels_through_the_outbox_to_the_hub(
        vnode_factory: Factory, tmp_path: Path,  # noqa: F811
        capsys: pytest.CaptureFixture[str]) -> None:

    nodes = [start(vnode_factory, 1, ("power",)), start(vnode_factory, 2, ("fridge",))]
    with running_hub(tmp_path / "hub", clock=SystemClock()) as hub:
        key_file = tmp_path / "site.key"
        key_file.write_text(hub.store.add_site("nsp-test-01", SystemClock().now()))
        key_file.chmod(0o600)
        cfg_path = site_toml(tmp_path, [("power", nodes[0], 1, ["power"]),
                                        ("fridge", nodes[1], 2, ["fridge"])])
        data_dir = tmp_path / "data"
        cfg_path.write_text(cfg_path.read_text() + f'[storage]\ndata_dir = "{data_dir}"\n'
                            f'[uplink]\nenabled = true\nhub_url = "{hub.url}"\n'
                            f'key_file = "{key_file}"\n')
        outbox_file = data_dir / "outbox.sqlite"  # where the edge service's uplink sends from

        rc, out, _ = run_cli(capsys, "--config", str(cfg_path))
        assert rc == 0 and not outbox_file.exists()  # the default is read-only: nothing queued
        assert run_cli(capsys, "--config", str(cfg_path), "--by", "x")[0] == 2  # needs --record
        rc, _, err = run_cli(capsys, "--tcp", f"127.0.0.1:{nodes[0].tcp_port}", "--unit", "1",
                             "--record")
        assert rc == 2 and "--record needs --config" in err

        service_outbox = Outbox(outbox_file)  # the running service holds it open (WAL)
        rc, out, _ = run_cli(capsys, "--config", str(cfg_path), "--record", "--by",
                             "Piet Technicus")
        assert rc == 0, out
        assert "Vastgelegd: inbedrijfstelling PASS door Piet Technicus staat klaar voor de " \
            f"C-NSP-hub in {outbox_file}" in out
        queued = service_outbox.next_batch(10)
        assert [m.kind for m in queued] == ["commissioning"]
        body = queued[0].body
        schema_validator("commissioning-body.json").validate(body)
        assert body["site_id"] == "nsp-test-01" and body["by"] == "Piet Technicus"
        assert [(n["name"], n["unit"], n["map_version"], n["result"]) for n in body["nodes"]] \
            == [("power", 1, 1, "PASS"), ("fridge", 2, 1, "PASS")]
        assert all(n["firmware"] and n["problems"] == [] for n in body["nodes"])
        # --json keeps stdout the report; the receipt goes to stderr. By default: the OS user.
        rc, out, err = run_cli(capsys, "--config", str(cfg_path), "--record", "--json",
                               "--lang", "en")
        assert rc == 0 and json.loads(out)["result"] == "PASS"
        assert f"Recorded: commissioning PASS by {getpass.getuser()}" in err
        assert service_outbox.pending_by_kind() == {"commissioning": 2}

        cfg = load_config(cfg_path)
        uplink = Uplink(cfg.site.id, cfg.uplink.load_key(), cfg.uplink, service_outbox,
                        SystemClock())

        async def deliver() -> bool | None:
            try:
                return await uplink.tick()
            finally:
                await uplink.aclose()

        assert asyncio.run(deliver()) is True
        assert service_outbox.pending() == 0
        service_outbox.close()
        token = hub.store.add_user("olga", "operator")
        site = httpx.get(hub.url + "/api/v1/sites/nsp-test-01",
                         headers={"Authorization": f"Bearer {token}"}).json()
        assert site["commissioning"]["result"] == "PASS"
        assert site["commissioning"]["by"] == getpass.getuser()  # the newest record
        assert len(hub.store.messages("nsp-test-01", "commissioning")) == 2
