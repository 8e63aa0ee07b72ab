# A lean scripted site for the heap soak (firmware/tests/soak.py), unix port ONLY. It is a world
# for the fakes (sim/machine.py, sim/onewire.py): the same interface sim/world.py offers them
# (pin_level, pin_out, adc_uv, i2c_device, i2c_scan, onewire_devices, now_ms, step), but as module
# functions and one list of ints, with the day written as time windows instead of a physics model
# and a key table: world.py's module data plus its state are ~10 KB of heap on the 64-bit port,
# this module ~2 KB, and the soak is about the firmware's heap (firmware/README.md, "Memory").
# Also the virtual node's lean site (`nsp-edge node-sim --world scripted`; snapshot() for `get`).
# Default wiring (hw/pinout.md, nsp/fwconfig.py). Times in seconds since the first step:
#   3600-3715 the set will not start (the first crank fails)    3700-9000 mains lost
#   4000-9100 fridge unpowered    7200-7500 door open    20000-20300 beam A blocked
#   30000-31000 fridge probe unplugged (the role raises its missing fault after 600 s)
#   40000-40100 fuel sender open    from 50000 a 2 L/h leak    60000-60100 INA226 gone
#   visitors: one crossing every 97 s from 600 s (every third one leaves), none while A is blocked
# The generator (its own auto-mains-failure controller, as world.py): runs while mains is lost or
# the relay is on, 3 s crank, 10 s crank then 10 s rest when it will not start, 30 s cooldown.
from micropython import const

import machine
from nsp.tank import Tank
from onewire import FakeDS18B20, make_rom

_BEAM_A = const(32)
_BEAM_B = const(33)
_OFF = const(0)  # generator states
_CRANK = const(1)
_REST = const(2)
_RUN = const(3)
_COOL = const(4)
# the state: one list indexed by consts (a module global per field would be one more heap qstr each)
_T = const(0)  # whole seconds since the first step
_GEN = const(1)
_GEN_S = const(2)  # seconds in the generator's state
_RELAY = const(3)
_BUZZER = const(4)
_FUEL_UL = const(5)  # microlitres
_AIR_MC = const(6)  # fridge air, milli-degC
_VIAL_MC = const(7)  # the probe's glycol vial, lags the air
_COMPRESSOR = const(8)
_BEAM_A_ON = const(9)  # a visitor in beam A / B
_BEAM_B_ON = const(10)
_INA_CFG = const(11)
_INA_CAL = const(12)
_s = [0, _OFF, 0, 0, 0, 1200000000, 5000, 5000, 0, 0, 0, 0x4127, 0]
now_ms = 0
ins = 0  # crossings walked in / out (what the entrance role should count)
outs = 0
_tank = Tank({"shape": "horizontal_cylinder", "diameter_m": 1.0, "length_m": 2.0})
probes = [FakeDS18B20(make_rom(0x28, 0x0000000A01), lambda: _s[_VIAL_MC] / 1000, lambda: now_ms),
          FakeDS18B20(make_rom(0x28, 0x0000000A02), lambda: 20, lambda: now_ms)]


def _mains():
    return not 3700 <= _s[_T] < 9000


def _running():
    return _s[_GEN] == _RUN or _s[_GEN] == _COOL


def step(ms):
    """Advance to ms in whole seconds (the soak steps 1 s)."""
    global now_ms
    s = _s
    while now_ms + 1000 <= ms:
        now_ms += 1000
        s[_T] += 1
        t = s[_T]
        req = s[_RELAY] or not _mains()
        s[_GEN_S] += 1
        st = s[_GEN]
        gs = s[_GEN_S]
        if st == _OFF and req:
            st, gs = _CRANK, 0
        elif st == _CRANK:
            if not req:
                st = _OFF
            elif gs >= 3 and not 3600 <= t < 3715:
                st, gs = _RUN, 0
            elif gs >= 10:
                st, gs = _REST, 0
        elif st == _REST:
            if not req:
                st = _OFF
            elif gs >= 10:
                st, gs = _CRANK, 0
        elif st == _RUN and not req:
            st, gs = _COOL, 0
        elif st == _COOL:
            if req:
                st = _RUN
            elif gs >= 30:
                st = _OFF
        s[_GEN] = st
        s[_GEN_S] = gs
        s[_FUEL_UL] -= (944 if _running() else 0) + (556 if t >= 50000 else 0)  # 3.4 + 2 L/h
        powered = not 4000 <= t < 9100
        air = s[_AIR_MC]
        if powered and air > 6000:
            s[_COMPRESSOR] = 1
        elif not powered or air < 3000:
            s[_COMPRESSOR] = 0
        target, tau = (-4000, 1800) if s[_COMPRESSOR] else (20000, 14400)
        if 7200 <= t < 7500:
            target, tau = 20000, 900
        air += (target - air) // tau
        s[_AIR_MC] = air
        s[_VIAL_MC] += (air - s[_VIAL_MC]) // 1200
        p = probes[0]
        if t == 30000:
            p.present = False
        elif t == 31000:
            p.present = True
            p.power_cycle()  # a re-plugged probe starts at 85.0
        if t == 20000 or t == 20300:  # the blocked beam's edges
            machine._fire_edge(_BEAM_A, pin_level(_BEAM_A))
        if t >= 600 and t % 97 == 0 and not 20000 <= t < 20300:
            _visit()


