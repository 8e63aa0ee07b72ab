# config.json validation (never raises, names the field and the fix) and the crash-loop boot guard.
import fwsim
from nsp import fwconfig
from nsp.bootguard import BootGuard
from nsp.persist import Store


def test_defaults_are_valid():
    cfg, errors = fwconfig.validate({})
    assert errors == [], errors
    assert cfg["roles"] == ["power", "fridge", "entrance"]
    assert cfg["power"]["relay_pin"] == 26 and cfg["fridge"]["probe_missing_s"] == 600


def test_bad_json_gives_defaults_and_clear_line():
    cfg, errors, crc = fwconfig.loads(b'{"unit": 3, "roles": ["power"')
    assert cfg["node_id"] == 1 and cfg["power"]["mains_pin"] == 34
    assert len(errors) == 1 and "not valid JSON" in errors[0] and "fix" in errors[0], errors
    assert crc != 0


def test_bad_field_named_with_fix_and_default_used():
    cfg, errors, _ = fwconfig.loads(b'{"node_id": 3, "power": {"fuel_sample_ms": "fast", "debounce_ms": 250}}')
    assert cfg["node_id"] == 3
    assert cfg["power"]["fuel_sample_ms"] == 1000 and cfg["power"]["debounce_ms"] == 250
    assert len(errors) == 1, errors
    e = errors[0]
    assert "power.fuel_sample_ms" in e and "fix" in e and "'fast'" in e, e


def test_unknown_field_and_bad_types():
    cfg, errors = fwconfig.validate({"fridge": {"fridge_rom": "xyz", "probe_mising_s": 5},
                                     "entrance": [], "roles": ["power", "kitchen"]})
    text = "\n".join(errors)
    assert "fridge.fridge_rom" in text and "fridge.probe_mising_s" in text, text
    assert "entrance must be an object" in text and "roles" in text, text
    assert cfg["roles"] == ["power", "fridge", "entrance"]
    assert cfg["fridge"]["fridge_rom"] == "28010a0000000094"


def test_tank_and_calibration_checked():
    cfg, errors = fwconfig.validate({"power": {"tank": {"shape": "horizontal_cylinder", "diameter_m": 0},
                                               "fuel_cal": [[5, 4.0], [3, 20.0]]}})
    text = "\n".join(errors)
    assert "power.tank" in text and "diameter_m" in text, text
    assert "power.fuel_cal" in text, text
    assert cfg["power"]["tank"]["shape"] == "horizontal_cylinder" and cfg["power"]["tank"]["diameter_m"] == 1.0


def test_pin_conflict_disables_role():
    cfg, errors = fwconfig.validate({"entrance": {"beam_a_pin": 26}})
    assert "entrance" not in cfg["roles"], cfg["roles"]
    assert any("GPIO 26" in e and "power.relay_pin" in e for e in errors), errors


def test_other_sections_pass_through():
    cfg, errors = fwconfig.validate({"modbus": {"baud": 19200}})
    assert errors == [] and cfg["modbus"] == {"baud": 19200}


def test_missing_file():
    cfg, errors, crc = fwconfig.load("/nonexistent/config.json")
    assert cfg["node_id"] == 1 and crc == 0 and "not found" in errors[0]


def test_bootguard_safe_mode_after_crashes_and_recovery():
    p = fwsim.tmp_path("boot.json")
    for n in range(3):  # three boots that die before they are healthy
        g = BootGuard(Store(p), max_crashes=3, healthy_after_ms=60000)
        assert not g.boot(0), n
        g.tick(30000)
    g = BootGuard(Store(p), max_crashes=3, healthy_after_ms=60000)
    assert g.boot(0) and g.safe_mode and g.crash_count == 3 and g.boot_count == 4
    g.tick(60000)  # runs fine in safe mode for the healthy time
    assert g.healthy
    g = BootGuard(Store(p), max_crashes=3, healthy_after_ms=60000)
    assert not g.boot(0) and g.crash_count == 0 and g.boot_count == 5
    fwsim.cleanup(p)


def test_duplicate_role_dropped_not_conflicting_with_itself():
    cfg, errors = fwconfig.validate({"roles": ["power", "power", "fridge"]})
    assert cfg["roles"] == ["power", "fridge"], cfg["roles"]
    assert len(errors) == 1 and "twice" in errors[0], errors


def test_role_pin_on_the_rs485_uart_refused():
    cfg, errors = fwconfig.validate({"fridge": {"door_pin": 17}})
    assert "fridge" not in cfg["roles"]
    assert any("modbus.tx_pin" in e and "fridge.door_pin" in e for e in errors), errors
    cfg, errors = fwconfig.validate({"modbus": {"de_pin": 4}, "roles": ["power"]})
    assert errors == [] and cfg["roles"] == ["power"]  # the fridge's 1-Wire pin is free: no fridge role
