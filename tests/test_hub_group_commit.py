"""Group commit in HubStore.ingest: batches that arrive together share one transaction, every
caller returns only after the commit that holds its batch, and a bad batch fails only its own
caller. Runs on SQLite and on PostgreSQL (tests/conftest.py, hub_db)."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from edge_server.clock import ManualClock
from edge_server.hub.store import HubStore
from edge_server.hub.testing import sample_alert, sample_status
from edge_server.uplink.protocol import iso

N_THREADS = 24
BATCHES_EACH = 10


@pytest.fixture
def store(tmp_path: Path) -> Iterator[HubStore]:
    s = HubStore(tmp_path / "hub")
    yield s
    s.close()


def _alert(now: Any, at: str | None = None) -> dict[str, Any]:
    a = f"a-{uuid.uuid4()}"
    return {"id": str(uuid.uuid4()), "kind": "alert", "at": at or iso(now),
            "body": sample_alert(a, now)}


def _until(done: Any, timeout_s: float = 10.0) -> None:
    """Poll a condition another thread makes true (a deadline, not a sleep for behaviour)."""
    deadline = time.monotonic() + timeout_s
    while not done():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.002)


class _CountingTransactions:
    """Counts the store's write transactions for batches (the real ones, still committed)."""

    def __init__(self, store: HubStore) -> None:
        self.calls: list[int] = []
        self._real = store._store_batches
        self._lock = threading.Lock()

    def __call__(self, group: list[Any]) -> None:
        with self._lock:
            self.calls.append(len(group))
        self._real(group)


def test_concurrent_batches_share_commits_and_each_is_stored_once(
    store: HubStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    clock = ManualClock()
    sites = [f"nsp-{i:02d}" for i in range(N_THREADS)]
    for s in sites:
        store.add_site(s, clock.now())
    counter = _CountingTransactions(store)
    monkeypatch.setattr(store, "_store_batches", counter)
    start = threading.Barrier(N_THREADS)
    sent: dict[str, list[str]] = {s: [] for s in sites}
    answered: dict[str, list[str]] = {s: [] for s in sites}
    errors: list[BaseException] = []

    def post(site: str) -> None:
        start.wait()
        try:
            for _ in range(BATCHES_EACH):
                batch = [_alert(clock.now()) for _ in range(3)]
                sent[site] += [m["id"] for m in batch]
                held = store.ingest(site, batch, clock.now())
                # Answered only after its commit: every id is readable at once.
                stored = {m["id"] for m in store.messages(site)}
                assert set(held) <= stored
                answered[site] += held
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=post, args=(s,)) for s in sites]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert errors == []
    assert answered == sent
    for s in sites:
        ids = [m["id"] for m in store.messages(s)]
        assert sorted(ids) == sorted(sent[s])  # each once
    batches = N_THREADS * BATCHES_EACH
    assert sum(counter.calls) == batches
    # Fewer transactions than batches: some were committed together.
    assert len(counter.calls) < batches, counter.calls
    assert max(counter.calls) > 1


def test_a_bad_batch_in_a_group_fails_only_its_caller(store: HubStore) -> None:
    clock = ManualClock()
    store.add_site("nsp-a", clock.now())
    store.add_site("nsp-b", clock.now())
    good = [_alert(clock.now())]
    bad = [_alert(clock.now(), at="not a time")]  # the store cannot order it: ValueError
    # The two batches are queued as one group: held behind a leader that is still committing.
    gate = threading.Event()
    real = store._store_batches
    groups: list[int] = []

    def slow_first(group: list[Any]) -> None:
        groups.append(len(group))
        if len(groups) == 1:
            gate.wait(timeout=30)
        real(group)

    store._store_batches = slow_first  # type: ignore[method-assign]
    results: dict[str, Any] = {}

    def post(name: str, site: str, batch: list[dict[str, Any]]) -> None:
        try:
            results[name] = store.ingest(site, batch, clock.now())
        except Exception as exc:
            results[name] = exc

    leader = threading.Thread(target=post, args=("leader", "nsp-a", [_alert(clock.now())]))
    leader.start()
    _until(lambda: bool(groups))  # the leader is inside its commit
    t_good = threading.Thread(target=post, args=("good", "nsp-a", good))
    t_bad = threading.Thread(target=post, args=("bad", "nsp-b", bad))
    t_good.start()
    t_bad.start()
    _until(lambda: len(store._group) == 2)  # both queued behind it
    gate.set()
    for t in (leader, t_good, t_bad):
        t.join(timeout=30)
    assert groups[1] == 2  # good and bad came in one group
    assert results["good"] == [good[0]["id"]]
    assert isinstance(results["bad"], ValueError)
    assert [m["id"] for m in store.messages("nsp-b")] == []
    assert good[0]["id"] in {m["id"] for m in store.messages("nsp-a")}


