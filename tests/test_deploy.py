"""deploy/: the systemd units and the install guide's command lines are real.

- `systemd-analyze verify` accepts each unit (with this machine's installation path for the
  executable), with no warning at all (an unknown key is only a warning to systemd, a bug to us);
- every `nsp-edge` command line in the units and in docs/install.md parses with the real CLI;
- the edge unit restarts for ever and the hub's master key stays outside its data folder;
- the hub's PostgreSQL drop-in (deploy/nsp-hub.service.d/postgres.conf) is read by systemd with
  the unit (a wrong key in it is reported), takes the database URL from a root-only environment
  file outside the repository (never from the command line), starts after a local
  postgresql.service and runs several workers.
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
PG_DROP_IN = ROOT / "deploy" / "nsp-hub.service.d" / "postgres.conf"
HUB_ENV = "/etc/nsp-hub/hub.env"
INSTALLED = "/opt/nsp-site-monitor/.venv/bin/nsp-edge"
HERE = str(Path(sys.executable).parent / "nsp-edge")


def exec_start(unit: Path) -> list[str]:
    """The command line (in a drop-in: the one after the `ExecStart=` that clears the unit's)."""
    lines = [li for li in unit.read_text().splitlines() if li.startswith("ExecStart=")]
    return shlex.split(lines[-1].removeprefix("ExecStart="))


def settings(unit: Path) -> dict[str, str]:
    return dict(li.split("=", 1) for li in unit.read_text().splitlines()
                if "=" in li and not li.startswith("#"))


def verify(analyze: str, unit: Path) -> str:
    """What `systemd-analyze verify` says about the unit (and its drop-ins beside it): "" when
    it accepts it without a warning (an unknown key is a warning and still exit 0)."""
    proc = subprocess.run([analyze, "verify", str(unit)], capture_output=True, text=True,
                          timeout=60)
    said = proc.stderr.strip()
    return said if proc.returncode == 0 or said else f"exit {proc.returncode}"


def test_there_are_units_for_the_edge_and_the_hub() -> None:
    assert [u.name for u in UNITS] == ["nsp-edge.service", "nsp-hub.service"]


@pytest.mark.parametrize("unit", UNITS, ids=lambda u: u.name)
def test_systemd_accepts_the_unit_without_a_warning(unit: Path, tmp_path: Path) -> None:
    analyze = need_tool("systemd-analyze", "apt-get install -y systemd")
    here = tmp_path / unit.name
    here.write_text(unit.read_text().replace(INSTALLED, HERE))
    assert verify(analyze, here) == ""
    broken = tmp_path / f"broken-{unit.name}"  # the check itself can fail
    broken.write_text(here.read_text().replace("Restart=", "Restartt="))
    assert "Unknown key 'Restartt'" in verify(analyze, broken)


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


def test_systemd_reads_the_postgresql_drop_in_with_the_hub_unit(tmp_path: Path) -> None:
    analyze = need_tool("systemd-analyze", "apt-get install -y systemd")
    unit = tmp_path / "nsp-hub.service"
    unit.write_text((ROOT / "deploy" / "nsp-hub.service").read_text().replace(INSTALLED, HERE))
    (tmp_path / "nsp-hub.service.d").mkdir()
    drop_in = tmp_path / "nsp-hub.service.d" / PG_DROP_IN.name
    drop_in.write_text(PG_DROP_IN.read_text().replace(INSTALLED, HERE))
    assert verify(analyze, unit) == ""
    drop_in.write_text(drop_in.read_text().replace("EnvironmentFile=", "EnvironmentFiles="))
    assert "Unknown key 'EnvironmentFiles'" in verify(analyze, unit)  # the drop-in is read


def test_the_postgresql_drop_in_keeps_the_url_off_the_command_line() -> None:
    lines = PG_DROP_IN.read_text().splitlines()
    assert "ExecStart=" in lines  # clears the unit's command line before giving its own
    argv = exec_start(PG_DROP_IN)
    assert argv[0] == INSTALLED
    args = cli.build_parser().parse_args(argv[1:])
    assert args.db is None and not any("postgresql" in a for a in argv)  # `ps` shows argv
    assert args.workers > 1
    hub = exec_start(ROOT / "deploy" / "nsp-hub.service")
    assert argv[:argv.index("--workers")] == hub  # the same data, port and master key
    s = settings(PG_DROP_IN)
    assert s["EnvironmentFile"] == HUB_ENV  # no "-": no file, no start (not a new hub.sqlite)
    assert s["After"] == s["Wants"] == "postgresql.service"
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                             check=True).stdout.split()
    assert [f for f in tracked if f.endswith(".env")] == []  # the password is never in the repo
    readme = (ROOT / "deploy" / "README.md").read_text()
    assert f"install -m 0600 -o root -g root /dev/null {HUB_ENV}" in readme
    assert "docs/hub-operations.md" in readme


def install_commands(doc: Path = ROOT / "docs" / "install.md") -> list[list[str]]:
    text = doc.read_text()
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


def test_every_nsp_edge_line_in_the_deploy_readme_parses() -> None:
    commands = install_commands(ROOT / "deploy" / "README.md")
    assert len(commands) >= 2, commands
    for argv in commands:
        try:
            cli.build_parser().parse_args(argv)
        except SystemExit as exc:
            pytest.fail(f"deploy/README.md: `nsp-edge {' '.join(argv)}` does not parse ({exc})")
