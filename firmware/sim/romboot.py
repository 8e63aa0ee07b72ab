# Unix port ONLY: run the firmware from a ROMFS image that lives outside the GC heap, as a board
# runs frozen or ROMFS code from memory-mapped flash. Importing .mpy files from a directory copies
# their bytecode, strings and tables into the heap (~123 KB for firmware + sim + vnode on the 64-bit
# port); from a VfsRom they execute in place and only the module objects stay in the heap (~80 KB).
#
#   NSP_ROMFS_PAD=xxxx...  micropython -X heapsize=64k -m romboot IMAGE MODULE [ARGS...]
#
# Where the "flash" comes from: the unix port has no rom_ioctl partition and no mmap, so the caller
# puts a padding variable of at least the image's size in the environment; the kernel keeps the
# environment strings in the process's own memory, outside the GC heap. /proc/self/stat gives their
# address, /proc/self/environ the offset of the pad, and uctypes.bytearray_at() lets the image be
# read straight into it. Without /proc or the pad the image is read into a heap buffer instead
# (works anywhere, costs its size in heap) and a line says so.
# Then MODULE is imported from /rom with sys.argv = [MODULE, ARGS...]; if it has main(argv), its
# return value is the exit code.
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


def run(argv):
    if len(argv) < 2:
        print("usage: romboot IMAGE MODULE [ARGS...]")
        return 2
    mount(argv[0])
    name = argv[1]
    sys.argv[:] = argv[1:]
    mod = __import__(name)
    main = getattr(mod, "main", None)
    if main is None:
        return 0
    return main(argv[2:])


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
