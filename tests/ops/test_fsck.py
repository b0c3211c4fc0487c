"""The store-level check, on every backend."""

from __future__ import annotations

import random

from scribestore import ObjectStore
from scribestore.ops.fsck import check_store
from scribestore.store.layout import object_path
from support.locations import Location


def store_with_data(loc: Location) -> tuple[ObjectStore, str, str]:
    store = ObjectStore(loc.join("objects"), **loc.options)
    loose = store.put(b"small object" * 100)
    chunked = store.put(random.Random(9).randbytes(6 << 20))
    return store, loose, chunked


def test_clean_store_is_ok(location: Location) -> None:
    store, _, _ = store_with_data(location)
    report = check_store(store)
    assert report.ok and report.objects_checked == 2
    assert report.packs_checked == 1 and report.chunks_checked > 50


def test_damaged_chunk_and_object_are_reported(location: Location) -> None:
    store, loose, chunked = store_with_data(location)
    [pack] = [p for p in store.storage.list("packs") if p.endswith(".pack")]
    blob = bytearray(store.storage.read_bytes(pack))
    blob[len(blob) // 3] ^= 1
    store.storage.delete(pack)
    store.storage.write_new(pack, [bytes(blob)])
    raw = bytearray(store.storage.read_bytes(object_path(loose)))
    raw[-1] ^= 1
    store.storage.write_atomic(object_path(loose), bytes(raw))
    report = check_store(ObjectStore(location.join("objects"), **location.options))
    kinds = {(p.kind, p.digest) for p in report.problems}
    assert ("corrupt", loose) in kinds
    assert ("corrupt", chunked) in kinds
    assert any(p.path == pack and p.kind == "corrupt" for p in report.problems)


def test_missing_pack_is_reported(location: Location) -> None:
    store, _, chunked = store_with_data(location)
    [pack] = [p for p in store.storage.list("packs") if p.endswith(".pack")]
    store.storage.delete(pack)
    report = check_store(ObjectStore(location.join("objects"), **location.options))
    assert any(p.kind == "missing" and p.path == pack for p in report.problems)
    assert any(p.digest == chunked for p in report.problems)


def test_pack_of_a_newer_format_is_unsupported_not_corrupt(location: Location) -> None:
    from scribestore.store.layout import index_path
    from scribestore.store.packs import PACK_FORMAT_VERSION

    store, _, _ = store_with_data(location)
    [index] = [p for p in store.storage.list("packs") if p.endswith(".idx")]
    data = bytearray(store.storage.read_bytes(index))
    data[4] = PACK_FORMAT_VERSION + 1
    newer = index_path("e" * 32)
    store.storage.write_new(newer, [bytes(data)])
    report = check_store(ObjectStore(location.join("objects"), **location.options))
    assert any(p.kind == "unsupported" and p.path == newer for p in report.problems)
    assert not any(p.kind == "corrupt" for p in report.problems)


def test_a_file_under_packs_with_a_foreign_name_is_reported(tmp_path) -> None:
    store = ObjectStore(tmp_path / "objects")
    store.put(bytes(range(256)) * 40000)  # chunked: packs exist
    index = next((tmp_path / "objects" / "packs").glob("*.idx"))
    index.rename(index.with_name(index.name.upper().replace(".IDX", ".idx")))
    report = check_store(store)
    assert any(
        p.kind == "corrupt" and "not the name of a pack" in p.message for p in report.problems
    )
    (tmp_path / "objects" / "packs" / ".tmp-123").write_bytes(b"in flight")
    report = check_store(store)
    assert not any(".tmp-" in p.path for p in report.problems)