def _edge(pin_id, level):
    _s[_BEAM_A_ON if pin_id == _BEAM_A else _BEAM_B_ON] = level
    machine._fire_edge(pin_id, level)


def _visit():
    global ins, outs
    if ins > outs and (ins + outs) % 3 == 2:  # B, A, B clear, A clear: someone left
        outs += 1
        _edge(_BEAM_B, 1)
        _edge(_BEAM_A, 1)
        _edge(_BEAM_B, 0)
        _edge(_BEAM_A, 0)
    else:
        ins += 1
        _edge(_BEAM_A, 1)
        _edge(_BEAM_B, 1)
        _edge(_BEAM_A, 0)
        _edge(_BEAM_B, 0)


def pin_level(pin_id):
    t = _s[_T]
    if pin_id == 34:
        return 0 if _mains() else 1  # opto pulls low on AC
    if pin_id == 35:
        return 0 if _running() else 1
    if pin_id == 27:
        return 1 if 7200 <= t < 7500 else 0  # reed opens with the door
    if pin_id == _BEAM_A:
        return 1 if _s[_BEAM_A_ON] or 20000 <= t < 20300 else 0
    if pin_id == _BEAM_B:
        return _s[_BEAM_B_ON]
    if pin_id == 26:
        return _s[_RELAY]
    if pin_id == 25:
        return _s[_BUZZER]
    return None


def pin_out(pin_id, level):
    if pin_id == 26:
        _s[_RELAY] = level
    elif pin_id == 25:
        _s[_BUZZER] = level


def adc_uv(pin_id):
    if pin_id == 36:  # 4-20 mA across 100 ohm
        if 40000 <= _s[_T] < 40100:
            return 0  # open loop
        frac = _tank.depth_m(_s[_FUEL_UL] / 1000000) / _tank.height_m
        return int((4 + 16 * frac) * 100000)
    if pin_id == 39:  # starter battery through 115k/15k
        mv = 9800 if _s[_GEN] == _CRANK else (13900 if _running() else 12700)
        return mv * 15000 // 115
    return 0


def i2c_device(bus_id, addr):
    import stim

    return stim if addr == 0x40 and not 60000 <= _s[_T] < 60100 else None


def i2c_scan(bus_id):
    return [] if 60000 <= _s[_T] < 60100 else [0x40]


def read_into(reg, buf):
    """The INA226 (this module is the device i2c_device returns): 0.75 mOhm shunt."""
    amps, mv = (2, 13500) if _mains() or _running() else (-5, 12300)
    if reg == 0x00:
        v = _s[_INA_CFG]
    elif reg == 0x01:  # shunt voltage, 2.5 uV/LSB: A * 0.75 mOhm / 2.5 uV = A * 300
        v = (amps * 300) & 0xFFFF
    elif reg == 0x02:  # bus voltage, 1.25 mV/LSB
        v = mv * 4 // 5
    elif reg == 0x05:
        v = _s[_INA_CAL]
    elif reg == 0xFE:
        v = 0x5449
    elif reg == 0xFF:
        v = 0x2260
    else:
        v = 0
    buf[0] = v >> 8
    if len(buf) > 1:
        buf[1] = v & 0xFF


def write(reg, data):
    v = (data[0] << 8) | data[1]
    if reg == 0x00:
        _s[_INA_CFG] = 0x4127 if v & 0x8000 else v
    elif reg == 0x05:
        _s[_INA_CAL] = v


def onewire_devices(pin_id):
    return probes if pin_id == 4 else []


def snapshot():
    """The state for the virtual node's `get` (sim/vnode.py --world scripted): world.py's names."""
    s = _s
    return {"now_ms": now_ms, "t_s": s[_T], "mains_present": _mains(), "gen_running": _running(),
            "gen_state": s[_GEN], "relay_on": s[_RELAY], "buzzer_on": s[_BUZZER],
            "fuel_l": s[_FUEL_UL] // 1000000, "fridge_air_c": s[_AIR_MC] // 1000,
            "crossings_in": ins, "crossings_out": outs}
