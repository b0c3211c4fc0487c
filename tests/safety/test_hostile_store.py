"""Damaged and hostile store files: nothing unverified is returned, nothing unbounded allocated."""

from __future__ import annotations

import os
import random
import struct

import pytest

from scribestore import CorruptObjectError, IntegrityError, ObjectStore, UnsupportedFormatError
from scribestore.store.chunks import MAX_CHUNK
from scribestore.store.layout import (
    MERGED_EXT,
    PACK_DIR,
    merged_index_path,
    object_path,
    pack_path,
    parse_pack_name,
)
from scribestore.store.pack_index import PackIndex
from support.helpers import PEAK_RSS, run_child, spoil_pack_table
from support.locations import Location
from support.store_util import repo_at

TEXT = b"".join(b"line %d of a compressible text\n" % i for i in range(2000))


def _store(loc: Location) -> ObjectStore:
    return ObjectStore(loc.join("objects"), **loc.options)


def _rewrite(store: ObjectStore, path: str, data: bytes) -> None:
    store.storage.delete(path)
    store.storage.write_new(path, [data])


def test_short_read_of_a_damaged_loose_object_raises(location: Location) -> None:
    store = _store(location)
    digest = store.put(TEXT)
    path = object_path(digest)
    blob = bytearray(store.storage.read_bytes(path))
    assert blob[5] == 1  # zstd: the damage near the end decodes late in the stream
    blob[-20] ^= 0x40
    _rewrite(store, path, bytes(blob))
    with store.open(digest) as reader, pytest.raises(IntegrityError):
        reader.read(10)


def test_short_read_of_a_damaged_chunk_raises(location: Location) -> None:
    store = _store(location)
    content = random.Random(7).randbytes(5 << 20)
    digest = store.put(content)
    first = store.recipe_chunks(digest)[0]
    index = PackIndex(store.storage)
    index.refresh()
    loc = index.get(first)
    pack = bytearray(store.storage.read_bytes(pack_path(loc.pack)))
    pack[loc.offset + 1 + 1000] ^= 0x01  # inside the first chunk's raw blob
    _rewrite(store, pack_path(loc.pack), bytes(pack))
    with store.open(digest) as reader, pytest.raises(IntegrityError):
        reader.read(4096)


def test_header_size_is_checked_against_the_manifest(location: Location) -> None:
    repo = repo_at(location, mode="w")
    repo.log_artifact("small", b"eight by", "bytes")
    repo.save()
    store = _store(location)
    digest = repo.get_artifact_metadata("small")["hash"]
    path = object_path(digest)
    blob = bytearray(store.storage.read_bytes(path))
    struct.pack_into("<Q", blob, 8, 512 << 20)  # announces 512 MiB (chunked codec: allowed)
    blob[5] = 2
    _rewrite(store, path, bytes(blob))
    with pytest.raises(IntegrityError, match="manifest 8"):
        repo_at(location, mode="r").load_artifact("small")


_BOMB_CHILD = (
    PEAK_RSS
    + """
import sys, json
from scribestore import IntegrityError, Repository
repo = Repository(json.loads(sys.argv[1]), mode="r")
before = peak_rss()
try:
    repo.load_artifact("small")
except IntegrityError as exc:
    print(json.dumps({"grew_kib": peak_rss() - before, "error": str(exc)[:200]}))
else:
    print(json.dumps({"grew_kib": peak_rss() - before, "error": None}))
"""
)


