# fw-test-heap: 256k
# The simulated world's control API (used by tests, scenarios and the virtual node's control channel).
from world import WORLD


def test_set_rejects_unknown_and_bad_values():
    WORLD.reset()
    for key, value, exc in (("no_such_key", 1, KeyError), ("mains_present", "yes", ValueError),
                            ("ambient_c", 500, ValueError), ("fuel_l", True, ValueError),
                            ("gen_running", True, ValueError)):
        try:
            WORLD.set(key, value)
            assert False, "accepted %s=%r" % (key, value)
        except exc as e:
            assert key in str(e), str(e)


def test_snapshot_has_interface_keys():
    WORLD.reset()
    snap = WORLD.snapshot()
    for k in ("mains_present", "gen_will_start", "fridge_powered", "door_open", "fridge_probe_unplugged",
              "ambient_c", "fuel_l", "fuel_leak_lph", "fuel_sender_open", "starter_battery_weak",
              "battery_load_a", "visitors_per_hour", "beam_a_blocked", "gen_running", "now_ms"):
        assert k in snap, k
    WORLD.set("ambient_c", 25)
    assert WORLD.snapshot()["ambient_c"] == 25.0


def test_generator_amf_and_fuel_burn():
    WORLD.reset()
    WORLD.step(0)
    WORLD.set("mains_present", False)
    WORLD.step(5000)
    assert WORLD.snapshot()["gen_state"] == "running"
    f0 = WORLD.snapshot()["fuel_l"]
    WORLD.step(5000 + 3600 * 1000)
    burned = f0 - WORLD.snapshot()["fuel_l"]
    assert abs(burned - 3.4) < 0.01, burned
    WORLD.set("mains_present", True)
    WORLD.step(5000 + 3600 * 1000 + 20000)
    assert WORLD.snapshot()["gen_state"] == "cooldown"
    WORLD.step(5000 + 3600 * 1000 + 40000)
    assert WORLD.snapshot()["gen_state"] == "off"


def test_generator_that_will_not_start_locks_out():
    WORLD.reset()
    WORLD.step(0)
    WORLD.set("gen_will_start", False)
    WORLD.set("mains_present", False)
    t = 0
    for _ in range(80):
        t += 1000
        WORLD.step(t)
    assert WORLD.snapshot()["gen_state"] == "lockout"  # 3 cranks of 10 s with 10 s rests


def test_generator_shut_down_by_its_controller_stops_and_locks_out():
    WORLD.reset()
    WORLD.step(0)
    WORLD.set("mains_present", False)
    WORLD.step(5000)
    assert WORLD.snapshot()["gen_running"]
    WORLD.set("gen_shutdown", True)  # e.g. the controller's low-oil-pressure shutdown
    WORLD.step(6000)
    assert WORLD.snapshot()["gen_state"] == "lockout" and not WORLD.snapshot()["gen_running"]


def test_fridge_warms_toward_ambient_over_hours():
    WORLD.reset()
    WORLD.step(0)
    WORLD.set("fridge_powered", False)
    WORLD.step(4 * 3600 * 1000)  # one time constant
    air = WORLD.snapshot()["fridge_air_c"]
    assert 13.0 < air < 16.0, air  # 5 + 15 * (1 - 1/e) = 14.5
    assert WORLD.snapshot()["vial_c"] < air


def test_world_wiring_matches_config_defaults():
    # hw/pinout.md, nsp/fwconfig.py defaults and the world's wiring must name the same GPIOs
    from nsp import fwconfig
    from world import DEFAULT_WIRING

    cfg, errors = fwconfig.validate({})
    assert errors == []
    want = {
        ("power", "mains_pin"): "mains_sense", ("power", "gen_pin"): "gen_sense",
        ("power", "relay_pin"): "relay", ("power", "fuel_adc_pin"): "fuel_adc",
        ("power", "starter_adc_pin"): "starter_adc", ("fridge", "onewire_pin"): "onewire",
        ("fridge", "door_pin"): "door", ("fridge", "buzzer_pin"): "buzzer",
        ("entrance", "beam_a_pin"): "beam_a", ("entrance", "beam_b_pin"): "beam_b",
    }
    for (role, field), signal in want.items():
        assert DEFAULT_WIRING.get(cfg[role][field]) == signal, (role, field, cfg[role][field])
