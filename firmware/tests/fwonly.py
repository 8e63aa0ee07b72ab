# Heap probe for benchmarks/bench_fw_heap.py (not a test module): the firmware as close to a board
# as the unix port gets. The node with the roles in CONFIG, its Modbus TCP server listening, its
# tasks running, and NO simulated site: the pin fakes (sim/machine.py, sim/onewire.py) read a null
# world (nothing wired, no I2C device, no probe), no control channel, no JSON. What is left is the
# firmware's own data plus those two small fakes (a board has `machine` in ROM).
# Usage: romboot IMAGE fwonly CONFIG PORT   -> "fwonly_live B", "fwonly_qstrs N", "fwonly_fakes B"
import gc
import sys

import asyncio


class NullWorld:
    def pin_level(self, pin_id):
        return None

    def pin_out(self, pin_id, level):
        pass

    def adc_uv(self, pin_id):
        return 0

    def i2c_device(self, bus_id, addr):
        return None

    def i2c_scan(self, bus_id):
        return []

    def onewire_devices(self, pin_id):
        return []


def main(argv):
    import micropython

    gc.collect()
    base = gc.mem_alloc()
    import machine
    import onewire  # noqa: F401  (the fridge role imports it; counted with the fakes)

    machine.attach(NullWorld())
    gc.collect()
    fakes = gc.mem_alloc() - base
    from nsp import fwconfig

    cfg, errors, crc = fwconfig.load(argv[0])
    fwconfig = None
    from nsp.node import make_node

    node = make_node(cfg, errors, crc)
    node.add_tcp("127.0.0.1", int(argv[1]))

    async def report():
        await asyncio.sleep_ms(500)  # the node's tasks have run a few cycles
        gc.collect()
        print("fwonly_live %d" % gc.mem_alloc())
        print("fwonly_fakes %d" % fakes)
        micropython.qstr_info()
        node.stop()

    asyncio.create_task(report())
    asyncio.run(node.run())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