@pytest.mark.parametrize("announced", ["header", "frame"])
def test_small_artifact_whose_object_inflates_to_512_mib_stays_bounded(
    tmp_path, announced: str
) -> None:
    """An 8-byte artifact whose object is a zstd frame of 512 MiB: refused in bounded memory."""
    import json

    import zstandard

    from scribestore import Repository

    repo = Repository(tmp_path / "repository.json", mode="w")
    repo.log_artifact("small", b"eight by", "bytes")
    repo.save()
    digest = repo.get_artifact_metadata("small")["hash"]
    bomb_size = 512 << 20
    compressor = zstandard.ZstdCompressor().compressobj(size=bomb_size)
    block = bytes(1 << 20)
    frame = b"".join(compressor.compress(block) for _ in range(bomb_size >> 20))
    frame += compressor.flush()
    # The header says 512 MiB (disagreeing with the manifest) or 8 bytes (the
    # frame then holds far more than the header says).
    header = (
        b"SSOB" + bytes((1, 1, 0, 0)) + struct.pack("<Q", bomb_size if announced == "header" else 8)
    )
    path = tmp_path / "objects" / object_path(digest)
    path.unlink()
    path.write_bytes(header + frame)
    result = json.loads(run_child(_BOMB_CHILD, str(tmp_path / "repository.json")))
    assert result["error"] is not None, result
    assert result["grew_kib"] < 64 << 10, result  # far below the 512 MiB announced


@pytest.mark.parametrize("size", [2**40, 2**63 - 1, 5 << 20])
def test_loose_header_announcing_a_huge_size_allocates_nothing(
    location: Location, size: int
) -> None:
    store = _store(location)
    digest = store.put(TEXT)
    path = object_path(digest)
    blob = bytearray(store.storage.read_bytes(path))
    struct.pack_into("<Q", blob, 8, size)
    _rewrite(store, path, bytes(blob))
    with pytest.raises(IntegrityError):
        store.get(digest)


@pytest.mark.parametrize("chunk", [2**40, 2**63, 0, MAX_CHUNK + 1])
def test_recipe_with_an_impossible_chunk_size_is_corrupt(location: Location, chunk: int) -> None:
    store = _store(location)
    content = random.Random(3).randbytes(5 << 20)
    digest = store.put(content)
    path = object_path(digest)
    blob = bytearray(store.storage.read_bytes(path))
    struct.pack_into("<Q", blob, 8, chunk)  # header and recipe agree on the crafted size
    blob = blob[:16] + blob[16:48] + struct.pack("<Q", chunk)  # one entry: digest, size
    _rewrite(store, path, bytes(blob))
    with pytest.raises(CorruptObjectError):
        store.get(digest)
    with pytest.raises(CorruptObjectError, match="bad recipe"):
        store.recipe_chunks(digest)
    with pytest.raises(CorruptObjectError, match="bad recipe"):
        store.missing_chunks(digest)
    assert store.put(content) == digest  # the damaged copy is replaced, not trusted
    assert store.get(digest) == content


@pytest.mark.parametrize("version", [0, 3, 5, 129])
def test_flipped_version_byte_is_damage(location: Location, version: int) -> None:
    store = _store(location)
    digest = store.put(TEXT)
    path = object_path(digest)
    blob = bytearray(store.storage.read_bytes(path))
    blob[4] = version
    _rewrite(store, path, bytes(blob))
    with pytest.raises(CorruptObjectError, match="damaged header"):
        store.get(digest)


def test_a_newer_version_is_unsupported(location: Location) -> None:
    store = _store(location)
    digest = store.put(TEXT)
    path = object_path(digest)
    blob = bytearray(store.storage.read_bytes(path))
    blob[4] = 6
    _rewrite(store, path, bytes(blob))
    with pytest.raises(UnsupportedFormatError):
        store.get(digest)


@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "dir"])
def test_special_files_planted_as_objects_are_corrupt(tmp_path, kind: str) -> None:
    store = ObjectStore(tmp_path / "objects")
    digest = store.put(TEXT)
    full = store.storage.local_path(object_path(digest))  # type: ignore[attr-defined]
    os.unlink(full)
    if kind == "fifo":
        os.mkfifo(full)
    elif kind == "dev-zero":
        os.symlink("/dev/zero", full)
    else:
        os.mkdir(full)
    with pytest.raises(CorruptObjectError, match="not a regular file"):
        store.get(digest)


def test_logging_again_repairs_a_damaged_loose_object(location: Location) -> None:
    store = _store(location)
    digest = store.put(TEXT)
    path = object_path(digest)
    blob = bytearray(store.storage.read_bytes(path))
    blob[-20] ^= 0x40
    _rewrite(store, path, bytes(blob))
    assert store.put(TEXT) == digest
    assert store.get(digest) == TEXT


