# Tank geometry against docs/sources.md's test vectors.
from nsp.tank import Tank

H = Tank({"shape": "horizontal_cylinder", "diameter_m": 1.0, "length_m": 2.0})


def close(a, b, tol):
    return abs(a - b) <= tol


def test_horizontal_cylinder_vectors():
    assert close(H.capacity_l, 1570.8, 0.05), H.capacity_l
    assert close(H.volume_l(0.25), 307.1, 0.05), H.volume_l(0.25)
    assert close(H.volume_l(0.10), 81.8, 0.05), H.volume_l(0.10)


def test_depth_fraction_to_volume_fraction():
    for depth_pct, vol_pct in ((10, 5.2), (20, 14.2), (50, 50.0)):
        got = 100 * H.volume_l(depth_pct / 100 * H.height_m) / H.capacity_l
        assert close(got, vol_pct, 0.05), (depth_pct, got)


def test_inverse_depth():
    for v in (0.0, 81.8, 307.1, 785.4, 1500.0):
        assert close(H.volume_l(H.depth_m(v)), v, 0.01), v
    assert H.depth_m(99999) == H.height_m


def test_vertical_and_rectangular():
    v = Tank({"shape": "vertical_cylinder", "diameter_m": 1.0, "height_m": 2.0})
    assert close(v.capacity_l, 1570.8, 0.05)
    assert close(v.volume_l(1.0), 785.4, 0.05)
    r = Tank({"shape": "rectangular", "length_m": 2.0, "width_m": 1.0, "height_m": 0.5})
    assert close(r.capacity_l, 1000.0, 1e-6)
    assert close(r.volume_l(0.25), 500.0, 1e-6)
    assert r.volume_l(-1) == 0 and r.volume_l(9) == r.capacity_l


def test_strapping_table():
    t = Tank({"shape": "table", "points": [[0.0, 0.0], [0.5, 400.0], [1.0, 1000.0]]})
    assert t.capacity_l == 1000.0
    assert close(t.volume_l(0.25), 200.0, 1e-6)
    assert close(t.volume_l(0.75), 700.0, 1e-6)


def test_bad_tank_names_field():
    for cfg, word in (({"shape": "sphere"}, "tank.shape"),
                      ({"shape": "horizontal_cylinder", "diameter_m": -1, "length_m": 2}, "tank.diameter_m"),
                      ({"shape": "table", "points": [[0.5, 10], [0.2, 20]]}, "tank.points")):
        try:
            Tank(cfg)
            assert False, "accepted %r" % (cfg,)
        except ValueError as e:
            assert word in str(e), str(e)
