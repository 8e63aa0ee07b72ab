# The node skeleton on MicroPython: identity block, role ticks, discrete-input mirror, the
# watchdog rule (fed only while every critical task checks in), the global exception handler,
# the node's own config section, and safe mode after a crash series (with nsp.bootguard).
import asyncio
import os

from nsp import regmap as rm
from nsp.image import Image
from nsp.node import FW_VERSION, Node, make_node, modbus_settings


class FakeRole:
    def __init__(self, image, fail=False):
        self.image = image
        self.ticks = []
        self.fail = fail
        self.faults = 0

    def tick(self, now_ms):
        self.ticks.append(now_ms)
        if self.fail:
            raise ValueError("sensor broke")
        self.image.set_bool(rm.R_MAINS_PRESENT, True)
        self.image.set_bool(rm.R_DOOR_OPEN, True)
        self.image.set_bool(rm.R_GEN_RUNNING, None)

    def fault_bits(self):
        return self.faults


class FakeWdt:
    def __init__(self):
        self.feeds = 0

    def feed(self):
        self.feeds += 1


class Clock:
    def __init__(self):
        self.now_ms = 5000

    def ticks_ms(self):
        return self.now_ms


def test_identity_block():
    img = Image()
    Node({"node_id": 7, "roles": ["fridge", "entrance"]}, img, [], ticks_ms=Clock().ticks_ms,
         config_crc=0xDEADBEEF, virtual_clock=True, boot_count=4, crash_count=1)
    assert img.get_u16(rm.R_NODE_ID) == 7
    assert img.get_u16(rm.R_ROLES) == rm.B_FRIDGE | rm.B_ENTRANCE
    assert (img.get_u16(rm.R_FW_MAJOR), img.get_u16(rm.R_FW_MINOR), img.get_u16(rm.R_FW_PATCH)) == FW_VERSION
    assert img.get_u32(rm.R_CONFIG_CRC) == 0xDEADBEEF
    assert img.get_u16(rm.R_STATUS) == rm.B_VIRTUAL_CLOCK
    assert img.get_u16(rm.R_BOOT_COUNT) == 4 and img.get_u16(rm.R_CRASH_COUNT) == 1
    assert img.get_u32(rm.R_FREE_HEAP_B) > 1000
    assert img.get_u16(rm.R_MAP_VERSION) == rm.MAP_VERSION


def test_tick_runs_roles_updates_uptime_and_discrete_inputs():
    img = Image()
    clock = Clock()
    steps = []
    role = FakeRole(img)
    node = Node({"node_id": 1, "roles": ["power"]}, img, [role], ticks_ms=clock.ticks_ms,
                before_tick=steps.append)
    clock.now_ms += 61500
    node.tick(clock.now_ms)
    assert role.ticks == [66500] and steps == [66500]
    assert img.get_u32(rm.R_UPTIME_S) == 61
    assert img.discrete[rm.D_MAINS_PRESENT] == 1 and img.discrete[rm.D_DOOR_OPEN] == 1
    assert img.discrete[rm.D_GEN_RUNNING] == 0  # "not available" is not "running"
    assert img.discrete[rm.D_ANY_FAULT] == 0
    role.faults = rm.B_FUEL_OPEN_LOOP
    node.tick(clock.now_ms)
    assert img.discrete[rm.D_ANY_FAULT] == 1


def test_a_failing_role_does_not_stop_the_others():
    img = Image()
    bad, good = FakeRole(img, fail=True), FakeRole(img)
    node = Node({"node_id": 1}, img, [bad, good], ticks_ms=Clock().ticks_ms)
    node.tick(100)
    node.tick(200)
    assert good.ticks == [100, 200] and node.role_errors == 2


def test_watchdog_needs_every_critical_task():
    node = Node({"node_id": 1}, Image(), [], ticks_ms=Clock().ticks_ms, wdt_window_ms=1000)
    assert not node.alive(10000)
    node._checkins = {"tick": 9500, "heartbeat": 9900}
    assert not node.alive(10000)  # gc never checked in
    node._checkins["gc"] = 9000
    assert node.alive(10000)
    assert not node.alive(10600)  # gc's check-in is now older than the window


async def _run_until(node, cond, deadline_ms=3000):
    task = asyncio.create_task(node.run())
    waited = 0
    while not cond() and waited < deadline_ms:
        await asyncio.sleep_ms(5)
        waited += 5
    node.stop()
    return await task


def test_run_feeds_the_watchdog_while_tasks_check_in():
    wdt = FakeWdt()
    node = Node({"node_id": 1}, Image(), [], wdt=wdt, tick_ms=5, gc_ms=20, heartbeat_ms=5,
                wdt_every_ms=5)
    crashed = asyncio.run(_run_until(node, lambda: wdt.feeds >= 3))
    assert crashed is None and wdt.feeds >= 3


class Boom:
    async def serve(self):
        raise RuntimeError("boom")


def test_uncaught_exception_stops_node_and_watchdog():
    wdt = FakeWdt()
    node = Node({"node_id": 1}, Image(), [], wdt=wdt, tick_ms=5, wdt_every_ms=5)
    node.servers.append(Boom())
    crashed = asyncio.run(_run_until(node, lambda: node.crashed is not None))
    assert isinstance(crashed, RuntimeError)
    fed = wdt.feeds
    node._checkins = {"tick": 1000, "heartbeat": 1000, "gc": 1000}
    assert node.alive(1000)
    assert node.feed_watchdog(1000) is False and wdt.feeds == fed  # never fed after a crash
    node.crashed = None
    assert node.feed_watchdog(1000) is True and wdt.feeds == fed + 1


def test_modbus_settings_defaults_and_errors():
    mb, errors = modbus_settings({})
    assert mb["baud"] == 19200 and mb["parity"] == "even" and errors == []
    mb, errors = modbus_settings({"modbus": {"baud": 12345, "parity": "mark", "de_pin": "x",
                                             "tcp_port": 1502, "speed": 1}})
    assert mb["baud"] == 19200 and mb["parity"] == "even" and mb["de_pin"] == 5
    assert mb["tcp_port"] == 1502
    text = " ".join(errors)
    assert len(errors) == 4
    assert "modbus.baud" in text and "modbus.parity" in text and "modbus.de_pin" in text
    assert "modbus.speed" in text


def _rm(path):
    for p in (path, path + ".tmp"):
        try:
            os.remove(p)
        except OSError:
            pass


def test_make_node_counts_boots_and_enters_safe_mode():
    from nsp.persist import Store

    import time

    path = "/tmp/nsp_test_node_%d.json" % time.ticks_us()
    _rm(path)
    try:
        cfg = {"node_id": 3, "roles": [], "safe_mode_after_crashes": 2}
        node = make_node(cfg, [], 0, store=Store(path), ticks_ms=Clock().ticks_ms)
        assert node.image.get_u16(rm.R_BOOT_COUNT) == 1
        assert node.image.get_u16(rm.R_STATUS) & rm.B_SAFE_MODE == 0
        make_node(cfg, [], 0, store=Store(path), ticks_ms=Clock().ticks_ms)  # died early again
        node = make_node(cfg, ["config.json: bad"], 0, store=Store(path), ticks_ms=Clock().ticks_ms)
        status = node.image.get_u16(rm.R_STATUS)
        assert status & rm.B_SAFE_MODE and status & rm.B_CONFIG_ERROR
        assert node.image.get_u16(rm.R_CRASH_COUNT) == 2 and node.roles == []
        assert node.image.get_u16(rm.R_BOOT_COUNT) == 3
    finally:
        _rm(path)
