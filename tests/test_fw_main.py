"""The board's own entry point, firmware/main.py, unchanged: flashed onto the virtual board by
`nsp-edge firmware flash` (the real mpremote), then powered on with the sim hal
(firmware/sim/board.py: the fakes, the flashed tree as `/`, main.py run as source). It reads
/config.json, arms the watchdog, builds the roles, counts the boot (nsp.persist on
/counters.json) and serves Modbus RTU on its UART (a socat pty) to an independent master,
mbpoll."""

from __future__ import annotations

import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from edge_server import fwdeploy
from edge_server.cli import main
from tests.conftest import FIRMWARE, free_port, need_tool
from tests.test_fw_deploy import EXAMPLE, SITE, virtual_board  # noqa: F401  (fixture)
from tests.test_fw_modbus_rtu import pty_pair  # noqa: F401  (fixture)

BOOT_DEADLINE_S = 20.0


@pytest.fixture(params=["rtu", "wifi"])
def powered_board(request: pytest.FixtureRequest, virtual_board: tuple[Path, Path],  # noqa: F811
                  pty_pair: tuple[str, str],  # noqa: F811
                  micropython: str, capsys: pytest.CaptureFixture[str],
                  ) -> Iterator[tuple[Path, subprocess.Popen[bytes], int | None]]:
    link, board = virtual_board
    argv = ["firmware", "flash", "--port", str(link), "--config", str(SITE), "--node",
            "fridge", "--arch", "none", "--virtual", str(board)]
    tcp_port = None
    if request.param == "wifi":  # config.json names a Wi-Fi network (the sim's network module)
        tcp_port = free_port()
        cfg, _ = fwdeploy.node_config(EXAMPLE, "fridge")
        cfg["modbus"]["tcp_port"] = tcp_port
        cfg["network"] = {"kind": "wifi", "ssid": "nsp-site", "password": "s3cret-pass"}
        edited = board.parent / "config.json"
        edited.write_text(json.dumps(cfg))
        argv += ["--config-json", str(edited)]
    assert main(argv) == 0
    capsys.readouterr()
    # The board's tree on the path too: sim/world.py uses the firmware's nsp.tank (the flashed one).
    env = dict(os.environ, MICROPYPATH=f"{FIRMWARE / 'sim'}:{board}:.frozen",
               NSP_SIM_UART2=pty_pair[0])
    log = board.parent / "board.log"
    with log.open("w") as out:
        proc = subprocess.Popen([micropython, "-X", "heapsize=512k",
                                 str(FIRMWARE / "sim" / "board.py"), str(board)],
                                cwd=board.parent, env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield log, proc, tcp_port
    finally:
        proc.terminate()
        proc.wait(timeout=5)


def test_main_py_boots_a_flashed_board_and_serves_mbpoll(
    powered_board: tuple[Path, subprocess.Popen[bytes], int | None],
    pty_pair: tuple[str, str],  # noqa: F811
) -> None:
    log_path, proc, tcp_port = powered_board
    mbpoll = need_tool("mbpoll", "apt-get install -y mbpoll")
    unit = next(n for n in EXAMPLE.nodes if n.name == "fridge").unit
    # mbpoll -0: 0-based references; identity block: map version, node id, roles bits.
    cmd = [mbpoll, "-m", "rtu", "-b", "19200", "-P", "even", "-a", str(unit), "-1", "-0",
           "-o", "1", "-r", "0", "-c", "16", pty_pair[1]]
    if tcp_port is not None:  # Modbus TCP once main.py's network is up (RTU served meanwhile)
        cmd = [mbpoll, "-m", "tcp", "-p", str(tcp_port), "-a", str(unit), "-1", "-0", "-o", "1",
               "-r", "0", "-c", "16", "127.0.0.1"]
    deadline = time.monotonic() + BOOT_DEADLINE_S
    while True:  # the board boots (compiles main.py, imports the .mpy tree) before it answers
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=20)
        if out.returncode == 0 or proc.poll() is not None or time.monotonic() > deadline:
            break
    log = log_path.read_text()
    assert out.returncode == 0, out.stdout + out.stderr + log
    # "[9]: \t63040 (-2496)": mbpoll adds the signed reading of large values
    regs = {int(k.strip("[]")): int(v.split()[0]) for k, v in
            (line.split(":") for line in out.stdout.splitlines() if line.startswith("["))}
    from edge_server import regmap

    assert regs[0] == regmap.load().version and regs[1] == unit
    assert regs[2] == 2  # roles bits: fridge only (nsp/regmap.py B_FRIDGE)
    assert regs[14] & 1 == 0, log  # status: no config_error
    assert regs[13] == 1  # boot_count: main.py counted this boot in /counters.json
    assert "Traceback" not in log and "not built" not in log, log
    assert "unknown field" not in log, log  # the flashed config.json as main.py reads it
    assert "s3cret" not in log  # the Wi-Fi password is never echoed
    if tcp_port is not None:  # TCP listens at once; the link comes up from the next ticks
        deadline = time.monotonic() + BOOT_DEADLINE_S
        while True:
            net = subprocess.run([*cmd[:-5], "-r", "97", "-c", "4", "127.0.0.1"],
                                 capture_output=True, text=True, timeout=20).stdout
            if "[97]: \t3" in net or time.monotonic() > deadline:
                break
        assert "[97]: \t3" in net, net  # net_state up
        assert "[98]: \t49320" in net and "[99]: \t2583" in net, net  # 192.168.10.23
        assert "[100]: \t65475 (-61)" in net, net  # RSSI -61 dBm
