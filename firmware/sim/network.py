# Fake of MicroPython's `network` module for the unix port ONLY (which has none), explicit and
# small: a Wi-Fi station (WLAN) and an Ethernet interface (LAN) whose link the test drives.
#   reachable(False)      the access point or cable is gone: every interface drops, connect()
#                         does not come up
#   reachable(True)       it is back: a station asked to connect comes up (the ESP32 keeps
#                         trying in the background), a cable's link comes back
#   fail_next(n)          the next n connect()/LAN() calls raise OSError (radio or PHY error)
# connects counts connect() calls; ssid_seen the last SSID (the password is kept nowhere).
STA_IF = 0
AP_IF = 1
PHY_LAN8720 = 0
PHY_IP101 = 1
PHY_RTL8201 = 2
PHY_DP83848 = 3
PHY_KSZ8041 = 4

_reachable = True
_fail = 0
_ifaces = []
connects = 0
ssid_seen = None
ADDRESS = "192.168.10.23"
RSSI_DBM = -61


def reachable(ok):
    global _reachable
    _reachable = ok
    if not ok:
        for i in _ifaces:
            i._up = False


def fail_next(n):
    global _fail
    _fail = n


def reset():
    global _reachable, _fail, connects, ssid_seen
    _reachable, _fail, connects, ssid_seen = True, 0, 0, None
    _ifaces.clear()


def _maybe_fail():
    global _fail
    if _fail > 0:
        _fail -= 1
        raise OSError("sim: interface error")


class _Iface:
    def __init__(self):
        self._active = False
        self._up = False
        _ifaces.append(self)

    def active(self, on=None):
        if on is not None:
            self._active = bool(on)
        return self._active

    def isconnected(self):
        return self._active and self._up

    def ifconfig(self):
        if not self.isconnected():
            return ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")
        return (ADDRESS, "255.255.255.0", "192.168.10.1", "192.168.10.1")


class WLAN(_Iface):
    def __init__(self, interface=STA_IF):
        super().__init__()

    def connect(self, ssid, key=None):
        global connects, ssid_seen
        connects += 1
        ssid_seen = ssid
        _maybe_fail()
        self._wanted = True  # the ESP32 keeps trying in the background until disconnect()

    def disconnect(self):
        self._wanted = False
        self._up = False

    def isconnected(self):
        if getattr(self, "_wanted", False) and _reachable:
            self._up = True  # the access point answered
        return super().isconnected()

    def status(self, what=None):
        if what == "rssi":
            return RSSI_DBM
        return 1010 if self.isconnected() else 1001


class LAN(_Iface):
    def __init__(self, mdc=None, mdio=None, power=None, phy_type=0, phy_addr=0):
        _maybe_fail()
        super().__init__()

    def active(self, on=None):
        if on:
            self._up = _reachable  # cable in: the link comes up with the PHY
        return super().active(on)

    def isconnected(self):
        if self._active and _reachable:
            self._up = True  # a cable put back brings the link up by itself
        return super().isconnected()
