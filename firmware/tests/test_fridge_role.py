# fw-test-heap: 256k
# Role "fridge" in the simulated world: probes, faults, min/max, door, local alarm and silence.
import fwsim
from nsp import regmap as rm


def rig(**kw):
    return fwsim.Rig(names=("fridge",), **kw)


def test_readings_after_first_conversion_never_85():
    r = rig()
    assert r.i16(rm.R_FRIDGE_TEMP_C) == -32768  # nothing converted yet: n/a, not 85.00
    r.run(700, step_ms=100)
    assert r.role("FridgeRole")._converting  # started at boot, not yet collected: no blocking wait
    assert r.i16(rm.R_FRIDGE_TEMP_C) == -32768
    r.run(100, step_ms=100)
    t = r.i16(rm.R_FRIDGE_TEMP_C)
    assert 400 <= t <= 600, t
    assert r.i16(rm.R_AMBIENT_TEMP_C) == 2000
    assert r.reg(rm.R_FRIDGE_FAULTS) == 0


def test_probe_unplugged_na_then_missing_fault_after_10_min():
    r = rig()
    r.run(10000)
    r.world.set("fridge_probe_unplugged", True)
    r.run(10000)
    assert r.i16(rm.R_FRIDGE_TEMP_C) == -32768
    assert r.reg(rm.R_FRIDGE_FAULTS) & rm.B_FRIDGE_PROBE_MISSING == 0  # not yet: 10 min grace
    r.run(600 * 1000)
    assert r.reg(rm.R_FRIDGE_FAULTS) & rm.B_FRIDGE_PROBE_MISSING
    assert r.role("FridgeRole").fault_bits()
    r.world.set("fridge_probe_unplugged", False)  # plugged back: first read is the 85.0 power-on value
    r.run(1000, step_ms=100)
    f = r.reg(rm.R_FRIDGE_FAULTS)
    assert f & rm.B_FRIDGE_PROBE_POWER_ON or r.i16(rm.R_FRIDGE_TEMP_C) != 8500, f
    assert r.i16(rm.R_FRIDGE_TEMP_C) != 8500
    r.run(12000)
    assert r.reg(rm.R_FRIDGE_FAULTS) == 0 and r.i16(rm.R_FRIDGE_TEMP_C) != -32768


def test_crc_errors_are_faults_not_readings():
    r = rig()
    r.run(10000)
    r.world.set("probe_crc_noise", True)
    r.run(6000)
    assert r.reg(rm.R_FRIDGE_FAULTS) & rm.B_FRIDGE_PROBE_CRC
    assert r.reg(rm.R_FRIDGE_FAULTS) & rm.B_AMBIENT_PROBE_FAULT
    assert r.i16(rm.R_FRIDGE_TEMP_C) == -32768 and r.i16(rm.R_AMBIENT_TEMP_C) == -32768


def test_power_lost_alarm_after_delay_buzzer_and_silence():
    r = rig()
    r.image.regs[rm.R_FRIDGE_ALARM_DELAY_S] = 1800
    r.run(60000)
    r.world.set("fridge_powered", False)
    t_above = None
    for minute in range(600):
        r.run(60000, step_ms=5000)
        if t_above is None and r.i16(rm.R_FRIDGE_TEMP_C) > 800:
            t_above = minute
        if r.reg(rm.R_FRIDGE_ALARM) == 1:
            break
    assert t_above is not None and 60 < t_above < 400, t_above  # hours, not minutes: insulation + vial
    assert minute - t_above >= 29, (minute, t_above)  # not before the 30 min delay
    assert r.world.snapshot()["buzzer_on"] and r.image.discrete is not None
    assert r.i16(rm.R_FRIDGE_MAX_C) > 800
    r.image.coils[rm.C_ALARM_SILENCE] = 1
    r.run(5000)
    assert not r.world.snapshot()["buzzer_on"] and r.reg(rm.R_FRIDGE_ALARM) == 1
    r.world.set("fridge_powered", True)
    for _ in range(300):
        r.run(60000, step_ms=5000)
        if r.reg(rm.R_FRIDGE_ALARM) == 0:
            break
    assert r.reg(rm.R_FRIDGE_ALARM) == 0 and r.image.coils[rm.C_ALARM_SILENCE] == 0


def test_settings_registers_drive_alarm():
    r = rig()
    r.image.regs[rm.R_FRIDGE_ALARM_DELAY_S] = 60
    r.image.regs[rm.R_FRIDGE_HIGH_C] = 300  # 3.00 degC: the fridge at ~4-5 is now "too warm"
    r.run(30000)
    assert r.reg(rm.R_FRIDGE_ALARM) == 0
    r.run(60000)
    assert r.reg(rm.R_FRIDGE_ALARM) == 1 and r.world.snapshot()["buzzer_on"]
    r.image.regs[rm.R_FRIDGE_HIGH_C] = 100  # high below low: invalid, falls back to 2-8 degC
    r.run(10000)
    assert r.reg(rm.R_FRIDGE_ALARM) == 0


def test_door_open_with_vial_lag_does_not_alarm():
    r = rig()
    r.image.regs[rm.R_FRIDGE_ALARM_DELAY_S] = 600
    r.run(60000)
    r.world.set("door_open", True)
    r.run(300000)
    assert r.reg(rm.R_DOOR_OPEN) == 1 and 298 <= r.reg(rm.R_DOOR_OPEN_S) <= 300, r.reg(rm.R_DOOR_OPEN_S)
    assert r.world.snapshot()["fridge_air_c"] > 8.0  # the air is warm...
    assert r.i16(rm.R_FRIDGE_TEMP_C) < 800  # ...the glycol vial is not
    r.world.set("door_open", False)
    r.run(3000)
    assert r.reg(rm.R_DOOR_OPEN) == 0 and r.reg(rm.R_DOOR_OPEN_S) == 0
    r.run(1800 * 1000, step_ms=5000)
    assert r.reg(rm.R_FRIDGE_ALARM) == 0


def test_minmax_reset_coil():
    r = rig()
    r.world.set("fridge_c", 3.0)
    r.run(6000)
    r.world.set("fridge_c", 7.0)
    r.run(6000)
    assert r.i16(rm.R_FRIDGE_MIN_C) <= 310 and r.i16(rm.R_FRIDGE_MAX_C) >= 690
    r.image.coils[rm.C_FRIDGE_MINMAX_RESET] = 1
    r.run(1000)
    assert r.image.coils[rm.C_FRIDGE_MINMAX_RESET] == 0
    mn, mx = r.i16(rm.R_FRIDGE_MIN_C), r.i16(rm.R_FRIDGE_MAX_C)
    assert mn >= 600 and mx >= 600, (mn, mx)
