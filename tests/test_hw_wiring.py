"""hw/wiring/: the WireViz harness drawings agree with the firmware, hw/pinout.md and hw/bom.md.

(a) every harness builds with the real wireviz + graphviz (into a tmp dir);
(b) the committed drawings are current: the .gv (WireViz's graphviz source: every label, pin, wire
    and colour) and the .bom.tsv are byte-compared always; the .svg only when the installed graphviz
    is the version that drew the committed one, because dot's layout and SVG text change between
    graphviz releases while WireViz's own output does not;
(c) every GPIO on U1 is the firmware default for the field it names (nsp/fwconfig.py SCHEMA,
    nsp/node.py MODBUS_DEFAULTS) and the GPIO hw/pinout.md gives it; every designator is listed
    in hw/pinout.md;
(d) every part in the WireViz BOMs has its P/N in hw/bom.md, in a matching role, unit and quantity.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import FIRMWARE, ROOT, need_tool

WIRING = ROOT / "hw" / "wiring"
HARNESSES = ("power", "fridge", "entrance", "rs485-bus")
ROLE_OF = {"power": "power", "fridge": "fridge", "entrance": "entrance", "rs485-bus": "bus"}
WIREVIZ = Path(sys.executable).parent / "wireviz"


def _literal(path: Path, name: str) -> dict:
    """The value of a top-level `NAME = {literal}` in a firmware file, without importing it."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == name for t in node.targets
        ):
            return ast.literal_eval(node.value)
    raise AssertionError(f"{name} not found in {path}")


def firmware_pins() -> dict[str, int]:
    """'power.mains_pin' -> 34 ... and 'modbus.tx_pin' -> 17 ..., from the firmware sources."""
    schema = _literal(FIRMWARE / "nsp" / "fwconfig.py", "SCHEMA")
    pins = {
        f"{role}.{field}": spec[0]
        for role in ("power", "fridge", "entrance")
        for field, spec in schema[role].items()
        if field.endswith("_pin")
    }
    modbus = _literal(FIRMWARE / "nsp" / "node.py", "MODBUS_DEFAULTS")
    pins.update({f"modbus.{k}": v for k, v in modbus.items() if k.endswith("_pin")})
    return pins


def pinout_pins() -> dict[str, int]:
    """The same mapping as hw/pinout.md's table states it."""
    out: dict[str, int] = {}
    for line in (ROOT / "hw" / "pinout.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 5 or not re.match(r"^\d+(/\d+)?( \(\w+\))?$", cells[0]):
            continue
        gpio, field, signal = cells[0].split(" ")[0], cells[2], cells[4]
        if re.fullmatch(r"(power|fridge|entrance)\.\w+_pin", field):
            out[field] = int(gpio)
        elif signal == "RS-485 RX/TX":
            rx, tx = gpio.split("/")
            out["modbus.rx_pin"], out["modbus.tx_pin"] = int(rx), int(tx)
        elif signal == "RS-485 DE/RE":
            out["modbus.de_pin"] = int(gpio)
    return out


def pinout_designators() -> set[str]:
    text = (ROOT / "hw" / "pinout.md").read_text(encoding="utf-8")
    section = text.split("## Designators in the drawings", 1)[1]
    names: set[str] = set()
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0] not in ("Designator", "---"):
            names.update(n.strip() for n in re.split(r"[/,]", cells[0]))
    return names


def harness(name: str) -> dict:
    return yaml.safe_load((WIRING / f"{name}.yml").read_text(encoding="utf-8"))


def gpio_fields(data: dict) -> dict[int, str]:
    """GPIO number -> the config field its pin label names, over every connector of a harness."""
    out: dict[int, str] = {}
    for cname, conn in data["connectors"].items():
        for pin, label in zip(conn.get("pins", []), conn.get("pinlabels", []), strict=False):
            m = re.fullmatch(r"GPIO(\d+)", str(pin))
            if m:
                field = str(label).split(" ")[0]
                assert int(m.group(1)) not in out, f"{cname}: GPIO{m.group(1)} twice"
                out[int(m.group(1))] = field
    return out


