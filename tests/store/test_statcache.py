"""The stat cache: re-storing an unchanged local file reads none of it."""

from __future__ import annotations

import os
import random
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from scribestore import ObjectStore
from scribestore.store import writer
from scribestore.store.chunks import CHUNK_THRESHOLD
from scribestore.store.layout import object_path
from scribestore.store.statcache import RACY_NS, StatCache, default_stat_cache
from support.clock import writer_clock_ahead

if TYPE_CHECKING:
    from collections.abc import Callable

SIZES = [1000, CHUNK_THRESHOLD + 12345]  # a loose object and a chunked one


@pytest.fixture
def age(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """``age(path, seconds=60)``: make ``path`` last modified ``seconds`` ago and
    run the writer's clock that far ahead, so its change time is that old too."""

    def aged(path: Path, seconds: float = 60) -> None:
        then = time.time_ns() - int(seconds * 1e9)
        os.utime(path, ns=(then, then))
        writer_clock_ahead(monkeypatch, seconds)

    return aged


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """The size of every file the writer read to store it, in order."""
    seen: list[int] = []
    large, prepared = writer.ObjectWriter._put_large, writer.ObjectWriter._put_prepared

    def reading_large(self: writer.ObjectWriter, source: object, *args: object) -> object:
        seen.append(source.size)  # type: ignore[attr-defined]
        return large(self, source, *args)  # type: ignore[arg-type]

    def reading_small(self: writer.ObjectWriter, src: object, *args: object) -> object:
        seen.append(src.size)  # type: ignore[attr-defined]
        return prepared(self, src, *args)  # type: ignore[arg-type]

    monkeypatch.setattr(writer.ObjectWriter, "_put_large", reading_large)
    monkeypatch.setattr(writer.ObjectWriter, "_put_prepared", reading_small)
    return seen


@pytest.mark.parametrize("size", SIZES)
def test_an_unchanged_file_is_not_read_again(
    tmp_path: Path, size: int, hashes: list[str], age: Callable[..., None]
) -> None:
    store = ObjectStore(tmp_path / "objects")
    path = tmp_path / "model.bin"
    path.write_bytes(random.Random(size).randbytes(size))
    age(path)
    digest = store.put(path)
    assert hashes == [size]
    assert store.put(path) == digest
    assert hashes == [size]  # the second put read nothing
    with pytest.MonkeyPatch.context() as m:
        m.setattr(writer, "FileWindows", None)  # chunking it again would fail
        assert ObjectStore(tmp_path / "objects").put(path) == digest
    assert store.get(digest) == path.read_bytes()


@pytest.mark.parametrize("size", SIZES)
def test_a_changed_file_is_hashed_again(
    tmp_path: Path, size: int, hashes: list[str], age: Callable[..., None]
) -> None:
    store = ObjectStore(tmp_path / "objects")
    path = tmp_path / "model.bin"
    path.write_bytes(b"a" * size)
    age(path)
    first = store.put(path)
    path.write_bytes(b"b" * size)  # same size
    age(path)  # and the same kind of old modification time: its change time differs
    second = store.put(path)
    assert second != first and store.get(second) == b"b" * size
    assert len(hashes) == 2


def test_a_file_modified_as_it_was_hashed_is_not_trusted(
    tmp_path: Path, hashes: list[str], age: Callable[..., None]
) -> None:
    store = ObjectStore(tmp_path / "objects")
    path = tmp_path / "fresh.bin"
    path.write_bytes(b"just written")  # modified now: a racy record
    store.put(path)
    store.put(path)
    assert len(hashes) == 2
    age(path, seconds=RACY_NS / 1e9 + 5)
    store.put(path)  # hashed again, now safely old: recorded as trusted
    store.put(path)
    assert len(hashes) == 3


def test_the_object_must_still_be_in_the_store(
    tmp_path: Path, hashes: list[str], age: Callable[..., None]
) -> None:
    store = ObjectStore(tmp_path / "objects")
    path = tmp_path / "model.bin"
    path.write_bytes(b"content" * 100)
    age(path)
    digest = store.put(path)
    (tmp_path / "objects" / object_path(digest)).unlink()
    assert store.put(path) == digest  # stored again, from the file
    assert store.get(digest) == b"content" * 100 and len(hashes) == 2
    other = ObjectStore(tmp_path / "elsewhere")
    assert other.put(path) == digest and other.get(digest) == b"content" * 100


def test_it_can_be_turned_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, hashes: list[str], age: Callable[..., None]
) -> None:
    monkeypatch.setenv("SCRIBESTORE_STAT_CACHE", "off")
    assert default_stat_cache() is None
    store = ObjectStore(tmp_path / "objects")
    path = tmp_path / "model.bin"
    path.write_bytes(b"content")
    age(path)
    store.put(path)
    store.put(path)
    assert len(hashes) == 2


