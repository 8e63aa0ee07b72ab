"""The radio inside the edge service: [radio] config, wiring, and a real frame on a serial port
when the uplink cannot reach its hub."""

from __future__ import annotations

import asyncio
import subprocess
import time
import tomllib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from edge_server.clock import ManualClock
from edge_server.config import SiteConfig
from edge_server.radio.airtime import LoRaParams
from edge_server.radio.transport import SerialRadio
from edge_server.service import Part, Service
from edge_server.uplink.compact import decode_status
from tests.conftest import ROOT, need_tool, refused_port

KEY = "k" * 32


def _raw(tmp_path: Path, hub_url: str, port: str) -> dict[str, Any]:
    raw = tomllib.loads((ROOT / "examples" / "site.toml").read_text())
    key_file = tmp_path / "site.key"
    key_file.write_text(KEY)
    raw["storage"] = {"data_dir": str(tmp_path / "edge")}
    raw["uplink"] = {"enabled": True, "hub_url": hub_url, "key_file": str(key_file)}
    raw["radio"] = {"enabled": True, "port": port, "sf": 7, "fallback_after_min": 0}
    return raw


def test_radio_without_uplink_is_a_clear_config_error(tmp_path: Path) -> None:
    raw = _raw(tmp_path, "http://127.0.0.1:9", "/dev/null")
    raw["uplink"] = {"enabled": False}
    with pytest.raises(ValidationError, match=r"radio.enabled.*\[uplink\] enabled = true"):
        SiteConfig.model_validate(raw)


async def test_service_sends_the_status_by_radio_while_the_hub_is_unreachable(
    tmp_path: Path,
) -> None:
    socat = need_tool("socat", "apt-get install -y socat")
    a, b = tmp_path / "edge-tty", tmp_path / "air-tty"
    proc = subprocess.Popen([socat, f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"])
    far = SerialRadio(str(b), LoRaParams(sf=7))
    try:
        deadline = time.monotonic() + 10
        while not (a.exists() and b.exists()):
            assert time.monotonic() < deadline, "socat made no ptys"
            await asyncio.sleep(0.02)
        clock = ManualClock(datetime(2026, 3, 1, tzinfo=UTC))
        with refused_port() as port:
            config = SiteConfig.model_validate(_raw(tmp_path, f"http://127.0.0.1:{port}", str(a)))
            service = Service(config, clock, parts=Part.RULES | Part.UPLINK | Part.RADIO)
            assert service.radio is not None
            await service.start(run_poller=False)
            try:
                heard = None
                deadline = time.monotonic() + 15
                while heard is None:
                    assert time.monotonic() < deadline, "no radio frame from the service"
                    heard = await asyncio.to_thread(far.receive, 0.2)
                site_id, frame = heard
                assert site_id == config.site.id
                status = decode_status(site_id, KEY.encode(), frame)
                assert status.readiness in ("READY", "DEGRADED", "NOT_READY", "UNKNOWN")
                assert service.radio.active and service.uplink is not None
                assert service.uplink.link_up() is False
            finally:
                await service.stop()
    finally:
        far.close()
        proc.terminate()
        proc.wait(5)
