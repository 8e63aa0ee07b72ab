"""The InfluxDB sink against a real server (VictoriaMetrics speaks InfluxDB line protocol).

The server goes away for a while (and the edge restarts meanwhile) and comes back: every point
arrives exactly once, checked by series, timestamps and values in the server's own export.
"""

from __future__ import annotations

import json
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from edge_server.clock import ManualClock
from edge_server.state import NodeStatus, Quality, Reading, SiteState
from edge_server.storage.influx import InfluxSink, line
from edge_server.storage.sqlite import to_ms
from tests.conftest import free_port, need_tool, refused_port

T0 = datetime(2026, 3, 1, tzinfo=UTC)
CHANNELS = ("fridge_temp_c", "ambient_c", "door_open")


class VictoriaMetrics:
    def __init__(self, data: Path, port: int) -> None:
        self.exe = need_tool("victoria-metrics", "apt-get install -y victoria-metrics")
        self.data, self.port = data, port
        self.url = f"http://127.0.0.1:{port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [self.exe, f"-httpListenAddr=127.0.0.1:{self.port}",
             f"-storageDataPath={self.data}", "-search.latencyOffset=0s",
             "-retentionPeriod=100y",  # the test data is stamped in the past (ManualClock)
             "-loggerLevel=ERROR"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60  # generous: a busy 2-core CI machine
        while time.monotonic() < deadline:  # poll for readiness of a starting subprocess
            if self.proc.poll() is not None:
                raise RuntimeError(f"victoria-metrics exited with {self.proc.returncode}")
            try:
                with urllib.request.urlopen(f"{self.url}/health", timeout=1) as r:
                    if r.status == 200:
                        return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("victoria-metrics did not become ready in 60 s")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()  # graceful: it flushes what it acknowledged
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def export(self, match: str) -> dict[tuple[str, str], list[tuple[int, float]]]:
        urllib.request.urlopen(f"{self.url}/internal/force_flush", timeout=10).close()
        q = urllib.parse.urlencode({"match[]": match})
        with urllib.request.urlopen(f"{self.url}/api/v1/export?{q}", timeout=10) as r:
            body = r.read().decode()
        series: dict[tuple[str, str], list[tuple[int, float]]] = {}
        for text in body.splitlines():
            item = json.loads(text)
            key = (item["metric"]["node"], item["metric"]["channel"])
            pts = list(zip(item["timestamps"], item["values"], strict=True))
            series.setdefault(key, []).extend(pts)
        return {k: sorted(v) for k, v in series.items()}


@pytest.fixture
def vm(tmp_path: Path) -> Iterator[VictoriaMetrics]:
    # victoria-metrics cannot report a port it picked: a free_port() another process takes first
    # makes it exit at start-up, so start again on a new port (a start-up retry, not a wait).
    for attempt in range(3):
        server = VictoriaMetrics(tmp_path / "vm", free_port())
        try:
            server.start()
            break
        except RuntimeError:
            exited = server.proc is not None and server.proc.poll() is not None
            server.stop()
            if not exited or attempt == 2:
                raise
    try:
        yield server
    finally:
        server.stop()


def _state() -> SiteState:
    state = SiteState("nsp-test")
    state.add_node(NodeStatus("fridge1", 2, "bus0", ("fridge",)))
    return state


def _cycle(state: SiteState, sink: InfluxSink, clock: ManualClock, k: int,
           expected: dict[tuple[str, str], list[tuple[int, float]]]) -> None:
    at = clock.now()
    for i, name in enumerate(CHANNELS):
        value: float | None = float(k * 10 + i) if name != "door_open" else float(k % 2)
        if name == "ambient_c" and k % 5 == 4:
            value = None  # unavailable: no point at all
        q = Quality.GOOD if value is not None else Quality.UNAVAILABLE
        state.put(Reading("fridge1", name, value, "C", at, q))
        if value is not None:
            expected.setdefault(("fridge1", name), []).append((to_ms(at), value))
    sink.on_cycle(state, at)
    clock.advance(2)


def test_line_protocol_escapes_tags():
    assert line("nsp", {"node": "a b", "channel": "x,y", "unit": "", "site": "s=1"}, 2, 5) == (
        "nsp,channel=x\\,y,node=a\\ b,site=s\\=1 value=2.0 5")


