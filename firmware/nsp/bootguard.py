# Crash-loop guard. At every boot the persisted crash counter goes up by one (flushed at once); after
# healthy_after_ms of running it is cleared. So it only keeps rising across boots that died early
# (exception, watchdog, brown-out). At max_crashes in a row the node boots in SAFE MODE: no roles,
# only the Modbus identity/error registers (status bit safe_mode), so a technician can still read
# what is wrong over the bus. Safe mode clears itself the same way: after healthy_after_ms of running
# the counter is 0 and the next reset boots normally. Pure logic over a persist.Store.
from time import ticks_diff


class BootGuard:
    def __init__(self, store, max_crashes=3, healthy_after_ms=120000):
        self.store = store
        self.max_crashes = max_crashes
        self.healthy_after_ms = healthy_after_ms
        self.boot_count = 0
        self.crash_count = 0
        self.safe_mode = False
        self._boot_ms = 0
        self._healthy = False

    def boot(self, now_ms):
        """Call first thing at boot. Returns True when the node must run in safe mode."""
        s = self.store
        # crashes in a row BEFORE this boot = boots that never reached "healthy"
        self.crash_count = s.get("boots_unhealthy", 0)
        self.boot_count = s.get("boot_count", 0) + 1
        self.safe_mode = self.crash_count >= self.max_crashes
        s.set("boot_count", self.boot_count)
        s.set("boots_unhealthy", self.crash_count + 1)
        s.flush()  # must reach flash before anything that could crash
        self._boot_ms = now_ms
        self._healthy = False
        return self.safe_mode

    def tick(self, now_ms):
        """Call from the main loop; clears the counter once the node has run long enough."""
        if not self._healthy and ticks_diff(now_ms, self._boot_ms) >= self.healthy_after_ms:
            self._healthy = True
            self.store.set("boots_unhealthy", 0)
            self.store.flush()

    @property
    def healthy(self):
        return self._healthy
