# fw-test-heap: 256k
# Drivers against the fake buses (sim/machine.py, sim/onewire.py) on the MicroPython interpreter.
import machine
import onewire
from nsp.drivers import ds18b20 as ds
from nsp.drivers.ina226 import INA226
from nsp.drivers.loop_current import LoopCurrent
from world import WORLD, AMBIENT_ROM, FRIDGE_ROM, adc_reading_uv


def _bus():
    WORLD.reset()
    WORLD.step(0)
    return ds.DS18B20(onewire.OneWire(machine.Pin(4)))


def test_crc8_known_vector():
    # Maxim AN27 example ROM 02 1C B8 01 00 00 00 -> CRC A2
    buf = bytes((0x02, 0x1C, 0xB8, 0x01, 0x00, 0x00, 0x00, 0xA2))
    assert ds.crc8(buf, 7) == 0xA2
    assert ds.crc8(FRIDGE_ROM, 7) == FRIDGE_ROM[7]


def test_power_on_85_is_a_fault_then_reading_after_conversion():
    bus = _bus()
    assert bus.read(FRIDGE_ROM) == ds.POWER_ON  # never converted yet: 85.0
    WORLD.set("fridge_c", 4.5)
    assert bus.start()
    WORLD.step(500)
    assert bus.read(FRIDGE_ROM) == ds.POWER_ON  # conversion not finished (750 ms)
    WORLD.step(800)
    assert bus.read(FRIDGE_ROM) == ds.OK
    assert ds.DS18B20.centi_c(bus.raw) == 450, bus.raw
    assert bus.read(AMBIENT_ROM) == ds.OK and ds.DS18B20.centi_c(bus.raw) == 2000


def test_negative_temperature():
    bus = _bus()
    WORLD.set("ambient_c", -10.125)
    bus.start()
    WORLD.step(1000)
    assert bus.read(AMBIENT_ROM) == ds.OK
    assert bus.raw == -162 and ds.DS18B20.centi_c(bus.raw) == -1013, bus.raw


def test_crc_error_and_unplugged():
    bus = _bus()
    bus.start()
    WORLD.step(1000)
    WORLD.set("probe_crc_noise", True)
    assert bus.read(FRIDGE_ROM) == ds.CRC_ERROR
    WORLD.set("probe_crc_noise", False)
    WORLD.set("fridge_probe_unplugged", True)
    assert bus.read(FRIDGE_ROM) == ds.MISSING
    assert bus.read(AMBIENT_ROM) == ds.OK  # the other probe on the bus still answers
    WORLD.set("ambient_probe_unplugged", True)
    assert not bus.start()  # no presence pulse at all


def test_all_zero_scratchpad_is_not_zero_degrees():
    class ShortedBus:
        def reset(self):
            return True

        def writebyte(self, b):
            pass

        def select_rom(self, rom):
            pass

        def readinto(self, buf):
            for i in range(len(buf)):
                buf[i] = 0

    bus = ds.DS18B20(ShortedBus())
    assert ds.crc8(bytes(8), 8) == 0  # why the check is needed: the CRC of zeros is zero
    assert bus.read(FRIDGE_ROM) == ds.CRC_ERROR


def test_ina226_reads_world_battery_and_reports_missing():
    WORLD.reset()
    WORLD.set("mains_present", False)
    WORLD.set("battery_load_a", 20.0)
    WORLD.step(0)
    WORLD.step(1000)
    ina = INA226(machine.I2C(0), 0x40, 0.75)
    assert ina.configure() and ina.read()
    assert abs(ina.current_ma - (-20000)) <= 5, ina.current_ma
    assert abs(ina.bus_mv - int(WORLD.battery_v * 1000)) <= 2, (ina.bus_mv, WORLD.battery_v)
    WORLD.set("battery_sensor_missing", True)
    assert not ina.read() and not ina.ready
    WORLD.set("battery_sensor_missing", False)
    assert ina.read()  # reconfigures itself when the chip is back


def test_loop_current_calibration_beats_nominal():
    WORLD.reset()
    adc = machine.ADC(machine.Pin(36))
    nominal = LoopCurrent(adc, [[400000, 4.0], [2000000, 20.0]])
    # commissioning: inject 4, 8, 12, 16, 20 mA and record read_uv
    cal = [[adc_reading_uv(int(ma * 100000)), float(ma)] for ma in (4, 8, 12, 16, 20)]
    calibrated = LoopCurrent(adc, cal)
    WORLD.set("fuel_l", 785.4)  # half full -> 12 mA
    WORLD.step(0)
    e_nom = abs(nominal.read_ma() - 12.0)
    e_cal = abs(calibrated.read_ma() - 12.0)
    assert e_cal < 0.01 and e_nom > 0.05, (e_nom, e_cal)
    WORLD.set("fuel_sender_open", True)
    assert calibrated.read_ma() < 3.6
