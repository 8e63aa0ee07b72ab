# fw-test-heap: 256k
# Persistent counters: atomic, rare writes that survive a power cut at every byte of a write.
import os

import fwsim
from nsp.persist import Store


class PowerCut(Exception):
    pass


class _CutFile:
    """A file that takes `budget` bytes and then 'loses power' (the rest never reaches flash)."""

    def __init__(self, path, budget):
        self._f = open(path, "wb")
        self._budget = budget

    def write(self, data):
        room = self._budget
        if len(data) <= room:
            self._f.write(data)
            self._budget -= len(data)
            return len(data)
        self._f.write(data[:room])
        self._budget = 0
        self._f.close()
        raise PowerCut()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self._f.close()
        return False


def _opener(budget):
    def op(path, mode="rb"):
        if "w" in mode:
            return _CutFile(path, budget)
        return open(path, mode)

    return op


def test_roundtrip_and_reload():
    p = fwsim.tmp_path("rt.json")
    s = Store(p)
    s.set("a", 1)
    s.set("b", [1, 2])
    assert s.flush()
    s2 = Store(p)
    assert s2.get("a") == 1 and s2.get("b") == [1, 2] and s2.seq == 1
    fwsim.cleanup(p)


def test_power_cut_at_every_byte():
    p = fwsim.tmp_path("cut.json")
    old = Store(p)
    old.set("run_s", 1000)
    old.set("starts", 7)
    old.flush()
    new_len = None
    k = 0
    while True:
        s = Store(p, opener=_opener(k))
        assert s.get("run_s") == 1000, (k, s.data)
        s.set("run_s", 123456)
        s.set("starts", 8)
        try:
            s.flush()
            finished = True
        except PowerCut:
            finished = False
        reloaded = Store(p)  # after the "reboot"
        d = reloaded.data
        assert d in ({"run_s": 1000, "starts": 7}, {"run_s": 123456, "starts": 8}), (k, d)
        if finished:
            assert d["run_s"] == 123456
            new_len = k
            break
        assert d["run_s"] == 1000, (k, d)  # a partial temp file is never taken
        try:
            os.remove(p + ".tmp")
        except OSError:
            pass
        k += 1
    assert new_len is not None and new_len > 20, new_len
    fwsim.cleanup(p)


def test_cut_between_write_and_rename_keeps_newer_complete_record():
    p = fwsim.tmp_path("ren.json")
    s = Store(p)
    s.set("x", 1)
    s.flush()

    def no_rename(a, b):
        raise PowerCut()

    s._rename = no_rename
    s.set("x", 2)
    try:
        s.flush()
    except PowerCut:
        pass
    r = Store(p)
    assert r.get("x") == 2 and r.seq == 2, r.data  # the complete temp record is newer: taken
    fwsim.cleanup(p)


def test_corrupt_file_falls_back_not_crash():
    p = fwsim.tmp_path("bad.json")
    with open(p, "wb") as f:
        f.write(b"deadbeef{\"seq\": 5, \"d\": {\"x\": 9}}\n")
    s = Store(p)
    assert s.data == {} and s.seq == 0
    fwsim.cleanup(p)


def test_writes_are_bounded_per_hour():
    p = fwsim.tmp_path("rate.json")
    s = Store(p, min_interval_ms=600000, significant_gap_ms=60000)
    for t in range(0, 3600 * 1000, 1000):
        s.set("run_s", t // 1000)
        s.maybe_flush(t)
    assert s.writes == 6, s.writes  # once per 10 min
    s2 = Store(p, min_interval_ms=600000, significant_gap_ms=60000)
    for t in range(0, 3600 * 1000, 1000):
        s2.set("starts", t // 1000, True)
        s2.maybe_flush(t)
    assert s2.writes == 60, s2.writes  # significant changes: at most once a minute
    fwsim.cleanup(p)


def test_write_failure_sets_error_and_keeps_data():
    p = fwsim.tmp_path("fail.json")
    s = Store(p)

    def fail(a, b):
        raise OSError(28)  # ENOSPC

    s._rename = fail
    s.set("k", 1)
    assert not s.flush()
    assert s.error and "persist" in s.error
    assert s.get("k") == 1
    s._rename = os.rename
    assert s.flush() and s.error is None
    fwsim.cleanup(p)


def test_fat_rename_fallback_and_cut_after_remove():
    p = fwsim.tmp_path("fat.json")
    s = Store(p)
    s.set("x", 1)
    s.flush()

    def fat_rename(a, b):
        try:
            os.stat(b)
        except OSError:
            return os.rename(a, b)
        raise OSError(17)  # EEXIST, as FAT reports it

    s._rename = fat_rename
    s.set("x", 2)
    assert s.flush() and Store(p).get("x") == 2
    calls = []

    def cut_after_remove(a, b):
        calls.append(1)
        if len(calls) == 1:
            raise OSError(17)
        raise PowerCut()  # power lost after os.remove(main), before the rename

    s._rename = cut_after_remove
    s.set("x", 3)
    try:
        s.flush()
    except PowerCut:
        pass
    try:
        os.stat(p)
        assert False, "main file should be gone in this scenario"
    except OSError:
        pass
    assert Store(p).get("x") == 3  # the complete temp record is found
    fwsim.cleanup(p)


def test_persist_interval_from_config():
    from world import WORLD  # noqa: F401  (build_roles needs the fake machine's world)

    p = fwsim.tmp_path("cfg.json")
    r = fwsim.Rig(names=("entrance",), cfg={"persist_interval_s": 120}, store=Store(p))
    assert r.store.min_interval_ms == 120000
    fwsim.cleanup(p)
