# Pure logic without any hardware: battery state of charge, the excursion alarm, generator interlocks.
from nsp import regmap as rm
from nsp.alarm import ExcursionAlarm
from nsp.genlogic import GenLogic
from nsp.soc import SocEstimator, soc_from_rest_v


def test_rest_voltage_table():
    assert soc_from_rest_v(12.65) == 1.0 and soc_from_rest_v(11.89) == 0.0
    assert abs(soc_from_rest_v(12.24) - 0.5) < 1e-9
    assert abs(soc_from_rest_v(12.345) - 0.625) < 0.01
    assert soc_from_rest_v(13.5) == 1.0 and soc_from_rest_v(10.0) == 0.0


def test_soc_counts_charge_then_reanchors_at_rest():
    est = SocEstimator(100.0, rest_a=0.5, rest_ms=4 * 3600000, soc=0.9)
    t = 0
    for _ in range(60):  # 20 A out for one hour = 20 Ah of 100
        t += 60000
        est.update(12.2, -20.0, t)
    assert abs(est.soc - 0.7) < 0.005, est.soc
    for _ in range(4 * 60 - 1):  # resting, but the rest time is not reached yet
        t += 60000
        est.update(12.06, 0.1, t)
    assert est.anchors == 0 and est.soc > 0.6
    for _ in range(2):
        t += 60000
        est.update(12.06, 0.1, t)
    assert est.anchors == 1 and abs(est.soc - 0.25) < 0.01, est.soc  # the rest voltage wins


def test_alarm_needs_consecutive_time_and_ignores_missing():
    a = ExcursionAlarm()
    assert not a.update(900, 200, 800, 60000, 0)
    assert not a.update(None, 200, 800, 60000, 30000)  # a lost reading neither starts nor clears
    assert a.update(900, 200, 800, 60000, 60000)
    assert a.update(None, 200, 800, 60000, 70000)
    assert a.update(790, 200, 800, 60000, 80000)  # inside, but not by the 0.2 degC margin
    assert not a.update(700, 200, 800, 60000, 90000)
    assert not a.update(150, 200, 800, 60000, 100000)
    assert not a.update(500, 200, 800, 60000, 150000)  # back inside: timer restarts
    assert not a.update(150, 200, 800, 60000, 160000)


def test_genlogic_interlocks_table():
    g = GenLogic(test_max_ms=600000)
    assert not g.command(True, False, False, 0, 30000)  # mains absent: refused
    assert g.last_command == rm.LAST_COMMAND_REFUSED_MAINS_ABSENT and not g.relay
    assert g.command(True, True, False, 1000, 30000) and g.relay
    g.update(True, False, 2000, 30000)
    assert g.state == rm.GEN_STATE_STARTING and g.cranking
    g.update(True, True, 5000, 30000)
    assert g.state == rm.GEN_STATE_RUNNING and g.reason == rm.GEN_RUN_REASON_TEST and g.start_count == 1
    g.update(False, True, 6000, 30000)  # mains lost while testing
    assert g.reason == rm.GEN_RUN_REASON_MAINS_LOST
    assert g.command(False, False, True, 7000, 30000)  # stop refused: coil stays 1
    assert g.last_command == rm.LAST_COMMAND_REFUSED_CARRYING_SITE and g.relay
    g.update(False, True, 10 * 600000, 30000)  # way past test_max_ms: still no self-stop
    assert g.relay
    g.update(True, True, 10 * 600000 + 1000, 30000)  # mains back: now test_max ends the test
    assert not g.relay and g.last_command == rm.LAST_COMMAND_STOPPED
    g.update(True, True, 10 * 600000 + 2000, 30000)
    assert g.state == rm.GEN_STATE_COOLDOWN
    g.update(True, False, 10 * 600000 + 3000, 30000)
    assert g.state == rm.GEN_STATE_STOPPED
    assert 5990000 <= g.run_ms <= 6002000, g.run_ms


def test_genlogic_start_failed_then_cleared_by_a_good_start():
    g = GenLogic()
    g.command(True, True, False, 0, 10000)
    g.update(True, False, 9999, 10000)
    assert not g.start_failed
    g.update(True, False, 10000, 10000)
    assert g.start_failed and not g.relay and not g.test_active
    assert g.state == rm.GEN_STATE_START_FAILED and g.last_command == rm.LAST_COMMAND_START_FAILED
    g.command(True, True, False, 20000, 10000)
    g.update(True, True, 21000, 10000)
    assert not g.start_failed and g.state == rm.GEN_STATE_RUNNING


def test_unexpected_run_is_flagged():
    g = GenLogic()
    g.update(True, False, 0, 30000)
    g.update(True, True, 1000, 30000)  # running, mains present, nobody asked
    assert g.reason == rm.GEN_RUN_REASON_UNEXPECTED and g.start_count == 1
