"""Leases keep gc's sweep and writers apart (FORMAT 7.1), on every backend."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
import time

import msgspec
import pytest

from scribestore import LockTimeoutError, ObjectStore, Repository, SaveError
from scribestore.ops.gc import collect_garbage
from scribestore.store.layout import LOCKS_DIR
from scribestore.store.leases import LeaseHolder, LeasePolicy, this_host
from support.locations import Location

ZERO = dt.timedelta(0)


def store_at(loc: Location, **policy: float) -> ObjectStore:
    return ObjectStore(
        loc.join("objects"), lease_policy=LeasePolicy(**policy) if policy else None, **loc.options
    )


def leases_in(store: ObjectStore) -> list[str]:
    return list(store.storage.list(LOCKS_DIR))


def test_gc_waits_for_a_writer_in_flight(location: Location) -> None:
    store = store_at(location)
    orphan = store.put(b"orphan" * 100)
    done = threading.Event()
    with store.writing():
        thread = threading.Thread(
            target=lambda: (collect_garbage(store_at(location), grace=ZERO), done.set())
        )
        thread.start()
        assert not done.wait(1.0)  # blocked behind the write lease
        assert store.has(orphan)
    thread.join(30)
    assert done.is_set() and not store.has(orphan)
    assert leases_in(store) == []


def test_gc_gives_up_when_writers_stay(location: Location) -> None:
    store = store_at(location)
    orphan = store.put(b"orphan" * 100)
    with store.writing():
        with pytest.raises(LockTimeoutError, match="writer"):
            collect_garbage(store_at(location), grace=ZERO, wait=dt.timedelta(seconds=0.5))
        assert store.has(orphan)
        assert [p for p in leases_in(store) if "/gc-" in p] == []


def test_writer_waits_while_gc_sweeps(location: Location) -> None:
    repo = Repository(location.join("repository.json"), **location.options)
    repo.log_artifact("a", "text", "text")
    gc_store = store_at(location)
    saved = threading.Event()
    with gc_store.exclusive():
        thread = threading.Thread(target=lambda: (repo.save(), saved.set()))
        thread.start()
        assert not saved.wait(1.0)
    thread.join(30)
    assert saved.is_set()
    assert Repository(location.join("repository.json"), mode="r", **location.options)["a"]


def test_writer_gives_up_on_a_gc_that_stays(location: Location) -> None:
    writer = store_at(location, wait=0.5)
    with store_at(location).exclusive(), pytest.raises(LockTimeoutError, match="garbage"):
        writer.put(b"new bytes")
    assert [p for p in leases_in(writer) if "/write-" in p] == []
    writer.put(b"new bytes")  # the gc lease is gone: a retry goes through


def test_second_gc_is_refused(location: Location) -> None:
    with store_at(location).exclusive(), pytest.raises(LockTimeoutError, match="another"):
        collect_garbage(store_at(location), grace=ZERO)


def _plant(store: ObjectStore, kind: str, *, host: str, pid: int) -> str:
    path = f"{LOCKS_DIR}/{kind}-{'0' * 32}.json"
    holder = LeaseHolder(kind=kind, host=host, pid=pid, token="")
    store.storage.write_new(path, [msgspec.json.encode(holder)])
    return path


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_lease_of_a_dead_process_here_is_taken_over(location: Location) -> None:
    store = store_at(location)
    orphan = store.put(b"orphan" * 100)
    path = _plant(store, "write", host=this_host(), pid=_dead_pid())
    collect_garbage(store, grace=ZERO, wait=dt.timedelta(seconds=5))
    assert not store.has(orphan)
    assert not store.storage.exists(path)


def test_lease_of_another_machine_waits_until_stale(location: Location) -> None:
    store = store_at(location, stale=3.0)
    path = _plant(store, "gc", host="elsewhere|boot|1", pid=1)
    started = time.monotonic()
    store.put(b"new bytes")  # waits until the foreign gc lease is stale, then takes it over
    assert time.monotonic() - started >= 2.0
    assert not store.storage.exists(path)


def test_unreadable_lease_counts_as_live_until_stale(location: Location) -> None:
    store = store_at(location)
    store.storage.write_new(f"{LOCKS_DIR}/write-{'1' * 32}.json", [b"{not json"])
    with pytest.raises(LockTimeoutError):
        collect_garbage(store, grace=ZERO, wait=dt.timedelta(seconds=0.3))


def test_save_whose_lease_was_taken_over_commits_nothing(location: Location) -> None:
    fpath = location.join("repository.json")
    repo = Repository(fpath, **location.options)
    repo.log_artifact("a", "first", "text")
    repo.save()
    repo.log_artifact("a", "second", "text")
    with repo.objects.writing() as lease:
        repo.objects.storage.delete(lease.path)  # as a gc does with a stale lease
        with pytest.raises(SaveError, match="taken over"):
            repo.save()
    assert len(list(Repository(fpath, mode="r", **location.options))) == 1
    repo.save()  # a retry under a new lease
    assert Repository(fpath, mode="r", **location.options).load_artifact("a") == "second"


def test_lease_is_refreshed_while_held(tmp_path) -> None:
    store = ObjectStore(tmp_path / "objects", lease_policy=LeasePolicy(refresh=0.2))
    with store.writing() as lease:
        path = store.storage.local_path(lease.path)  # type: ignore[attr-defined]
        os.utime(path, (0, 0))
        time.sleep(0.8)
        assert os.stat(path).st_mtime > time.time() - 5
    assert leases_in(store) == []
