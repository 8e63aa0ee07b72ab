# The mounting half of sim/romboot.py (unix port ONLY), a module of its own so that its code
# leaves the heap once the image is mounted: romboot drops it from sys.modules.
import sys

import uctypes
import vfs

_KEY = b"NSP_ROMFS_PAD="


def _pad():
    """(address, end of the environment) of the pad variable's value, or None."""
    try:
        with open("/proc/self/stat", "rb") as f:
            st = f.read()
        fields = st[st.rindex(b")") + 2:].split()
        env_start = int(fields[47])  # field 50 of proc(5); fields[0] is field 3
        env_end = int(fields[48])
        buf = bytearray(256)
        prev = b""
        off = 0
        with open("/proc/self/environ", "rb") as f:
            while True:
                n = f.readinto(buf)
                if not n:
                    return None
                chunk = prev + bytes(buf[:n])
                i = chunk.find(_KEY)
                if i >= 0:
                    return env_start + off - len(prev) + i + len(_KEY), env_end
                off += n
                prev = chunk[-len(_KEY):]
    except (OSError, ValueError, IndexError):
        return None


def mount(image):
    import os

    size = os.stat(image)[6]
    where = _pad()
    region = None
    if where is not None and where[0] + size <= where[1]:
        region = uctypes.bytearray_at(where[0], size)  # outside the GC heap: the "flash"
        for i in range(size):  # the pad is all "x": never write past its end
            if region[i] != 0x78:
                region = None
                break
    if region is None:
        region = bytearray(size)
        print("romboot: no NSP_ROMFS_PAD of %d bytes (or no /proc): ROM image in the heap" % size)
    with open(image, "rb") as f:
        f.readinto(region)
    vfs.mount(vfs.VfsRom(region), "/rom")
    sys.path[:] = ["/rom"] + [p for p in sys.path if p and p[0] == "."]  # keep .frozen (asyncio)
