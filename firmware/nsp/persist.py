# Persistent counters (run hours, start count, visitor totals, boot and crash counters) on flash.
# Written atomically: the whole record goes to <path>.tmp, then os.rename() replaces <path> (littlefs
# and POSIX replace in one step). Each record carries a sequence number and a CRC-32, so after a power
# cut at ANY byte the loader finds either the old or the new record complete (tests/test_persist.py
# cuts the write at every byte offset). Written rarely: at most once per min_interval_ms for ordinary
# changes, at most once per significant_gap_ms for significant ones (a start, a boot), so the flash sees
# at most 3600/60 = 60 writes per hour even in the worst case (ESP32 flash: ~100k erase cycles/sector,
# spread by littlefs wear levelling).
import json
import os
from time import ticks_diff

from binascii import crc32  # in the ESP32 and unix builds (MICROPY_PY_BINASCII_CRC32)


def _decode(raw):
    """A complete, valid record -> (seq, data); anything else -> None."""
    try:
        if len(raw) < 10 or raw[-1:] != b"\n":
            return None
        crc = int(raw[:8], 16)
        body = raw[8:-1]
        if crc32(body) & 0xFFFFFFFF != crc:
            return None
        rec = json.loads(body)
        return rec["seq"], rec["d"]
    except Exception:
        return None


class Store:
    def __init__(self, path, min_interval_ms=600000, significant_gap_ms=60000, opener=open):
        self.path = path
        self.tmp_path = path + ".tmp"
        self.min_interval_ms = min_interval_ms
        self.significant_gap_ms = significant_gap_ms
        self._open = opener
        self._rename = os.rename
        self.data = {}
        self.seq = 0
        self.writes = 0
        self.error = None  # text of the last failed write (status bit persist_error), else None
        self._dirty = False
        self._significant = False
        self._last_write_ms = None
        self.load()

    def _read(self, path):
        try:
            with self._open(path, "rb") as f:
                return _decode(f.read())
        except OSError:
            return None

    def load(self):
        best = None
        for p in (self.path, self.tmp_path):
            rec = self._read(p)
            if rec is not None and (best is None or rec[0] > best[0]):
                best = rec
        if best is not None:
            self.seq, self.data = best
        return self.data

    def get(self, key, default=None):
        return self.data.get(key, default)

    def set(self, key, value, significant=False):
        if self.data.get(key) != value:
            self.data[key] = value
            self._dirty = True
            if significant:
                self._significant = True

    def maybe_flush(self, now_ms):
        """Write if due. Returns True when it wrote."""
        if not self._dirty:
            return False
        if self._last_write_ms is not None:
            age = ticks_diff(now_ms, self._last_write_ms)
            gap = self.significant_gap_ms if self._significant else self.min_interval_ms
            if age < gap:
                return False
        ok = self.flush()
        self._last_write_ms = now_ms
        return ok

    def flush(self):
        """Write now (boot counters, shutdown). Returns True on success."""
        seq = self.seq + 1
        body = json.dumps({"seq": seq, "d": self.data}).encode()
        try:
            with self._open(self.tmp_path, "wb") as f:
                f.write(b"%08x" % (crc32(body) & 0xFFFFFFFF))
                f.write(body)
                f.write(b"\n")
            try:
                self._rename(self.tmp_path, self.path)
            except OSError:
                # FAT (unlike littlefs and POSIX) will not rename over an existing file: remove it
                # first. A cut between the two leaves only the complete .tmp, which load() takes.
                os.remove(self.path)
                self._rename(self.tmp_path, self.path)
        except OSError as e:
            self.error = "persist: writing %s failed: %r" % (self.path, e)
            return False
        self.seq = seq
        self.writes += 1
        self.error = None
        self._dirty = False
        self._significant = False
        return True