def _two_packed(store: ObjectStore) -> tuple[bytes, bytes, str, str, str]:
    first = random.Random(1).randbytes(5 << 20)
    second = random.Random(2).randbytes(5 << 20)
    d1, d2 = store.put(first), store.put(second)
    index = PackIndex(store.storage)
    index.refresh()
    location = index.get(store.recipe_chunks(d1)[0])
    assert location is not None
    return first, second, d1, d2, location.pack


@pytest.mark.parametrize("damage", ["truncate", "append", "flip", "fifo"])
def test_damaged_index_alone_costs_nothing_and_is_rebuilt(location: Location, damage: str) -> None:
    from scribestore.ops.fsck import check_store, repair_store

    store = _store(location)
    first, second, d1, d2, damaged = _two_packed(store)
    idx = f"packs/{damaged}.idx"
    good = store.storage.read_bytes(idx)
    if damage == "fifo":
        if location.backend != "local":
            pytest.skip("FIFOs exist on local disk only")
        store.storage.delete(idx)
        os.mkfifo(os.path.join(location.url, "objects", idx))
    else:
        spoiled = {
            "truncate": good[:-7],  # as by a power cut
            "append": good + b"\0" * 52,
            "flip": good[:60] + bytes((good[60] ^ 0x10,)) + good[61:],
        }[damage]
        _rewrite(store, idx, spoiled)
    fresh = _store(location)
    assert fresh.get(d1) == first and fresh.get(d2) == second
    problems = check_store(_store(location)).problems
    assert [p.path for p in problems if "--repair" in p.message] == [idx]
    assert len(problems) == (2 if damage == "fifo" else 1)  # a FIFO is also a special file
    report = repair_store(_store(location))
    assert report.rebuilt_indexes == (damaged,) and report.damaged_indexes == ()
    assert store.storage.read_bytes(idx) == good
    assert check_store(_store(location)).ok


def test_index_and_pack_table_damaged_cost_only_their_own_chunks(location: Location) -> None:
    from scribestore.ops.fsck import repair_store

    store = _store(location)
    first, second, d1, d2, damaged = _two_packed(store)
    idx = f"packs/{damaged}.idx"
    _rewrite(store, idx, store.storage.read_bytes(idx)[:-7])
    spoil_pack_table(store.storage, damaged)
    for found in filter(None, map(parse_pack_name, store.storage.list(PACK_DIR))):
        if found.kind == MERGED_EXT:  # derived data, but the last copy of the entries
            store.storage.delete(merged_index_path(found.pack_id))
    fresh = _store(location)
    assert fresh.get(d2) == second  # intact pack: still loads
    with pytest.raises(CorruptObjectError, match=damaged):
        fresh.get(d1)
    assert repair_store(_store(location)).damaged_indexes == (damaged,)
    # Logging the content again stores its chunks anew, beside the damaged pack.
    assert fresh.put(first) == d1
    assert _store(location).get(d1) == first


def test_fifo_planted_as_a_pack_index_hangs_nothing(tmp_path) -> None:
    store = ObjectStore(tmp_path / "objects")
    content = random.Random(5).randbytes(5 << 20)
    digest = store.put(content)
    os.mkfifo(tmp_path / "objects" / "packs" / f"{'4' * 32}.idx")
    assert ObjectStore(tmp_path / "objects").get(digest) == content


def test_gc_skips_a_fifo_planted_as_an_index(tmp_path) -> None:
    import datetime as dt

    from scribestore.ops.gc import collect_garbage

    store = ObjectStore(tmp_path / "objects")
    store.put(random.Random(6).randbytes(5 << 20))
    os.mkfifo(tmp_path / "objects" / "packs" / f"{'5' * 32}.idx")
    report = collect_garbage(store, grace=dt.timedelta(0))
    assert "5" * 32 in report.skipped_packs
