# The simulated world of one NSP site, for the unix port ONLY: mains, generator (with its own
# auto-mains-failure controller), fuel tank and sender, starter and site batteries, medicine fridge
# with its glycol vial, fridge door, two entrance IR beams and visitors. The fake devices
# (sim/machine.py, sim/onewire.py) read it; tests and scenarios change it with set() and move it
# with step(now_ms). Deterministic: visitors come from a seeded pseudo-random generator.
# API (docs/interfaces.md): WORLD.step(now_ms), WORLD.set(key, value), WORLD.snapshot().
import math
from time import ticks_add, ticks_diff

import machine
from nsp.tank import Tank
from onewire import FakeDS18B20, make_rom

# Default wiring = hw/pinout.md = nsp/fwconfig.py defaults (pin id -> signal).
DEFAULT_WIRING = {
    34: "mains_sense",  # 0 = AC present (opto pulls the line low)
    35: "gen_sense",  # 0 = generator output live
    26: "relay",  # output: 1 = remote-start relay energised
    36: "fuel_adc",  # 4-20 mA across the 100 ohm shunt
    39: "starter_adc",  # starter battery through the 100k/15k divider
    4: "onewire",  # DS18B20 bus
    27: "door",  # 1 = door open (reed contact opens; a cut cable reads open, fail-safe)
    25: "buzzer",  # output: 1 = buzzer/LED on
    32: "beam_a",  # 1 = beam A (outside) broken; a cut cable reads broken -> blocked fault
    33: "beam_b",  # 1 = beam B (inside) broken
}
FRIDGE_ROM = make_rom(0x28, 0x0000000A01)
AMBIENT_ROM = make_rom(0x28, 0x0000000A02)
INA226_ADDR = 0x40
SHUNT_MOHM = 0.75  # 100 A / 75 mV shunt
FUEL_SHUNT_OHM = 100
STARTER_DIVIDER = 115 / 15  # (100k + 15k) / 15k
TANK = {"shape": "horizontal_cylinder", "diameter_m": 1.0, "length_m": 2.0}  # 1570.8 L
GEN_BURN_LPH = 3.4  # 20 kW set at 50 % load (docs/sources.md chart)
BATTERY_AH = 100.0
CHARGER_A = 10.0
# 12 V lead-acid rest voltage -> SoC (docs/sources.md, BCI)
OCV_TABLE = ((0.0, 11.89), (0.25, 12.06), (0.5, 12.24), (0.75, 12.45), (1.0, 12.65))

# key: (default, kind, lo, hi); kind b = bool, f = number
_KEYS = {
    "mains_present": (True, "b", 0, 0),
    "gen_will_start": (True, "b", 0, 0),
    # the set's own controller shut it down (low oil, overheat...): it stops and locks out
    "gen_shutdown": (False, "b", 0, 0),
    "fridge_powered": (True, "b", 0, 0),
    "door_open": (False, "b", 0, 0),
    "fridge_probe_unplugged": (False, "b", 0, 0),
    "ambient_probe_unplugged": (False, "b", 0, 0),
    "probe_crc_noise": (False, "b", 0, 0),
    "ambient_c": (20.0, "f", -30.0, 50.0),
    "fridge_c": (5.0, "f", -30.0, 50.0),
    "fuel_l": (1200.0, "f", 0.0, 100000.0),
    "fuel_leak_lph": (0.0, "f", 0.0, 1000.0),
    "fuel_sender_open": (False, "b", 0, 0),
    "fuel_sender_shorted": (False, "b", 0, 0),
    "starter_battery_weak": (False, "b", 0, 0),
    "starter_sense_open": (False, "b", 0, 0),  # divider wire cut: the ADC pin reads ~0 V
    "battery_load_a": (5.0, "f", 0.0, 100.0),
    "battery_soc_pct": (90.0, "f", 0.0, 100.0),
    "battery_sensor_missing": (False, "b", 0, 0),
    "visitors_per_hour": (0.0, "f", 0.0, 3600.0),
    "beam_a_blocked": (False, "b", 0, 0),
    "beam_b_blocked": (False, "b", 0, 0),
    "seed": (1, "f", 0, 2**30),
}
_READ_ONLY = ("gen_running", "gen_state", "relay_on", "buzzer_on", "fridge_air_c", "vial_c", "fuel_depth_m",
              "starter_battery_v", "battery_v", "battery_a", "people_inside", "crossings_in", "crossings_out",
              "now_ms")


