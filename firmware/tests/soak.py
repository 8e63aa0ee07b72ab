# The full role set (power, fridge, entrance) for a simulated 24 h at 1 s steps against a scripted
# site (sim/stim.py: mains lost and back, a failed first start, the set running, fridge unpowered,
# door, visitors, a blocked beam, the fridge probe unplugged, the fuel sender open, a leak, the INA226
# gone), through the same fakes (sim/machine.py, sim/onewire.py) the virtual node uses.
# Run by tests/test_fw_soak.py and benchmarks/bench_fw_heap.py from a ROMFS image under a fixed
# -X heapsize: romboot calls main(argv). Usage: romboot IMAGE soak STORE_PATH SECONDS
# (everything in main(): its locals cost no heap qstrs, module globals would)
# Prints "heap sim=B fw=B", then "peak=B" (live heap, firmware + sim), "tick_us=N", the roles'
# outputs and what the script did, and "SOAK OK" at the end, else a traceback.
import gc
import time


def main(argv):
    gc.collect()
    base = gc.mem_alloc()
    import machine  # the sim first: its size is measured separately from the firmware's
    import stim

    machine.attach(stim)
    gc.collect()
    sim_b = gc.mem_alloc() - base
    from nsp import regmap as rm
    from nsp.image import Image
    from nsp.persist import Store
    from nsp.roles import build_roles

    image = Image()
    store = Store(argv[0])
    roles = build_roles(["power", "fridge", "entrance"], image, {}, store)
    gc.collect()
    fw_b = gc.mem_alloc() - base - sim_b
    print("heap sim=%d fw=%d" % (sim_b, fw_b))
    seconds = int(argv[1])
    peak = 0
    stim.step(0)
    ticks = 0
    tick_us = 0
    fuel0 = -1
    seen_fridge = seen_power = seen_entr = 0
    for s in range(1, seconds + 1):
        t_ms = s * 1000
        if s == 5400:
            image.coils[rm.C_GEN_TEST_RUN] = 0  # try to stop the set carrying the site: must be refused
        stim.step(t_ms)
        t0 = time.ticks_us()
        for r in roles:
            r.tick(t_ms)
        tick_us += time.ticks_diff(time.ticks_us(), t0)
        ticks += 1
        if s % 60 == 0:  # live-heap high-water, sampled once a simulated minute after a collection
            seen_fridge |= image.get_u16(rm.R_FRIDGE_FAULTS)
            seen_power |= image.get_u16(rm.R_POWER_FAULTS)
            seen_entr |= image.get_u16(rm.R_ENTRANCE_FAULTS)
            if fuel0 < 0:
                fuel0 = image.get_u32(rm.R_FUEL_L)
            gc.collect()
            a = gc.mem_alloc()
            if a > peak:
                peak = a
    print("peak=%d" % peak)
    print("tick_us=%d" % (tick_us // ticks))
    print("visitors_in=%d visitors_out=%d walked_in=%d walked_out=%d" % (
        image.get_u32(rm.R_VISITORS_IN), image.get_u32(rm.R_VISITORS_OUT), stim.ins, stim.outs))
    print("run_hours_centi=%d flash_writes=%d fuel_l_first=%d fuel_l_last=%d mains=%d gen_running=%d"
          % (image.get_u32(rm.R_RUN_HOURS_H), store.writes, fuel0, image.get_u32(rm.R_FUEL_L),
             image.get_u16(rm.R_MAINS_PRESENT), image.get_u16(rm.R_GEN_RUNNING)))
    print("fridge_faults_seen=%d fridge_faults_last=%d power_faults_seen=%d power_faults_last=%d "
          "entrance_faults_seen=%d entrance_faults_last=%d" % (
              seen_fridge, image.get_u16(rm.R_FRIDGE_FAULTS), seen_power,
              image.get_u16(rm.R_POWER_FAULTS), seen_entr, image.get_u16(rm.R_ENTRANCE_FAULTS)))
    print("SOAK OK")
    return 0


if __name__ == "__main__":  # `micropython -m soak STORE SECONDS` (benchmarks/bench_fw_roles.py)
    import sys

    sys.exit(main(sys.argv[1:]))
