"""Chunked objects: content-defined chunks in packs, on every backend."""

from __future__ import annotations

import contextlib
import io
import itertools
import os
import random
import struct
import threading
import time
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, NoReturn, cast

import blake3
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scribestore import (
    CorruptObjectError,
    IntegrityError,
    ObjectNotFoundError,
    ObjectStore,
    ScribeStoreError,
)
from scribestore.store import chunk_stream, planes
from scribestore.store import chunks as chunked
from scribestore.store.blobcodec import (
    ChunkCodec,
    choose_chunk_codec,
    decode_chunk,
    decode_chunks,
    decode_run,
    encode_chunk,
    encode_chunks,
)
from scribestore.store.layout import PACK_DIR, index_path, pack_path
from scribestore.store.loose import Codec
from scribestore.store.packs import parse_index
from support.locations import Location

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator


def b3(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


def open_store(loc: Location) -> ObjectStore:
    return ObjectStore(loc.join("objects"), **loc.options)


def stored(store: ObjectStore) -> int:
    return store.stats().stored_size


def weights(n_bytes: int, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    return (rng.standard_normal(n_bytes // 4) * 0.02).astype("float32").tobytes()


def test_large_content_is_chunked_into_packs(location: Location, tmp_path: Path) -> None:
    store = open_store(location)
    data = random.Random(1).randbytes(20 << 20)
    src = tmp_path / "model.bin"
    src.write_bytes(data)
    digest = store.put(src)
    assert digest == b3(data)
    info = store.stat(digest)
    assert info.codec is Codec.CHUNKED and info.size == len(data)
    files = list(store.storage.list())
    packs = [f for f in files if f.startswith(f"{PACK_DIR}/")]
    assert packs and all(f.endswith((".pack", ".idx")) for f in packs)
    assert len(files) < 10  # 20 MiB costs a recipe and one pack, not 300 chunk files
    assert store.get(digest) == data
    with store.open(digest) as reader:
        parts = []
        while part := reader.read(100_003):
            parts.append(part)
        assert reader.verified
    assert b"".join(parts) == data
    assert store.put(io.BytesIO(data)) == digest
    assert store.put(data) == digest
    assert list(store.storage.list()) == files


def test_identical_relog_writes_nothing(location: Location, tmp_path: Path) -> None:
    store = open_store(location)
    src = tmp_path / "w.bin"
    src.write_bytes(weights(8 << 20))
    store.put(src)
    listing = [(p, store.storage.size(p)) for p in store.storage.list()]
    copy = tmp_path / "copy.bin"
    copy.write_bytes(src.read_bytes())
    store.put(copy)
    assert [(p, store.storage.size(p)) for p in store.storage.list()] == listing


@settings(max_examples=40, deadline=None)
@given(size=st.integers(0, 700_000), seed=st.integers(0, 2**16), extra=st.integers(0, 300_000))
def test_first_chunk_depends_only_on_a_prefix(size: int, seed: int, extra: int) -> None:
    data = random.Random(seed).randbytes(size)
    whole = [c.length for c in chunked.new_chunker().cut_buf(data)]
    prefix = memoryview(data)[: chunked.MAX_CHUNK + extra]
    assert len(chunked.first_chunk(prefix)) == (whole[0] if whole else 0)


def test_new_content_is_named_by_the_chunking_pass(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A file whose first chunk no pack holds is read once; a re-log is hashed once."""
    import scribestore.store.writer as objects
    from scribestore.store.hashing import HashStopped

    store = ObjectStore(tmp_path / "objects")
    data = weights(12 << 20, seed=3)
    src = tmp_path / "w.bin"
    src.write_bytes(data)
    real_hash_file = objects.hash_file
    stopped = threading.Event()

    def hash_file_until_stopped(path: Any, *, stop: Callable[[], bool]) -> tuple[str, int]:
        # The hashing pass started in case of a re-log must be stopped, not awaited.
        deadline = time.monotonic() + 30
        while not stop():
            if time.monotonic() > deadline:
                return "0" * 64, 0
            time.sleep(0.001)
        stopped.set()
        raise HashStopped(path)

    monkeypatch.setattr(objects, "hash_file", hash_file_until_stopped)
    assert store.put(src) == b3(data)
    assert stopped.wait(30)
    assert store.stat(b3(data)).codec is Codec.CHUNKED
    listing = list(store.storage.list())
    # A re-log, by a new process (a fresh store object): one hashing pass, no
    # chunking, nothing written.
    calls: list[str] = []

    def counting_hash_file(path: Any, **kwargs: Any) -> tuple[str, int]:
        calls.append(getattr(path, "name", path))  # hashed through the opened file
        return real_hash_file(path, **kwargs)

    monkeypatch.setattr(objects, "hash_file", counting_hash_file)
    monkeypatch.setattr(objects, "write_chunks", _fail)
    assert ObjectStore(tmp_path / "objects").put(src) == b3(data)
    assert calls == [str(src)]
    assert list(store.storage.list()) == listing
    monkeypatch.undo()
    monkeypatch.setattr(objects, "hash_file", counting_hash_file)
    # Same first chunk, new content: named first, then chunked and verified.
    edited = bytearray(data)
    edited[-5] ^= 1
    src.write_bytes(edited)
    assert store.put(src) == b3(bytes(edited))
    assert len(calls) == 2
    assert store.get(b3(bytes(edited))) == edited


def test_relog_does_not_wait_for_the_pack_indexes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stored name found by the hashing pass ends the put, however slowly indexes load."""
    from scribestore.store.pack_index import PackIndex

    src = tmp_path / "w.bin"
    src.write_bytes(weights(8 << 20, seed=4))
    digest = ObjectStore(tmp_path / "objects").put(src)
    released = threading.Event()
    finished = threading.Event()
    real_refresh = PackIndex.refresh

    def slow_refresh(self: PackIndex) -> None:
        released.wait(30)
        real_refresh(self)
        finished.set()

    monkeypatch.setattr(PackIndex, "refresh", slow_refresh)
    monkeypatch.setattr("scribestore.store.writer.write_chunks", _fail)
    try:
        assert ObjectStore(tmp_path / "objects").put(src) == digest
        assert not finished.is_set()  # returned while the indexes were still loading
    finally:
        released.set()
    assert finished.wait(30)


def _fail(*args: object, **kwargs: object) -> NoReturn:
    raise AssertionError("not expected to be called")


def test_single_pass_keeps_content_already_stored_unchunked(tmp_path: Path) -> None:
    """First writer wins: content stored whole by another writer keeps its object."""
    from scribestore.store.layout import object_path
    from scribestore.store.loose import encode_header

    store = ObjectStore(tmp_path / "objects")
    data = os.urandom(5 << 20)
    digest = b3(data)
    store.storage.write_new(object_path(digest), (encode_header(Codec.RAW, len(data)), data))
    assert store.put(data) == digest
    assert store.stat(digest).codec is Codec.RAW
    assert store.get(digest) == data


def _edit_regions(data: bytes, fraction: float, regions: int, seed: int) -> tuple[bytes, int]:
    rng = random.Random(seed)
    out = bytearray(data)
    per_region = int(len(data) * fraction / regions)
    for r in range(regions):
        start = (r + 1) * len(data) // (regions + 1)
        out[start : start + per_region] = rng.randbytes(per_region)
    return bytes(out), per_region * regions


def test_changed_regions_cost_only_their_chunks(location: Location) -> None:
    store = open_store(location)
    base = random.Random(2).randbytes(32 << 20)
    store.put(base)
    before = stored(store)
    edited, changed = _edit_regions(base, 0.05, 4, seed=3)
    store.put(edited)
    new = stored(store) - before
    assert changed < new <= 1.2 * changed + (1 << 20), (new, changed)


def test_inserted_byte_costs_a_few_chunks(location: Location) -> None:
    store = open_store(location)
    base = random.Random(4).randbytes(32 << 20)
    store.put(base)
    before = stored(store)
    shifted = base[:1000] + b"\x07" + base[1000:]
    assert store.put(shifted) == b3(shifted)
    new = stored(store) - before
    assert new <= 0.01 * len(base), new
    assert store.get(b3(shifted)) == shifted


def test_added_bytes_is_what_each_object_cost_after_those_before(location: Location) -> None:
    store = open_store(location)
    base = random.Random(5).randbytes(16 << 20)
    shifted = base[:1000] + b"\x07" + base[1000:]
    small = b"a small loose object"
    digests = [store.put(base), store.put(shifted), store.put(small)]
    before = stored(store)
    added = store.added_bytes([*digests, digests[0]])
    # Each figure is what storing that object added to the store, in that order.
    assert added[0] > 0.9 * len(base)
    assert 0 < added[1] <= 0.01 * len(base)
    assert added[2] == store.stored_bytes([digests[2]])
    assert added[3] == 0  # the same object again adds nothing
    assert sum(added) == store.stored_bytes(digests) <= before
    assert store.added_bytes([]) == []
    with pytest.raises(ObjectNotFoundError):
        store.added_bytes([b3(b"never stored")])


def test_missing_chunks_counts_what_no_pack_holds(location: Location) -> None:
    store = open_store(location)
    chunked = store.put(random.Random(6).randbytes(12 << 20))
    loose = store.put(b"loose")
    assert store.missing_chunks(chunked) == 0 and store.missing_chunks(loose) == 0
    distinct = len(set(store.recipe_chunks(chunked) or []))
    for name in list(store.storage.list(PACK_DIR)):
        store.storage.delete(name)
    fresh = open_store(location)  # no index in memory from the put
    assert fresh.missing_chunks(chunked) == distinct > 0
    assert fresh.has(chunked)  # the object file is there; only its chunks are not
    with pytest.raises(ObjectNotFoundError):
        fresh.missing_chunks(b3(b"never stored"))


@pytest.mark.parametrize(("dtype", "limit"), [("float32", 0.90), ("bfloat16", 0.72)])
def test_float_weights_compress_bit_exactly(location: Location, dtype: str, limit: float) -> None:
    store = open_store(location)
    data = weights(16 << 20)
    if dtype == "bfloat16":
        data = (np.frombuffer(data, dtype=np.uint32) >> 16).astype(np.uint16).tobytes()
    before = stored(store)
    digest = store.put(data)
    assert digest == b3(data)
    ratio = (stored(store) - before) / len(data)
    assert ratio <= limit, ratio
    assert store.get(digest) == data


def test_flipped_byte_in_pack_is_an_integrity_error(location: Location) -> None:
    store = open_store(location)
    data = random.Random(5).randbytes(6 << 20)
    digest = store.put(data)
    [pack] = [p for p in store.storage.list() if p.endswith(".pack")]
    blob = bytearray(store.storage.read_bytes(pack))
    blob[len(blob) // 2] ^= 0x40
    store.storage.delete(pack)
    store.storage.write_new(pack, [bytes(blob)])
    fresh = open_store(location)
    with pytest.raises(IntegrityError) as err:
        fresh.get(digest)
    assert err.value.expected == digest
    with pytest.raises(IntegrityError), fresh.open(digest) as reader:
        while reader.read(1 << 20):
            pass


def test_missing_pack_is_reported(location: Location) -> None:
    store = open_store(location)
    digest = store.put(random.Random(6).randbytes(6 << 20))
    for path in list(store.storage.list(PACK_DIR)):
        store.storage.delete(path)
    with pytest.raises(ObjectNotFoundError, match="no pack"):
        open_store(location).get(digest)


def test_other_writers_packs_are_found(location: Location) -> None:
    reader_side = open_store(location)
    reader_side.put(random.Random(7).randbytes(5 << 20))  # loads the index once
    data = random.Random(8).randbytes(5 << 20)
    digest = open_store(location).put(data)
    assert reader_side.get(digest) == data


def test_streams_deduplicate_against_other_writers_packs(location: Location) -> None:
    """A stream is chunked as it is read, against every published pack."""
    data = weights(6 << 20, seed=9)
    open_store(location).put(data)
    other = open_store(location)  # a new process: no index loaded yet
    before = stored(other)
    other.put(io.BytesIO(data + b"one more byte"))
    assert stored(other) - before < len(data) // 10  # the last chunk or two, not a copy


# --- the chunk codec -------------------------------------------------------------


_ENTRY = struct.Struct("<32sQ")


@settings(max_examples=200, deadline=None)
@given(
    entries=st.lists(
        st.tuples(
            st.binary(min_size=32, max_size=32),
            st.sampled_from([0, 1, chunked.MAX_CHUNK, chunked.MAX_CHUNK + 1, 2**63])
            | st.integers(1, chunked.MAX_CHUNK),
        ),
        max_size=6,
    ),
    size_off=st.sampled_from([0, 0, 0, 1, -1]),
    cut=st.sampled_from([0, 0, 0, 1, 35]),
)
def test_recipe_digests_read_a_recipe_exactly_as_parse_recipe(
    entries: list[tuple[bytes, int]], size_off: int, cut: int
) -> None:
    payload = b"".join(_ENTRY.pack(d, n) for d, n in entries)
    payload = payload[: len(payload) - cut] if cut <= len(payload) else payload
    size = sum(n for _, n in entries) + size_off
    try:
        parsed = [d for d, _ in chunked.parse_recipe(payload, size)]
    except ValueError as exc:
        with pytest.raises(ValueError, match=str(exc)):
            chunked.recipe_digests(payload, size)
        return
    digests = chunked.recipe_digests(memoryview(payload), size)
    assert [d.tobytes() for d in digests] == parsed


@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(max_size=3000),
    offset=st.integers(0, 7),
    codec=st.sampled_from(list(ChunkCodec)),
)
def test_chunk_codec_round_trips(data: bytes, offset: int, codec: ChunkCodec) -> None:
    blob = encode_chunk(memoryview(data), codec, offset)
    assert decode_chunk(memoryview(blob), len(data)) == data
    assert len(blob) <= len(data) + 1


def test_codec_choice() -> None:
    """The fastest codec within 5 % (of raw) of the smallest (FORMAT 3.4)."""
    f32 = weights(1 << 20)
    bf16 = (np.frombuffer(f32, dtype=np.uint32) >> 16).astype(np.uint16).tobytes()
    # float32: packed top bytes cost ~4 % more than zstd'd ones and decode ~10x faster.
    assert choose_chunk_codec(memoryview(f32)) is ChunkCodec.PACKED4
    # bfloat16: there zstd saves ~8 % more, so it is worth its time.
    assert choose_chunk_codec(memoryview(bf16)) is ChunkCodec.GROUP2
    assert choose_chunk_codec(memoryview(os.urandom(1 << 20))) is ChunkCodec.RAW
    assert choose_chunk_codec(memoryview(b'{"k": [1, 2]}' * 50_000)) is ChunkCodec.ZSTD


@pytest.mark.parametrize("blob", [b"", b"\x09abc", b"\x01notzstd", b"\x03\x04\x00\x05\x00\x00\x00"])
def test_malformed_chunk_blobs_raise_value_error(blob: bytes) -> None:
    with pytest.raises(ValueError):
        decode_chunk(memoryview(blob), 100)


def test_pack_paths_and_index_validation() -> None:
    with pytest.raises(ValueError):
        pack_path("../../etc")
    with pytest.raises(ValueError):
        index_path("A" * 32)
    for bad in (b"", b"XXXX\x01\x00\x00\x00" + bytes(8), b"SSPI\x01\x00\x00\x00" + bytes(8) + b"x"):
        with pytest.raises(ValueError):
            parse_index("a" * 32, bad)


# --- batches and windows ------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    data=st.binary(min_size=1, max_size=6000),
    offset=st.integers(0, 7),
    cuts=st.lists(st.integers(1, 5999), max_size=6),
    codec=st.sampled_from(list(ChunkCodec)),
    keep_seed=st.integers(0, 2**16),
)
def test_batch_codec_round_trips(
    data: bytes, offset: int, cuts: list[int], codec: ChunkCodec, keep_seed: int
) -> None:
    bounds = sorted({c for c in cuts if c < len(data)} | {0, len(data)})
    sizes = [b - a for a, b in itertools.pairwise(bounds)]
    keep = [random.Random(keep_seed + i).random() < 0.7 for i in range(len(sizes))]
    blobs = encode_chunks(memoryview(data), offset, sizes, codec, keep)
    assert all((p is None) == (not k) for p, k in zip(blobs, keep, strict=True))
    kept = [
        (b"".join(p), size, start)
        for p, size, start in zip(blobs, sizes, bounds[:-1], strict=True)
        if p is not None
    ]
    for blob, size, start in kept:
        assert len(blob) <= size + 1
        assert decode_chunk(memoryview(blob), size) == data[start : start + size]
    # A run mixing codecs (raw fallbacks, zstd, byte-grouped) decodes in one call.
    out = bytearray(sum(size for _, size, _ in kept))
    decode_chunks([memoryview(b) for b, _, _ in kept], [s for _, s, _ in kept], memoryview(out))
    expected = b"".join(data[start : start + size] for _, size, start in kept)
    assert out == expected
    # So does the same run as it lies in a pack, with and without the accelerator.
    pack, spans = _as_pack([(b, size) for b, size, _ in kept], gap=keep_seed % 3)
    for native in (True, False):
        with _accelerator(native):
            out = bytearray(len(expected))
            decode_run(memoryview(pack), spans, memoryview(out))
            assert out == expected


def _as_pack(
    blobs: list[tuple[bytes, int]], gap: int = 0
) -> tuple[bytes, list[tuple[int, int, int]]]:
    """Blobs laid out one after another (``gap`` junk bytes before each), and their spans."""
    pack = bytearray()
    spans = []
    for blob, size in blobs:
        pack += b"\xee" * gap
        spans.append((len(pack), len(blob), size))
        pack += blob
    return bytes(pack), spans


@contextlib.contextmanager
def _accelerator(native: bool) -> Iterator[None]:
    """Run with the C accelerator (skipped where it is not built) or its numpy fallback."""
    from scribestore.store import planes

    if native and not planes.NATIVE:
        yield
        return
    saved = planes.native
    if not native:
        planes.native = None
    try:
        yield
    finally:
        planes.native = saved


class _BlobRecorder:
    """The part of PackWriter that the encoder uses, keeping each chunk's blob."""

    def __init__(self, capacity: int) -> None:
        self.buffer = bytearray(capacity)
        self.used = 0
        self.seals = 0
        self.blobs: dict[bytes, bytes] = {}

    def room(self) -> memoryview:
        return memoryview(self.buffer)[self.used :]

    def added(self, blobs: Iterable[tuple[bytes, int, int]]) -> None:
        for digest, length, _ in blobs:
            self.blobs[digest] = bytes(self.buffer[self.used : self.used + length])
            self.used += length

    def seal(self) -> None:
        self.seals += 1
        self.used = 0

    def add(
        self, digest: bytes, parts: Iterable[bytes | bytearray | memoryview], size: int
    ) -> None:
        self.blobs[digest] = b"".join(parts)


@pytest.mark.skipif(not planes.NATIVE, reason="the C accelerator is not built here")
@settings(max_examples=150, deadline=None)
@given(
    pieces=st.lists(st.sampled_from(["weights", "random", "zeros"]), min_size=1, max_size=4),
    offset=st.integers(0, 7),
    cuts=st.lists(st.integers(1, 7999), max_size=8),
    codec=st.sampled_from([ChunkCodec.PACKED4, ChunkCodec.PACKED2]),
    keep_seed=st.integers(0, 2**16),
)
def test_packed_blobs_written_in_place_match_the_batch_codec(
    pieces: list[str], offset: int, cuts: list[int], codec: ChunkCodec, keep_seed: int
) -> None:
    fill = {
        "weights": weights(2000, seed=keep_seed),
        "random": os.urandom(2000),
        "zeros": bytes(2000),
    }
    data = b"".join(fill[p] for p in pieces)
    bounds = sorted({c for c in cuts if c < len(data)} | {0, len(data)})
    sizes = [b - a for a, b in itertools.pairwise(bounds)]
    keep = [random.Random(keep_seed + i).random() < 0.8 for i in range(len(sizes))]
    digests = [i.to_bytes(32, "little") for i in range(len(sizes))]
    recorder = _BlobRecorder(capacity=max(sizes) + 1 + keep_seed % 5000)
    chunked.store_packed(
        recorder, chunked.Batch(memoryview(data), offset, sizes, keep, digests), codec
    )
    expected = encode_chunks(memoryview(data), offset, sizes, codec, keep)
    for digest, parts in zip(digests, expected, strict=True):
        assert recorder.blobs.get(digest) == (None if parts is None else b"".join(parts))


@pytest.mark.skipif(not planes.NATIVE, reason="the C accelerator is not built here")
def test_packed_blobs_in_place_cover_every_outcome() -> None:
    """Packed, zstd for varied top bytes, raw for tiny chunks, and full packs sealed."""
    data = weights(40_000, seed=1) + os.urandom(5000)
    sizes = [3000, 7000, 5000, 9000, 8000, 5000, 7997, 3]
    digests = [i.to_bytes(32, "little") for i in range(len(sizes))]
    recorder = _BlobRecorder(capacity=12_000)
    keep = [True] * len(sizes)
    batch = chunked.Batch(memoryview(data), 0, sizes, keep, digests)
    chunked.store_packed(recorder, batch, ChunkCodec.PACKED4)
    assert [recorder.blobs[d][0] for d in digests] == [4, 4, 4, 4, 4, 4, 3, 0]
    assert recorder.seals == 5
    out = bytearray(len(data))
    decode_chunks([memoryview(recorder.blobs[d]) for d in digests], sizes, memoryview(out))
    assert out == data


@pytest.mark.parametrize("native", [True, False], ids=["native", "numpy"])
@pytest.mark.parametrize(
    ("blob", "size"),
    [
        (b"", 4),
        (b"\x09abcd", 4),
        (b"\x00abc", 4),  # raw, one byte short
        (b"\x01notzstd", 4),
        (b"\x03\x04\x00\x05\x00\x00\x00", 100),
        (b"\x04\x03\x00\x00\x00\x00\x00" + bytes(15) + bytes(50) + bytes(300), 400),  # k = 3
        (b"\x04\x04\x00\x00\x00\x00\x00" + bytes(15) + bytes(50), 400),  # too short
        # one escape byte, but no code says escape
        (b"\x04\x04\x00\x01\x00\x00\x00" + bytes(15) + bytes(50) + b"\x07" + bytes(300), 400),
    ],
)
def test_malformed_blobs_in_a_run_raise_value_error(native: bool, blob: bytes, size: int) -> None:
    good = encode_chunk(memoryview(weights(4096)), ChunkCodec.PACKED4)
    pack, spans = _as_pack([(good, 4096), (blob, size)])
    with _accelerator(native), pytest.raises(ValueError):
        decode_run(memoryview(pack), spans, memoryview(bytearray(4096 + size)))


@pytest.mark.parametrize("native", [True, False], ids=["native", "numpy"])
def test_a_run_must_fit_its_data_and_output(native: bool) -> None:
    blob = encode_chunk(memoryview(b"x" * 100), ChunkCodec.RAW)
    with _accelerator(native):
        for spans in ([(1, len(blob), 100)], [(-1, len(blob), 100)], [(0, len(blob) + 1, 100)]):
            with pytest.raises(ValueError):
                decode_run(memoryview(blob), spans, memoryview(bytearray(100)))
        with pytest.raises(ValueError):
            decode_run(memoryview(blob), [(0, len(blob), 100)], memoryview(bytearray(99)))
        out = bytearray(100)
        decode_run(memoryview(blob), [(0, len(blob), 100)], memoryview(out))
        assert out == b"x" * 100


def test_decode_refuses_a_wrong_output_size() -> None:
    blob = encode_chunk(memoryview(b"x" * 100), ChunkCodec.RAW)
    with pytest.raises(ValueError):
        decode_chunks([memoryview(blob)], [100], memoryview(bytearray(99)))
    with pytest.raises(ValueError):
        decode_chunks([memoryview(blob)], [99], memoryview(bytearray(99)))


class _Trickle(io.RawIOBase):
    """A stream that hands out its bytes in reads of the sizes given, in turn."""

    def __init__(self, data: bytes, sizes: list[int]) -> None:
        super().__init__()
        self._data, self._pos, self._sizes = memoryview(data), 0, itertools.cycle(sizes)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        n = min(len(buffer), next(self._sizes), len(self._data) - self._pos)
        buffer[:n] = self._data[self._pos : self._pos + n]
        self._pos += n
        return n


class _ReadOnly:
    """A binary stream with ``read`` only (no ``readinto``)."""

    def __init__(self, data: bytes) -> None:
        self._f = io.BytesIO(data)

    def read(self, n: int = -1) -> bytes:
        return self._f.read(min(n, 100_003) if n >= 0 else n)


@pytest.mark.parametrize("source", ["bytes", "bytearray", "file", "stream", "read-only stream"])
def test_windows_cut_exactly_like_one_pass(tmp_path: Path, source: str) -> None:
    """Cutting window by window gives the chunks of one continuous cut."""
    data = weights(5 * chunked.WINDOW + 12345, seed=4)
    expected = [b3(c.data) for c in chunked.new_chunker().cut_buf(data)]
    store = ObjectStore(tmp_path / "objects")
    if source == "file":
        path = tmp_path / "w.bin"
        path.write_bytes(data)
        digest = store.put(path)
    elif source == "stream":
        digest = store.put(io.BytesIO(data))
    elif source == "read-only stream":
        digest = store.put(cast("IO[bytes]", _ReadOnly(data)))
    else:
        digest = store.put(data if source == "bytes" else bytearray(data))
    assert digest == b3(data)
    assert [d.hex() for d in store.recipe_chunks(digest) or []] == expected
    assert store.get(digest) == data


@settings(max_examples=25, deadline=None)
@given(
    size=st.sampled_from(
        [
            chunked.CHUNK_THRESHOLD - 1,
            chunked.CHUNK_THRESHOLD,
            chunked.WINDOW - 1,
            chunked.WINDOW,
            chunked.WINDOW + 1,
            2 * chunked.WINDOW,
        ]
    )
    | st.integers(chunked.CHUNK_THRESHOLD, 3 * chunked.WINDOW),
    reads=st.lists(st.integers(1, 3 << 20), min_size=1, max_size=5),
)
def test_a_stream_read_in_any_sizes_is_stored_as_its_bytes_are(
    tmp_path_factory: pytest.TempPathFactory, size: int, reads: list[int]
) -> None:
    """However a stream splits its reads, the object stored is named and cut as its
    bytes are: the same digest and recipe as the same bytes given whole."""
    data = random.Random(size).randbytes(size)
    root = tmp_path_factory.mktemp("streams")
    whole = ObjectStore(root / "whole")
    streamed = ObjectStore(root / "streamed")
    digest = whole.put(data)
    assert streamed.put(cast("IO[bytes]", _Trickle(data, reads))) == digest
    assert streamed.recipe_chunks(digest) == whole.recipe_chunks(digest)
    assert streamed.get(digest) == data


def test_a_large_stream_is_not_spooled_to_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stream of chunked size is chunked as it is read: no temporary copy of it."""
    import tempfile

    def refuse(*args: Any, **kwargs: Any) -> NoReturn:
        raise AssertionError("a stream was spooled to a temporary file")

    for name in ("SpooledTemporaryFile", "TemporaryFile", "NamedTemporaryFile", "mkstemp"):
        monkeypatch.setattr(tempfile, name, refuse)
    data = weights(3 * chunked.WINDOW, seed=6)
    store = ObjectStore(tmp_path / "objects")
    assert store.put(io.BytesIO(data)) == b3(data)
    assert store.get(b3(data)) == data


class _Failing(io.RawIOBase):
    """``good`` bytes, then ``fail()`` raised or returned on the next read."""

    def __init__(self, good: bytes, fail: Callable[[], Any]) -> None:
        super().__init__()
        self._f, self._fail = io.BytesIO(good), fail

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> Any:
        return self._f.readinto(buffer) or self._fail()


def _broken() -> NoReturn:
    raise OSError(5, "Input/output error")


@pytest.mark.parametrize(
    ("fail", "error"),
    [(_broken, OSError), (lambda: None, TypeError)],
    ids=["read error", "non-blocking"],
)
@pytest.mark.parametrize("at", [1 << 20, 3 * chunked.WINDOW + 5], ids=["head", "chunking"])
def test_a_stream_that_fails_mid_way_stores_no_object(
    location: Location, fail: Callable[[], Any], error: type[Exception], at: int
) -> None:
    """A stream's own read error reaches the caller as it was raised, and a stream
    with no data ready is refused (an end cannot be told from a pause); either way
    no object is published, and what the store held before is intact."""
    store = open_store(location)
    kept = store.put(weights(6 << 20, seed=8))
    data = weights(at, seed=7)
    with pytest.raises(error) as caught:
        store.put(cast("IO[bytes]", io.BufferedReader(_Failing(data, fail))))
    assert not isinstance(caught.value, ScribeStoreError)
    assert list(store) == [kept]
    assert store.get(kept) == weights(6 << 20, seed=8)


def test_a_stream_that_turns_to_text_mid_way_is_refused(location: Location) -> None:
    store = open_store(location)

    class Turning:
        def __init__(self) -> None:
            self._f = io.BytesIO(weights(2 * chunked.WINDOW, seed=3))

        def read(self, n: int = -1) -> bytes | str:
            return self._f.read(n) or "text"

    with pytest.raises(TypeError, match="binary stream"):
        store.put(cast("IO[bytes]", Turning()))
    assert list(store) == []


class _Scribbling:
    """A stream whose ``readinto`` writes over the buffer it was given last time
    (a stream keeping a view it should not), and whose ``read`` is honest."""

    def __init__(self, data: bytes) -> None:
        self._f = io.BytesIO(data)
        self._last: memoryview | None = None

    def read(self, n: int = -1) -> bytes:
        return self._f.read(n)

    def readinto(self, buffer: Any) -> int:
        if self._last is not None:
            self._last[:] = b"\xaa" * len(self._last)
        n = self._f.readinto(buffer)
        self._last = memoryview(buffer)[:n]
        return n


def test_a_stream_never_gets_a_view_of_the_windows(location: Location) -> None:
    """A stream that writes into a buffer after handing its bytes over cannot
    change what was stored: only streams known to copy are read into windows."""
    store = open_store(location)
    data = weights(4 * chunked.WINDOW + 999, seed=12)
    digest = store.put(cast("IO[bytes]", _Scribbling(data)))
    assert digest == b3(data)
    assert open_store(location).get(digest) == data
    from scribestore.ops.fsck import check_store

    assert check_store(store).ok


class _Pieces:
    """A file-like adapter over fixed pieces whose ``read`` ignores its size."""

    def __init__(self, data: bytes, piece: int, kind: str) -> None:
        self._pieces = [data[i : i + piece] for i in range(0, len(data), piece)]
        self._kind = kind

    def read(self, n: int = -1) -> bytes | memoryview:
        if not self._pieces:
            return b""
        piece = self._pieces.pop(0)
        if self._kind == "int32":
            return memoryview(piece).cast("B").cast("i") if len(piece) % 4 == 0 else piece
        return piece


@pytest.mark.parametrize(
    ("piece", "kind"),
    [(64 << 10, "bytes"), (5 << 20, "bytes"), (9 << 20, "bytes"), (1 << 20, "int32")],
)
def test_reads_longer_than_asked_and_typed_views_are_stored_whole(
    tmp_path: Path, piece: int, kind: str
) -> None:
    """A ``read`` returning more than asked (bytes kept for the next window) or a
    view of another item format stores exactly the bytes it returned."""
    data = weights(3 * chunked.WINDOW + 4 * 1024, seed=13)
    store = ObjectStore(tmp_path / "objects")
    digest = store.put(cast("IO[bytes]", _Pieces(data, piece, kind)))
    assert digest == b3(data)
    assert ObjectStore(tmp_path / "objects").get(digest) == data


def test_a_raw_stream_with_read_only_is_read_through_read(tmp_path: Path) -> None:
    class ReadOnlyRaw(io.RawIOBase):  # readinto is RawIOBase's, which raises
        def __init__(self, data: bytes) -> None:
            super().__init__()
            self._f = io.BytesIO(data)

        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes:
            return self._f.read(n)

    data = weights(2 * chunked.WINDOW + 7, seed=14)
    store = ObjectStore(tmp_path / "objects")
    assert store.get(store.put(cast("IO[bytes]", ReadOnlyRaw(data)))) == data


@pytest.mark.parametrize("count", [-1, 1.5, "lots", 1 << 40])
def test_an_impossible_readinto_count_stores_nothing(tmp_path: Path, count: object) -> None:
    """A stream declared to copy (``CopyingRawIO``) is read into the windows, and a
    count it could not have read is refused, not trusted."""

    class Lying(chunked.CopyingRawIO):
        def __init__(self) -> None:
            super().__init__()
            self._f = io.BytesIO(weights(3 * chunked.WINDOW, seed=15))
            self._calls = 0

        def readable(self) -> bool:
            return True

        def readinto(self, buffer: Any) -> Any:
            self._calls += 1
            n = self._f.readinto(buffer)
            return count if self._calls == 3 else n

    store = ObjectStore(tmp_path / "objects")
    with pytest.raises(OSError, match="readinto"):
        store.put(cast("IO[bytes]", Lying()))
    assert list(store) == []


def test_mutable_buffers_are_copied_before_chunking() -> None:
    """The bytes that are hashed are the bytes that are stored, even if the caller's
    buffer changes meanwhile: mutable sources are copied window by window."""
    mutable = bytearray(b"abcdefgh")
    into = bytearray(8)
    window = chunked.BufferWindows(memoryview(mutable)).window(2, 4, into)
    mutable[2:6] = b"XXXX"
    assert window == b"cdef" and window.obj is into
    frozen = b"abcdefgh"
    view = chunked.BufferWindows(memoryview(frozen)).window(2, 4, into)
    assert view == b"cdef" and view.obj is frozen  # immutable: no copy


@pytest.mark.parametrize("where", ["local", "remote"])
def test_reader_buffers_are_recycled(tmp_path: Path, where: str) -> None:
    """A long read reuses a handful of decode buffers (bounded memory), bytes
    intact; a remote storage keeps more reads in flight, still bounded."""
    data = weights(40 << 20, seed=5)
    # local:// is local disk through the generic fsspec backend, which counts as remote.
    root = tmp_path / "objects"
    store = ObjectStore(str(root) if where == "local" else f"local://{root}")
    assert store.storage.remote == (where == "remote")
    digest = store.put(data)
    allocated = []
    running = peak = 0
    lock = threading.Lock()
    real = chunk_stream.ChunkedStream._fetch

    def spy(self: chunk_stream.ChunkedStream, *args: object) -> tuple[bytearray, memoryview]:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.01)  # as a network round trip would
        try:
            buf, view = real(self, *args)  # type: ignore[arg-type]
        finally:
            with lock:
                running -= 1
        allocated.append(id(buf))
        return buf, view

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(chunk_stream.ChunkedStream, "_fetch", spy)
        with store.open(digest) as reader:
            out = reader.read()
            assert reader.verified
    assert out == data
    assert len(allocated) >= 10
    readers, ahead = (
        (chunk_stream.READERS, chunk_stream.READ_AHEAD)
        if where == "local"
        else (chunk_stream.REMOTE_READERS, chunk_stream.REMOTE_READ_AHEAD)
    )
    assert len(set(allocated)) <= ahead + readers + 2
    assert peak == readers


@pytest.mark.parametrize(("where", "publishers"), [("local", 2), ("remote", 2)])
def test_packs_go_up_a_few_at_once(tmp_path: Path, where: str, publishers: int) -> None:
    """A pack writer publishes two packs at a time (uploads overlap each other
    and the filling of the next pack), and every pack and index is written."""
    from scribestore.storage import open_storage
    from scribestore.store.packs import PackWriter

    root = tmp_path / "objects"
    storage = open_storage(str(root) if where == "local" else f"local://{root}")
    running = peak = 0
    lock = threading.Lock()
    real = storage.write_new

    def slow_write(path: str, chunks: Any) -> bool:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)  # as an upload would
        try:
            return real(path, chunks)
        finally:
            with lock:
                running -= 1

    published: list[str] = []

    class Recorded:
        def add(self, pack_id: str, total: int, entries: list[Any]) -> None:
            published.append(pack_id)

    storage.write_new = slow_write  # type: ignore[method-assign]
    writer = PackWriter(storage, Recorded(), target=64 << 10)
    for i in range(12):
        blob = random.Random(i).randbytes(64 << 10)
        writer.add(blake3.blake3(blob).digest(), [b"\x00", blob], len(blob))
    writer.close()
    assert peak == publishers
    assert len(published) == 12
    assert sorted(storage.list(PACK_DIR)) == sorted(
        [pack_path(p) for p in published] + [index_path(p) for p in published]
    )


def test_failed_pack_publish_raises_and_publishes_no_recipe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import threading

    from scribestore import StorageError

    store = ObjectStore(tmp_path / "objects")
    kept = store.put(os.urandom(5 << 20))
    threads_before = threading.active_count()
    real_write_new = type(store.storage).write_new
    calls = [0]

    def flaky(self: object, path: str, chunks: object) -> bool:
        if path.endswith(".pack"):
            calls[0] += 1
            if calls[0] == 2:
                raise OSError(28, "No space left on device")
        return real_write_new(self, path, chunks)  # type: ignore[arg-type]

    monkeypatch.setattr(type(store.storage), "write_new", flaky)
    data = os.urandom(100 << 20)
    with pytest.raises(StorageError, match="No space left"):
        store.put(data)
    assert list(store) == [kept]
    assert threading.active_count() == threads_before  # every worker thread ended
    monkeypatch.undo()
    assert store.get(store.put(data)) == data
    assert b3(store.get(kept)) == kept


@pytest.mark.parametrize("native", [True, False], ids=["native", "numpy"])
def test_packed_float_chunks_decode_with_and_without_the_accelerator(
    monkeypatch: pytest.MonkeyPatch, native: bool
) -> None:
    from scribestore.store import planes

    if native and not planes.NATIVE:
        pytest.skip("the C accelerator is not built here")
    if not native:
        monkeypatch.setattr(planes, "native", None)
    data = weights(1 << 20, seed=6)
    sizes = [70_001, 65_536, 131_071, (1 << 20) - 266_608]
    blobs = encode_chunks(memoryview(data), 8, sizes, ChunkCodec.PACKED4, [True] * 4)
    joined = [b"".join(p) for p in blobs if p is not None]
    assert [b[0] for b in joined] == [4, 4, 4, 4]  # weights: few escapes, all packed
    assert sum(map(len, joined)) < 0.88 * len(data)
    out = bytearray(len(data))
    decode_chunks([memoryview(b) for b in joined], sizes, memoryview(out))
    assert out == data
    for blob, size in zip(joined, sizes, strict=True):
        broken = bytearray(blob)
        broken[3] ^= 1  # the escape count
        with pytest.raises(ValueError):
            decode_chunk(memoryview(bytes(broken)), size)
        with pytest.raises(ValueError):
            decode_chunk(memoryview(blob[:-1]), size)


def test_packed_codec_falls_back_to_zstd_when_top_bytes_vary() -> None:
    data = os.urandom(1 << 16)  # every top byte value: packing would not pay
    blob = encode_chunk(memoryview(data), ChunkCodec.PACKED4)
    assert blob[0] in (0, 3)
    assert decode_chunk(memoryview(blob), len(data)) == data


def test_closing_a_reader_early_stops_its_threads(tmp_path: Path) -> None:
    import threading

    store = ObjectStore(tmp_path / "objects")
    digest = store.put(weights(64 << 20, seed=7))
    before = threading.active_count()
    reader = store.open(digest)
    assert len(reader.read(1 << 20)) == 1 << 20
    assert threading.active_count() > before  # reading ahead
    reader.close()
    assert threading.active_count() == before


def test_pack_format_versions(location: Location) -> None:
    """Version-1 indexes (before codec 4) still load; a newer version is refused clearly."""
    from scribestore import UnsupportedFormatError
    from scribestore.store.packs import PACK_FORMAT_VERSION

    entry = bytes(32) + (8).to_bytes(8, "little") + (5).to_bytes(4, "little") * 2 + bytes(4)
    v1 = b"SSPI\x01\x00\x00\x00" + (13).to_bytes(8, "little") + entry
    total, entries = parse_index("a" * 32, v1)
    assert total == 13 and entries[0][1].offset == 8
    newer = b"SSPI" + bytes((PACK_FORMAT_VERSION + 1, 0, 0, 0)) + v1[8:]
    with pytest.raises(UnsupportedFormatError, match="upgrade scribestore"):
        parse_index("a" * 32, newer)
    # A newer pack beside the others costs nothing to objects stored elsewhere.
    store = open_store(location)
    data = os.urandom(5 << 20)
    digest = store.put(data)
    store.storage.write_new(index_path("f" * 32), [newer])
    assert open_store(location).get(digest) == data
    # An object whose chunks are in a newer pack: reading it says so, not "corrupt".
    for name in list(store.storage.list("packs")):
        if name.endswith(".idx") and "f" * 32 not in name:
            old = store.storage.read_bytes(name)
            store.storage.delete(name)
            store.storage.write_new(name, [old[:4] + bytes((PACK_FORMAT_VERSION + 1,)) + old[5:]])
    with pytest.raises(UnsupportedFormatError):
        open_store(location).get(digest)


def _as_format_2(store: ObjectStore) -> list[str]:
    """Rewrite every pack and index as format 2 wrote them: no table, no checksum."""
    pack_ids = []
    for name in sorted(store.storage.list("packs")):
        if not name.endswith(".idx"):
            continue
        pack_id = name.rsplit("/", 1)[-1].split(".")[0]
        _total, entries = parse_index(pack_id, store.storage.read_bytes(name))
        end = max(loc.offset + loc.length for _, loc in entries)
        pack = store.storage.read_bytes(pack_path(pack_id))[:end]
        body = b"".join(
            d
            + loc.offset.to_bytes(8, "little")
            + loc.length.to_bytes(4, "little")
            + loc.size.to_bytes(4, "little")
            + bytes(4)
            for d, loc in entries
        )
        for path, data in (
            (pack_path(pack_id), b"SSPK\x02\x00\x00\x00" + pack[8:]),
            (name, b"SSPI\x02\x00\x00\x00" + end.to_bytes(8, "little") + body),
        ):
            store.storage.delete(path)
            store.storage.write_new(path, [data])
        pack_ids.append(pack_id)
    return pack_ids


def test_format_2_packs_load_and_a_damaged_index_is_reported_not_rebuilt(
    location: Location,
) -> None:
    """Packs of format 2 end with their last blob: their index cannot be rebuilt."""
    from scribestore.ops.fsck import check_store, repair_store

    store = open_store(location)
    data = os.urandom(5 << 20)
    digest = store.put(data)
    [pack_id] = _as_format_2(store)
    assert open_store(location).get(digest) == data
    assert check_store(open_store(location)).ok
    name = index_path(pack_id)
    old = store.storage.read_bytes(name)
    store.storage.delete(name)
    store.storage.write_new(name, [old[:-3]])
    report = repair_store(open_store(location))
    assert report.damaged_indexes == (pack_id,) and report.rebuilt_indexes == ()
    with pytest.raises(CorruptObjectError, match=f"packs {pack_id} are damaged"):
        open_store(location).get(digest)


def test_damaged_index_of_a_newer_pack_is_unsupported_not_guessed(location: Location) -> None:
    """The pack's own table is read only from packs of a format this reader knows."""
    from scribestore import UnsupportedFormatError
    from scribestore.store.pack_index import PackIndex
    from scribestore.store.packs import PACK_FORMAT_VERSION, read_pack_table

    store = open_store(location)
    data = os.urandom(5 << 20)
    digest = store.put(data)
    [pack_id] = {p.rsplit("/", 1)[-1].split(".")[0] for p in store.storage.list("packs")}
    for path, spoil in (
        (pack_path(pack_id), lambda b: b[:4] + bytes((PACK_FORMAT_VERSION + 1,)) + b[5:]),
        (index_path(pack_id), lambda b: b[:-3]),
    ):
        old = store.storage.read_bytes(path)
        store.storage.delete(path)
        store.storage.write_new(path, [spoil(old)])
    with pytest.raises(UnsupportedFormatError, match="upgrade scribestore"):
        read_pack_table(store.storage, pack_id)
    index = PackIndex(store.storage)
    index.refresh()
    assert pack_id in index.newer and pack_id not in index.damaged
    with pytest.raises(UnsupportedFormatError):
        open_store(location).get(digest)
