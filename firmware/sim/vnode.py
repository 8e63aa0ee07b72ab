# The virtual node: the real firmware (nsp.node, the Modbus servers, the roles and drivers) on the
# MicroPython unix port, with sim/machine.py and sim/world.py standing in for the board and site
# (--world scripted: sim/stim.py's scripted day instead, ~9 KB less heap; `get` answers its state,
# `set` is refused).
#
#   MICROPYPATH=firmware/sim:firmware:.frozen micropython -X heapsize=96k firmware/sim/vnode.py \
#       --config FILE --tcp HOST:PORT [--rtu PTY] [--baud 19200] [--control HOST:PORT]
#       [--virtual-clock] [--data DIR] [--world physics|scripted]
#
# Control channel (docs/interfaces.md): TCP, one JSON object per line, one JSON reply per line:
# ping, get, set, advance (virtual clock only), offline. `nsp-edge node-sim` starts this file.
import json
import sys
import time

import asyncio

from nsp.node import make_node

USAGE = ("usage: vnode.py --config FILE --tcp HOST:PORT [--rtu PTY] [--baud N] "
         "[--control HOST:PORT] [--virtual-clock] [--data DIR] [--world physics|scripted]")


def parse_args(argv):
    opts = {"config": None, "tcp": None, "rtu": None, "baud": "19200", "control": None,
            "virtual-clock": False, "data": None, "world": "physics"}
    i = 0
    while i < len(argv):
        a = argv[i]
        if not a.startswith("--") or a[2:] not in opts:
            raise ValueError("unknown argument %r; %s" % (a, USAGE))
        key = a[2:]
        if key == "virtual-clock":
            opts[key] = True
            i += 1
            continue
        if i + 1 >= len(argv):
            raise ValueError("%s needs a value; %s" % (a, USAGE))
        opts[key] = argv[i + 1]
        i += 2
    if opts["config"] is None:
        raise ValueError("--config FILE is required; " + USAGE)
    if opts["world"] not in ("physics", "scripted"):
        raise ValueError("--world is physics or scripted, got %r" % (opts["world"],))
    return opts


def host_port(text, name):
    host, sep, port = text.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError("%s must be HOST:PORT, got %r" % (name, text))
    return host or "127.0.0.1", int(port)


def write_json(writer, reply):
    """One JSON line in small pieces: on a fragmented 64-bit heap a 1 KB string (a world snapshot)
    can fail where many 20-byte ones do not. A World value (or stim's dict) is streamed by items()."""
    w = writer.write
    sep = b"{"
    for key, value in reply.items():
        w(sep)
        sep = b", "
        w(json.dumps(key).encode())
        w(b": ")
        if hasattr(value, "items"):
            inner = b"{"
            for k, v in value.items():
                w(inner)
                inner = b", "
                w(json.dumps(k).encode())
                w(b": ")
                w(json.dumps(v).encode())
            w(b"}" if inner == b", " else b"{}")
        else:
            w(json.dumps(value).encode())
    w(b"}\n" if sep == b", " else b"{}\n")


class VirtualClock:
    """Milliseconds that move only when the control channel says `advance` (unix ticks never wrap
    in practice: the period is 2**62 ms)."""

    def __init__(self):
        self.now_ms = 0

    def ticks_ms(self):
        return self.now_ms


def load_world(kind, start_ms):
    if kind == "scripted":  # sim/stim.py: module functions, attached to the fakes as world.py is
        import machine
        import stim

        stim.now_ms = start_ms  # its script counts seconds from the first step
        machine.attach(stim)
        return stim
    try:
        import world

        return world.WORLD
    except ImportError:
        return None


