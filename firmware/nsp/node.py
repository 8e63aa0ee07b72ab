# The node skeleton: identity block, role ticks, Modbus RTU/TCP servers,
# heartbeat, gc, a watchdog fed only while every critical task checks in, a global exception
# handler. The same class runs on the ESP32 (main.py) and on the unix port (sim/vnode.py).
#
# Time: roles and the identity block read the clock through the `ticks_ms` function given to Node
# (time.ticks_ms on the board, a virtual clock in the virtual node). Task liveness for the
# watchdog always uses the real time.ticks_ms: the hardware watchdog counts real milliseconds.
import gc
import sys
import time

from nsp import regmap as rm
from nsp.modbus import Engine

FW_VERSION = (0, 1, 0)
ROLE_BITS = {"power": rm.B_POWER, "fridge": rm.B_FRIDGE, "entrance": rm.B_ENTRANCE}
# Tasks that must check in for the watchdog to be fed (the Modbus servers only run on demand).
CRITICAL = ("tick", "heartbeat", "gc")
class Node:
    def __init__(self, cfg, image, roles, ticks_ms=None, wdt=None, config_crc=0, status=0,
                 virtual_clock=False, before_tick=None, boot_count=0, crash_count=0,
                 tick_ms=100, gc_ms=5000, wdt_window_ms=12000, led=None, store=None, guard=None,
                 heartbeat_ms=500, wdt_every_ms=1000):
        self.cfg = cfg
        self.image = image
        self.roles = roles
        self.ticks_ms = ticks_ms or time.ticks_ms
        self.wdt = wdt
        self.before_tick = before_tick  # the virtual node steps its world here
        self.tick_ms = tick_ms
        self.gc_ms = gc_ms
        self.wdt_window_ms = wdt_window_ms
        self.led = led
        self.heartbeat_ms = heartbeat_ms
        self.wdt_every_ms = wdt_every_ms
        self.store = store  # nsp.persist.Store or None: flushed (rarely) from tick()
        self.guard = guard  # nsp.bootguard.BootGuard or None: clears the crash series when healthy
        self.unit = cfg.get("node_id", 1)  # the Modbus unit id (nsp/fwconfig.py)
        self.engine = Engine(image, self.unit)
        self.servers = []  # objects with serve() coroutines or start() (TCP)
        self._tcp = []  # the TCP servers: their silent clients are closed from tick()
        self.net = None  # nsp.net.Net when config.json names a network: brought up from tick()
        self.crashed = None  # the exception that stopped the node, if any
        self.role_errors = 0
        self._checkins = {}
        self._boot_ms = self.ticks_ms()
        self._tasks = []
        self._stop = None
        if virtual_clock:
            status |= rm.B_VIRTUAL_CLOCK
        self._init_identity(config_crc, status, boot_count, crash_count)

    def _init_identity(self, config_crc, status, boot_count, crash_count):
        img = self.image
        img.set_u16(rm.R_MAP_VERSION, rm.MAP_VERSION)
        img.set_u16(rm.R_NODE_ID, self.unit)
        bits = 0
        for name in self.cfg.get("roles", ()):
            bits |= ROLE_BITS.get(name, 0)
        img.set_u16(rm.R_ROLES, bits)
        img.set_u16(rm.R_FW_MAJOR, FW_VERSION[0])
        img.set_u16(rm.R_FW_MINOR, FW_VERSION[1])
        img.set_u16(rm.R_FW_PATCH, FW_VERSION[2])
        img.set_u16(rm.R_RESET_CAUSE, _reset_cause())
        img.set_u32(rm.R_CONFIG_CRC, config_crc)
        img.set_u16(rm.R_BOOT_COUNT, boot_count)
        img.set_u16(rm.R_STATUS, status)
        img.set_u16(rm.R_CRASH_COUNT, crash_count)
        img.set_u32(rm.R_UPTIME_S, 0)
        img.set_u32(rm.R_FREE_HEAP_B, gc.mem_free())
        self.refresh()

    # ------------------------------------------------------------------ per-cycle work
    def tick(self, now_ms):
        """One cycle: step the world (sim), every role's tick(now_ms), then the identity block."""
        if self.guard is not None:
            self.guard.tick(now_ms)
        if self.before_tick is not None:
            self.before_tick(now_ms)
        for role in self.roles:
            try:
                role.tick(now_ms)
            except Exception as e:  # one broken sensor role must not stop Modbus or the others
                self.role_errors += 1
                if self.role_errors < 10:
                    print("role %s tick failed:" % type(role).__name__)
                    sys.print_exception(e)
        store = self.store
        if store is not None:
            store.maybe_flush(now_ms)
            regs = self.image.regs
            if store.error:
                regs[rm.R_STATUS] |= rm.B_PERSIST_ERROR
            else:
                regs[rm.R_STATUS] &= ~rm.B_PERSIST_ERROR & 0xFFFF
        for srv in self._tcp:
            srv.reap(now_ms)
        if self.net is not None:
            self.net.tick(now_ms)
        self.refresh(now_ms)

    def refresh(self, now_ms=None):
        """Identity (uptime) and the discrete inputs, which mirror role registers."""
        img = self.image
        if now_ms is None:
            now_ms = self.ticks_ms()
        img.set_u32(rm.R_UPTIME_S, time.ticks_diff(now_ms, self._boot_ms) // 1000)
        regs = img.regs
        d = img.discrete
        d[rm.D_MAINS_PRESENT] = 1 if regs[rm.R_MAINS_PRESENT] == 1 else 0
        d[rm.D_GEN_RUNNING] = 1 if regs[rm.R_GEN_RUNNING] == 1 else 0
        d[rm.D_RELAY_ON] = 1 if regs[rm.R_RELAY_ON] == 1 else 0
        d[rm.D_DOOR_OPEN] = 1 if regs[rm.R_DOOR_OPEN] == 1 else 0
        d[rm.D_FRIDGE_ALARM] = 1 if regs[rm.R_FRIDGE_ALARM] == 1 else 0
        fault = regs[rm.R_STATUS] & (rm.B_CONFIG_ERROR | rm.B_PERSIST_ERROR | rm.B_NET_DOWN)
        for role in self.roles:
            try:
                fault |= role.fault_bits()
            except Exception:
                fault = 1
        d[rm.D_ANY_FAULT] = 1 if fault else 0

    # ------------------------------------------------------------------ transports
    def add_tcp(self, host, port, max_clients=4, write_allow=None):
        """Modbus TCP; writes only from write_allow (default: config.json modbus.tcp_write_allow,
        itself empty by default: no master may write over TCP until one is named)."""
        from nsp.tcp import TcpServer

        mb = modbus_settings(self.cfg)[0]
        if write_allow is None:
            write_allow = mb["tcp_write_allow"]
        idle_s = mb["tcp_idle_s"]
        srv = TcpServer(self.engine, host, port, max_clients=max_clients, write_allow=write_allow,
                        idle_ms=idle_s * 1000 if idle_s else 0, ticks_ms=self.ticks_ms)
        self.servers.append(srv)
        self._tcp.append(srv)
        return srv

    def add_net(self, network):
        """Bring up config.json's network (nsp/net.py) from tick(), never blocking; returns the
        Net, or None when config.json names none. `network` is MicroPython's network module."""
        from nsp.net import Net, network_settings

        settings, _errors = network_settings(self.cfg)  # errors were printed at boot
        if settings is None:
            return None
        self.net = Net(settings, self.image, network, self.ticks_ms)
        return self.net

    def add_rtu(self, stream, baud=19200, de_pin=None):
        from nsp.rtu import RtuServer

        srv = RtuServer(self.engine, stream, baud, de_pin)
        self.servers.append(srv)
        return srv

    # ------------------------------------------------------------------ tasks
    def checkin(self, name):
        self._checkins[name] = time.ticks_ms()

    def alive(self, now_ms=None):
        """True when every critical task checked in within the watchdog window (real time)."""
        if now_ms is None:
            now_ms = time.ticks_ms()
        for name in CRITICAL:
            t = self._checkins.get(name)
            if t is None or time.ticks_diff(now_ms, t) > self.wdt_window_ms:
                return False
        return True

    async def _tick_task(self):
        import asyncio

        while True:
            self.tick(self.ticks_ms())
            self.checkin("tick")
            await asyncio.sleep_ms(self.tick_ms)

    async def _heartbeat_task(self):
        import asyncio

        on = 0
        while True:
            on ^= 1
            if self.led is not None:
                self.led.value(on)
            self.checkin("heartbeat")
            await asyncio.sleep_ms(self.heartbeat_ms)

    async def _gc_task(self):
        import asyncio

        while True:
            gc.collect()
            self.image.set_u32(rm.R_FREE_HEAP_B, gc.mem_free())
            self.checkin("gc")
            await asyncio.sleep_ms(self.gc_ms)

    async def _watchdog_task(self):
        import asyncio

        while True:
            self.feed_watchdog()
            await asyncio.sleep_ms(self.wdt_every_ms)

    def feed_watchdog(self, now_ms=None):
        """Feed only while nothing crashed and every critical task checked in recently."""
        if self.wdt is None or self.crashed is not None or not self.alive(now_ms):
            return False
        self.wdt.feed()
        return True

    def _on_exception(self, loop, context):
        # Global handler: an uncaught exception in any task. Record it, stop feeding the
        # watchdog (on the board it resets the chip within its timeout) and stop run().
        exc = context.get("exception")
        print("node: uncaught exception:", context.get("message", ""))
        if exc is not None:
            sys.print_exception(exc)
        self.crashed = exc or RuntimeError(context.get("message", "unknown"))
        if self._stop is not None:
            self._stop.set()

    async def run(self):
        """Create every task (only here) and run until stop() or an uncaught exception."""
        import asyncio

        self._stop = asyncio.Event()
        asyncio.get_event_loop().set_exception_handler(self._on_exception)
        self.checkin("tick")
        self.checkin("heartbeat")
        self.checkin("gc")
        self._tasks = [
            asyncio.create_task(self._tick_task()),
            asyncio.create_task(self._heartbeat_task()),
            asyncio.create_task(self._gc_task()),
            asyncio.create_task(self._watchdog_task()),
        ]
        for srv in self.servers:
            if hasattr(srv, "start"):
                await srv.start()
            else:
                self._tasks.append(asyncio.create_task(srv.serve()))
        await self._stop.wait()
        for t in self._tasks:
            t.cancel()
        for srv in self.servers:
            if hasattr(srv, "close"):
                srv.close()
        return self.crashed

    def stop(self):
        if self._stop is not None:
            self._stop.set()


def _reset_cause():
    # machine.reset_cause() numbering equals the register's enum (1 power-on .. 5 soft).
    try:
        import machine

        cause = machine.reset_cause()
        return cause if 0 <= cause <= 5 else rm.RESET_CAUSE_UNKNOWN
    except Exception:
        return rm.RESET_CAUSE_UNKNOWN


def build_roles(names, image, cfg, store):
    """nsp.roles.build_roles, or ([], reason) when the package is missing or refuses the config."""
    if not names:
        return [], None
    try:
        from nsp import roles as roles_pkg
    except ImportError as e:
        return [], "nsp.roles not available (%s)" % e
    try:
        built = roles_pkg.build_roles(names, image, cfg, store)
        errors = getattr(roles_pkg, "config_errors", None)
        return built, ("config: " + errors[0]) if errors else None
    except Exception as e:
        sys.print_exception(e)
        return [], "roles %s not built: %s: %s" % (names, type(e).__name__, e)


def make_node(cfg, errors, config_crc, store=None, ticks_ms=None, **kw):
    """Boot sequence shared by main.py and sim/vnode.py: image, boot guard, roles, Node.

    cfg/errors/config_crc come from nsp.fwconfig.load(); errors are printed and set status bit
    config_error. After too many crashes in a row (nsp.bootguard) the node runs in safe mode:
    no roles, identity block and Modbus only."""
    from nsp.image import Image

    image = Image()
    ticks = ticks_ms or time.ticks_ms
    status = 0
    for line in errors:
        print(line)
    if errors:
        status |= rm.B_CONFIG_ERROR
    guard = None
    safe = False
    boot_count = crash_count = 0
    if store is not None:
        from nsp.bootguard import BootGuard

        guard = BootGuard(store, cfg.get("safe_mode_after_crashes", 3),
                          cfg.get("healthy_after_s", 120) * 1000)
        safe = guard.boot(ticks())
        boot_count, crash_count = guard.boot_count, guard.crash_count
        if store.error:
            status |= rm.B_PERSIST_ERROR
    roles = []
    if safe:
        print("node: %d crashes in a row: SAFE MODE (no roles)" % crash_count)
        status |= rm.B_SAFE_MODE
    else:
        roles, err = build_roles(cfg.get("roles", []), image, cfg, store)
        if err:
            print("node: " + err)
            status |= rm.B_CONFIG_ERROR
    return Node(cfg, image, roles, ticks_ms=ticks, config_crc=config_crc, status=status,
                boot_count=boot_count, crash_count=crash_count, store=store, guard=guard, **kw)


# The node's own config.json section (fwconfig passes it through untouched):
# "modbus": {"baud": 19200, "parity": "even", "uart": 2, "tx_pin": 17, "rx_pin": 16,
#            "de_pin": 5, "tcp_port": 502, "tcp_write_allow": ["192.168.1.10"], "tcp_idle_s": 60}
# (tcp_port 0 = no Modbus TCP; tcp_write_allow: the masters that may write over TCP, IPv4;
# tcp_idle_s: a TCP client that completes no request for this long is closed, 0 = never)
MODBUS_DEFAULTS = {"baud": 19200, "parity": "even", "uart": 2, "tx_pin": 17, "rx_pin": 16,
                   "de_pin": 5, "tcp_port": 502, "tcp_write_allow": (), "tcp_idle_s": 60}
_BAUDS = (1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200)


def modbus_settings(cfg):
    """cfg["modbus"] with defaults filled in -> (settings, [error lines]); bad fields fall back."""
    given = cfg.get("modbus", {})
    out = dict(MODBUS_DEFAULTS)
    errors = []
    if not isinstance(given, dict):
        return out, ["config.json: modbus must be an object {...}; using defaults"]
    for key, value in given.items():
        if key not in out:
            errors.append("config.json: unknown field modbus.%s ignored; known: %s"
                          % (key, ", ".join(sorted(out))))
        elif key == "parity":
            if value in ("even", "odd", "none"):
                out[key] = value
            else:
                errors.append("config.json: modbus.parity must be even, odd or none, got %r" % (value,))
        elif key == "tcp_write_allow":
            from nsp.tcp import ipv4_words

            ok = isinstance(value, list) and all(ipv4_words(a) is not None for a in value)
            if ok:
                out[key] = value
            else:
                errors.append("config.json: modbus.tcp_write_allow must be a list of IPv4 "
                              "addresses like \"192.168.1.10\", got %r; no TCP writes" % (value,))
        elif key == "baud" and value not in _BAUDS:
            errors.append("config.json: modbus.baud must be one of %s, got %r" % (_BAUDS, value))
        elif not isinstance(value, int) or isinstance(value, bool) or value < 0 or value > 65535:
            errors.append("config.json: modbus.%s must be a whole number, got %r" % (key, value))
        else:
            out[key] = value
    return out, errors
