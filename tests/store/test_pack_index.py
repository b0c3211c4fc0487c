"""Locating chunks through the merged index and the tail, on every backend (FORMAT 3.6)."""

from __future__ import annotations

import datetime as dt
import os
import random
import threading
from pathlib import Path

import pytest

from scribestore import ObjectStore, Repository
from scribestore.exception import IntegrityError
from scribestore.ops.fsck import check_store, repair_store
from scribestore.ops.gc import collect_garbage
from scribestore.store import pack_index
from scribestore.store.layout import (
    MERGED_EXT,
    PACK_DIR,
    merged_index_path,
    pack_path,
    parse_pack_name,
)
from scribestore.store.midx import MergedIndex, digest_array, encode_merged, new_merged_id
from scribestore.store.pack_index import PackIndex
from scribestore.store.packs import ChunkLocation, PackTable, read_pack_table, rewrite_index
from support.counting import count_reads
from support.locations import Location

NOW = dt.timedelta(0)


def _content(n: int) -> bytes:
    return random.Random(n).randbytes(5 << 20)  # chunked: one pack of its own


def _names(store: ObjectStore, kind: str) -> list[str]:
    found = (parse_pack_name(n) for n in store.storage.list(PACK_DIR))
    return sorted(f.pack_id for f in found if f is not None and f.kind == kind)


def _fresh_index(store: ObjectStore) -> PackIndex:
    index = PackIndex(store.storage)
    index.refresh()
    return index


def _shape(store: ObjectStore) -> tuple[int, int, int, int]:
    """Merged index files, levels a fresh reader uses, packs they cover, tail."""
    index = _fresh_index(store)
    return len(_names(store, MERGED_EXT)), len(index.levels), len(index.covered), index.tail


