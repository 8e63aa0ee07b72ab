# ESP32 board entry: wiring only. Reads /config.json (nsp.fwconfig), counts the boot (nsp.bootguard
# via nsp.node.make_node), builds the roles, starts Modbus RTU on the RS-485 UART (DE/RE pin) and,
# when config.json names a network (nsp/net.py: Wi-Fi or Ethernet, brought up from the node's tick
# without blocking RTU) or boot.py brought one up, Modbus TCP; then runs the node's asyncio tasks.
# The virtual node (firmware/sim/vnode.py) does the same on the unix port with simulated hardware.
import asyncio

import machine

from nsp import fwconfig
from nsp.net import network_settings
from nsp.node import make_node, modbus_settings
from nsp.persist import Store

WDT_TIMEOUT_MS = 30000  # > the node's 12 s check-in window, so a slow gc never resets a healthy node


def network_up():
    try:
        import network

        return network.WLAN(network.STA_IF).isconnected()
    except Exception:  # no network module or interface: RTU only
        return False


def main():
    cfg, errors, crc = fwconfig.load("/config.json")
    mb, mb_errors = modbus_settings(cfg)
    net_cfg, net_errors = network_settings(cfg)
    store = Store("/counters.json")
    node = make_node(cfg, errors + mb_errors + net_errors, crc, store=store,
                     wdt=machine.WDT(timeout=WDT_TIMEOUT_MS))
    parity = {"even": 0, "odd": 1, "none": None}[mb["parity"]]
    uart = machine.UART(mb["uart"], baudrate=mb["baud"], bits=8, parity=parity,
                        stop=2 if parity is None else 1, tx=mb["tx_pin"], rx=mb["rx_pin"],
                        rxbuf=512, timeout=0)
    de = machine.Pin(mb["de_pin"], machine.Pin.OUT, value=0)
    node.add_rtu(uart, mb["baud"], de)
    if net_cfg is not None:
        import network

        node.add_net(network)
    if mb["tcp_port"] and (net_cfg is not None or network_up()):
        node.add_tcp("0.0.0.0", mb["tcp_port"])  # listens before the link is up (lwIP allows it)
    asyncio.run(node.run())
    # run() returns only after an uncaught exception (the global handler stopped feeding the
    # watchdog): reset now rather than wait for it; the boot guard counts the crash.
    machine.reset()


main()
