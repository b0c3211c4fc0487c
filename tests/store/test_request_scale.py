"""Requests per operation do not grow with the number of packs (FORMAT 3.6).

Counted as calls to the storage backend; on S3 each is one request, except
a listing, which is one request per 1,000 names.
"""

from __future__ import annotations

import contextlib
import random
from typing import TYPE_CHECKING, Any

import pytest

from scribestore import ObjectStore, Repository
from scribestore.store.packs import PackWriter

if TYPE_CHECKING:
    from collections.abc import Iterator

    from support.locations import Location

_CALLS = ("list", "read_bytes", "read_range", "read_view", "open_read", "exists", "size")


@contextlib.contextmanager
def _counting(cls: type) -> Iterator[list[str]]:
    calls: list[str] = []
    with pytest.MonkeyPatch.context() as mp:
        for name in _CALLS:
            real = getattr(cls, name)

            def counted(self: Any, *args: Any, _real: Any = real, _name: str = name) -> Any:
                calls.append(_name)
                return _real(self, *args)

            mp.setattr(cls, name, counted)
        yield calls


def _packs(store: ObjectStore) -> int:
    return sum(1 for name in store.storage.list("packs") if name.endswith(".pack"))


@pytest.mark.slow
def test_requests_do_not_grow_with_the_pack_count(
    shared_location: Location, monkeypatch: pytest.MonkeyPatch
) -> None:
    loc = shared_location
    # Small packs, so a thousand of them take seconds to make.
    monkeypatch.setattr(PackWriter.__init__, "__kwdefaults__", {"target": 64 << 10})
    repo = Repository(loc.join("repository.json"), **loc.options)
    probe = random.Random(1).randbytes(5 << 20)
    repo.log_artifact("probe", probe, "bytes")
    repo.save()
    store = ObjectStore(loc.join("objects"), **loc.options)
    cls = type(store.storage)

    def costs(n: int) -> dict[str, int]:
        out = {}
        with _counting(cls) as calls:
            r = Repository(loc.join("repository.json"), mode="a", **loc.options)
            r.log_artifact("small", b"small %d" % n, "bytes")
            r.save()
        out["small save"] = len(calls)
        with _counting(cls) as calls:
            r = Repository(loc.join("repository.json"), mode="a", **loc.options)
            r.log_artifact("probe", probe, "bytes")
            r.save()
        out["re-log"] = len(calls)
        with _counting(cls) as calls:
            loaded = Repository(loc.join("repository.json"), mode="r", **loc.options).load_artifact(
                "probe"
            )
        assert loaded == probe
        out["load"] = len(calls)
        return out

    costs(0)  # warm
    few = costs(1)
    packs_before = _packs(store)
    for n in range(20):
        store.put(random.Random(100 + n).randbytes(5 << 20))
    packs_after = _packs(store)
    assert packs_after >= 900 and packs_after >= 5 * packs_before
    many = costs(2)
    print(f"requests with {packs_before} packs: {few}; with {packs_after} packs: {many}")
    for op, count in few.items():
        # Storage calls; on S3 one listing call is a request per 1,000 names.
        # A delta and one per-pack index more may be read (FORMAT 3.6 levels).
        assert many[op] <= count + 2, (op, few, many)