def build(name: str, outdir: Path, fmt: str = "gst") -> None:
    need_tool("dot", "apt-get install -y graphviz")
    subprocess.run([str(WIREVIZ), "-f", fmt, "-o", str(outdir), str(WIRING / f"{name}.yml")],
                   check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wiring")
    for name in HARNESSES:
        build(name, out)
    return out


def read_tsv(path: Path) -> list[dict[str, str]]:
    lines = path.read_text(encoding="utf-8").splitlines()
    head = lines[0].split("\t")
    return [dict(zip(head, line.split("\t"), strict=True)) for line in lines[1:]]


def bom_md() -> dict[str, dict[str, object]]:
    """hw/bom.md: Ref -> {qty, unit, part, role, table ('node' or 'bus')}."""
    refs: dict[str, dict[str, object]] = {}
    table = "node"
    for line in (ROOT / "hw" / "bom.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("## "):
            table = "bus" if "bus" in line.lower() else "node"
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 4 and re.fullmatch(r"B\d\d", cells[0]):
            qty, _, unit = cells[1].partition(" ")
            assert cells[0] not in refs, f"hw/bom.md: Ref {cells[0]} twice"
            refs[cells[0]] = {"qty": float(qty), "unit": unit, "part": cells[2],
                              "role": cells[3], "table": table}
    return refs


# ---------------------------------------------------------------------------------- (a) builds
@pytest.mark.parametrize("name", HARNESSES)
def test_harness_builds_with_wireviz_and_graphviz(name: str, built: Path) -> None:
    svg = (built / f"{name}.svg").read_text(encoding="utf-8")
    assert svg.lstrip().startswith("<?xml") and "<svg" in svg
    rows = read_tsv(built / f"{name}.bom.tsv")
    assert rows, f"{name}: empty BOM"
    for designator in harness(name)["connectors"]:
        assert f">{designator}<" in svg, f"{name}.svg does not show {designator}"


# ------------------------------------------------------------------------------- (b) current
@pytest.mark.parametrize("name", HARNESSES)
def test_committed_gv_and_bom_are_current(name: str, built: Path) -> None:
    for ext in ("gv", "bom.tsv"):
        fresh = (built / f"{name}.{ext}").read_bytes()
        committed = (WIRING / f"{name}.{ext}").read_bytes()
        assert committed == fresh, (
            f"hw/wiring/{name}.{ext} is stale: run .venv/bin/python hw/wiring/render.py and commit"
        )


def _graphviz_version(svg: str) -> str:
    m = re.search(r"Generated by graphviz version ([^\n]+)", svg)
    assert m, "no graphviz version comment in the SVG"
    return m.group(1).strip()


@pytest.mark.parametrize("name", HARNESSES)
def test_committed_svg_is_current(name: str, built: Path) -> None:
    fresh = (built / f"{name}.svg").read_text(encoding="utf-8")
    committed = (WIRING / f"{name}.svg").read_text(encoding="utf-8")
    if _graphviz_version(fresh) != _graphviz_version(committed):
        pytest.skip(f"graphviz {_graphviz_version(fresh)} here, the committed SVG was drawn by "
                    f"{_graphviz_version(committed)}: layout differs; the .gv comparison covers it")
    assert committed == fresh, f"hw/wiring/{name}.svg is stale: run hw/wiring/render.py"


@pytest.mark.parametrize("name", HARNESSES)
def test_committed_png_matches_its_svg_and_is_small(name: str) -> None:
    from PIL import Image

    png = WIRING / f"{name}.png"
    svg = (WIRING / f"{name}.svg").read_text(encoding="utf-8")
    m = re.search(r'<svg width="(\d+)pt" height="(\d+)pt"', svg)
    assert m, "no size in the SVG"
    with Image.open(png) as im:
        size, mode = im.size, im.mode
    want = (round(int(m.group(1)) * 96 / 72), round(int(m.group(2)) * 96 / 72))
    assert abs(size[0] - want[0]) <= 2 and abs(size[1] - want[1]) <= 2, (
        f"{png.name} is {size}, its SVG says {want}: re-render with hw/wiring/render.py")
    assert mode == "P" and png.stat().st_size < 300_000, (
        f"{png.name}: {mode}, {png.stat().st_size} bytes; render.py saves a small palette PNG")


# ------------------------------------------------------------------------------ (c) the pins
def test_pinout_md_agrees_with_the_firmware_defaults() -> None:
    fw, doc = firmware_pins(), pinout_pins()
    assert len(fw) == 15  # 12 role pins (I2C counts 2) + modbus tx/rx/de
    assert doc == fw


@pytest.mark.parametrize("name", ("power", "fridge", "entrance"))
def test_every_gpio_in_a_harness_is_the_firmware_default(name: str) -> None:
    fw, doc = firmware_pins(), pinout_pins()
    used = gpio_fields(harness(name))
    assert used, f"{name}.yml names no GPIO"
    for gpio, field in used.items():
        assert field in fw, f"{name}.yml: GPIO{gpio} is labelled {field!r}, not a config field"
        assert fw[field] == gpio, (
            f"{name}.yml: {field} drawn on GPIO{gpio}, firmware default is GPIO{fw[field]}")
        assert doc[field] == gpio, (
            f"{name}.yml: {field} on GPIO{gpio}, hw/pinout.md says GPIO{doc[field]}")
    # and the role's drawing shows every pin of the role (power also carries the RS-485 node pins)
    want = {f for f in fw if f.startswith(name + ".")}
    if name == "power":
        want |= {f for f in fw if f.startswith("modbus.")}
    assert want <= set(used.values()), f"{name}.yml lacks {sorted(want - set(used.values()))}"


@pytest.mark.parametrize("name", HARNESSES)
def test_designators_are_the_ones_in_pinout_md(name: str) -> None:
    listed = pinout_designators()
    data = harness(name)
    for designator in data["connectors"]:
        assert designator.split(" ")[0] in listed, (
            f"{name}.yml: connector {designator} is not in hw/pinout.md's designator table")
    for designator in data["cables"]:
        assert re.fullmatch(r"W\d+", designator), f"{name}.yml: cable {designator} is not W<n>"


# -------------------------------------------------------------------------------- (d) the BOM
def test_every_wireviz_bom_part_is_in_bom_md(built: Path) -> None:
    refs = bom_md()
    node_total: dict[str, float] = {}
    bus_total: dict[str, float] = {}
    node_parts: dict[tuple[str, str], float] = {}
    for name in HARNESSES:
        role = ROLE_OF[name]
        for row in read_tsv(built / f"{name}.bom.tsv"):
            where = f"{name}.bom.tsv: {row['Description']!r}"
            pn = row.get("P/N", "")
            assert pn in refs, f"{where} has P/N {pn!r}, not a Ref in hw/bom.md"
            ref = refs[pn]
            assert ref["role"] in (role, "all"), f"{where}: {pn} is for role {ref['role']}"
            assert row["Unit"] == ref["unit"], (
                f"{where}: unit {row['Unit']!r}, hw/bom.md has {ref['unit']!r}")
            gauge = re.search(r"(\d+(?:\.\d+)?) mm²", row["Description"])
            if gauge:
                assert gauge.group(0) in str(ref["part"]), f"{where}: not the cable of {pn}"
            qty = float(row["Qty"])
            if role == "bus":
                if ref["table"] == "bus":
                    bus_total[pn] = bus_total.get(pn, 0) + qty
            elif row["Unit"]:
                node_total[pn] = node_total.get(pn, 0) + qty
            else:  # U1 is one board in every role's drawing: count a designator once
                key = (pn, row["Designators"])
                node_parts[key] = max(node_parts.get(key, 0), qty)
    for (pn, _), qty in node_parts.items():
        node_total[pn] = node_total.get(pn, 0) + qty
    for totals, table in ((node_total, "node"), (bus_total, "bus")):
        assert totals, f"no {table} parts counted"
        for pn, qty in totals.items():
            assert refs[pn]["table"] == table, f"{pn} drawn as a {table} part"
            assert qty <= float(refs[pn]["qty"]) + 1e-9, (
                f"the drawings use {qty:g} {refs[pn]['unit']} of {pn}, "
                f"hw/bom.md lists {refs[pn]['qty']:g}")
