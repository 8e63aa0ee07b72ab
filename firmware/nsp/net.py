# The board's network, brought up without blocking: config.json "network" names a Wi-Fi station
#   {"kind": "wifi", "ssid": "site-lan", "password": "..."}
# or wired Ethernet on the ESP32's RMII PHY (MicroPython's network.LAN; pins of the usual
# LAN8720 boards, e.g. WT32-ETH01 / Olimex ESP32-POE: MDC 23, MDIO 18, PHY address 0 or 1)
#   {"kind": "lan", "phy": "LAN8720", "mdc_pin": 23, "mdio_pin": 18, "phy_addr": 1, "power_pin": 16}
# Net.tick(now_ms) runs from the node's tick: it never waits. connect() on the ESP32 returns at
# once and the link comes up in the background; a try that is not up within CONNECT_MS is given
# up and retried after a back-off that doubles from 2 s to 60 s (a mast or an access point that
# is down must not be hammered; Modbus RTU goes on meanwhile). State, IP and RSSI are in the
# registers (block comms), status bit net_down while a configured network is not up.
# The password is never printed and never in a register (docs/security.md).
from micropython import const

from nsp import regmap as rm

CONNECT_MS = const(20000)
BACKOFF_MIN_MS = const(2000)
BACKOFF_MAX_MS = const(60000)
SHOW_MS = const(10000)  # IP and RSSI are read again this often while up (each read allocates)
LAN_DEFAULTS = {"phy": "LAN8720", "mdc_pin": 23, "mdio_pin": 18, "phy_addr": 1, "power_pin": -1}


def network_settings(cfg):
    """cfg["network"] -> (settings or None, [error lines]); never echoes the password."""
    given = cfg.get("network")
    if given is None:
        return None, []
    if not isinstance(given, dict) or given.get("kind") not in ("wifi", "lan"):
        return None, ['config.json: network.kind must be "wifi" or "lan"; no network']
    if given["kind"] == "wifi":
        ssid, pw = given.get("ssid"), given.get("password", "")
        if not isinstance(ssid, str) or not 1 <= len(ssid) <= 32:
            return None, ["config.json: network.ssid must be 1-32 characters; no network"]
        if not isinstance(pw, str) or len(pw) > 64:
            return None, ["config.json: network.password must be text of at most 64 characters "
                          "(not shown); no network"]
        return {"kind": "wifi", "ssid": ssid, "password": pw}, []
    out = dict(LAN_DEFAULTS)
    out["kind"] = "lan"
    for key, value in given.items():
        if key == "kind":
            continue
        if key not in LAN_DEFAULTS:
            return None, ["config.json: unknown field network.%s; known: %s; no network"
                          % (key, ", ".join(sorted(LAN_DEFAULTS)))]
        if key == "phy":
            if value not in ("LAN8720", "IP101", "RTL8201", "DP83848", "KSZ8041"):
                return None, ["config.json: network.phy %r is not one MicroPython's LAN knows; "
                              "no network" % (value,)]
        elif not isinstance(value, int) or isinstance(value, bool) or not -1 <= value <= 39:
            return None, ["config.json: network.%s must be a pin number; no network" % key]
        out[key] = value
    return out, []


class Net:
    def __init__(self, settings, image, network, ticks_ms):
        self.settings = settings
        self.image = image
        self.network = network  # MicroPython's network module (sim/network.py off the board)
        self.ticks_ms = ticks_ms
        self.iface = None
        self.state = rm.NET_STATE_DOWN
        self.started_ms = 0
        self.next_try_ms = ticks_ms()
        self.backoff_ms = BACKOFF_MIN_MS
        self.tries = 0
        self.error = None  # the last bring-up error, for the console
        self.shown_ms = 0
        self._show(False)

    def _make_iface(self):
        net = self.network
        s = self.settings
        if s["kind"] == "wifi":
            iface = net.WLAN(net.STA_IF)
        else:
            from machine import Pin

            phy = getattr(net, "PHY_" + s["phy"])
            power = Pin(s["power_pin"]) if s["power_pin"] >= 0 else None
            iface = net.LAN(mdc=Pin(s["mdc_pin"]), mdio=Pin(s["mdio_pin"]), power=power,
                            phy_type=phy, phy_addr=s["phy_addr"])
        iface.active(True)
        return iface

    def _try(self, now_ms):
        self.tries += 1
        try:
            if self.iface is None:
                self.iface = self._make_iface()
            if self.settings["kind"] == "wifi":
                self.iface.connect(self.settings["ssid"], self.settings["password"])
            self.state = rm.NET_STATE_CONNECTING
            self.started_ms = now_ms
        except Exception as e:  # no radio, PHY not answering, ...: try again later
            self.error = "%s: %s" % (type(e).__name__, e)
            self._later(now_ms)

    def _later(self, now_ms):
        from time import ticks_add

        self.state = rm.NET_STATE_DOWN
        self.next_try_ms = ticks_add(now_ms, self.backoff_ms)
        self.backoff_ms = min(self.backoff_ms * 2, BACKOFF_MAX_MS)

    def tick(self, now_ms):
        from time import ticks_diff

        iface = self.iface
        up = False
        if iface is not None:
            try:
                up = iface.isconnected()
            except Exception:
                up = False
        if up:
            if self.state != rm.NET_STATE_UP or ticks_diff(now_ms, self.shown_ms) >= SHOW_MS:
                self.state = rm.NET_STATE_UP
                self.backoff_ms = BACKOFF_MIN_MS
                self.error = None
                self.shown_ms = now_ms
                self._show(True)
            return
        if self.state == rm.NET_STATE_UP:  # dropped: reconnect at once, then back off
            self.image.inc_u16(rm.R_NET_DROPS)
            self.state = rm.NET_STATE_DOWN
            self.next_try_ms = now_ms
        elif self.state == rm.NET_STATE_CONNECTING:
            if ticks_diff(now_ms, self.started_ms) > CONNECT_MS:
                self._later(now_ms)
        if self.state == rm.NET_STATE_DOWN and ticks_diff(now_ms, self.next_try_ms) >= 0:
            self._try(now_ms)
        self._show(False)

    def _show(self, up):
        img = self.image
        regs = img.regs
        regs[rm.R_NET_STATE] = self.state
        iface = self.iface
        if up and iface is not None:
            from nsp.tcp import ipv4_words

            try:
                w = ipv4_words(iface.ifconfig()[0]) or (0, 0)
            except Exception:
                w = (0, 0)
            regs[rm.R_NET_IP], regs[rm.R_NET_IP + 1] = w
            rssi = None
            if self.settings["kind"] == "wifi":
                try:
                    rssi = iface.status("rssi")
                except Exception:
                    rssi = None
            img.set_i16(rm.R_NET_RSSI_DBM, rssi)
            regs[rm.R_STATUS] &= ~rm.B_NET_DOWN & 0xFFFF
        else:
            regs[rm.R_NET_IP] = regs[rm.R_NET_IP + 1] = 0
            regs[rm.R_NET_RSSI_DBM] = rm.NA_I16
            regs[rm.R_STATUS] |= rm.B_NET_DOWN

    def is_up(self):
        return self.state == rm.NET_STATE_UP