def test_damaged_or_foreign_records_are_ignored(tmp_path: Path) -> None:
    cache = StatCache(tmp_path / "stat")
    path = tmp_path / "file.bin"
    path.write_bytes(b"x")
    st = os.stat(path)
    cache.record(str(path), st, "ab" * 32, st.st_ctime_ns + RACY_NS)
    assert cache.lookup(str(path), st) == "ab" * 32
    assert cache.lookup(os.path.relpath(path), st) == "ab" * 32  # one record per place
    for record in (tmp_path / "stat").rglob("*"):
        if record.is_file():
            record.write_bytes(b"{damaged")
    assert cache.lookup(str(path), st) is None
    unwritable = StatCache(path / "not-a-directory")
    unwritable.record(str(path), st, "ab" * 32, st.st_ctime_ns + RACY_NS)  # ignored, not raised
    assert unwritable.lookup(str(path), st) is None


@pytest.mark.parametrize("size", SIZES)
def test_a_symlink_retargeted_while_storing_never_misnames_a_file(
    tmp_path: Path, size: int, monkeypatch: pytest.MonkeyPatch, age: Callable[..., None]
) -> None:
    a, b, link = tmp_path / "a.bin", tmp_path / "b.bin", tmp_path / "model.bin"
    a.write_bytes(random.Random(1).randbytes(size))
    b.write_bytes(random.Random(2).randbytes(size))
    for path in (a, b):
        age(path)
    link.symlink_to(a)
    store = ObjectStore(tmp_path / "objects")
    real = writer.hash_bytes if size < CHUNK_THRESHOLD else writer.hash_chunk

    def flipping(*args: object) -> object:
        if link.resolve() == a:  # the path now names the other file
            link.unlink()
            link.symlink_to(b)
        return real(*args)  # type: ignore[arg-type]

    with monkeypatch.context() as m:
        m.setattr(writer, "hash_bytes" if size < CHUNK_THRESHOLD else "hash_chunk", flipping)
        digest = store.put(link)
    assert store.get(digest) == a.read_bytes()  # the file that was opened
    assert store.get(store.put(link)) == b.read_bytes()  # the link names b now
    link.unlink()
    link.symlink_to(a)
    assert store.get(store.put(link)) == a.read_bytes()


def test_a_relog_restores_chunks_the_store_lost(tmp_path: Path, age: Callable[..., None]) -> None:
    store = ObjectStore(tmp_path / "objects")
    path = tmp_path / "model.bin"
    path.write_bytes(random.Random(3).randbytes(CHUNK_THRESHOLD + 999))
    age(path)
    digest = store.put(path)
    for pack in (tmp_path / "objects" / "packs").rglob("*"):
        if pack.is_file():
            pack.unlink()
    fresh = ObjectStore(tmp_path / "objects")
    assert fresh.put(path) == digest
    assert fresh.get(digest) == path.read_bytes()


def test_a_record_is_not_trusted_while_the_change_time_is_recent(tmp_path: Path) -> None:
    """An old modification time alone proves nothing: ``cp -p``, ``rsync -t`` and
    ``tar x`` set it back, and where change times are coarse a rewrite in the same
    tick keeps every field of ``stat``. Both times must be safely older than the
    hashing, and the record must name a valid digest."""
    cache = StatCache(tmp_path / "stat")
    path = tmp_path / "file.bin"
    path.write_bytes(b"x")
    old = time.time_ns() - 3600 * 10**9
    os.utime(path, ns=(old, old))  # modified an hour ago, changed now
    st = os.stat(path)
    cache.record(str(path), st, "ab" * 32, st.st_mtime_ns + RACY_NS)
    assert cache.lookup(str(path), st) is None
    cache.record(str(path), st, "ab" * 32, st.st_ctime_ns + RACY_NS - 1)
    assert cache.lookup(str(path), st) is None
    cache.record(str(path), st, "ab" * 32, st.st_ctime_ns + RACY_NS)
    assert cache.lookup(str(path), st) == "ab" * 32
    for bad in ("../../../../etc/passwd", "A" * 64, "ab" * 31):
        cache.record(str(path), st, bad, st.st_ctime_ns + RACY_NS)
        assert cache.lookup(str(path), st) is None


def test_a_record_with_a_bad_digest_only_costs_a_hashing_pass(
    tmp_path: Path, hashes: list[str], age: Callable[..., None], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SCRIBESTORE_CACHE_DIR", str(tmp_path / "cache"))
    store = ObjectStore(tmp_path / "objects")
    path = tmp_path / "model.bin"
    path.write_bytes(b"content" * 100)
    age(path)
    digest = store.put(path)
    records = [r for r in (tmp_path / "cache" / "stat").rglob("*") if r.is_file()]
    assert len(records) == 1
    records[0].write_bytes(records[0].read_bytes().replace(digest.encode(), b"A" * 64))
    assert store.put(path) == digest
    assert len(hashes) == 2