def test_writers_keep_a_base_and_a_delta(
    location: Location, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A delta once the tail holds 2 packs; a new base once the delta holds MERGE_AT."""
    monkeypatch.setattr(pack_index, "MERGE_AT", 3)
    store = ObjectStore(location.join("objects"), **location.options)
    shapes, digests = [], []
    for n in range(6):
        digests.append(store.put(_content(n)))
        shapes.append(_shape(store))
    assert shapes == [
        (0, 0, 0, 1),
        (1, 1, 2, 0),  # the first base
        (1, 1, 2, 1),
        (2, 2, 4, 0),  # a delta over packs 3 and 4
        (2, 2, 4, 1),
        (1, 1, 6, 0),  # a new base; the old one and the delta deleted
    ]
    reader = ObjectStore(location.join("objects"), **location.options)
    for n, digest in enumerate(digests):
        assert reader.get(digest) == _content(n)


def _publish_merged(store: ObjectStore, packs: list[str], merged_id: str) -> None:
    tables = {p: (t.total, t.entries) for p in packs for t in [read_pack_table(store.storage, p)]}
    store.storage.write_new(merged_index_path(merged_id), (encode_merged(tables),))


def test_deltas_from_racing_writers_are_all_used_then_merged(location: Location) -> None:
    """Two writers each wrote a delta over the same base: readers use all
    three, and the next writer due to merge writes one base over them."""
    store = ObjectStore(location.join("objects"), **location.options)
    digests = [store.put(_content(n)) for n in range(3)]
    store.merge_indexes()
    packs = _names(store, "idx")
    digests += [store.put(_content(n)) for n in (3, 4)]
    new = sorted(set(_names(store, "idx")) - set(packs))
    for name in _names(store, MERGED_EXT)[1:]:
        store.storage.delete(merged_index_path(name))  # the writer's own delta: raced away
    _publish_merged(store, new[:1], new_merged_id())
    _publish_merged(store, new[1:], new_merged_id())
    with count_reads(store.storage) as reads:
        index = _fresh_index(store)
    assert len(index.levels) == 3 and index.tail == 0
    assert not [p for p in reads.paths if p.endswith(".idx")]
    reader = ObjectStore(location.join("objects"), **location.options)
    for n, digest in enumerate(digests):
        assert reader.get(digest) == _content(n)
    digests += [reader.put(_content(n)) for n in (5, 6)]
    assert _shape(store) == (1, 1, 7, 0)


def test_an_older_merged_index_is_not_read_once_the_newest_covers_all(location: Location) -> None:
    store = ObjectStore(location.join("objects"), **location.options)
    digest = store.put(_content(0))
    newest = store.merge_indexes()
    assert newest is not None
    older = f"{1:016x}{'0' * 16}"  # left by a writer that crashed before deleting it
    store.storage.write_new(merged_index_path(older), (b"never read",))
    with count_reads(store.storage) as reads:
        index = _fresh_index(store)
        assert index.levels == (newest,)
        assert ObjectStore(location.join("objects"), **location.options).get(digest) == _content(0)
    assert merged_index_path(older) not in reads.paths and not index.unusable_merged


def test_a_store_with_a_merged_index_reads_no_pack_index_to_load(location: Location) -> None:
    store = ObjectStore(location.join("objects"), **location.options)
    digests = [store.put(_content(n)) for n in range(3)]
    assert store.merge_indexes() is not None
    reader = ObjectStore(location.join("objects"), **location.options)
    with count_reads(reader.storage) as reads:
        for n, digest in enumerate(digests):
            assert reader.get(digest) == _content(n)
    assert not [p for p in reads.paths if p.endswith(".idx")]
    assert sum(p.endswith(".midx") for p in reads.paths) == 1


def test_a_damaged_merged_index_costs_only_time(location: Location) -> None:
    store = ObjectStore(location.join("objects"), **location.options)
    digests = [store.put(_content(n)) for n in range(2)]
    merged_id = store.merge_indexes()
    assert merged_id is not None
    path = merged_index_path(merged_id)
    data = bytearray(store.storage.read_bytes(path))
    data[len(data) // 2] ^= 0xFF
    store.storage.delete(path)
    store.storage.write_new(path, (bytes(data),))
    index = _fresh_index(store)
    assert merged_id in index.unusable_merged and index.merged_id is None
    reader = ObjectStore(location.join("objects"), **location.options)
    assert [reader.get(d) for d in digests] == [_content(0), _content(1)]
    problems = check_store(store).problems
    assert [p.path for p in problems] == [path]
    assert "derived data" in problems[0].message
    repaired = repair_store(store)
    assert repaired.replaced_merged_indexes == (merged_id,)
    assert check_store(store).ok
    assert _fresh_index(store).merged_id not in (None, merged_id)


def test_entries_of_deleted_packs_are_never_used(location: Location) -> None:
    """gc deletes a merged pack: its entries count for nothing, the others still do."""
    repo = Repository(location.join("repository.json"), **location.options)
    repo.log_artifact("kept", _content(0), "bytes")
    repo.save()
    store = ObjectStore(location.join("objects"), **location.options)
    dropped = store.put(_content(1))  # referenced by no manifest
    old = store.merge_indexes()
    before = _fresh_index(store)
    for _ in range(2):  # condemn, then delete
        collect_garbage(store, grace=NOW)
    assert not store.has(dropped)
    after = _fresh_index(store)
    assert after.merged_id != old  # gc wrote one over the packs left...
    assert _names(store, MERGED_EXT) == [after.merged_id]  # ...and deleted the older
    gone = set(before.covered) - set(after.covered)
    assert len(gone) == 1
    # An index loaded before the deletion forgets the pack at its next refresh.
    before.refresh()
    assert not {loc.pack for _, loc in before.items()} & gone
    assert Repository(location.join("repository.json"), mode="r", **location.options).load_artifact(
        "kept"
    ) == _content(0)


def test_a_condemned_pack_is_read_but_never_reused(location: Location) -> None:
    store = ObjectStore(location.join("objects"), **location.options)
    digest = store.put(_content(0))
    store.merge_indexes()
    chunks = store.recipe_chunks(digest)
    assert chunks
    (pack,) = _names(store, "idx")
    store.storage.write_new(f"{PACK_DIR}/{pack}.condemned", (b"",))
    index = _fresh_index(store)
    assert index.get(chunks[0]) is not None  # readable: a load still works
    assert chunks[0] not in index  # not deduplicated against
    assert index.reusable(chunks[:3]) == [False] * 3
    assert index.missing(chunks) == []


def test_batched_lookups_agree_with_single_ones(location: Location) -> None:
    store = ObjectStore(location.join("objects"), **location.options)
    first = store.put(_content(0))
    store.merge_indexes()
    second = store.put(_content(1))  # in the tail
    index = _fresh_index(store)
    wanted = (store.recipe_chunks(first) or []) + (store.recipe_chunks(second) or [])
    unknown = [bytes([n]) * 32 for n in range(3)]
    asked = wanted + unknown
    assert index.locate(asked) == [index.get(d) for d in asked]
    assert index.missing(asked) == unknown
    assert index.missing(digest_array(asked + unknown[::-1])) == unknown  # distinct, in order
    assert all(index.reusable(wanted))


def test_a_load_lists_the_packs_once(location: Location, monkeypatch: pytest.MonkeyPatch) -> None:
    """A fresh store locates every chunk of a recipe with one listing, not one per chunk."""
    store = ObjectStore(location.join("objects"), **location.options)
    digest = store.put(_content(0))
    reader = ObjectStore(location.join("objects"), **location.options)
    listings: list[str] = []
    real = reader.storage.list

    def counted(*args: object) -> object:
        listings.append(str(args))
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(reader.storage, "list", counted)
    assert reader.get(digest) == _content(0)
    assert len(listings) == 1


def test_a_merged_index_that_is_not_a_regular_file_costs_only_time(tmp_path: Path) -> None:
    root = tmp_path / "objects"
    store = ObjectStore(str(root))
    digest = store.put(_content(0))
    good = store.merge_indexes()
    assert good is not None
    link = root / merged_index_path(new_merged_id())  # newer than the real one
    os.symlink(root / merged_index_path(good), link)
    assert ObjectStore(str(root)).get(digest) == _content(0)
    problems = check_store(ObjectStore(str(root))).problems
    # Reported as a special file and as an unusable merged index.
    assert {p.path for p in problems} == {str(link.relative_to(root))}
    assert any("not a regular file" in p.message and "derived data" in p.message for p in problems)


def test_an_index_entry_of_no_bytes_is_damage(tmp_path: Path) -> None:
    """Refused when the index is read (the pack's own table is used), so no
    merged index is ever written from it."""
    store = ObjectStore(str(tmp_path / "objects"))
    digest = store.put(_content(0))
    (pack,) = _names(store, "idx")
    table = read_pack_table(store.storage, pack)
    entries = [*table.entries, (b"\x07" * 32, ChunkLocation(pack, 8, 0, 0))]
    spoiled = PackTable(table.total, entries, None)
    rewrite_index(store.storage, pack, spoiled)
    assert read_pack_table(store.storage, pack).damaged_index is not None
    assert ObjectStore(str(tmp_path / "objects")).get(digest) == _content(0)
    assert store.merge_indexes() is not None
    collect_garbage(store, grace=NOW)
    assert check_store(store).problems[0].path.endswith(".idx")


def test_a_refresh_during_a_lookup_leaves_no_stale_live_packs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lookup that began before gc's deletion was seen never makes a later
    one report the deleted pack's chunks as present."""
    store = ObjectStore(str(tmp_path / "objects"))
    digests = [store.put(_content(n)) for n in range(3)]
    store.merge_indexes()
    index = _fresh_index(store)
    chunk = store.recipe_chunks(digests[0])[0]
    location = index.get(chunk)
    assert location is not None and index.levels
    for path in (f"{PACK_DIR}/{location.pack}.idx", f"{PACK_DIR}/{location.pack}.pack"):
        store.storage.delete(path)  # as gc would, after the grace period
    real = MergedIndex.pack_mask
    computed, resume = threading.Event(), threading.Event()

    def slow(self: MergedIndex, packs: object) -> object:
        mask = real(self, packs)  # type: ignore[arg-type]
        computed.set()
        resume.wait(10)
        return mask

    monkeypatch.setattr(MergedIndex, "pack_mask", slow)
    other = store.recipe_chunks(digests[1])[:1]
    lookup = threading.Thread(target=index.missing, args=(other,))
    lookup.start()
    assert computed.wait(10)
    index.refresh()  # sees the deletion while the lookup holds the old live packs
    resume.set()
    lookup.join()
    monkeypatch.setattr(MergedIndex, "pack_mask", real)
    assert index.missing([chunk]) == [chunk]
    assert index.locate([chunk]) == [None]


def test_parsed_merged_indexes_are_dropped_once_replaced(tmp_path: Path) -> None:
    store = ObjectStore(str(tmp_path / "objects"))
    store.put(_content(0))
    first = store.merge_indexes()
    _fresh_index(store)
    store.put(_content(1))
    second = store.merge_indexes()
    assert first is not None and second not in (None, first)
    _fresh_index(store)
    # The replaced one is not kept in memory.
    assert pack_index.parsed_merged(store.storage.url) == (second,)


def _lying_merged_index(store: ObjectStore) -> tuple[str, str]:
    """Replace the merged index with one that passes its checksum but puts every
    chunk of the first pack at its neighbour's location: (its id, that pack)."""
    packs = _names(store, "idx")
    tables: dict[str, tuple[int, list[tuple[bytes, ChunkLocation]]]] = {}
    for pack_id in packs:
        table = read_pack_table(store.storage, pack_id)
        tables[pack_id] = (table.total, table.entries)
    total, entries = tables[packs[0]]
    locations = [loc for _, loc in entries]
    shifted = [(d, locations[(i + 1) % len(locations)]) for i, (d, _) in enumerate(entries)]
    tables[packs[0]] = (total, shifted)
    for name in _names(store, MERGED_EXT):
        store.storage.delete(merged_index_path(name))
    merged_id = new_merged_id()
    store.storage.write_new(merged_index_path(merged_id), (encode_merged(tables),))
    return merged_id, packs[0]


def test_a_merged_index_that_disagrees_with_a_pack_is_set_aside(location: Location) -> None:
    """A checksum-valid merged index that misplaces chunks costs time, not data:
    a read that fails where it points asks the pack's own index, and the
    merged index is used no more."""
    store = ObjectStore(location.join("objects"), **location.options)
    digests = [store.put(_content(n)) for n in range(2)]
    assert store.merge_indexes() is not None
    merged_id, pack = _lying_merged_index(store)
    reader = ObjectStore(location.join("objects"), **location.options)
    assert [reader.get(d) for d in digests] == [_content(0), _content(1)]
    with reader.open(digests[0]) as stream:
        stream.seek(3 << 20)
        assert stream.read(1000) == _content(0)[3 << 20 : (3 << 20) + 1000]
    restorer = ObjectStore(location.join("objects"), **location.options)
    copied = bytearray()
    with restorer.open(digests[0]) as stream:
        stream.copy_to(copied.extend)  # a restore's path, through a store of its own
    assert copied == _content(0)
    copier = ObjectStore(location.join("objects"), **location.options)
    target = ObjectStore(location.join("other"), **location.options)
    assert copier.copy_to(target, digests[0]) == len(_content(0))  # blobs copied as stored
    assert target.get(digests[0]) == _content(0)

    index = _fresh_index(store)
    own = dict(read_pack_table(store.storage, pack).entries)
    digest = next(iter(own))
    wrong = index.get(digest)
    assert wrong is not None and wrong != own[digest]
    other = next(d for d, loc in index.items() if loc.pack != pack)
    found = index.get(other)
    assert found is not None
    assert not index.confirm([(other, found)])  # agrees with its pack: damage
    assert index.confirm([(digest, wrong)])
    assert "own index has it at offset" in index.unusable_merged[merged_id]
    assert merged_id not in index.levels and index.get(digest) == own[digest]
    index.refresh()
    assert merged_id not in index.levels  # never adopted again

    problems = check_store(store).problems
    assert [p.path for p in problems] == [merged_index_path(merged_id)]
    assert repair_store(store).replaced_merged_indexes == (merged_id,)
    assert check_store(store).ok


def test_a_damaged_chunk_is_reported_though_a_merged_index_located_it(
    location: Location,
) -> None:
    store = ObjectStore(location.join("objects"), **location.options)
    digest = store.put(_content(0))
    assert store.merge_indexes() is not None
    index = _fresh_index(store)
    first = (store.recipe_chunks(digest) or [])[0]
    loc = index.get(first)
    assert loc is not None
    path = pack_path(loc.pack)
    data = bytearray(store.storage.read_bytes(path))
    data[loc.offset + loc.length // 2] ^= 0xFF
    store.storage.delete(path)
    store.storage.write_new(path, (bytes(data),))
    reader = ObjectStore(location.join("objects"), **location.options)
    with pytest.raises(IntegrityError, match=first.hex()):
        reader.get(digest)
    assert not index.confirm([(first, loc)]) and not index.unusable_merged
