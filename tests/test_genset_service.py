"""`[[generators]]` in the site configuration and the service's GENSET part: the controller is
polled on its bus's hub in every poll cycle, its values land in the SiteState, a controller that
fails marks them unavailable (never a stale number) while the nodes keep polling, and the
generator test reads its load from it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from edge_server.clock import ManualClock
from edge_server.config import ConfigError, parse_config
from edge_server.genset.engine import EngineModel
from edge_server.genset.profile import load_profile
from edge_server.genset.sim import VirtualController
from edge_server.service import Part, Service


def site(gen_port: int, data: Path, generators: str | None = None) -> str:
    gens = generators if generators is not None else (
        '[[generators]]\nname = "gen"\nbus = "genbus"\nunit = 10\nrated_kw = 32\n')
    return f"""
[site]
id = "nsp-test"
[storage]
data_dir = "{data}"
[poll]
interval_s = 2
timeout_s = 0.3
retries = 0
[[buses]]
name = "nodes"
kind = "tcp"
host = "127.0.0.1"
port = 1
[[buses]]
name = "genbus"
kind = "tcp"
host = "127.0.0.1"
port = {gen_port}
[[nodes]]
name = "power"
bus = "nodes"
unit = 1
roles = ["power"]
{gens}"""


@pytest.mark.parametrize(("gens", "needles"), [
    ('[[generators]]\nname = "gen"\nbus = "nope"\nunit = 10\nrated_kw = 32\n',
     ["generators[0].bus: no bus named 'nope'", "define it under [[buses]]"]),
    ('[[generators]]\nname = "gen"\nbus = "genbus"\nunit = 10\nrated_kw = 32\n'
     'profile = "comap-x"\n', ["generators[0].profile", "no such shipped profile", "dse-gencomm"]),
    ('[[generators]]\nname = "power"\nbus = "genbus"\nunit = 10\nrated_kw = 32\n',
     ["generators[0].name: 'power' is used twice"]),
    ('[[generators]]\nname = "gen"\nbus = "genbus"\nunit = 10\n', ["rated_kw", "missing"]),
])
def test_bad_generator_config_names_the_field_and_the_fix(tmp_path: Path, gens: str,
                                                          needles: list[str]) -> None:
    with pytest.raises(ConfigError) as err:
        parse_config(site(5020, tmp_path, gens))
    for needle in needles:
        assert needle in str(err.value), str(err.value)


@pytest.fixture
async def ctrl() -> AsyncIterator[VirtualController]:
    c = VirtualController(load_profile("dse-gencomm"),
                          EngineModel(mode="test", load_kw=lambda _t: 14.0), unit=10)
    for _ in range(40):
        c.step(0.5)
    await c.start_tcp("127.0.0.1", 0)
    try:
        yield c
    finally:
        await c.stop()


async def test_the_controller_is_polled_into_the_state(tmp_path: Path,
                                                       ctrl: VirtualController) -> None:
    config = parse_config(site(ctrl.port, tmp_path / "data"))
    service = Service(config, ManualClock(datetime(2026, 5, 4, 10, tzinfo=UTC)),
                      parts=Part.GENSET | Part.GENTEST)
    await service.start(run_poller=False)
    try:
        assert service.genset is not None and service.gentest is not None
        assert service.gentest.load_pct == service.genset.load_pct
        await service.poller.poll_once()
        get = service.state.get
        assert get("gen.online").value is True  # type: ignore[union-attr]
        assert get("gen.gen_frequency_hz").value == 50.0  # type: ignore[union-attr]
        assert get("gen.gen_kw").unit == "kW"  # type: ignore[union-attr]
        assert get("gen.in_auto").value is False  # type: ignore[union-attr]  # test mode
        assert get("gen.shutdown_alarm").value is False  # type: ignore[union-attr]
        assert service.genset.load_pct() == pytest.approx(43.8, abs=0.05)
        volts, hertz = service.genset.electrical()
        assert volts == pytest.approx(230.0, abs=0.2) and hertz == 50.0
        coolant, oil = service.genset.engine()  # for the report's engine plot
        assert coolant is not None and 10 < coolant < 110 and oil is not None and oil > 100
        assert service.state.nodes["power"].online is False  # its bus is dead: polled anyway
        ctrl.fail_reads = True
        await service.poller.poll_once()
        assert get("gen.online").value is False  # type: ignore[union-attr]
        kw = get("gen.gen_kw")
        assert kw is not None and not kw.ok and kw.value is None
        assert service.genset.load_pct() is None
        assert service.genset.electrical() == (None, None)
        assert service.genset.engine() == (None, None)
    finally:
        await service.stop()
