"""`nsp-edge commission` checks each `[[generators]]` controller like a node: identity, open
alarms, and a controller not in AUTO is a FAIL with the fix in Dutch and English. Against the
virtual DSE controller over real TCP beside a real (MicroPython) power node."""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jsonschema

from edge_server import cli
from edge_server.commands.commission import commission_main
from edge_server.commission.assess import REPORT_SCHEMA
from edge_server.genset.sim import VirtualController
from edge_server.vnode import VirtualNode
from tests.test_commission import site_toml, start
from tests.test_genset_witness import ctrl  # noqa: F401  (fixture: the controller in AUTO)
from tests.vnode_fixtures import vnode_factory  # noqa: F401  (fixture)

Factory = Callable[..., VirtualNode]


def config(tmp_path: Path, node: VirtualNode, port: int) -> Path:
    path = site_toml(tmp_path, [("power", node, 1, ["power"])])
    path.write_text(path.read_text() + (
        f'[[buses]]\nname = "genbus"\nkind = "tcp"\nhost = "127.0.0.1"\nport = {port}\n'
        '[[generators]]\nname = "gen"\nbus = "genbus"\nunit = 10\nrated_kw = 32\n'))
    return path


async def run(cfg: Path, lang: str) -> tuple[int, dict[str, Any]]:
    args = cli.build_parser().parse_args(
        ["commission", "--config", str(cfg), "--json", "--lang", lang])
    out = io.StringIO()
    rc = await commission_main(args, out=out)
    report = json.loads(out.getvalue())
    jsonschema.validate(report, REPORT_SCHEMA)
    return rc, report


def gen_checks(report: dict[str, Any]) -> dict[str, list[tuple[str, str]]]:
    got: dict[str, list[tuple[str, str]]] = {}
    for c in report["site_checks"]:
        if c["code"].startswith("genset_"):
            got.setdefault(c["code"], []).append((c["level"], c["text"]))
    return got


async def test_auto_passes_manual_fails_with_the_fix(
        vnode_factory: Factory, tmp_path: Path,  # noqa: F811
        ctrl: VirtualController) -> None:  # noqa: F811
    cfg = config(tmp_path, start(vnode_factory, 1, ("power",)), ctrl.port)
    rc, report = await run(cfg, "en")
    checks = gen_checks(report)
    assert rc == 0 and report["result"] == "PASS", report
    level, text = checks["genset_identity"][0]
    assert level == "PASS" and "model 7320" in text and "serial 21040815" in text, text
    assert checks["genset_mode"] == [("PASS", checks["genset_mode"][0][1])]
    assert checks["genset_alarms"][0][0] == "PASS"

    ctrl.engine.mode = "manual"  # the technician left it in MANUAL
    ctrl.refresh()
    for lang, needle in (("nl", "Zet de regelaar op AUTO"), ("en", "Put the controller in AUTO")):
        rc, report = await run(cfg, lang)
        assert rc == 2 and report["result"] == "FAIL"
        [(level, text)] = gen_checks(report)["genset_mode"]
        assert level == "FAIL" and "MANUAL" in text and needle in text, text
    assert ctrl.commands == [] and ctrl.rejected_writes == 0  # read-only


async def test_open_shutdown_alarm_and_a_silent_controller_fail(
        vnode_factory: Factory, tmp_path: Path,  # noqa: F811
        ctrl: VirtualController) -> None:  # noqa: F811
    cfg = config(tmp_path, start(vnode_factory, 1, ("power",)), ctrl.port)
    ctrl.engine.alarms["low_oil_pressure"] = "shutdown"
    ctrl.refresh()
    rc, report = await run(cfg, "nl")
    [(level, text)] = gen_checks(report)["genset_alarm"]
    assert rc == 2 and level == "FAIL" and "GENSET_LOW_OIL_PRESSURE" in text, text
    assert "genset_alarms" not in gen_checks(report)

    ctrl.fail_reads = True  # exception 04 on every read
    rc, report = await run(cfg, "en")
    checks = gen_checks(report)
    assert rc == 2 and list(checks) == ["genset_offline"]
    assert "does not answer" in checks["genset_offline"][0][1]
    power = report["nodes"][0]
    assert power["answered"] is True  # the node is still checked
