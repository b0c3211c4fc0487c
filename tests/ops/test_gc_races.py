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

from conftest import Location
from scribestore import ObjectStore, Repository
from scribestore.gc import collect_garbage

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