def adc_reading_uv(true_uv):
    """What the ESP32 ADC's read_uv() reports for a true input: even with eFuse calibration it bends
    over 0.15-2.45 V (11 dB). Here a gentle bow: 8 mV low mid-scale, ~2 mV low at the ends, so an
    uncalibrated fuel reading is ~0.5 % off and the commissioning table fixes it."""
    x = (true_uv - 1300000) / 1300000
    uv = int(true_uv - 8000 + 12800 * x * x)
    return 0 if uv < 0 else (3100000 if uv > 3100000 else uv)


def ocv_v(soc):
    t = OCV_TABLE
    if soc <= 0:
        return t[0][1]
    for i in range(1, len(t)):
        if soc <= t[i][0]:
            s0, v0 = t[i - 1]
            s1, v1 = t[i]
            return v0 + (v1 - v0) * (soc - s0) / (s1 - s0)
    return t[-1][1]


class _Ina226:
    def __init__(self, world):
        self._w = world
        self._config = 0x4127
        self._cal = 0

    def read_into(self, reg, buf):
        w = self._w
        if reg == 0x00:
            v = self._config
        elif reg == 0x01:  # shunt voltage, 2.5 uV/LSB, signed
            v = int(round(w.battery_a * SHUNT_MOHM * 1000 / 2.5)) & 0xFFFF
        elif reg == 0x02:  # bus voltage, 1.25 mV/LSB
            v = int(round(w.battery_v * 800))
        elif reg == 0x05:
            v = self._cal
        elif reg == 0xFE:
            v = 0x5449  # "TI"
        elif reg == 0xFF:
            v = 0x2260
        else:
            v = 0
        buf[0] = (v >> 8) & 0xFF
        if len(buf) > 1:
            buf[1] = v & 0xFF

    def write(self, reg, data):
        v = (data[0] << 8) | data[1]
        if reg == 0x00:
            self._config = 0x4127 if v & 0x8000 else v
        elif reg == 0x05:
            self._cal = v


