# Role "power": mains and generator sense inputs, the remote-start relay (interlocks in nsp/genlogic),
# run hours and start count (persisted), the 4-20 mA fuel sender (median + moving average, tank
# geometry), the starter battery through a divider (and its minimum during the last crank), and the
# site battery through an INA226 (V, A, W, state of charge). Every sensor fault writes the "not
# available" sentinel plus a fault bit, never a plausible number.
from time import ticks_add, ticks_diff

from machine import ADC, I2C, Pin
from nsp import regmap as rm
from nsp.drivers.ina226 import INA226
from nsp.drivers.loop_current import LoopCurrent
from nsp.filters import Debounce, Median, MovingAverage
from nsp.genlogic import GenLogic
from nsp.soc import SocEstimator, rest_table
from nsp.tank import Tank

OPEN_LOOP_MA = 3.6  # below: broken wire or dead sender (NAMUR NE43)
OVER_RANGE_MA = 21.0  # above: shorted sender
BATTERY_PERIOD_MS = 1000
FLAP_WINDOW_MS = 60000
FLAP_CHANGES = 10  # more accepted mains changes per minute than this = a bad sense input


class PowerRole:
    def __init__(self, image, cfg, store):
        self.image = image
        self.cfg = cfg
        self.store = store
        self._mains_pin = Pin(cfg["mains_pin"], Pin.IN)  # external pull-up: pins 34-39 have none
        self._gen_pin = Pin(cfg["gen_pin"], Pin.IN)
        self._relay = Pin(cfg["relay_pin"], Pin.OUT, value=0)
        self._mains = Debounce(cfg["debounce_ms"])
        self._gen = Debounce(cfg["debounce_ms"])
        self._fuel = LoopCurrent(ADC(Pin(cfg["fuel_adc_pin"]), atten=ADC.ATTN_11DB), cfg["fuel_cal"])
        self._starter = ADC(Pin(cfg["starter_adc_pin"]), atten=ADC.ATTN_11DB)
        i2c = I2C(0, scl=Pin(cfg["i2c_scl_pin"]), sda=Pin(cfg["i2c_sda_pin"]), freq=100000)
        self._ina = INA226(i2c, cfg["ina226_addr"], cfg["shunt_mohm"])
        self.tank = Tank(cfg["tank"])
        self._median = Median(cfg["fuel_median_n"])
        self._avg = MovingAverage(cfg["fuel_average_n"])
        get = store.get if store is not None else (lambda k, d=None: d)
        self.logic = GenLogic(cfg["test_max_s"] * 1000, get("gen_run_s", 0) * 1000, get("gen_starts", 0))
        soc = get("battery_soc_pm", None)
        table, cells = rest_table(cfg["battery_chemistry"], cfg["battery_nominal_v"])
        self._soc = SocEstimator(cfg["battery_ah"], cfg["battery_rest_a"], cfg["battery_rest_s"] * 1000,
                                 None if soc is None else soc / 1000, table, cells)
        self._coil_seen = 0
        self.faults = 0
        self._next_fuel_ms = None
        self._next_batt_ms = None
        self._flap_ms = None
        self._flap_base = 0
        self._crank_min_cv = None
        self._was_cranking = False
        image.coils[rm.C_GEN_TEST_RUN] = 0

    def fault_bits(self):
        return self.faults

    def _set_fault(self, bit, on):
        self.faults = (self.faults | bit) if on else (self.faults & ~bit)

    def tick(self, now_ms):
        img = self.image
        mains = self._mains.update(self._mains_pin.value() == 0, now_ms)  # opto pulls low on AC
        running = self._gen.update(self._gen_pin.value() == 0, now_ms)
        deadline_s = img.regs[rm.R_GEN_START_DEADLINE_S]
        deadline_ms = (deadline_s if 5 <= deadline_s <= 600 else 30) * 1000
        lg = self.logic
        coil = img.coils[rm.C_GEN_TEST_RUN]
        if coil != self._coil_seen:
            lg.command(bool(coil), mains, running, now_ms, deadline_ms)
        lg.update(mains, running, now_ms, deadline_ms)
        self._relay.value(1 if lg.relay else 0)
        self._coil_seen = img.coils[rm.C_GEN_TEST_RUN] = 1 if lg.test_active else 0
        self._set_fault(rm.B_START_FAILED, lg.start_failed)
        if self._flap_ms is None or ticks_diff(now_ms, self._flap_ms) >= FLAP_WINDOW_MS:
            self._set_fault(rm.B_MAINS_SENSE, self._mains.changes - self._flap_base > FLAP_CHANGES)
            self._flap_ms = now_ms
            self._flap_base = self._mains.changes
        img.set_bool(rm.R_MAINS_PRESENT, mains)
        img.set_bool(rm.R_GEN_RUNNING, running)
        img.set_bool(rm.R_RELAY_ON, lg.relay)
        img.set_u16(rm.R_GEN_STATE, lg.state)
        img.set_u16(rm.R_GEN_RUN_REASON, lg.reason)
        img.set_u32(rm.R_RUN_HOURS_H, lg.run_ms // 36000)
        img.set_u16(rm.R_START_COUNT, lg.start_count)
        img.set_u16(rm.R_LAST_COMMAND, lg.last_command)
        self._tick_starter(lg.cranking)
        if self._next_fuel_ms is None or ticks_diff(now_ms, self._next_fuel_ms) >= 0:
            self._next_fuel_ms = ticks_add(now_ms, self.cfg["fuel_sample_ms"])
            self._tick_fuel()
        if self._next_batt_ms is None or ticks_diff(now_ms, self._next_batt_ms) >= 0:
            self._next_batt_ms = ticks_add(now_ms, BATTERY_PERIOD_MS)
            self._tick_battery(now_ms)
        img.set_u16(rm.R_POWER_FAULTS, self.faults)
        st = self.store
        if st is not None:
            st.set("gen_run_s", lg.run_ms // 1000)
            st.set("gen_starts", lg.start_count, True)
            if self._soc.soc is not None:
                st.set("battery_soc_pm", int(self._soc.soc * 1000))
            st.maybe_flush(now_ms)

    def _tick_starter(self, cranking):
        img = self.image
        v = self._starter.read_uv() * self.cfg["starter_divider"] / 1000000
        bad = v < 3.0 or v > 20.0  # divider open or wired to the wrong point
        self._set_fault(rm.B_STARTER_SENSE, bad)
        cv = None if bad else int(v * 100 + 0.5)
        img.set_u16(rm.R_STARTER_BATTERY_V, cv)
        if cranking and not self._was_cranking:
            self._crank_min_cv = None  # a new crank: forget the last one's minimum
        if cranking and cv is not None and (self._crank_min_cv is None or cv < self._crank_min_cv):
            self._crank_min_cv = cv
        self._was_cranking = cranking
        img.set_u16(rm.R_STARTER_BATTERY_MIN_V, self._crank_min_cv)

    def _tick_fuel(self):
        img = self.image
        ma = self._fuel.read_ma()
        self._set_fault(rm.B_FUEL_OPEN_LOOP, ma < OPEN_LOOP_MA)
        self._set_fault(rm.B_FUEL_OVER_RANGE, ma > OVER_RANGE_MA)
        if ma < OPEN_LOOP_MA or ma > OVER_RANGE_MA:
            self._median.reset()  # no stale samples mixed into the first good ones after repair
            self._avg.reset()
            img.set_u16(rm.R_FUEL_SENDER_MA, None)
            img.set_u16(rm.R_FUEL_LEVEL_PCT, None)
            img.set_u32(rm.R_FUEL_L, None)
            return
        frac = (ma - 4.0) / 16.0
        frac = 0.0 if frac < 0 else (1.0 if frac > 1 else frac)
        frac = self._avg.add(self._median.add(frac))
        img.set_u16(rm.R_FUEL_SENDER_MA, int(ma * 1000 + 0.5))
        img.set_u16(rm.R_FUEL_LEVEL_PCT, int(frac * 1000 + 0.5))
        img.set_u32(rm.R_FUEL_L, int(self.tank.volume_l(frac * self.tank.height_m) * 10 + 0.5))

    def _tick_battery(self, now_ms):
        img = self.image
        ina = self._ina
        ok = ina.read()
        self._set_fault(rm.B_BATTERY_SENSOR, not ok)
        if not ok:
            for addr in (rm.R_BATTERY_V, rm.R_BATTERY_SOC_PCT):
                img.set_u16(addr, None)
            img.set_i16(rm.R_BATTERY_A, None)
            img.set_i16(rm.R_BATTERY_W, None)
            return
        v = ina.bus_mv / 1000
        a = ina.current_ma / 1000
        soc = self._soc.update(v, a, now_ms)
        img.set_u16(rm.R_BATTERY_V, ina.bus_mv // 10)
        img.set_i16(rm.R_BATTERY_A, ina.current_ma // 10)
        img.set_i16(rm.R_BATTERY_W, int(v * a))
        img.set_u16(rm.R_BATTERY_SOC_PCT, int(soc * 1000 + 0.5))
