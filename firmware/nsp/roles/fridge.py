# Role "fridge": DS18B20 probes on one 1-Wire bus (fridge probe in a glycol vial, ambient probe),
# converted without blocking (start, come back >= 750 ms later), the door contact, min/max since the
# last reset (coil fridge_minmax_reset, persisted), and the LOCAL alarm: outside the settings-register
# limits for the settings-register delay drives the buzzer/LED pin, so staff hear it even when the
# edge is down; coil alarm_silence quiets the buzzer until the alarm clears.
# Probe faults: CRC error, 85.0 degC power-on value -> n/a + bit at once; no good reading for
# probe_missing_s (default 10 min, Berlinger Fridge-tag) -> the missing bit as well.
from time import ticks_add, ticks_diff

import onewire
from machine import Pin
from nsp import regmap as rm
from nsp.alarm import ExcursionAlarm
from nsp.drivers import ds18b20 as ds
from nsp.filters import Debounce

_NO_VALUE = 0x7FFF  # "no min/max yet" in the store


class _Probe:
    def __init__(self, rom):
        self.rom = rom
        self.centi = None  # latest good reading, None while faulted
        self.status = ds.MISSING
        self.last_good_ms = 0  # set to the first tick's time: the grace period starts at boot


class FridgeRole:
    def __init__(self, image, cfg, store):
        self.image = image
        self.cfg = cfg
        self.store = store
        self._bus = ds.DS18B20(onewire.OneWire(Pin(cfg["onewire_pin"])))
        self._fridge = _Probe(ds.rom_from_hex(cfg["fridge_rom"]))
        self._ambient = _Probe(ds.rom_from_hex(cfg["ambient_rom"]))
        self._started = False
        self._conv_ms = 0
        self._door_pin = Pin(cfg["door_pin"], Pin.IN, Pin.PULL_UP)
        self._buzzer = Pin(cfg["buzzer_pin"], Pin.OUT, value=0)
        self._door = Debounce(cfg["debounce_ms"])
        self._door_since = None
        self.alarm = ExcursionAlarm()
        self._silenced = False
        self._converting = False
        self._next_ms = None
        get = store.get if store is not None else (lambda k, d=None: d)
        mn = get("fridge_min_c", _NO_VALUE)
        mx = get("fridge_max_c", _NO_VALUE)
        self.min_centi = None if mn == _NO_VALUE else mn
        self.max_centi = None if mx == _NO_VALUE else mx
        self.faults = 0
        image.coils[rm.C_FRIDGE_MINMAX_RESET] = 0
        image.coils[rm.C_ALARM_SILENCE] = 0

    def fault_bits(self):
        return self.faults

    def _start(self, now_ms):
        self._started = True
        self._fridge.last_good_ms = self._ambient.last_good_ms = now_ms

    def _read(self, p, now_ms):
        st = self._bus.read(p.rom)
        if st == ds.CRC_ERROR:  # one noisy read on a long cable: the scratchpad can be read again
            st = self._bus.read(p.rom)
        p.status = st
        if st == ds.OK:
            p.centi = ds.DS18B20.centi_c(self._bus.raw)
            p.last_good_ms = now_ms
        else:
            p.centi = None

    def tick(self, now_ms):
        if not self._started:
            self._start(now_ms)
        img = self.image
        cfg = self.cfg
        if self._converting:
            if ticks_diff(now_ms, self._conv_ms) >= ds.CONVERSION_MS:
                self._converting = False
                self._read(self._fridge, now_ms)
                self._read(self._ambient, now_ms)
        elif self._next_ms is None or ticks_diff(now_ms, self._next_ms) >= 0:
            self._next_ms = ticks_add(now_ms, cfg["sample_ms"])
            if self._bus.start():
                self._converting = True
                self._conv_ms = now_ms
            else:  # nobody on the bus at all
                self._fridge.status = self._ambient.status = ds.MISSING
                self._fridge.centi = self._ambient.centi = None
        fp = self._fridge
        ap = self._ambient
        missing_ms = cfg["probe_missing_s"] * 1000
        f = 0
        if fp.status == ds.CRC_ERROR:
            f |= rm.B_FRIDGE_PROBE_CRC
        elif fp.status == ds.POWER_ON:
            f |= rm.B_FRIDGE_PROBE_POWER_ON
        if fp.centi is None and ticks_diff(now_ms, fp.last_good_ms) >= missing_ms:
            f |= rm.B_FRIDGE_PROBE_MISSING
        if ap.centi is None and (ap.status != ds.MISSING or ticks_diff(now_ms, ap.last_good_ms) >= missing_ms):
            f |= rm.B_AMBIENT_PROBE_FAULT
        self.faults = f
        t = fp.centi
        if img.coils[rm.C_FRIDGE_MINMAX_RESET]:
            img.coils[rm.C_FRIDGE_MINMAX_RESET] = 0
            self.min_centi = self.max_centi = t
        if t is not None:
            if self.min_centi is None or t < self.min_centi:
                self.min_centi = t
            if self.max_centi is None or t > self.max_centi:
                self.max_centi = t
        low = img.get_i16(rm.R_FRIDGE_LOW_C)
        high = img.get_i16(rm.R_FRIDGE_HIGH_C)
        if low >= high:  # a bad settings write must not disable the alarm: fall back to 2-8 degC
            low, high = 200, 800
        alarm = self.alarm.update(t, low, high, img.regs[rm.R_FRIDGE_ALARM_DELAY_S] * 1000, now_ms)
        if img.coils[rm.C_ALARM_SILENCE]:
            if alarm:
                self._silenced = True
            img.coils[rm.C_ALARM_SILENCE] = 0 if not alarm else 1
        if not alarm:
            self._silenced = False
        self._buzzer.value(1 if alarm and not self._silenced else 0)
        door = self._door.update(self._door_pin.value(), now_ms)  # reed opens with the door: 1 = open
        if door:
            if self._door_since is None:
                self._door_since = now_ms
            door_s = ticks_diff(now_ms, self._door_since) // 1000
        else:
            self._door_since = None
            door_s = 0
        img.set_i16(rm.R_FRIDGE_TEMP_C, t)
        img.set_i16(rm.R_AMBIENT_TEMP_C, ap.centi)
        img.set_i16(rm.R_FRIDGE_MIN_C, self.min_centi)
        img.set_i16(rm.R_FRIDGE_MAX_C, self.max_centi)
        img.set_bool(rm.R_DOOR_OPEN, door)
        img.set_bool(rm.R_FRIDGE_ALARM, alarm)
        img.set_u16(rm.R_FRIDGE_FAULTS, f)
        img.set_u16(rm.R_DOOR_OPEN_S, door_s if door_s < 65535 else 65535)
        st = self.store
        if st is not None:
            st.set("fridge_min_c", _NO_VALUE if self.min_centi is None else self.min_centi)
            st.set("fridge_max_c", _NO_VALUE if self.max_centi is None else self.max_centi)
            st.maybe_flush(now_ms)
