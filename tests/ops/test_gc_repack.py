"""gc repacks mostly dead packs: live chunks copied, verified, the old pack freed."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import random
from pathlib import Path

import pytest

from scribestore import ObjectStore, Repository
from scribestore.ops.gc import collect_garbage
from scribestore.ops.gc.sweep import REPACK_DEAD
from scribestore.store import packs as packs_module
from scribestore.store.layout import (
    MERGED_EXT,
    PACK_DIR,
    merged_index_path,
    pack_path,
    parse_pack_name,
)
from scribestore.store.pack_index import PackIndex
from support.locations import Location

NOW = dt.timedelta(0)
BASE = random.Random(7).randbytes(12 << 20)
# Shares its first 2 MiB with BASE: the only live part of BASE's packs.
TUNED = BASE[: 2 << 20] + random.Random(8).randbytes(3 << 20)


def _kind(store: ObjectStore, kind: str) -> set[str]:
    found = (parse_pack_name(n) for n in store.storage.list(PACK_DIR))
    return {f.pack_id for f in found if f is not None and f.kind == kind}


def _packs(store: ObjectStore) -> set[str]:
    return _kind(store, "pack")


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


def test_a_copy_from_a_reader_holding_the_old_index_finds_the_moved_chunks(
    tmp_path: Path,
) -> None:
    root = tmp_path / "src"
    location = Location("local", str(root))
    _setup(location)
    digest = ObjectStore(str(root / "objects")).put(TUNED)
    source = ObjectStore(str(root / "objects"))  # long-lived, as a sync process is
    assert source.get(digest) == TUNED
    for _ in range(2):  # repack and condemn, then delete
        collect_garbage(ObjectStore(str(root / "objects")), grace=NOW)
    target = ObjectStore(str(tmp_path / "dst" / "objects"))
    source.copy_to(target, digest)
    assert target.get(digest) == TUNED


def test_without_a_merged_index_the_live_copy_is_preferred(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The per-pack part of the index, too, prefers a pack gc has not condemned."""
    counter = itertools.count()
    store = ObjectStore(str(tmp_path / "objects"))
    with monkeypatch.context() as m:  # BASE's pack gets the smallest id: it is read first
        m.setattr(packs_module.secrets, "token_hex", lambda n: f"{next(counter):032x}")
        store.put(BASE)
    repo = Repository(str(tmp_path / "repository.json"))
    repo.log_artifact("model", TUNED, "bytes")
    repo.save()
    (old,) = collect_garbage(store, grace=NOW).repacked_packs
    for merged in _kind(store, MERGED_EXT):
        store.storage.delete(merged_index_path(merged))
    index = PackIndex(store.storage)
    index.refresh()
    shared = store.recipe_chunks(store.put(TUNED)) or []
    assert not [d for d in shared if (loc := index.get(d)) is not None and loc.pack == old]
    assert all(index.reusable(shared))


def test_gc_leaves_a_mostly_dead_pack_it_cannot_read(tmp_path: Path) -> None:
    location = Location("local", str(tmp_path))
    store, base_packs = _setup(location)
    (base_pack,) = base_packs
    real = tmp_path / "objects" / pack_path(base_pack)
    moved = tmp_path / "elsewhere.pack"
    os.replace(real, moved)
    os.symlink(moved, real)
    report = collect_garbage(store, grace=NOW)
    assert base_pack not in report.repacked_packs
    assert base_pack not in report.condemned_packs
