"""Seekable reads: a read at an offset fetches and verifies only the chunks that cover it."""

from __future__ import annotations

import io
import random

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scribestore import IntegrityError, ObjectStore
from scribestore.store.chunks import MAX_CHUNK
from scribestore.store.loose import LOOSE_LIMIT
from support.counting import count_reads
from support.locations import Location

_SIZE = 24 << 20


def weights(n_bytes: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(n_bytes // 4) * 0.02).astype("float32").tobytes()


@pytest.fixture(scope="module")
def big() -> bytes:
    return weights(_SIZE, seed=11)


@pytest.fixture(scope="module")
def stored(big: bytes, tmp_path_factory: pytest.TempPathFactory) -> tuple[ObjectStore, str]:
    store = ObjectStore(tmp_path_factory.mktemp("seek") / "objects")
    return store, store.put(big)


@settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    steps=st.lists(
        st.tuples(st.integers(0, _SIZE + 10), st.integers(0, 3 << 20)), min_size=1, max_size=6
    )
)
def test_reads_at_any_offset_return_the_content(
    stored: tuple[ObjectStore, str], big: bytes, steps: list[tuple[int, int]]
) -> None:
    store, digest = stored
    with store.open(digest) as reader:
        assert reader.seekable()
        for offset, length in steps:
            assert reader.seek(offset) == offset
            assert reader.read(length) == big[offset : offset + length]
            assert reader.tell() == offset + len(big[offset : offset + length])


def test_whence_and_negative_offsets(stored: tuple[ObjectStore, str], big: bytes) -> None:
    store, digest = stored
    with store.open(digest) as reader:
        assert reader.seek(-10, io.SEEK_END) == len(big) - 10
        assert reader.read() == big[-10:]
        reader.seek(100)
        assert reader.seek(50, io.SEEK_CUR) == 150
        assert reader.read(5) == big[150:155]
        with pytest.raises(ValueError, match="negative"):
            reader.seek(-1)
    with pytest.raises(ValueError, match="closed"):
        reader.seek(0)


def test_a_read_at_an_offset_fetches_only_its_chunks(location: Location) -> None:
    """On every backend (ranged reads on S3): three reads cost their chunks, not the object."""
    data = weights(12 << 20, seed=12)
    digest = ObjectStore(location.join("objects"), **location.options).put(data)
    fresh = ObjectStore(location.join("objects"), **location.options)
    size = len(data)
    with fresh.open(digest) as reader, count_reads(fresh.storage) as reads:
        assert reader.read(8) == data[:8]
        reader.seek(size // 2)
        assert reader.read(1000) == data[size // 2 : size // 2 + 1000]
        reader.seek(size - 3 * MAX_CHUNK)
        assert reader.read(2 * MAX_CHUNK) == data[size - 3 * MAX_CHUNK : size - MAX_CHUNK]
    # Each read costs the chunks that cover it: at most 2 + 2 + 3 of them.
    assert 0 < reads.pack_bytes <= 7 * MAX_CHUNK
    assert not reader.verified


def test_reading_in_order_still_streams_and_verifies_the_whole(
    stored: tuple[ObjectStore, str], big: bytes
) -> None:
    store, digest = stored
    with store.open(digest) as reader:
        reader.seek(1234)
        reader.read(10)
        reader.seek(0)  # starts the whole-content check again
        assert reader.read() == big
        assert reader.verified


def test_a_damaged_chunk_fails_only_the_reads_that_cover_it(tmp_path: object) -> None:
    location = Location("local", str(tmp_path))
    store = ObjectStore(location.join("objects"))
    data = random.Random(3).randbytes(12 << 20)
    digest = store.put(data)
    [pack] = [p for p in store.storage.list() if p.endswith(".pack")]
    blob = bytearray(store.storage.read_bytes(pack))
    blob[len(blob) // 2] ^= 0x01  # about the middle of the content: stored as is
    store.storage.delete(pack)
    store.storage.write_new(pack, [bytes(blob)])
    fresh = ObjectStore(location.join("objects"))
    middle = len(data) // 2
    with fresh.open(digest) as reader:
        assert reader.read(1 << 20) == data[: 1 << 20]
        reader.seek(middle - 4 * MAX_CHUNK)
        with pytest.raises(IntegrityError):
            reader.read(8 * MAX_CHUNK)
        reader.seek(len(data) - 100)
        assert reader.read() == data[-100:]


def test_small_objects_seek_after_a_whole_check(tmp_path: object) -> None:
    store = ObjectStore(f"{tmp_path}/objects")
    data = random.Random(4).randbytes(LOOSE_LIMIT // 2)
    digest = store.put(data)
    with store.open(digest) as reader:
        assert reader.seekable()
        reader.seek(777)
        assert reader.read(33) == data[777:810]
        reader.seek(0)
        assert reader.read() == data
        assert reader.verified


def test_a_read_past_the_end_is_empty(stored: tuple[ObjectStore, str]) -> None:
    store, digest = stored
    with store.open(digest) as reader:
        reader.seek(_SIZE + 100)
        assert reader.read(10) == b""
        assert reader.tell() == _SIZE + 100


def test_a_read_past_the_end_after_a_seek_returns_the_tail(
    stored: tuple[ObjectStore, str], big: bytes
) -> None:
    store, digest = stored
    for k, m in [(10, 5 << 20), (1, 2), (MAX_CHUNK + 3, 4 * MAX_CHUNK)]:
        with store.open(digest) as reader:
            reader.seek(len(big) - k)
            assert reader.read(m) == big[-k:]
            assert reader.read(m) == b""


def test_bad_whence_and_reads_after_close_are_value_errors(
    stored: tuple[ObjectStore, str],
) -> None:
    store, digest = stored
    reader = store.open(digest)
    with pytest.raises(ValueError, match="whence"):
        reader.seek(0, 7)
    reader.close()
    with pytest.raises(ValueError, match="closed"):
        reader.read(10)
