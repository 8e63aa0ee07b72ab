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
# The mounting lives in sim/romboot_mount.py, dropped once it has run (its bytecode came from disk
# into the heap). Then MODULE is imported from /rom with sys.argv = [MODULE, ARGS...]; if it has
# main(argv), its return value is the exit code.
import sys


def run(argv):
    if len(argv) < 2:
        print("usage: romboot IMAGE MODULE [ARGS...]")
        return 2
    import romboot_mount  # next to this file (MICROPYPATH), not in the image

    romboot_mount.mount(argv[0])
    del sys.modules["romboot_mount"]  # its code (read from disk into the heap) is garbage now
    romboot_mount = None
    name = argv[1]
    sys.argv[:] = argv[1:]
    mod = __import__(name)
    main = getattr(mod, "main", None)
    if main is None:
        return 0
    return main(argv[2:])


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