def test_server_away_and_back_every_point_arrives_exactly_once(vm: VictoriaMetrics,
                                                               tmp_path: Path):
    clock = ManualClock(T0)
    buffer = tmp_path / "influx-buffer.db"
    sink = InfluxSink(vm.url, "x", "x", "nsp", buffer, clock, batch_size=40)
    state = _state()
    expected: dict[tuple[str, str], list[tuple[int, float]]] = {}
    try:
        for k in range(30):
            _cycle(state, sink, clock, k, expected)
        assert sink.flush_all() == sum(len(v) for v in expected.values())
        assert sink.buffered == 0

        vm.stop()  # the server goes away
        for k in range(30, 80):
            _cycle(state, sink, clock, k, expected)
        assert sink.flush_once() == 0
        assert sink.failures == 1 and sink.last_error
        clock.advance(600)
        assert sink.flush_once() == 0  # still away
        held = sink.buffered
        assert held == sum(len(v) for v in expected.values()) - sink.sent
    finally:
        sink.stop()  # the edge restarts while the server is away

    sink = InfluxSink(vm.url, "x", "x", "nsp", buffer, clock, batch_size=40)
    try:
        assert sink.buffered == held  # the buffer survived the restart
        for k in range(80, 90):
            _cycle(state, sink, clock, k, expected)
        vm.start()  # back, same data path
        sink.flush_all()
        assert sink.buffered == 0 and sink.dropped == 0
    finally:
        sink.stop()

    got = vm.export('{__name__="nsp_value"}')
    assert got == {k: sorted(v) for k, v in expected.items()}
    # Exactly once: no timestamp twice in any series.
    for pts in got.values():
        assert len({t for t, _ in pts}) == len(pts)


def test_full_buffer_drops_the_oldest_points_and_counts_them(tmp_path: Path):
    clock = ManualClock(T0)
    # The server is away from the start: connects to this port are refused throughout.
    with refused_port() as port:
        buffer = tmp_path / "influx-buffer.db"
        sink = InfluxSink(f"http://127.0.0.1:{port}", "x", "x", "nsp", buffer, clock,
                          batch_size=1000, buffer_max_points=20)
        state = _state()
        expected: dict[tuple[str, str], list[tuple[int, float]]] = {}
        try:
            for k in range(10):
                _cycle(state, sink, clock, k, expected)
            assert sink.flush_once() == 0
            total = sum(len(v) for v in expected.values())
            assert sink.buffered == 20
            assert sink.dropped == total - 20
        finally:
            sink.stop()

    vm = VictoriaMetrics(tmp_path / "vm", port)
    vm.start()
    try:
        sink = InfluxSink(vm.url, "x", "x", "nsp", buffer, clock)
        try:
            assert sink.dropped == total - 20  # the count is kept in the buffer file
            assert sink.flush_all() == 20
        finally:
            sink.stop()
        got = vm.export('{__name__="nsp_value"}')
    finally:
        vm.stop()
    # Points are buffered cycle by cycle, each cycle in channel order; the newest 20 are kept.
    everything = sorted(
        ((t, node, ch, v) for (node, ch), pts in expected.items() for t, v in pts),
        key=lambda p: (p[0], CHANNELS.index(p[2])),
    )
    newest = everything[-20:]
    assert sorted((t, n, c, v) for (n, c), pts in got.items() for t, v in pts) == sorted(newest)


def sink_service(vm: VictoriaMetrics, data: Path, clock: ManualClock) -> Any:
    """A storage-only Service of site "test-site" whose InfluxDB sink writes into `vm`."""
    from edge_server.config import parse_config
    from edge_server.service import Part, Service
    from tests.test_auth import site_toml

    toml = site_toml(data) + f'''
[storage.influx]
url = "{vm.url}"
token_env = "NSP_TEST_INFLUX_TOKEN_UNSET"
flush_interval_s = 0.05
'''
    return Service(parse_config(toml), clock, parts=Part.STORAGE)


async def test_the_service_feeds_the_sink_when_configured(vm: VictoriaMetrics, tmp_path: Path):
    clock = ManualClock(T0)
    service = sink_service(vm, tmp_path / "data", clock)
    await service.start(run_poller=False)
    expected: dict[tuple[str, str], list[tuple[int, float]]] = {}
    try:
        component = service.storage
        assert component.influx is not None
        for k in range(20):
            at = clock.now()
            service.state.put(Reading("fridge1", "fridge_temp_c", 4.0 + k, "C", at,
                                      Quality.GOOD))
            expected.setdefault(("fridge1", "fridge_temp_c"), []).append((to_ms(at), 4.0 + k))
            service.state.notify(at)
            clock.advance(2)
        component.influx.flush_all()  # the worker thread may send some too: never twice
        assert component.influx.buffered == 0
    finally:
        await service.stop()
    got = vm.export('{__name__="nsp_value"}')
    assert got == expected
    assert (tmp_path / "data" / "influx-buffer.db").exists()
