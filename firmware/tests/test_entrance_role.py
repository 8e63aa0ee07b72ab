# fw-test-heap: 256k
# Role "entrance" in the simulated world: visitors through two beams, occupancy, faults, persistence.
import fwsim
from nsp import regmap as rm
from nsp.persist import Store


def rig(**kw):
    return fwsim.Rig(names=("entrance",), **kw)


def test_counts_match_world_including_aborted_crossings():
    r = rig()
    r.world.set("seed", 3)
    r.world.set("visitors_per_hour", 120.0)
    r.run(2 * 3600 * 1000)
    w = r.world.snapshot()
    assert w["crossings_in"] > 100 and w["crossings_out"] > 80, w
    assert r.u32(rm.R_VISITORS_IN) == w["crossings_in"], (r.u32(rm.R_VISITORS_IN), w["crossings_in"])
    assert r.u32(rm.R_VISITORS_OUT) == w["crossings_out"]
    assert r.reg(rm.R_OCCUPANCY) == w["people_inside"]
    assert r.role("EntranceRole").decoder.errors == 0


def test_same_seed_same_visitors():
    counts = []
    for _ in range(2):
        r = rig()
        r.world.set("seed", 11)
        r.world.set("visitors_per_hour", 60.0)
        r.run(3600 * 1000)
        counts.append((r.u32(rm.R_VISITORS_IN), r.u32(rm.R_VISITORS_OUT)))
    assert counts[0] == counts[1] and counts[0][0] > 0, counts


def test_occupancy_reset_and_clamp():
    r = rig()
    r.world.set("visitors_per_hour", 120.0)
    r.run(1800 * 1000)
    assert r.reg(rm.R_OCCUPANCY) > 0
    total_in = r.u32(rm.R_VISITORS_IN)
    r.image.coils[rm.C_OCCUPANCY_RESET] = 1
    r.run(1000)
    assert r.image.coils[rm.C_OCCUPANCY_RESET] == 0
    assert r.u32(rm.R_VISITORS_IN) == total_in  # totals are not reset
    r.run(1800 * 1000)
    assert r.reg(rm.R_OCCUPANCY) < 0x8000  # never negative even though people left after the reset


def test_beam_blocked_fault_and_clear():
    r = rig()
    r.world.set("beam_b_blocked", True)
    r.run(30000)
    assert r.reg(rm.R_ENTRANCE_FAULTS) == 0
    r.run(31000)
    assert r.reg(rm.R_ENTRANCE_FAULTS) == rm.B_BEAM_B_BLOCKED
    assert r.role("EntranceRole").fault_bits() == rm.B_BEAM_B_BLOCKED
    r.world.set("beam_b_blocked", False)
    r.run(1000)
    assert r.reg(rm.R_ENTRANCE_FAULTS) == 0
    assert r.u32(rm.R_VISITORS_IN) == 0 and r.u32(rm.R_VISITORS_OUT) == 0  # blocking is no visitor


def test_totals_survive_restart():
    p = fwsim.tmp_path("entrance.json")
    r = rig(store=Store(p))
    r.world.set("visitors_per_hour", 120.0)
    r.run(1800 * 1000)
    n_in = r.u32(rm.R_VISITORS_IN)
    assert n_in > 0
    r.store.flush()
    r2 = rig(store=Store(p))
    assert r2.u32(rm.R_VISITORS_IN) == n_in
    fwsim.cleanup(p)


def test_role_listed_twice_built_once():
    r = fwsim.Rig(names=("entrance", "entrance"), cfg={"roles": ["entrance", "entrance"]})
    assert len(r.roles) == 1
