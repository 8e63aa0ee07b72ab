# Test helper (not a test module): a fresh world, image and roles, and a loop that steps the world and
# ticks the roles on one virtual clock, as the virtual node does.
import os

TMP = "/tmp/nsp_fwtest_%d" % os.getpid() if hasattr(os, "getpid") else "/tmp/nsp_fwtest"


def tmp_path(name):
    try:
        os.mkdir(TMP)
    except OSError:
        pass
    p = TMP + "/" + name
    for q in (p, p + ".tmp"):
        try:
            os.remove(q)
        except OSError:
            pass
    return p


def cleanup(path):
    for q in (path, path + ".tmp"):
        try:
            os.remove(q)
        except OSError:
            pass
    try:
        os.rmdir(TMP)  # only succeeds once the last file is gone
    except OSError:
        pass


class Rig:
    def __init__(self, names=("power", "fridge", "entrance"), cfg=None, store=None, now_ms=0):
        import machine
        from nsp.image import Image
        from nsp.roles import build_roles
        from world import WORLD

        self.world = WORLD
        WORLD.reset()
        machine._pins.clear()
        self.image = Image()
        self.store = store
        self.roles = build_roles(list(names), self.image, cfg or {}, store)
        self.now_ms = now_ms
        WORLD.step(now_ms)
        self.tick()

    def tick(self):
        for r in self.roles:
            r.tick(self.now_ms)

    def run(self, ms, step_ms=1000):
        end = self.now_ms + ms
        while self.now_ms < end:
            self.now_ms = min(self.now_ms + step_ms, end)
            self.world.step(self.now_ms)
            self.tick()

    def role(self, cls_name):
        for r in self.roles:
            if type(r).__name__ == cls_name:
                return r
        raise KeyError(cls_name)

    def reg(self, addr):
        return self.image.get_u16(addr)

    def i16(self, addr):
        return self.image.get_i16(addr)

    def u32(self, addr):
        return self.image.get_u32(addr)
