# Fuel tank geometry: liquid depth (m) -> volume (L) and back, for the shapes docs/sources.md lists:
# vertical cylinder, horizontal cylinder, rectangular, and a custom strapping table (depth, litres)
# measured by the installer. Pure logic: no machine, no clock.
import math


def _pos(cfg, key):
    v = cfg.get(key)
    if not isinstance(v, (int, float)) or isinstance(v, bool) or v <= 0:
        raise ValueError("tank.%s must be a number > 0 (metres), got %r" % (key, v))
    return float(v)


class Tank:
    """Tank(cfg): cfg = {"shape": "horizontal_cylinder", "diameter_m": 1.0, "length_m": 2.0} etc."""

    def __init__(self, cfg):
        shape = cfg.get("shape")
        self.shape = shape
        self._table = None
        if shape == "vertical_cylinder":
            r = _pos(cfg, "diameter_m") / 2
            self.height_m = _pos(cfg, "height_m")
            self._area_m2 = math.pi * r * r
        elif shape == "horizontal_cylinder":
            self._r = _pos(cfg, "diameter_m") / 2
            self._len_m = _pos(cfg, "length_m")
            self.height_m = 2 * self._r
        elif shape == "rectangular":
            self.height_m = _pos(cfg, "height_m")
            self._area_m2 = _pos(cfg, "length_m") * _pos(cfg, "width_m")
        elif shape == "table":
            pts = cfg.get("points")
            ok = isinstance(pts, list) and len(pts) >= 2
            if ok:
                last_d = last_v = -1.0
                for p in pts:
                    if not (isinstance(p, (list, tuple)) and len(p) == 2) or p[0] <= last_d or p[1] < last_v:
                        ok = False
                        break
                    last_d, last_v = p[0], p[1]
            if not ok:
                raise ValueError(
                    "tank.points must be >= 2 [depth_m, litres] pairs, depth strictly rising, litres not falling"
                )
            self._table = [(float(d), float(v)) for d, v in pts]
            self.height_m = self._table[-1][0]
        else:
            raise ValueError(
                "tank.shape must be vertical_cylinder, horizontal_cylinder, rectangular or table, got %r" % (shape,)
            )
        self.capacity_l = self.volume_l(self.height_m)

    def volume_l(self, depth_m):
        h = depth_m if depth_m > 0 else 0.0
        if h > self.height_m:
            h = self.height_m
        if self._table is not None:
            t = self._table
            if h <= t[0][0]:
                return t[0][1] * h / t[0][0] if t[0][0] > 0 else t[0][1]
            for i in range(1, len(t)):
                d1, v1 = t[i]
                if h <= d1:
                    d0, v0 = t[i - 1]
                    return v0 + (v1 - v0) * (h - d0) / (d1 - d0)
            return t[-1][1]
        if self.shape == "horizontal_cylinder":
            # V = L * [r^2 acos((r-h)/r) - (r-h) sqrt(2rh - h^2)]  (docs/sources.md)
            r = self._r
            c = (r - h) / r
            c = 1.0 if c > 1.0 else (-1.0 if c < -1.0 else c)
            s = 2 * r * h - h * h
            seg_m2 = r * r * math.acos(c) - (r - h) * math.sqrt(s if s > 0 else 0.0)
            return seg_m2 * self._len_m * 1000.0
        return self._area_m2 * h * 1000.0

    def depth_m(self, volume_l):
        """Inverse of volume_l (bisection; volume is monotonic in depth for every shape)."""
        if volume_l <= 0:
            return 0.0
        if volume_l >= self.capacity_l:
            return self.height_m
        lo, hi = 0.0, self.height_m
        for _ in range(40):
            mid = (lo + hi) / 2
            if self.volume_l(mid) < volume_l:
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2
