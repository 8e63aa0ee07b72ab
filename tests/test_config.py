"""Site configuration: bad files name the field and the fix; the example files parse."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from edge_server.config import ConfigError, load_config, parse_config
from tests.conftest import ROOT

GOOD = """
[site]
id = "nsp-test-01"

[[buses]]
name = "rs485"
kind = "rtu"
port = "/dev/ttyUSB0"

[[nodes]]
name = "power"
bus = "rs485"
unit = 1
roles = ["power"]
"""


def error_of(text: str) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(text, "site.toml")
    return str(info.value)


def test_minimal_config_has_the_documented_defaults() -> None:
    cfg = parse_config(GOOD)
    assert cfg.poll.interval_s == 2.0 and cfg.poll.backoff_max_s == 60.0
    bus = cfg.bus("rs485")
    assert bus.kind == "rtu" and bus.baudrate == 19200 and bus.parity == "E"
    assert cfg.api.listen == "127.0.0.1:8080"


@pytest.mark.parametrize(
    ("change", "field", "what"),
    [
        (('id = "nsp-test-01"', 'id = "NSP Test"'), "site.id:", "lower-case letters"),
        (("unit = 1", "unit = 0"), "nodes[0].unit:", "0 is broadcast"),
        (("unit = 1", "unit = 300"), "nodes[0].unit:", "1-247"),
        (('roles = ["power"]', 'roles = ["pump"]'), "nodes[0].roles[0]:", "'power'"),
        (('roles = ["power"]', "roles = []"), "nodes[0].roles:", "at least 1"),
        (('bus = "rs485"', 'bus = "rs458"'), "nodes[0].bus:", "no bus named 'rs458'"),
        (('kind = "rtu"', 'kind = "rtu"\nparity = "N"'), "buses[0]:", "stopbits = 2"),
        (('kind = "rtu"', 'kind = "rtu"\nbaudrate = 19000'), "buses[0].baudrate:", "19200"),
        (('kind = "rtu"', 'kind = "serial"'), "buses[0]:", "'rtu', 'tcp'"),
        (('[site]', '[poll]\ninterval_s = 0\n[site]'), "poll.interval_s:", "greater than 0"),
        (('[site]', '[poll]\ninterval = 2\n[site]'), "poll.interval:", "unknown field"),
        (('[site]', '[api]\nlisten = "8080"\n[site]'), "api.listen:", "HOST:PORT"),
        (('id = "nsp-test-01"', ""), "site.id:", "required field is missing"),
    ],
)
def test_bad_config_names_the_field_and_the_fix(
    change: tuple[str, str], field: str, what: str
) -> None:
    old, new = change
    assert old in GOOD
    message = error_of(GOOD.replace(old, new, 1))
    assert message.startswith("site.toml: invalid site configuration:")
    line = next((ln for ln in message.splitlines() if ln.strip().startswith(field)), None)
    assert line is not None, message
    assert what in line, message


def test_duplicate_unit_on_one_bus_is_refused() -> None:
    text = GOOD + '\n[[nodes]]\nname = "fridge"\nbus = "rs485"\nunit = 1\nroles = ["fridge"]\n'
    assert "nodes[1].unit: unit 1 is used twice on bus 'rs485'" in error_of(text)


def test_not_toml_and_missing_file() -> None:
    assert "not valid TOML" in error_of("[site\nid=")
    with pytest.raises(ConfigError, match="cannot read the site configuration"):
        load_config(Path("/nonexistent/site.toml"))


@pytest.mark.parametrize("name", ["site.toml", "demo-site.toml"])
def test_example_configs_parse(name: str) -> None:
    cfg = load_config(ROOT / "examples" / name)
    assert cfg.nodes and all(cfg.bus(n.bus) for n in cfg.nodes)


def test_run_with_a_bad_config_exits_2_without_traceback(tmp_path: Path) -> None:
    bad = tmp_path / "site.toml"
    bad.write_text(GOOD.replace("unit = 1", "unit = 0"), encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "edge_server.cli", "run", "--config", str(bad)],
        capture_output=True, text=True, timeout=60, cwd=ROOT,
    )
    assert proc.returncode == 2
    assert "nodes[0].unit" in proc.stderr and "Traceback" not in proc.stderr


def test_every_field_is_documented() -> None:
    from pydantic import BaseModel

    from edge_server import config

    doc = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
    models: list[type[BaseModel]] = [
        config.SiteSection, config.ApiSection, config.StorageSection, config.InfluxSection,
        config.PollSection, config.RtuBus, config.TcpBus, config.NodeSection,
    ]
    missing = [f"{m.__name__}.{f}" for m in models for f in m.model_fields
               if f"| `{f}` |" not in doc]
    assert not missing, f"document these fields in docs/configuration.md: {missing}"


def test_run_names_what_keeps_it_from_starting(tmp_path: Path) -> None:
    """A missing uplink key file, a data folder that is a file, a port in use: one message each,
    naming the field and the fix, exit 2 and no traceback (these ended in tracebacks)."""
    import socket

    blocker = tmp_path / "not-a-folder"
    blocker.write_text("x")
    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        config = tmp_path / "site.toml"
        config.write_text(
            GOOD + f'\n[storage]\ndata_dir = "{blocker}/data"\n'
            + f'\n[api]\nlisten = "127.0.0.1:{port}"\n'
            + '\n[uplink]\nenabled = true\nhub_url = "http://127.0.0.1:9"\n'
            + f'key_file = "{tmp_path / "missing.key"}"\n', encoding="utf-8")
        proc = subprocess.run(
            [sys.executable, "-m", "edge_server.cli", "run", "--config", str(config)],
            capture_output=True, text=True, timeout=60, cwd=ROOT,
        )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "uplink.key_file: cannot read" in proc.stderr
    assert "storage.data_dir: cannot write" in proc.stderr
    assert f"api.listen: cannot listen on 127.0.0.1:{port}" in proc.stderr


@pytest.mark.parametrize("argv", [
    ["scenario", "run", "mains-outage-72h", "--out", "{missing}/r.json"],
    ["gentest", "scenario", "--out", "{missing}/r.json"],
    ["gentest", "report", "1", "--config", "site.toml", "--out", "{missing}/t.pdf"],
    ["firmware", "config", "--config", "site.toml", "--node", "power", "--out", "{missing}/c"],
])
def test_an_output_file_in_a_missing_folder_is_refused_before_the_work(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str]
) -> None:
    from edge_server import cli

    missing = tmp_path / "no-such-folder"
    with pytest.raises(SystemExit) as info:
        cli.main([a.replace("{missing}", str(missing)) for a in argv])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"argument --out: the folder {missing} does not exist" in err
    assert "Traceback" not in err


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    from importlib import metadata

    from edge_server import cli, regmap

    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    out = capsys.readouterr().out.strip()
    assert out == (f"nsp-edge {metadata.version('nsp-site-monitor')} "
                   f"(register map {regmap.load().version})")


def test_site_timezone_defaults_to_amsterdam_and_refuses_unknown_zones() -> None:
    assert parse_config(GOOD).site.timezone == "Europe/Amsterdam"
    text = GOOD.replace('id = "nsp-test-01"', 'id = "nsp-test-01"\ntimezone = "Europe/Amsterdm"')
    message = error_of(text)
    assert "site.timezone" in message and "Europe/Amsterdam" in message


def test_times_for_people_are_in_the_sites_zone_with_the_offset_when_official() -> None:
    from datetime import UTC, datetime

    from edge_server.localtime import for_people

    winter = datetime(2026, 12, 3, 11, 35, tzinfo=UTC)
    summer = datetime(2026, 7, 3, 11, 35, tzinfo=UTC)
    assert for_people(winter) == "2026-12-03 12:35"
    assert for_people(summer, offset=True) == "2026-07-03 13:35 CEST (UTC+02:00)"
    assert for_people(winter, offset=True) == "2026-12-03 12:35 CET (UTC+01:00)"
    assert for_people(None) == "-"
