# Heap probe for the 32-bit webassembly port (not a test module): tests/test_fw_wasm_heap.py and
# benchmarks/bench_fw_wasm.py run it through firmware/wasm/heap.mjs. The node with every role
# against the soak's scripted site (sim/stim.py behind sim/machine.py, sim/onewire.py), ticked by
# a virtual clock, its Modbus engine serving RTU frames (nsp/rtu.py RtuFramer: CRC, unit, PDU)
# for FC01/02/03/04/05/06/16 after every tick, each reply checked byte for byte against the image.
# Then the node's own asyncio tasks (tick, heartbeat, gc, watchdog) run in the port's JS-driven
# asyncio. The port runs gc.collect() only once the call from JavaScript has returned, so each
# phase and each tick is its own call (heap.mjs) and the live heap is read at the next call.
# The writes put each setting's default back, so the roles behave as in the soak.
import gc
import sys

HEAP_GROWTH_B = 134217728  # mem_free counts 128 MiB the port could still add to the heap


def heap_total():
    """The GC heap as it is now (the initial heapsize until the port grows it)."""
    return gc.mem_alloc() + gc.mem_free() - HEAP_GROWTH_B


class Probe:
    def __init__(self):
        self.now_ms = 0
        self.node = None
        self.framer = None
        self.requests = []  # (frame bytearray, checker function)
        self.served = 0
        self.wrong = 0
        self.first_wrong = ""
        self.peak = 0
        self.total_max = 0
        self.heap_start = heap_total()
        self.steps = []  # live heap after each boot phase
        self.sample()

    def sample(self, record=False):
        a = gc.mem_alloc()
        if record:
            self.steps.append(a)
        if a > self.peak:
            self.peak = a
        t = heap_total()
        if t > self.total_max:
            self.total_max = t

    def ticks_ms(self):
        return self.now_ms

    def boot(self, phase):
        """Boot in phases 0..4, one call from JavaScript each (the port collects only between
        calls; boot in one call grew the 64 KB heap to 124 KB: measured)."""
        if phase == 0:  # the sim's fakes and the scripted site (a board has silicon instead)
            import machine
            import stim

            machine.attach(stim)
            stim.step(0)
        elif phase == 1:
            from nsp import fwconfig

            self.cfg = fwconfig.load("/config.json")
        elif phase == 2:
            import nsp.node  # noqa: F401
            import nsp.persist  # noqa: F401
            import nsp.roles  # noqa: F401
        elif phase == 3:
            import machine
            import stim
            from nsp.node import make_node
            from nsp.persist import Store

            cfg, errors, crc = self.cfg
            self.cfg = None
            self.node = make_node(cfg, errors, crc, store=Store("/counters.json"),
                                  ticks_ms=self.ticks_ms, virtual_clock=True,
                                  before_tick=stim.step, wdt=machine.WDT(timeout=30000))
        else:
            from nsp.rtu import RtuFramer

            self.framer = RtuFramer(self.node.engine, 19200)
            self._make_requests(self.node.unit)
        gc.collect()

    def _make_requests(self, unit):
        from nsp import regmap as rm

        img = self.node.image

        def regs_reply(fc, addr, qty):
            def check(resp, n):
                if n != 5 + 2 * qty or resp[1] != fc or resp[2] != 2 * qty:
                    return False
                for i in range(qty):
                    v = img.regs[addr + i]
                    if resp[3 + 2 * i] != v >> 8 or resp[4 + 2 * i] != v & 0xFF:
                        return False
                return True
            return check

        def bits_reply(fc, bits, addr, qty):
            def check(resp, n):
                nbytes = (qty + 7) >> 3
                if n != 5 + nbytes or resp[1] != fc or resp[2] != nbytes:
                    return False
                for i in range(qty):
                    if ((resp[3 + (i >> 3)] >> (i & 7)) & 1) != bits[addr + i]:
                        return False
                return True
            return check

        def echo_reply(frame, after):
            def check(resp, n):
                for i in range(6):
                    if resp[i] != frame[i]:
                        return False
                return n == 8 and after()
            return check

        def add(pdu, checker_for):
            frame = bytearray(len(pdu) + 3)
            frame[0] = unit
            frame[1:1 + len(pdu)] = pdu
            from nsp.crc import crc16

            c = crc16(frame, 0, len(pdu) + 1)
            frame[-2] = c & 0xFF
            frame[-1] = c >> 8
            self.requests.append((frame, checker_for(frame)))

        def setting(addr):
            return [d for a, d in rm.WRITABLE if a == addr][0]

        low, high, delay = setting(rm.R_FRIDGE_LOW_C), setting(rm.R_FRIDGE_HIGH_C), \
            setting(rm.R_FRIDGE_ALARM_DELAY_S)
        add(bytes((3, 0, 0, 0, rm.IMAGE_SIZE)), lambda f: regs_reply(3, 0, rm.IMAGE_SIZE))
        add(bytes((4, 0, 20, 0, 40)), lambda f: regs_reply(4, 20, 40))
        add(bytes((1, 0, 0, 0, rm.N_COILS)), lambda f: bits_reply(1, img.coils, 0, rm.N_COILS))
        add(bytes((2, 0, 0, 0, rm.N_DISCRETE)),
            lambda f: bits_reply(2, img.discrete, 0, rm.N_DISCRETE))
        add(bytes((5, 0, rm.C_ALARM_SILENCE, 0, 0)),
            lambda f: echo_reply(f, lambda: img.coils[rm.C_ALARM_SILENCE] == 0))
        add(bytes((6, 0, rm.R_FRIDGE_ALARM_DELAY_S, delay >> 8, delay & 0xFF)),
            lambda f: echo_reply(f, lambda: img.regs[rm.R_FRIDGE_ALARM_DELAY_S] == delay))
        add(bytes((16, 0, rm.R_FRIDGE_LOW_C, 0, 2, 4, low >> 8, low & 0xFF, high >> 8,
                   high & 0xFF)),
            lambda f: lambda resp, n: (n == 8 and resp[1] == 16 and resp[3] == rm.R_FRIDGE_LOW_C
                                       and resp[5] == 2 and img.regs[rm.R_FRIDGE_LOW_C] == low
                                       and img.regs[rm.R_FRIDGE_HIGH_C] == high))

    def tick(self, requests, step_ms=1000):
        """One node tick on the virtual clock, then `requests` RTU frames, cycling the FCs."""
        self.sample()
        self.now_ms += step_ms
        self.node.tick(self.now_ms)
        framer = self.framer
        reqs = self.requests
        for _ in range(requests):
            frame, check = reqs[self.served % len(reqs)]
            framer.feed(frame, len(frame))
            n = framer.process()
            self.served += 1
            if not check(framer.resp, n):
                self.wrong += 1
                if not self.first_wrong:
                    self.first_wrong = "FC%02d reply %s" % (frame[1], bytes(framer.resp[:n]))
        gc.collect()  # takes effect when this call returns to JavaScript

    async def run_tasks(self, ms):
        """The node's own tasks for `ms` of real time in the port's asyncio, then stop()."""
        import asyncio

        node = self.node

        async def stopper():
            await asyncio.sleep_ms(ms)
            node.stop()

        asyncio.create_task(stopper())
        crashed = await node.run()
        self.tasks_crashed = crashed

    def report(self):
        self.sample()
        from nsp import regmap as rm

        img = self.node.image
        print("wasm_roles %d" % len(self.node.roles))
        print("wasm_served %d" % self.served)
        print("wasm_wrong %d %s" % (self.wrong, self.first_wrong))
        print("wasm_rx_frames %d" % img.get_u16(rm.R_RX_FRAMES))
        print("wasm_exceptions %d" % img.get_u16(rm.R_EXCEPTIONS))
        print("wasm_peak %d" % self.peak)
        print("wasm_heap_start %d" % self.heap_start)
        print("wasm_heap_max %d" % self.total_max)
        print("wasm_boot_steps %s" % ",".join(str(a) for a in self.steps))
        print("wasm_maxsize %d" % sys.maxsize)
        print("wasm_tasks_crashed %r" % (getattr(self, "tasks_crashed", "not run"),))
        print("wasm_wdt_feeds %d" % self.node.wdt.feeds)


probe = None


def start():
    global probe
    probe = Probe()