def test_one_group_keeps_arrival_order_and_stores_a_repeated_batch_once(store: HubStore) -> None:
    """Two statuses of one site and a retried batch in one group: the status received last
    wins (as one by one), the retried messages are stored once, alerts keep their newest state."""
    from edge_server.hub.store import _Waiting

    clock = ManualClock()
    store.add_site("nsp-a", clock.now())
    now = clock.now()
    first = {"id": str(uuid.uuid4()), "kind": "status", "at": iso(now),
             "body": sample_status(fuel_autonomy_h=10.0, at=now)}
    second = {"id": str(uuid.uuid4()), "kind": "status", "at": iso(now),
              "body": sample_status(fuel_autonomy_h=20.0, at=now)}
    raised = _alert(now)
    cleared = {**raised, "id": str(uuid.uuid4()),
               "body": {**raised["body"], "state": "cleared"}}
    group = [_Waiting("nsp-a", [first, raised], iso(now)),
             _Waiting("nsp-a", [first, raised], iso(now)),  # the same batch again (a retry)
             _Waiting("nsp-a", [second, cleared], iso(now))]
    store._store_batches(group)
    ids = [m["id"] for m in store.messages("nsp-a")]
    assert ids == [first["id"], raised["id"], second["id"], cleared["id"]]
    site = store.site("nsp-a")
    assert site is not None and site["status"]["fuel_autonomy_h"] == 20.0
    alerts = store.alerts(open_only=False, limit=10, site_id="nsp-a")
    assert [(a["alert_id"], a["state"]) for a in alerts] == [
        (raised["body"]["alert_id"], "cleared")]
    store._store_batches(group[:1])  # the whole batch once more, later: nothing changes
    assert len(store.messages("nsp-a")) == 4
    assert store.site("nsp-a")["status"]["fuel_autonomy_h"] == 20.0  # type: ignore[index]


async def test_on_the_event_loop_batches_share_commits_and_a_bad_one_fails_alone(
    store: HubStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ingest_async (the hub's ingest route): the coroutines that arrive while a COMMIT runs
    are committed together; every caller returns after its commit; a bad batch fails alone.
    On PostgreSQL it is ingest() in a thread (the same group commit as above)."""
    import asyncio

    clock = ManualClock()
    sites = [f"nsp-{i:02d}" for i in range(N_THREADS)]
    for s in sites:
        store.add_site(s, clock.now())
    counter = _CountingTransactions(store)
    monkeypatch.setattr(store, "_store_batches", counter)  # the thread path (PostgreSQL)
    groups: list[int] = []
    real_group = store._group_statements

    def counted(db: Any, group: list[Any]) -> None:
        groups.append(len(group))
        real_group(db, group)

    monkeypatch.setattr(store, "_group_statements", counted)
    sent: dict[str, list[str]] = {s: [] for s in sites}

    async def post(site: str) -> list[str]:
        held: list[str] = []
        for _ in range(BATCHES_EACH):
            batch = [_alert(clock.now()) for _ in range(3)]
            sent[site] += [m["id"] for m in batch]
            got = await store.ingest_async(site, batch, clock.now())
            assert set(got) <= {m["id"] for m in store.messages(site)}  # committed on return
            held += got
        return held

    bad = [_alert(clock.now(), at="not a time")]
    results = await asyncio.gather(*(post(s) for s in sites),
                                   store.ingest_async("nsp-00", bad, clock.now()),
                                   return_exceptions=True)
    assert isinstance(results[-1], ValueError)
    assert dict(zip(sites, results[:-1], strict=True)) == sent
    for s in sites:
        assert sorted(m["id"] for m in store.messages(s)) == sorted(sent[s])
    batches = N_THREADS * BATCHES_EACH
    assert sum(groups) >= batches  # every good batch went through a group once (the bad one too)
    assert len(groups) < batches and max(groups) > 1, groups  # ... and many together
