# 4-20 mA loop current through a shunt into an ESP32 ADC1 pin. read_uv() already applies the chip's
# eFuse calibration, but the 11 dB range still bends (on a 100 ohm shunt every 10 mV is 0.1 mA =
# 0.6 % of the tank height), so a multi-point table measured at commissioning maps read_uv -> mA.
from nsp.filters import interpolate


class LoopCurrent:
    def __init__(self, adc, cal):
        self._adc = adc
        self._cal = cal  # [[read_uv, mA], ...] rising read_uv

    def read_ma(self):
        """Loop current in mA (float; not an interrupt path). 0 for an open loop."""
        ma = interpolate(self._cal, self._adc.read_uv())
        return ma if ma > 0 else 0.0
