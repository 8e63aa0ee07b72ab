# The virtual board's power-on, for the unix port ONLY: what an ESP32's ROM and boot do before
# they run main.py, so that the board's own, unchanged main.py boots from a flashed tree
# (`nsp-edge firmware flash` onto the virtual board; tests/test_fw_main.py).
#   MICROPYPATH=firmware/sim:.frozen NSP_SIM_UART2=PTY micropython board.py BOARD_DIR
# 1. The fakes (sim/machine.py with its extras, sim/onewire.py) and the simulated site
#    (sim/world.py) are imported from firmware/sim first: after step 2 that path is gone.
# 2. BOARD_DIR becomes `/`, as a board's flash filesystem is: main.py opens /config.json and
#    /counters.json by those names, and imports nsp/*.mpy from there (sys.path as on an ESP32).
# 3. main.py runs as source, as a board runs it (by name, never main.mpy).
# UART <id> is the pty named by NSP_SIM_UART<id> (sim/machine_more.py UART). The world
# stands still at its reset state (main.py has no hook to step it; the virtual node, sim/vnode.py,
# is the way to drive a site): enough to boot and serve.
import os
import sys

import vfs


def boot(root):
    import machine
    import network  # noqa: F401  (sim/network.py: its link is up; no sim path after the remount)
    import onewire  # noqa: F401  (the fridge role's 1-Wire bus)
    import world

    from nsp.rtu import open_pty

    for uart_id in range(3):  # the ptys by their host paths, which the remount hides
        path = os.getenv("NSP_SIM_UART%d" % uart_id)
        if path:
            machine.connect_uart(uart_id, open_pty(path))
    world.WORLD.step(0)
    vfs.umount("/")
    vfs.mount(vfs.VfsPosix(root), "/")
    os.chdir("/")  # the old working directory does not exist in the new root
    sys.path[:] = ["", ".frozen", "/lib"]  # an ESP32's default sys.path
    for name in [k for k in sys.modules if k == "nsp" or k.startswith("nsp.")]:
        del sys.modules[name]  # world.py's nsp.tank came by the old path: main.py imports anew
    with open("/main.py") as f:
        source = f.read()
    exec(source, {"__name__": "__main__"})


if __name__ == "__main__":
    boot(sys.argv[1])
