"""gc repacks mostly dead packs: live chunks copied, verified, the old pack freed."""

from __future__ import annotations

import datetime as dt
import random

from scribestore import ObjectStore, Repository
from scribestore.ops.gc import collect_garbage
from scribestore.ops.gc.sweep import REPACK_DEAD
from scribestore.store.layout import PACK_DIR, pack_path, parse_pack_name
from scribestore.store.pack_index import PackIndex
from support.locations import Location

NOW = dt.timedelta(0)
BASE = random.Random(7).randbytes(12 << 20)
# Shares its first 2 MiB with BASE: the only live part of BASE's packs.
TUNED = BASE[: 2 << 20] + random.Random(8).randbytes(3 << 20)


def _packs(store: ObjectStore) -> set[str]:
    found = (parse_pack_name(n) for n in store.storage.list(PACK_DIR))
    return {f.pack_id for f in found if f is not None and f.kind == "pack"}


def _setup(location: Location) -> tuple[ObjectStore, set[str]]:
    """BASE stored but referenced by nothing; TUNED saved in a repository."""
    store = ObjectStore(location.join("objects"), **location.options)
    store.put(BASE)
    base_packs = _packs(store)
    repo = Repository(location.join("repository.json"), **location.options)
    repo.log_artifact("model", TUNED, "bytes")
    repo.save()
    return store, base_packs


def _load(location: Location) -> bytes:
    repo = Repository(location.join("repository.json"), mode="r", **location.options)
    data = repo.load_artifact("model")
    assert isinstance(data, bytes)
    return data


def test_a_mostly_dead_pack_is_repacked_then_freed(location: Location) -> None:
    store, base_packs = _setup(location)
    before = store.stats().stored_size
    first = collect_garbage(store, grace=NOW)
    assert set(first.repacked_packs) == base_packs
    assert set(first.condemned_packs) == base_packs
    # The live share of BASE's pack, at most 1 - REPACK_DEAD of it, plus chunk edges.
    assert 0 < first.repacked_bytes <= (1 - REPACK_DEAD) * len(BASE)
    assert _load(location) == TUNED
    second = collect_garbage(store, grace=NOW)
    assert set(second.deleted_packs) == base_packs and second.rescued_packs == ()
    assert not _packs(store) & base_packs
    assert _load(location) == TUNED
    after = store.stats().stored_size
    assert after < before - len(BASE) // 2
    third = collect_garbage(store, grace=NOW)
    assert third.repacked_packs == () and third.deleted_packs == ()


def test_a_dry_run_reports_the_repack_and_changes_nothing(location: Location) -> None:
    store, base_packs = _setup(location)
    listing = sorted(store.storage.list())
    dry = collect_garbage(store, grace=NOW, dry_run=True)
    assert set(dry.repacked_packs) == base_packs
    assert sorted(store.storage.list()) == listing
    real = collect_garbage(store, grace=NOW)
    assert real.repacked_packs == dry.repacked_packs


def test_a_reader_holding_the_old_index_still_loads(location: Location) -> None:
    """A pack deleted under a reader: it looks again and finds the copies."""
    store, _ = _setup(location)
    repo = Repository(location.join("repository.json"), mode="r", **location.options)
    assert repo.load_artifact("model") == TUNED  # its index now knows the old packs
    for _ in range(2):
        collect_garbage(store, grace=NOW)
    assert repo.load_artifact("model") == TUNED


def test_a_pack_with_a_damaged_live_chunk_is_left_whole(location: Location) -> None:
    store, base_packs = _setup(location)
    index = PackIndex(store.storage)
    index.refresh()
    shared = next(
        loc
        for chunk in store.recipe_chunks(store.put(TUNED)) or []
        if (loc := index.get(chunk)) is not None and loc.pack in base_packs
    )
    path = pack_path(shared.pack)
    data = bytearray(store.storage.read_bytes(path))
    data[shared.offset + shared.length // 2] ^= 0xFF
    store.storage.delete(path)
    store.storage.write_new(path, (bytes(data),))
    report = collect_garbage(store, grace=NOW)
    assert shared.pack not in report.repacked_packs
    assert shared.pack not in report.condemned_packs
    assert shared.pack in _packs(store)
