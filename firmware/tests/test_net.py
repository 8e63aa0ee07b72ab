# The board's network (nsp/net.py) against the fake network module (sim/network.py): bring-up
# never blocks, a failed or unreachable network is retried with a doubling back-off, a drop is
# noticed and the link comes back; state, IP, RSSI, drops and the net_down bit in the registers;
# the password is never printed nor in a register.
# fw-test-heap: 256k
import network

from nsp import regmap as rm
from nsp.image import Image
from nsp.net import BACKOFF_MAX_MS, CONNECT_MS, Net, network_settings

WIFI = {"network": {"kind": "wifi", "ssid": "nsp-site", "password": "s3cret-pass"}}


class Clock:
    def __init__(self):
        self.now = 0

    def __call__(self):
        return self.now


def _net(cfg=WIFI):
    network.reset()
    settings, errors = network_settings(cfg)
    assert errors == [], errors
    img = Image()
    clock = Clock()
    return Net(settings, img, network, clock), img, clock


def _step(net, clock, ms):
    clock.now += ms
    net.tick(clock.now)


def test_wifi_comes_up_with_ip_and_rssi():
    net, img, clock = _net()
    assert img.get_u16(rm.R_STATUS) & rm.B_NET_DOWN
    _step(net, clock, 0)  # first tick: connect() asked, returns at once
    assert network.connects == 1 and network.ssid_seen == "nsp-site"
    assert img.get_u16(rm.R_NET_STATE) == rm.NET_STATE_CONNECTING
    _step(net, clock, 100)
    assert img.get_u16(rm.R_NET_STATE) == rm.NET_STATE_UP
    assert img.get_u32(rm.R_NET_IP) == 0xC0A80A17  # 192.168.10.23
    assert img.get_i16(rm.R_NET_RSSI_DBM) == -61
    assert not img.get_u16(rm.R_STATUS) & rm.B_NET_DOWN


def test_unreachable_is_retried_with_doubling_back_off():
    net, img, clock = _net()
    network.reachable(False)
    tries = []
    for _ in range(4000):  # 400 s in 100 ms ticks
        before = network.connects
        _step(net, clock, 100)
        if network.connects != before:
            tries.append(clock.now)
    gaps = [b - a for a, b in zip(tries, tries[1:])]
    # each gap: the connect timeout plus a back-off of 2, 4, 8, ... s, capped at 60 s
    assert gaps[0] >= CONNECT_MS + 2000 and gaps[1] >= CONNECT_MS + 4000, gaps
    assert max(gaps) <= CONNECT_MS + BACKOFF_MAX_MS + 300, gaps
    assert img.get_u16(rm.R_NET_STATE) != rm.NET_STATE_UP
    assert img.get_u16(rm.R_STATUS) & rm.B_NET_DOWN and img.get_u32(rm.R_NET_IP) == 0
    network.reachable(True)
    for _ in range(1000):
        _step(net, clock, 100)
    assert img.get_u16(rm.R_NET_STATE) == rm.NET_STATE_UP


def test_radio_error_then_up():
    net, img, clock = _net()
    network.fail_next(2)
    for _ in range(200):
        _step(net, clock, 100)
    assert img.get_u16(rm.R_NET_STATE) == rm.NET_STATE_UP and network.connects == 3
    assert net.error is None  # cleared once up (it was the sim's OSError meanwhile)


def test_drop_is_counted_and_the_link_comes_back():
    net, img, clock = _net()
    _step(net, clock, 0)
    _step(net, clock, 100)
    assert img.get_u16(rm.R_NET_STATE) == rm.NET_STATE_UP
    network.reachable(False)
    _step(net, clock, 100)
    assert img.get_u16(rm.R_NET_DROPS) == 1
    assert img.get_u16(rm.R_STATUS) & rm.B_NET_DOWN
    assert img.get_u16(rm.R_NET_RSSI_DBM) == rm.NA_I16
    network.reachable(True)
    for _ in range(100):
        _step(net, clock, 100)
    assert img.get_u16(rm.R_NET_STATE) == rm.NET_STATE_UP and img.get_u16(rm.R_NET_DROPS) == 1


def test_lan8720_ethernet():
    net, img, clock = _net({"network": {"kind": "lan", "mdc_pin": 23, "mdio_pin": 18,
                                        "phy_addr": 1, "power_pin": 16}})
    import world  # noqa: F401  (the fake machine.Pin needs a world)

    _step(net, clock, 0)
    _step(net, clock, 100)
    assert img.get_u16(rm.R_NET_STATE) == rm.NET_STATE_UP
    assert img.get_u16(rm.R_NET_RSSI_DBM) == rm.NA_I16  # no RSSI on a cable
    network.reachable(False)
    _step(net, clock, 100)
    assert img.get_u16(rm.R_NET_STATE) != rm.NET_STATE_UP
    network.reachable(True)
    for _ in range(100):
        _step(net, clock, 100)
    assert img.get_u16(rm.R_NET_STATE) == rm.NET_STATE_UP


def test_bad_settings_name_the_field_and_never_the_password():
    _, errors = network_settings({"network": {"kind": "wifi", "ssid": "x", "password": 5}})
    assert errors and "network.password" in errors[0] and "5" not in errors[0]
    _, errors = network_settings({"network": {"kind": "wifi", "ssid": "", "password": "pw1"}})
    assert "network.ssid" in errors[0] and "pw1" not in errors[0]
    _, errors = network_settings({"network": {"kind": "radio"}})
    assert "network.kind" in errors[0]
    _, errors = network_settings({"network": {"kind": "lan", "mdc": 23}})
    assert "network.mdc" in errors[0]
    assert network_settings({}) == (None, [])


def test_password_in_no_register():
    net, img, clock = _net()
    _step(net, clock, 0)
    _step(net, clock, 100)
    raw = bytes(img.regs)
    assert b"s3cret" not in raw and b"3sercte" not in raw  # nor byte-swapped words
