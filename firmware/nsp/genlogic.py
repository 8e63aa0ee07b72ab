# Generator supervision and the remote-start interlocks. Pure logic: inputs (mains present, generator
# running, debounced), the test-run coil and now_ms in; relay, state, reason and last_command out.
# The generator's own controller (AMF) starts it when mains fails; our relay only asks for TEST runs.
# Interlocks (docs/architecture.md, never bypassed):
#   - no test start while mains is absent (the set is needed for real): refused_mains_absent;
#   - never stop a generator that runs while mains is absent: refused_carrying_site, relay stays on;
#   - a start not confirmed within the deadline: relay off, start_failed (state + fault);
#   - a test ends by itself after test_max_ms, but only while mains is present.
from time import ticks_add, ticks_diff

from nsp import regmap as rm

COOLDOWN_MS = 300000  # a running set with no request within 5 min of one is cooling down, not "unexpected"


class GenLogic:
    def __init__(self, test_max_ms=3600000, run_ms=0, start_count=0):
        self.test_max_ms = test_max_ms
        self.relay = False
        self.test_active = False
        self.state = rm.GEN_STATE_STOPPED
        self.reason = rm.GEN_RUN_REASON_NONE
        self.last_command = rm.LAST_COMMAND_NONE
        self.start_failed = False
        self.run_ms = run_ms  # total, persisted by the role
        self.start_count = start_count
        self.cranking = False  # a start is being attempted now (starter battery min is taken then)
        self._start_by = 0
        self._test_since = 0
        self._was_running = False
        self._request_end_ms = None
        self._mains_lost_ms = None
        self._last_ms = None

    def command(self, run, mains, running, now_ms, deadline_ms):
        """The test-run coil changed to `run`. Returns what the coil must read back (test_active)."""
        if run:
            if not mains:
                self.last_command = rm.LAST_COMMAND_REFUSED_MAINS_ABSENT
            else:
                self.test_active = True
                self.relay = True
                self._test_since = now_ms
                self.start_failed = False
                self.last_command = rm.LAST_COMMAND_ACCEPTED
                if not running:
                    self.state = rm.GEN_STATE_STARTING
                    self._start_by = ticks_add(now_ms, deadline_ms)
        else:
            if running and not mains:
                self.last_command = rm.LAST_COMMAND_REFUSED_CARRYING_SITE
            else:
                self._end_test(now_ms)
                self.last_command = rm.LAST_COMMAND_STOPPED
        return self.test_active

    def _end_test(self, now_ms):
        if self.relay:
            self._request_end_ms = now_ms
        self.relay = False
        self.test_active = False

    def update(self, mains, running, now_ms, deadline_ms):
        if self._last_ms is not None and running:
            self.run_ms += ticks_diff(now_ms, self._last_ms)
        self._last_ms = now_ms
        if mains:
            if self._mains_lost_ms is not None:
                self._request_end_ms = now_ms  # the AMF controller cools down after mains returns
            self._mains_lost_ms = None
        elif self._mains_lost_ms is None:
            self._mains_lost_ms = now_ms
        if running:
            if not self._was_running:
                self.start_count += 1
            self.start_failed = False
            self.cranking = False
            if not mains:
                self.state, self.reason = rm.GEN_STATE_RUNNING, rm.GEN_RUN_REASON_MAINS_LOST
            elif self.relay:
                self.state, self.reason = rm.GEN_STATE_RUNNING, rm.GEN_RUN_REASON_TEST
            elif self._request_end_ms is not None and ticks_diff(now_ms, self._request_end_ms) < COOLDOWN_MS:
                self.state, self.reason = rm.GEN_STATE_COOLDOWN, rm.GEN_RUN_REASON_NONE
            else:
                self.state, self.reason = rm.GEN_STATE_RUNNING, rm.GEN_RUN_REASON_UNEXPECTED
            if self.test_active and mains and ticks_diff(now_ms, self._test_since) >= self.test_max_ms:
                self._end_test(now_ms)
                self.last_command = rm.LAST_COMMAND_STOPPED
        else:
            self.reason = rm.GEN_RUN_REASON_NONE
            if self.relay and self.test_active:
                self.cranking = True
                if ticks_diff(now_ms, self._start_by) >= 0:
                    self._end_test(now_ms)
                    self._fail()
                else:
                    self.state = rm.GEN_STATE_STARTING
            elif self._mains_lost_ms is not None and not self.start_failed:
                # the AMF controller should have the set running within the same deadline
                self.cranking = True
                if ticks_diff(now_ms, self._mains_lost_ms) >= deadline_ms:
                    self._fail()
                else:
                    self.state = rm.GEN_STATE_STARTING
            elif not self.start_failed:
                self.cranking = False
                self.state = rm.GEN_STATE_STOPPED
            if self.relay and not self.test_active:
                self.relay = False
        self._was_running = running

    def _fail(self):
        self.cranking = False
        self.start_failed = True
        self.state = rm.GEN_STATE_START_FAILED
        self.last_command = rm.LAST_COMMAND_START_FAILED

