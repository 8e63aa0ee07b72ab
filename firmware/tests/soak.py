# The full role set (power, fridge, entrance) plus the simulated world for a simulated 24 h at 1 s
# steps, with faults and events along the way. Run by tests/test_fw_soak.py and benchmarks/bench_fw_roles.py
# from precompiled .mpy files (as they would sit on the board) under a fixed -X heapsize.
# Usage: micropython soak.py STORE_PATH SECONDS
# Prints "heap sim=B fw=B", then "peak=B" (live heap, firmware + sim), "tick_us=N" and "SOAK OK" at the end, else a traceback.
import gc
import sys
import time

gc.collect()
base = gc.mem_alloc()
import world  # noqa: E402  (the sim first: its size is measured separately from the firmware's)

gc.collect()
sim_b = gc.mem_alloc() - base
from nsp import regmap as rm  # noqa: E402
from nsp.image import Image  # noqa: E402
from nsp.persist import Store  # noqa: E402
from nsp.roles import build_roles  # noqa: E402

W = world.WORLD
image = Image()
store = Store(sys.argv[1])
roles = build_roles(["power", "fridge", "entrance"], image, {}, store)
gc.collect()
fw_b = gc.mem_alloc() - base - sim_b
print("heap sim=%d fw=%d" % (sim_b, fw_b))
seconds = int(sys.argv[2])
# (second, key, value): an outage with a failed first start, fridge power lost, door, beams, a leak
EVENTS = (
    (600, "visitors_per_hour", 30.0), (3600, "gen_will_start", False), (3700, "mains_present", False),
    (3715, "gen_will_start", True), (4000, "fridge_powered", False), (7200, "door_open", True),
    (7500, "door_open", False), (9000, "mains_present", True), (9100, "fridge_powered", True),
    (20000, "beam_a_blocked", True), (20300, "beam_a_blocked", False), (30000, "fridge_probe_unplugged", True),
    (31000, "fridge_probe_unplugged", False), (40000, "fuel_sender_open", True), (40100, "fuel_sender_open", False),
    (50000, "fuel_leak_lph", 2.0), (60000, "battery_sensor_missing", True), (60100, "battery_sensor_missing", False),
)
ev = 0
peak = 0
t_ms = 0
W.step(0)
ticks = 0
tick_us = 0
for s in range(1, seconds + 1):
    t_ms = s * 1000
    while ev < len(EVENTS) and EVENTS[ev][0] <= s:
        W.set(EVENTS[ev][1], EVENTS[ev][2])
        ev += 1
    if s == 5400:
        image.coils[rm.C_GEN_TEST_RUN] = 0  # try to stop the set carrying the site: must be refused
    W.step(t_ms)
    t0 = time.ticks_us()
    for r in roles:
        r.tick(t_ms)
    tick_us += time.ticks_diff(time.ticks_us(), t0)
    ticks += 1
    if s % 60 == 0:  # live-heap high-water, sampled once a simulated minute after a collection
        gc.collect()
        a = gc.mem_alloc()
        if a > peak:
            peak = a
print("peak=%d" % peak)
print("tick_us=%d" % (tick_us // ticks))
print("visitors_in=%d run_hours_centi=%d flash_writes=%d" % (image.get_u32(rm.R_VISITORS_IN),
                                                             image.get_u32(rm.R_RUN_HOURS_H), store.writes))
print("SOAK OK")
