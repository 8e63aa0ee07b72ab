# Heap probe for benchmarks/bench_fw_heap.py (not a test module): imports the virtual node's modules
# one at a time, then builds the node with every role, printing the live heap (gc.collect() then
# gc.mem_alloc()) after each step. Run from .mpy files on disk (bytecode copied into the heap) and
# from the ROMFS image (bytecode in place), the difference is the code's share.
# Usage: micropython heapprobe.py CONFIG DATA_DIR   -> lines "step bytes"
import gc
import sys

MODULES = ("machine", "onewire", "world", "asyncio", "nsp.regmap", "nsp.image", "nsp.crc",
           "nsp.modbus", "nsp.persist", "nsp.bootguard", "nsp.node", "nsp.tcp", "nsp.rtu", "vnode",
           "nsp.fwconfig", "nsp.filters", "nsp.tank", "nsp.soc", "nsp.genlogic", "nsp.alarm",
           "nsp.direction", "nsp.drivers.ina226", "nsp.drivers.loop_current", "nsp.drivers.ds18b20",
           "nsp.drivers.beams", "nsp.roles", "nsp.roles.power", "nsp.roles.fridge",
           "nsp.roles.entrance")
SIM = ("machine", "onewire", "world")


def alloc():
    gc.collect()
    return gc.mem_alloc()


def main(argv):
    base = alloc()
    prev = base
    sim = 0
    for name in MODULES:
        __import__(name)
        now = alloc()
        print("import:%s %d" % (name, now - prev))
        if name in SIM:
            sim += now - prev
        prev = now
    print("imports_total %d" % (prev - base))
    print("imports_sim %d" % sim)
    vnode = sys.modules["vnode"]
    # fwconfig stays imported here (build_roles drops it after validating): count it apart
    opts = vnode.parse_args(["--config", argv[0], "--tcp", "127.0.0.1:1", "--virtual-clock",
                             "--data", argv[1]])
    node = vnode.VNode(opts)
    after = alloc()
    print("construct %d" % (after - prev))
    print("roles %d" % len(node.node.roles))
    print("live_after_boot %d" % after)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