class World:
    def __init__(self):
        self.reset()

    def reset(self):
        """Back to the defaults (tests call this first)."""
        self._v = {}
        for k, spec in _KEYS.items():
            self._v[k] = spec[0]
        self.wiring = dict(DEFAULT_WIRING)
        self.now_ms = 0
        self._t_ms = 0  # world time, ms since reset, never wraps
        self._started = False
        self.tank = Tank(TANK)
        self._outs = {"relay": 0, "buzzer": 0}
        self._levels = {}
        # generator: off, cranking, resting, running, cooldown, lockout
        self.gen_state = "off"
        self._gen_t = 0
        self._attempts = 0
        self.air_c = 5.0
        self.vial_c = 5.0
        self._compressor = False
        self.battery_a = 0.0
        self.battery_v = 12.5
        self._soc = 0.9
        self._rng = 12345
        self._next_visit_t = None
        self._events = []  # (t_ms, signal, level), sorted
        self._beam = {"beam_a": 0, "beam_b": 0}
        self.people_inside = 0
        self.crossings_in = 0
        self.crossings_out = 0
        self._probes = [
            FakeDS18B20(FRIDGE_ROM, lambda: self.vial_c, lambda: self._t_ms),
            FakeDS18B20(AMBIENT_ROM, lambda: self._v["ambient_c"], lambda: self._t_ms),
        ]
        self._ina = _Ina226(self)
        self._update_electrics(0)
        self._refresh_levels()

    # ---------------------------------------------------------------- control
    def set(self, key, value):
        if key not in _KEYS:
            if key in _READ_ONLY:
                raise ValueError("world key %s is computed by the simulation and cannot be set" % key)
            raise KeyError("unknown world key %r; known: %s" % (key, ", ".join(sorted(_KEYS))))
        default, kind, lo, hi = _KEYS[key]
        if kind == "b":
            if value is not True and value is not False and value not in (0, 1):
                raise ValueError("world key %s needs true or false, got %r" % (key, value))
            value = bool(value)
        else:
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value < lo or value > hi:
                raise ValueError("world key %s needs a number in %s..%s, got %r" % (key, lo, hi, value))
            value = float(value) if key != "seed" else int(value)
        self._v[key] = value
        if key == "fridge_c":
            self.air_c = self.vial_c = value
        elif key == "battery_soc_pct":
            self._soc = value / 100
        elif key == "seed":
            self._rng = int(value) * 2654435 + 12345
            self._next_visit_t = None
        elif key == "fridge_probe_unplugged":
            self._probes[0].present = not value
            if not value:
                self._probes[0].power_cycle()  # a re-plugged probe starts at 85.0
        elif key == "ambient_probe_unplugged":
            self._probes[1].present = not value
            if not value:
                self._probes[1].power_cycle()
        elif key == "probe_crc_noise":
            for p in self._probes:
                p.crc_noise = value
        elif key == "visitors_per_hour":
            self._next_visit_t = None
        self._update_electrics(0)
        self._refresh_levels()

    def get(self, key):
        return self.snapshot()[key]

    def snapshot(self):
        return dict(self.items())

    def items(self):
        """(key, value) for every settable and computed key: the snapshot without building a dict
        (the virtual node's control channel streams it: a ~1 KB dict plus its JSON text were the
        largest blocks the node ever asked the heap for)."""
        v = self._v
        for k in _KEYS:
            if k == "fridge_c":
                yield k, self.air_c
            elif k == "battery_soc_pct":
                yield k, self._soc * 100
            else:
                yield k, v[k]
        yield "gen_running", self.gen_state in ("running", "cooldown")
        yield "gen_state", self.gen_state
        yield "relay_on", bool(self._outs["relay"])
        yield "buzzer_on", bool(self._outs["buzzer"])
        yield "fridge_air_c", self.air_c
        yield "vial_c", self.vial_c
        yield "fuel_depth_m", self.tank.depth_m(v["fuel_l"])
        yield "starter_battery_v", self._starter_v()
        yield "battery_v", self.battery_v
        yield "battery_a", self.battery_a
        yield "people_inside", self.people_inside
        yield "crossings_in", self.crossings_in
        yield "crossings_out", self.crossings_out
        yield "now_ms", self.now_ms

    def ticks_ms(self):
        return self.now_ms

    # ---------------------------------------------------------------- physics
    def step(self, now_ms):
        if not self._started:
            self._started = True
            self.now_ms = now_ms
            return
        dt = ticks_diff(now_ms, self.now_ms)
        if dt <= 0:
            return
        end = self._t_ms + dt
        while self._t_ms < end:
            sub_end = self._t_ms + (end - self._t_ms if end - self._t_ms < 1000 else 1000)
            self._visitors(sub_end)
            # beam events inside this sub-step fire at their own time
            while self._events and self._events[0][0] <= sub_end:
                t, sig, level = self._events.pop(0)
                self._advance(t - self._t_ms)
                self._beam[sig] = level
                self._refresh_levels()
            self._advance(sub_end - self._t_ms)
            self._refresh_levels()
        self.now_ms = now_ms

    def _advance(self, dt_ms):
        if dt_ms <= 0:
            return
        self._t_ms += dt_ms
        self.now_ms = ticks_add(self.now_ms, dt_ms)  # kept in step with _t_ms while stepping (ticks domain)
        dt_s = dt_ms / 1000
        self._generator(dt_s)
        self._fridge(dt_s)
        self._update_electrics(dt_s)

    def _gen_request(self):
        return bool(self._outs["relay"]) or not self._v["mains_present"]

    def _generator(self, dt_s):
        v = self._v
        req = self._gen_request()
        st = self.gen_state
        self._gen_t += dt_s
        can_run = v["gen_will_start"] and v["fuel_l"] > 0 and not v["gen_shutdown"]
        if st == "off" and req:
            self.gen_state, self._gen_t, self._attempts = "cranking", 0.0, 1
        elif st == "cranking":
            if not req:
                self.gen_state = "off"
            elif can_run and self._gen_t >= 3.0:
                self.gen_state, self._gen_t = "running", 0.0
            elif self._gen_t >= 10.0:  # crank at most 10 s, then rest (starter protection)
                self.gen_state, self._gen_t = ("resting", 0.0) if self._attempts < 3 else ("lockout", 0.0)
        elif st == "resting":
            if not req:
                self.gen_state = "off"
            elif self._gen_t >= 10.0:
                self.gen_state, self._gen_t, self._attempts = "cranking", 0.0, self._attempts + 1
        elif st == "running":
            if v["fuel_l"] <= 0 or v["gen_shutdown"]:
                self.gen_state, self._gen_t = "lockout", 0.0
            elif not req:
                self.gen_state, self._gen_t = "cooldown", 0.0
        elif st == "cooldown":
            if req:
                self.gen_state = "running"
            elif self._gen_t >= 30.0:
                self.gen_state = "off"
        elif st == "lockout" and not req:
            self.gen_state = "off"
        burn = GEN_BURN_LPH if self.gen_state in ("running", "cooldown") else 0.0
        fuel = v["fuel_l"] - (burn + v["fuel_leak_lph"]) * dt_s / 3600
        v["fuel_l"] = fuel if fuel > 0 else 0.0

    def _fridge(self, dt_s):
        v = self._v
        amb = v["ambient_c"]
        if v["fridge_powered"]:
            if self.air_c > 6.0:
                self._compressor = True
            elif self.air_c < 3.0:
                self._compressor = False
        else:
            self._compressor = False
        if self._compressor:
            target, tau_s = -4.0, 1800.0
        else:
            target, tau_s = amb, 4 * 3600.0  # insulated box warms toward the room over hours
        if v["door_open"]:
            target, tau_s = amb, 900.0
        self.air_c += (target - self.air_c) * (1 - math.exp(-dt_s / tau_s))
        # the 60 mL glycol vial follows the air with a ~20 min lag, so door openings do not alarm
        self.vial_c += (self.air_c - self.vial_c) * (1 - math.exp(-dt_s / 1200.0))

    def _update_electrics(self, dt_s):
        v = self._v
        supply = v["mains_present"] or self.gen_state in ("running", "cooldown")
        if supply:
            net = CHARGER_A if self._soc < 1.0 else 0.0
        else:
            net = -v["battery_load_a"]
        self._soc += net * dt_s / 3600 / BATTERY_AH
        self._soc = 0.0 if self._soc < 0 else (1.0 if self._soc > 1 else self._soc)
        self.battery_a = net
        self.battery_v = (13.5 if supply and net == 0 else ocv_v(self._soc)) + net * 0.02

    def _starter_v(self):
        weak = self._v["starter_battery_weak"]
        if self.gen_state == "cranking":
            return 7.2 if weak else 9.8
        if self.gen_state in ("running", "cooldown"):
            return 13.9
        return 12.1 if weak else 12.7

    # ---------------------------------------------------------------- visitors
    def _rand(self):
        self._rng = (self._rng * 1103515245 + 12345) & 0x7FFFFFFF
        return (self._rng >> 8) / 8388608.0  # [0, 1)

    def _visitors(self, until_t):
        rate = self._v["visitors_per_hour"]
        if rate <= 0:
            self._next_visit_t = None
            return
        if self._next_visit_t is None:
            self._next_visit_t = self._t_ms + int(-math.log(1 - self._rand()) * 3600000 / rate) + 1
        while self._next_visit_t <= until_t:
            t = self._next_visit_t
            u = self._rand()
            if self._events and self._events[-1][0] + 1500 > t:
                t = self._events[-1][0] + 1500  # one person at a time through the door
            if u < 0.1:  # broke A, backed out: no count
                self._sched(t, (("beam_a", 1, 0), ("beam_a", 0, 300)))
            elif u < 0.15:  # A+B then retreat: no count
                self._sched(t, (("beam_a", 1, 0), ("beam_b", 1, 150), ("beam_b", 0, 300), ("beam_a", 0, 450)))
            elif self.people_inside > 0 and u < 0.575:
                self.people_inside -= 1
                self.crossings_out += 1
                self._sched(t, (("beam_b", 1, 0), ("beam_a", 1, 150), ("beam_b", 0, 400), ("beam_a", 0, 550)))
            else:
                self.people_inside += 1
                self.crossings_in += 1
                self._sched(t, (("beam_a", 1, 0), ("beam_b", 1, 150), ("beam_a", 0, 400), ("beam_b", 0, 550)))
            self._next_visit_t = t + int(-math.log(1 - self._rand()) * 3600000 / rate) + 1

    def _sched(self, t0, seq):
        for sig, level, dt in seq:
            self._events.append((t0 + dt, sig, level))
        self._events.sort(key=lambda e: e[0])

    # ---------------------------------------------------------------- what the fake devices read
    def _signal(self, sig):
        v = self._v
        if sig == "mains_sense":
            return 0 if v["mains_present"] else 1
        if sig == "gen_sense":
            return 0 if self.gen_state in ("running", "cooldown") else 1
        if sig == "door":
            return 1 if v["door_open"] else 0
        if sig == "beam_a":
            return 1 if (v["beam_a_blocked"] or self._beam["beam_a"]) else 0
        if sig == "beam_b":
            return 1 if (v["beam_b_blocked"] or self._beam["beam_b"]) else 0
        if sig in self._outs:
            return self._outs[sig]
        return None

    def _refresh_levels(self):
        for pin_id, sig in self.wiring.items():
            level = self._signal(sig)
            if level is None:
                continue
            old = self._levels.get(pin_id)
            self._levels[pin_id] = level
            if old is not None and old != level:
                machine._fire_edge(pin_id, level)

    def pin_level(self, pin_id):
        sig = self.wiring.get(pin_id)
        return None if sig is None else self._signal(sig)

    def pin_out(self, pin_id, level):
        sig = self.wiring.get(pin_id)
        if sig in self._outs:
            self._outs[sig] = level

    def adc_uv(self, pin_id):
        sig = self.wiring.get(pin_id)
        v = self._v
        if sig == "fuel_adc":
            if v["fuel_sender_open"]:
                ma = 0.0
            elif v["fuel_sender_shorted"]:
                ma = 24.0
            else:
                depth = self.tank.depth_m(v["fuel_l"])
                if self.gen_state in ("running", "cooldown"):  # sloshing from engine vibration
                    depth += 0.02 * math.sin(self._t_ms / 270.0)
                frac = depth / self.tank.height_m
                frac = 0.0 if frac < 0 else (1.0 if frac > 1 else frac)
                ma = 4.0 + 16.0 * frac
            return adc_reading_uv(int(ma * FUEL_SHUNT_OHM * 1000))
        if sig == "starter_adc":
            if v["starter_sense_open"]:
                return adc_reading_uv(0)
            return adc_reading_uv(int(self._starter_v() / STARTER_DIVIDER * 1000000))
        return 0

    def i2c_device(self, bus_id, addr):
        if addr == INA226_ADDR and not self._v["battery_sensor_missing"]:
            return self._ina
        return None

    def i2c_scan(self, bus_id):
        return [] if self._v["battery_sensor_missing"] else [INA226_ADDR]

    def onewire_devices(self, pin_id):
        return self._probes if self.wiring.get(pin_id) == "onewire" else []


WORLD = World()
machine.attach(WORLD)
