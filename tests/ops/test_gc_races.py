"""gc beside writers: a save that reuses an object gc is about to delete keeps it.

The race is forced, not waited for: gc's first delete starts a save on
another thread and gives it a few seconds to commit before the delete goes
on. A store that lets the save commit there has lost the version; one whose
gc excludes writers makes the save wait and store the object again.
"""

from __future__ import annotations

import datetime as dt
import random
import threading
from typing import Any

import pytest

from scribestore import ObjectStore, Repository
from scribestore.ops.gc import collect_garbage
from scribestore.ops.registry import ManifestRegistry
from support.locations import Location

ZERO = dt.timedelta(0)


def _race_on_first_delete(store: ObjectStore, monkeypatch: pytest.MonkeyPatch, save: Any) -> list:
    """Run ``save`` on a thread when gc first deletes; wait up to 3 s for it first."""
    storage = store.storage
    real_delete = storage.delete
    started: list[threading.Thread] = []
    errors: list[BaseException] = []

    def run() -> None:
        try:
            save()
        except BaseException as exc:
            errors.append(exc)

    def delete(path: str) -> None:
        if not started:
            thread = threading.Thread(target=run)
            started.append(thread)
            thread.start()
            thread.join(3.0)
        real_delete(path)

    monkeypatch.setattr(storage, "delete", delete)
    return [started, errors]


@pytest.mark.parametrize("size", [3000, 5 << 20], ids=["loose", "chunked"])
def test_relog_of_unreferenced_content_survives_gc(
    location: Location, monkeypatch: pytest.MonkeyPatch, size: int
) -> None:
    content = random.Random(size).randbytes(size)
    fpath = location.join("repository.json")
    repo = Repository(fpath, mode="w", **location.options)
    repo.log_artifact("model", content, "bytes")
    repo.save()
    # Mode "w" drops the version: the content is stored but unreferenced.
    dropped = Repository(fpath, mode="w", **location.options)
    dropped.log_artifact("other", b"x" * 100, "bytes")
    dropped.save()

    relog = Repository(fpath, mode="a", **location.options)
    relog.log_artifact("model", content, "bytes")
    store = ObjectStore(location.join("objects"), **location.options)
    started, errors = _race_on_first_delete(store, monkeypatch, relog.save)
    collect_garbage(store, grace=ZERO)
    for thread in started:
        thread.join(60)
    assert started and not errors
    monkeypatch.undo()

    reopened = Repository(fpath, mode="r", **location.options)
    assert reopened.load_artifact("model") == content
    assert reopened.verify().problems == ()


def test_a_first_save_in_flight_does_not_stop_gc(
    location: Location, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A manifest registered by a first save that has not committed yet is not "missing".

    Seen in the stress run: gc's survey (no lease) met a record whose first
    save was still in flight and stopped with MissingManifestError.
    """
    import contextlib
    from collections.abc import Iterator

    store = ObjectStore(location.join("objects"), **location.options)
    url = location.join("repository.json")
    ManifestRegistry(store).register(url, "repository")  # the save registered, then gc surveyed
    real = store.exclusive
    repo = Repository(url, **location.options)
    content = random.Random(9).randbytes(3000)

    @contextlib.contextmanager
    def commit_then_exclusive(**kwargs: Any) -> Iterator[None]:
        repo.log_artifact("model", content, "bytes")
        repo.save()  # commits while gc waits for the writers' leases
        with real(**kwargs):
            yield

    monkeypatch.setattr(store, "exclusive", commit_then_exclusive)
    report = collect_garbage(store, grace=dt.timedelta(0))
    assert report.deleted_objects == ()
    assert Repository(url, mode="r", **location.options).load_artifact("model") == content
