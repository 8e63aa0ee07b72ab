"""The backup radio end to end: edge-side sender -> socat ptys -> the simulated air (its own
process) -> socat ptys -> `nsp-edge hub radio` (its own process) -> the hub's SQLite store."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from edge_server.hub.store import HubStore
from edge_server.hub.testing import sample_status
from edge_server.radio.airtime import LoRaParams
from edge_server.radio.sim import RadioModel
from edge_server.radio.transport import SerialRadio, pack, slip_encode
from edge_server.uplink.compact import encode_alert, encode_status
from tests.conftest import need_tool

DEADLINE_S = 20.0


def _wait(what: str, check: Any, procs: list[subprocess.Popen[bytes]]) -> Any:
    """Poll an outside process's result until it shows or the deadline passes."""
    end = time.monotonic() + DEADLINE_S
    while time.monotonic() < end:
        got = check()
        if got:
            return got
        for p in procs:
            if p.poll() is not None:
                err = p.stderr.read().decode() if p.stderr else ""
                pytest.fail(f"{p.args!r} ended ({p.returncode}) while waiting for {what}: {err}")
        time.sleep(0.05)
    pytest.fail(f"no {what} within {DEADLINE_S} s")


@pytest.fixture
def radio_link(tmp_path: Path) -> Iterator[tuple[Path, list[subprocess.Popen[bytes]]]]:
    socat = need_tool("socat", "apt-get install -y socat")
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for a, b in (("edge", "edge-air"), ("hub-air", "hub")):
            procs.append(subprocess.Popen(
                [socat, f"pty,raw,echo=0,link={tmp_path / a}",
                 f"pty,raw,echo=0,link={tmp_path / b}"],
                stderr=subprocess.PIPE))
        _wait("socat ptys", lambda: all((tmp_path / n).exists() for n in ("edge", "hub")), procs)
        yield tmp_path, procs
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def start_air_and_receiver(d: Path, procs: list[subprocess.Popen[bytes]], hub_dir: Path,
                           speed: int) -> None:
    """The simulated air (SF7, its counts in d/air.json) between the ptys of `radio_link`, and
    `nsp-edge hub radio` on the hub's side storing into hub_dir."""
    procs.append(subprocess.Popen(
        [sys.executable, "-m", "edge_server.radio.sim", "--edge", str(d / "edge-air"),
         "--hub", str(d / "hub-air"), "--sf", "7", "--speed", str(speed),
         "--stats", str(d / "air.json")], stderr=subprocess.PIPE))
    procs.append(subprocess.Popen(
        [sys.executable, "-m", "edge_server.cli", "hub", "radio", "--port", str(d / "hub"),
         "--data", str(hub_dir)], stderr=subprocess.PIPE))


def test_status_and_alert_arrive_by_radio_and_bad_frames_are_refused(
    radio_link: tuple[Path, list[subprocess.Popen[bytes]]],
) -> None:
    d, procs = radio_link
    hub_dir = d / "hubdata"
    store = HubStore(hub_dir)
    key = store.add_site("nsp-a", datetime.now(UTC)).encode()
    store.close()
    start_air_and_receiver(d, procs, hub_dir, speed=50)
    stats = hub_dir / "radio-stats.json"
    radio = SerialRadio(str(d / "edge"), LoRaParams(sf=7))
    try:
        now = datetime.now(UTC).replace(microsecond=0)
        body = sample_status("NOT_READY", at=now, reasons=["FUEL_CRITICAL"])
        status = encode_status("nsp-a", key, body, now)
        alert = encode_alert("nsp-a", key, {
            "alert_id": "12", "code": "FUEL_LOW", "severity": "critical", "state": "raised",
            "raised_at": now.isoformat(), "value": 8.0, "subject": "tank"},
            now + timedelta(seconds=1))
        bad = bytearray(alert)
        bad[16] ^= 0x20
        # The hub's radio process may still be opening its port: the first frame is sent again
        # until the hub counts it (as a real site would after no answer... here: a start race).
        def first() -> bool:
            radio.send("nsp-a", status)
            return stats.exists()
        _wait("the first frame at the hub", first, procs)
        for frame in (status, alert, bytes(bad)):
            radio.send("nsp-a", frame)
        radio.send("nsp-x", encode_status("nsp-x", key, sample_status(at=now), now))
        counts = _wait(
            "all frames counted",
            lambda: (c := json.loads(stats.read_text())) and sum(
                v for k, v in c.items() if k in ("stored", "duplicate") or k.startswith("refused")
            ) >= 5 and c,
            procs,
        )
    finally:
        radio.close()
    assert counts["stored_status"] == 1 and counts["stored_alert"] == 1
    assert counts["duplicate"] >= 1  # the status again: held once
    assert counts["refused_bad_signature"] == 1 and counts["refused_unknown_site"] == 1
    store = HubStore(hub_dir)
    try:
        [st] = store.messages("nsp-a", "status")
        [al] = store.messages("nsp-a", "alert")
        assert st["body"]["via"] == "radio" and st["body"]["readiness"] == "NOT_READY"
        assert al["body"]["via"] == "radio" and al["body"]["code"] == "FUEL_LOW"
        assert [a["alert_id"] for a in store.alerts(True, 10, "nsp-a")] == ["12"]
    finally:
        store.close()
    air = json.loads((d / "air.json").read_text())
    assert air["over_duty_cycle"] == 0 and air["lost"] == 0


def test_the_air_model_loses_corrupts_reorders_and_keeps_the_duty_cycle() -> None:
    model = RadioModel(LoRaParams(sf=12), loss=0.2, corrupt=0.2, reorder=0.2, seed=3)
    packets = [pack("nsp-a", i.to_bytes(2, "big") * 12) for i in range(400)]
    heard: list[bytes] = []
    t = 0.0
    for p in packets:
        air, out = model.transmit(t, p)
        heard += out
        t += 20.0  # faster than SF12 allows: the model must drop what breaks the rule
    s = model.stats
    assert s.over_duty_cycle > 0
    assert s.max_airtime_in_any_hour_s <= 36.0 + 1e-6
    assert s.lost > 0 and s.corrupted > 0 and s.reordered > 0
    order = [packets.index(p) for p in heard if p in packets]
    assert any(b < a for a, b in zip(order, order[1:], strict=False))  # some arrived late
    assert len(heard) == s.delivered < s.packets
    assert len(slip_encode(packets[0])) == 32  # 1 + 5 site + 24 frame + 2 ENDs, no escapes
