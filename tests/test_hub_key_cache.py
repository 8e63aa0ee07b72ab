"""The decrypted-key cache of HubStore.site_keys: a rotation or revocation made by another
instance (or the CLI) on the same database takes effect in this one at the next request.
Runs on SQLite and on PostgreSQL (tests/conftest.py, hub_db)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from edge_server.clock import ManualClock
from edge_server.hub.store import HubStore


def test_a_revocation_by_another_instance_is_seen_at_once(tmp_path: Path) -> None:
    clock = ManualClock()
    data = tmp_path / "hub"
    a = HubStore(data)
    b = HubStore(data)  # a second instance on the same database (and master key file)
    try:
        old = a.add_site("nsp-a", clock.now()).encode()
        for _ in range(3):  # cached after the first
            keys = a.site_keys("nsp-a", clock.now())
            assert keys is not None and keys.current == old
        opened = len(a._opened)
        new = b.revoke_key("nsp-a", clock.now(), "test").encode()
        keys = a.site_keys("nsp-a", clock.now())
        assert keys is not None and keys.current == new and keys.previous is None
        assert len(a._opened) == opened + 1  # decrypted once more, for the new key
    finally:
        a.close()
        b.close()


def test_a_rotation_by_another_instance_gives_both_keys_then_only_the_new(
    tmp_path: Path,
) -> None:
    clock = ManualClock()
    data = tmp_path / "hub"
    a = HubStore(data)
    b = HubStore(data)
    try:
        old = a.add_site("nsp-a", clock.now()).encode()
        assert a.site_keys("nsp-a", clock.now()).current == old  # type: ignore[union-attr]
        new = b.rotate_key("nsp-a", clock.now(), timedelta(hours=1), "test").encode()
        keys = a.site_keys("nsp-a", clock.now())
        assert keys is not None and (keys.current, keys.previous) == (new, old)
        clock.advance(2 * 3600)  # the grace period is over
        keys = a.site_keys("nsp-a", clock.now())
        assert keys is not None and (keys.current, keys.previous) == (new, None)
    finally:
        a.close()
        b.close()
