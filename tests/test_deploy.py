"""deploy/: the systemd units and the install guide's command lines are real.

- `systemd-analyze verify` accepts each unit (with this machine's installation path for the
  executable), with no warning at all (an unknown key is only a warning to systemd, a bug to us);
- every `nsp-edge` command line in the units and in docs/install.md parses with the real CLI;
- the edge unit restarts for ever and the hub's master key stays outside its data folder.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from edge_server import cli
from tests.conftest import ROOT, need_tool

UNITS = sorted((ROOT / "deploy").glob("*.service"))
INSTALLED = "/opt/nsp-site-monitor/.venv/bin/nsp-edge"
HERE = str(Path(sys.executable).parent / "nsp-edge")


def exec_start(unit: Path) -> list[str]:
    line = next(li for li in unit.read_text().splitlines() if li.startswith("ExecStart="))
    return shlex.split(line.removeprefix("ExecStart="))


def settings(unit: Path) -> dict[str, str]:
    return dict(li.split("=", 1) for li in unit.read_text().splitlines()
                if "=" in li and not li.startswith("#"))


def test_there_are_units_for_the_edge_and_the_hub() -> None:
    assert [u.name for u in UNITS] == ["nsp-edge.service", "nsp-hub.service"]


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_systemd_accepts_the_unit_without_a_warning(unit: Path, tmp_path: Path) -> None:
    analyze = need_tool("systemd-analyze", "apt-get install -y systemd")
    here = tmp_path / unit.name
    here.write_text(unit.read_text().replace(INSTALLED, HERE))
    proc = subprocess.run([analyze, "verify", str(here)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0 and proc.stderr.strip() == "", proc.stderr
    broken = tmp_path / f"broken-{unit.name}"  # the check itself can fail
    broken.write_text(here.read_text().replace("Restart=", "Restartt="))
    proc = subprocess.run([analyze, "verify", str(broken)], capture_output=True, text=True,
                          timeout=60)
    assert "Unknown key 'Restartt'" in proc.stderr


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_the_units_command_line_parses_and_restarts_for_ever(unit: Path) -> None:
    argv = exec_start(unit)
    assert argv[0] == INSTALLED
    cli.build_parser().parse_args(argv[1:])  # SystemExit(2) on an unknown option
    s = settings(unit)
    assert s["Restart"] == "always" and s["StartLimitIntervalSec"] == "0"
    assert s["User"] == "nsp" and s["ProtectSystem"] == "strict"
    if unit.name == "nsp-hub.service":
        data = argv[argv.index("--data") + 1]
        key = argv[argv.index("--master-key") + 1]
        assert not key.startswith(data)  # a copy of the data folder alone gives no key away


def install_commands() -> list[list[str]]:
    text = (ROOT / "docs" / "install.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", text, flags=re.S)
    out = []
    for block in blocks:
        for line in block.splitlines():
            line = line.split(" #")[0].strip()
            if INSTALLED in line and "&&" not in line:
                argv = shlex.split(line)
                out.append(argv[argv.index(INSTALLED) + 1:])
    return out


def test_every_nsp_edge_line_in_the_install_guide_parses() -> None:
    commands = install_commands()
    assert len(commands) >= 5, commands
    for argv in commands:
        if argv == ["--version"]:
            continue
        try:
            cli.build_parser().parse_args(argv)
        except SystemExit as exc:
            pytest.fail(f"docs/install.md: `nsp-edge {' '.join(argv)}` does not parse ({exc})")
