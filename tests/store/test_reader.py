"""ObjectReader.copy_to: the whole content to a writer, checked whole."""

from __future__ import annotations

import random
from pathlib import Path, PurePosixPath

import pytest

from scribestore import (
    CorruptObjectError,
    IntegrityError,
    ObjectNotFoundError,
    ObjectStore,
    Repository,
)
from scribestore.artifacts.localfile import write_atomically
from scribestore.progress import ProgressReader
from scribestore.store.cache import ChunkCache
from scribestore.store.layout import PACK_DIR, object_path, pack_path
from scribestore.store.loose import LOOSE_LIMIT
from support.locations import Location

BIG = random.Random(5).randbytes(6 << 20)
OTHER = random.Random(6).randbytes(6 << 20)


def _store(location: Location) -> ObjectStore:
    return ObjectStore(location.join("objects"), **location.options)


def _packs(store: ObjectStore) -> list[str]:
    names = (PurePosixPath(name) for name in store.storage.list(PACK_DIR))
    return [name.stem for name in names if name.suffix == ".pack"]


def _copied(store: ObjectStore, digest: str) -> tuple[bytes, int]:
    got = bytearray()
    with store.open(digest) as reader:
        size = reader.copy_to(lambda view: got.extend(view))
        assert reader.verified
    return bytes(got), size


@pytest.mark.parametrize("size", [0, 100, LOOSE_LIMIT - 1, LOOSE_LIMIT + 1, 6 << 20])
def test_copy_to_passes_exactly_the_content(location: Location, size: int) -> None:
    store = _store(location)
    data = BIG[:size]
    digest = store.put(data)
    assert _copied(store, digest) == (data, size)


@pytest.mark.parametrize("size", [100, 6 << 20])
def test_copy_to_after_a_read_starts_again_from_the_start(location: Location, size: int) -> None:
    store = _store(location)
    digest = store.put(BIG[:size])
    got = bytearray()
    with store.open(digest) as reader:
        assert reader.read(50) == BIG[:50]
        assert reader.copy_to(lambda view: got.extend(view)) == size
        assert reader.verified
    assert got == BIG[:size]


def test_a_failed_copy_leaves_the_stream_at_the_start(location: Location) -> None:
    store = _store(location)
    digest = store.put(BIG)
    calls = []

    def write(view: memoryview) -> None:
        calls.append(len(view))
        if len(calls) == 2:
            raise OSError(28, "No space left on device")

    with store.open(digest) as reader:
        with pytest.raises(OSError, match="No space"):
            reader.copy_to(write)
        assert reader.tell() == 0 and not reader.verified
        assert reader.read() == BIG  # from offset 0, checked whole
        assert reader.verified


def test_another_objects_recipe_is_refused_after_the_copy(
    location: Location, tmp_path: Path
) -> None:
    """A recipe naming valid chunks of other content: every chunk is intact,
    only the whole-content check can tell."""
    store = _store(location)
    digest, other = store.put(BIG), store.put(OTHER)
    path = object_path(digest)
    store.storage.delete(path)
    store.storage.write_new(path, [store.storage.read_bytes(object_path(other))])
    with pytest.raises(IntegrityError), store.open(digest) as reader:
        reader.copy_to(lambda view: None)


def test_a_damaged_pack_fails_the_copy(location: Location) -> None:
    store = _store(location)
    digest = store.put(BIG)
    (path,) = [pack_path(pack) for pack in _packs(store)]
    blob = bytearray(store.storage.read_bytes(path))
    blob[len(blob) // 2] ^= 0xFF
    store.storage.delete(path)
    store.storage.write_new(path, [bytes(blob)])
    with pytest.raises(CorruptObjectError, match="pack"), store.open(digest) as reader:
        reader.copy_to(lambda view: None)  # the chunks are checked again to name the damage


def test_a_missing_pack_is_not_found(location: Location) -> None:
    store = _store(location)
    digest = store.put(BIG)
    for pack in _packs(store):
        store.storage.delete(pack_path(pack))
    with pytest.raises(ObjectNotFoundError), store.open(digest) as reader:
        reader.copy_to(lambda view: None)


def test_the_cache_gets_only_checked_chunks(tmp_path: Path) -> None:
    url = str(tmp_path / "objects")
    digest = ObjectStore(url).put(BIG)
    cache = ChunkCache(tmp_path / "cache")
    assert _copied(ObjectStore(url, cache=cache), digest) == (BIG, len(BIG))
    chunks = ObjectStore(url).recipe_chunks(digest) or []
    assert chunks and all(cache.has(c) for c in chunks)  # a second load reads nothing remote


def test_a_restore_of_a_refused_recipe_leaves_the_destination_alone(tmp_path: Path) -> None:
    repo = Repository(tmp_path / "repository.json", mode="w")
    source = tmp_path / "model.bin"
    source.write_bytes(BIG)
    repo.log_artifact("model", source, "file")
    repo.save()
    store = ObjectStore(str(tmp_path / "objects"))
    digest = repo.get_artifact_metadata("model")["hash"]
    other = store.put(OTHER)
    store.storage.delete(object_path(digest))
    store.storage.write_new(object_path(digest), [store.storage.read_bytes(object_path(other))])
    dest = tmp_path / "out.bin"
    dest.write_bytes(b"keep me")
    with pytest.raises(IntegrityError):
        Repository(tmp_path / "repository.json", mode="r").load_artifact("model", dest=dest)
    assert dest.read_bytes() == b"keep me"
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".out.bin")) == []


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), ValueError("closed")])
def test_errors_of_the_writer_are_not_blamed_on_the_store(
    location: Location, error: Exception
) -> None:
    store = _store(location)
    digest = store.put(BIG)

    def write(view: memoryview) -> None:
        raise error

    with pytest.raises(type(error)) as caught, store.open(digest) as reader:
        reader.copy_to(write)
    assert caught.value is error


class _Counted:
    def __init__(self) -> None:
        self.total = 0

    def start(self, total: int | None, desc: str) -> None:
        pass

    def advance(self, n: int) -> None:
        self.total += n

    def close(self) -> None:
        pass


def test_a_wrapped_reader_is_read_through_its_wrapper(tmp_path: Path) -> None:
    """A wrapper that forwards attributes (as ProgressReader does) must still see every byte."""
    store = ObjectStore(str(tmp_path / "objects"))
    digest = store.put(BIG)
    progress = _Counted()
    target = tmp_path / "out.bin"
    with ProgressReader(store.open(digest), progress) as wrapped:
        write_atomically(str(target), wrapped)
    assert target.read_bytes() == BIG
    assert progress.total == len(BIG)