class VNode:
    def __init__(self, opts):
        from nsp import fwconfig

        self.opts = opts
        with open(opts["config"], "rb") as f:  # a missing file is a usage error here, not a default
            f.read(1)
        cfg, errors, crc = fwconfig.load(opts["config"])
        self.cfg = cfg
        self.clock = VirtualClock() if opts["virtual-clock"] else None
        self.world = load_world(opts["world"], 0 if self.clock else time.ticks_ms())
        store = None
        if opts["data"] is not None:
            from nsp.persist import Store

            store = Store(opts["data"] + "/counters.json")
        self.node = make_node(cfg, errors, crc, store=store,
                              ticks_ms=self.clock.ticks_ms if self.clock else None,
                              wdt=self._wdt(), virtual_clock=self.clock is not None,
                              before_tick=self.world.step if self.world is not None else None)
        self.image = self.node.image

    def _wdt(self):
        try:
            from machine import WDT

            return WDT(0, 30000)
        except Exception:
            return None

    # ------------------------------------------------------------------ control channel
    async def control_client(self, reader, writer):
        try:
            while True:
                line = await reader.readline()
                if not line:
                    break
                try:
                    reply = await self.control(json.loads(line))
                except Exception as e:
                    msg = e.args[0] if e.args else type(e).__name__
                    reply = {"ok": False, "error": "%s: %s" % (type(e).__name__, msg)}
                write_json(writer, reply)
                reply = None
                await writer.drain()
        except (EOFError, OSError):
            pass
        finally:
            try:
                writer.close()
                await writer.wait_closed()
            except OSError:
                pass

    async def control(self, req):
        if not isinstance(req, dict) or "op" not in req:
            return {"ok": False, "error": 'a control request is a JSON object with "op"'}
        op = req["op"]
        node = self.node
        if op == "ping":
            return {"ok": True, "unit": node.unit, "now_ms": node.ticks_ms(),
                    "virtual_clock": self.clock is not None, "offline": node.engine.offline}
        if op == "offline":
            value = req.get("value")
            if value is not True and value is not False:
                return {"ok": False, "error": "offline needs \"value\": true or false"}
            node.engine.offline = value
            return {"ok": True, "offline": value}
        if op == "advance":
            return await self._advance(req)
        if op == "heap":  # live heap after a collection (benchmarks/bench_fw_heap.py)
            import gc

            gc.collect()
            return {"ok": True, "alloc": gc.mem_alloc(), "free": gc.mem_free()}
        if self.world is None:
            return {"ok": False, "error": "world not available"}
        if op == "get":
            world = self.world
            if not hasattr(world, "items"):  # sim/stim.py: a small dict of its state
                world = world.snapshot()
            return {"ok": True, "now_ms": node.ticks_ms(), "world": world}  # streamed
        if op == "set":
            if not hasattr(self.world, "set"):
                return {"ok": False, "error": "the scripted world takes no set; use --world physics"}
            if "key" not in req or "value" not in req:
                return {"ok": False, "error": 'set needs "key" and "value"'}
            self.world.set(req["key"], req["value"])
            node.tick(node.ticks_ms())  # the image reflects the change before the reply
            return {"ok": True}
        return {"ok": False,
                "error": "unknown op %r; known: ping, get, set, advance, offline, heap" % (op,)}

    async def _advance(self, req):
        clock = self.clock
        if clock is None:
            return {"ok": False, "error": "advance needs the node started with --virtual-clock"}
        ms = req.get("ms")
        step_ms = req.get("step_ms", 1000)
        if not isinstance(ms, int) or isinstance(ms, bool) or ms < 0:
            return {"ok": False, "error": "advance needs \"ms\": a whole number >= 0"}
        if not isinstance(step_ms, int) or isinstance(step_ms, bool) or step_ms < 1:
            return {"ok": False, "error": "advance \"step_ms\" must be a whole number >= 1"}
        target = clock.now_ms + ms
        steps = 0
        while clock.now_ms < target:
            nxt = clock.now_ms + step_ms
            clock.now_ms = nxt if nxt < target else target
            self.node.tick(clock.now_ms)
            steps += 1
            if steps % 20 == 0:
                await asyncio.sleep_ms(0)  # Modbus keeps answering during a long advance
        return {"ok": True, "now_ms": clock.now_ms, "steps": steps}

    # ------------------------------------------------------------------ main
    async def main(self):
        opts = self.opts
        node = self.node
        where = []
        if opts["tcp"]:
            host, port = host_port(opts["tcp"], "--tcp")
            # The virtual node's masters (the edge, tests, the demo) run on this machine: unless
            # config.json names its own list, loopback may write (a board's default: nobody).
            allow = self.cfg.get("modbus", {}).get("tcp_write_allow", ["127.0.0.1"])
            node.add_tcp(host, port, write_allow=allow)
            where.append("tcp %s:%d" % (host, port))
        if opts["rtu"]:
            from nsp.rtu import open_pty

            node.add_rtu(open_pty(opts["rtu"]), int(opts["baud"]))
            where.append("rtu %s" % opts["rtu"])
        if opts["control"]:
            host, port = host_port(opts["control"], "--control")
            await asyncio.start_server(self.control_client, host, port)
            where.append("control %s:%d" % (host, port))
        print("vnode: unit %d roles %s serving %s" % (node.unit, self.cfg.get("roles", []),
                                                       ", ".join(where)))
        crashed = await node.run()
        return 3 if crashed is not None else 0


def main(argv):
    try:
        opts = parse_args(argv)
        vnode = VNode(opts)
    except (ValueError, OSError) as e:
        print("vnode: %s" % (e.args[0] if e.args else e))
        return 2
    try:
        return asyncio.run(vnode.main())
    except KeyboardInterrupt:
        print("vnode: stopped (SIGINT)")
        return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
