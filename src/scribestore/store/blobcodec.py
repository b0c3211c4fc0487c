"""Encoding of chunks inside a pack: raw, zstd, or byte-grouped floats.

Pure functions, no I/O (docs/FORMAT.md section 3.4). The byte-grouped codecs
split little-endian 2- or 4-byte numbers into their top byte (sign and
exponent bits, which compress well) and the rest (mantissa bits, which do
not), and compress only the top bytes: with zstd (codec 3), float32 weights
shrink to ~0.83 and bfloat16 to ~0.67 of their size, where plain zstd gives
~0.93 and ~0.78 by issue 5's figures; packed into 4-bit codes (codec 4), float32 weights shrink to
~0.88 and decode in ~0.7 of the time. The writer
picks per object (:func:`choose_chunk_codec`): float32 weights usually get
codec 4, bfloat16 codec 3.

Chunks are encoded and decoded a batch at a time: the byte planes of a whole
batch are split in one call, the batch's zstd frames are (de)compressed in
one call, and a reader's run of raw and packed blobs is parsed and decoded in
one C call (:func:`decode_run`), all without the GIL. Per-chunk Python work
is a handful of slices where the C accelerator is built.
"""

from __future__ import annotations

import enum
import struct
import threading
from typing import TYPE_CHECKING, NamedTuple, Union, cast

import numpy as np
import zstandard

from scribestore.store import planes

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

__all__ = [
    "ChunkCodec",
    "Part",
    "choose_chunk_codec",
    "decode_chunk",
    "decode_chunks",
    "decode_run",
    "encode_chunk",
    "encode_chunks",
]

#: A piece of an encoded blob; a blob is the concatenation of its parts.
Part = Union[bytes, bytearray, memoryview]  # noqa: UP007 (a runtime alias on 3.10)

_GROUP_HEAD = struct.Struct("<BBBI")  # codec byte 3, k, head, zlen
_PACKED_HEAD = struct.Struct("<BBBI")  # codec byte 4, k, head, escapes (then the table)
# A packed top plane with more escapes than one in this many falls back to zstd.
_MAX_ESCAPE_RATE = 16
# A codec must save at least this fraction on the probe to be chosen.
_MIN_SAVING = 0.05
_PROBE = 1 << 20
_ZSTD_LEVEL = 1
# One zstd call per batch, run without the GIL; zstd's own worker threads were
# measured slower here than one (they are created per call).
_THREADS = 1


class ChunkCodec(enum.IntEnum):
    """How the chunks of one object are encoded (a writer's choice, not stored).

    The blob codec byte is 0 (raw), 1 (ZSTD), 3 (GROUP*: top bytes in a zstd
    frame) or 4 (PACKED*: top bytes as 4-bit codes).
    """

    RAW = 0
    ZSTD = 1
    GROUP2 = 32
    GROUP4 = 34
    PACKED2 = 48
    PACKED4 = 50

    @property
    def width(self) -> int:
        """Element width in bytes for the byte-grouped codecs (0 for the others)."""
        return _WIDTH.get(self, 0)

    @property
    def packed(self) -> bool:
        """Whether top bytes are packed into 4-bit codes rather than zstd-compressed."""
        return self.value >= 48


_WIDTH = {ChunkCodec.GROUP2: 2, ChunkCodec.GROUP4: 4, ChunkCodec.PACKED2: 2, ChunkCodec.PACKED4: 4}
# Decoding speed order, fastest first, for choose_chunk_codec.
_SPEED_ORDER = (
    ChunkCodec.RAW,
    ChunkCodec.PACKED4,
    ChunkCodec.PACKED2,
    ChunkCodec.ZSTD,
    ChunkCodec.GROUP4,
    ChunkCodec.GROUP2,
)


_local = threading.local()
# The top-byte stream is a few distinct exponent values: entropy coding does
# the work, so a shallow match search with long minimum matches is ~3x faster
# than level 1 and compresses slightly better.
_TOP_PARAMS = zstandard.ZstdCompressionParameters(
    window_log=17,
    chain_log=6,
    hash_log=6,
    search_log=1,
    min_match=7,
    target_length=0,
    strategy=zstandard.STRATEGY_FAST,
    write_checksum=0,
)


def compressors() -> tuple[zstandard.ZstdCompressor, zstandard.ZstdCompressor]:
    """(general, top-byte) compressors of this thread: they are not thread-safe."""
    pair: tuple[zstandard.ZstdCompressor, zstandard.ZstdCompressor] | None
    pair = getattr(_local, "pair", None)
    if pair is None:
        pair = (
            zstandard.ZstdCompressor(level=_ZSTD_LEVEL, write_checksum=False),
            zstandard.ZstdCompressor(compression_params=_TOP_PARAMS),
        )
        _local.pair = pair
    return pair


def _decompressor() -> zstandard.ZstdDecompressor:
    """This thread's decompressor: creating one per call costs more than decoding."""
    dctx: zstandard.ZstdDecompressor | None = getattr(_local, "dctx", None)
    if dctx is None:
        dctx = _local.dctx = zstandard.ZstdDecompressor()
    return dctx


def _segments(out: zstandard.BufferWithSegmentsCollection, count: int) -> list[memoryview]:
    return [memoryview(cast("bytes", out[i])) for i in range(count)]


def compress_all(cctx: zstandard.ZstdCompressor, inputs: list[Part]) -> list[Part]:
    """One zstd frame per input, compressed by ``cctx`` (one of :func:`compressors`)."""
    if not inputs:
        return []
    if len(inputs) == 1:
        return [cctx.compress(inputs[0])]
    return list(_segments(cctx.multi_compress_to_buffer(inputs, threads=_THREADS), len(inputs)))


def _decompress_all(frames: list[memoryview], sizes: list[int]) -> list[memoryview]:
    """Decompress frames whose decompressed sizes are known (never more)."""
    if not frames:
        return []
    out = _decompressor().multi_decompress_to_buffer(
        list[Part](frames),
        decompressed_sizes=np.array(sizes, dtype=np.uint64).data,
        threads=_THREADS,
    )
    return _segments(out, len(frames))


def _raw(data: Part) -> list[Part]:
    return [b"\x00", data]


def encode_chunks(
    span: memoryview, offset: int, sizes: Sequence[int], codec: ChunkCodec, keep: Sequence[bool]
) -> list[list[Part] | None]:
    """Blobs, as lists of parts, for consecutive chunks that exactly cover ``span``.

    ``span`` starts at byte ``offset`` of its object (element boundaries of
    the byte-grouped codecs are counted from the object's start); ``sizes``
    are the chunk sizes and ``keep`` says which chunks to encode (None for the
    others). A chunk whose encoding would not be smaller is stored raw. Parts
    may be views into ``span``.
    """
    starts = [0] * len(sizes)
    pos = 0
    for i, size in enumerate(sizes):
        starts[i] = pos
        pos += size
    if pos != len(span):
        raise ValueError("chunk sizes do not add up to the span")
    wanted = [i for i, k in enumerate(keep) if k]
    out: list[list[Part] | None] = [None] * len(sizes)
    if codec is ChunkCodec.ZSTD:
        views: list[Part] = [span[starts[i] : starts[i] + sizes[i]] for i in wanted]
        zs = compress_all(compressors()[0], views)
        for i, view, z in zip(wanted, views, zs, strict=True):
            out[i] = [b"\x01", z] if len(z) < len(view) else _raw(view)
        return out
    k = codec.width
    if not k:
        for i in wanted:
            out[i] = _raw(span[starts[i] : starts[i] + sizes[i]])
        return out
    chunks = [(i, starts[i], sizes[i]) for i in wanted]
    for i, parts in _encode_grouped(span, offset, chunks, codec):
        out[i] = parts
    return out


class _Whole(NamedTuple):
    """A chunk's whole elements: which chunk, its head bytes, first element, how many."""

    chunk: int
    head: int
    first: int
    n: int


def _encode_grouped(
    span: memoryview, offset: int, chunks: list[tuple[int, int, int]], codec: ChunkCodec
) -> Iterator[tuple[int, list[Part]]]:
    """(chunk, blob parts) for byte-grouped chunks given as (chunk, start, size) in ``span``."""
    k = codec.width
    grid = (-offset) % k
    whole = (len(span) - grid) // k
    top_plane, rest = planes.split(span[grid : grid + k * whole], k)
    where: dict[int, tuple[int, int]] = {}
    elements: list[_Whole] = []
    for i, start, size in chunks:
        where[i] = (start, size)
        head = (-(offset + start)) % k
        count = (size - head) // k
        if count < 4:
            yield i, _raw(span[start : start + size])
        else:
            elements.append(_Whole(i, head, (start + head - grid) // k, count))
    # Top bytes: packed where the codec asks and escapes are rare, else zstd.
    tops: list[tuple[_Whole, list[Part]]] = []
    squeeze: list[_Whole] = []
    for e in elements:
        packed = planes.pack_top(top_plane[e.first : e.first + e.n]) if codec.packed else None
        if packed is not None and len(packed[2]) * _MAX_ESCAPE_RATE <= e.n:
            header = _PACKED_HEAD.pack(4, k, e.head, len(packed[2]))
            tops.append((e, [header, *packed]))
        else:
            squeeze.append(e)
    frames: list[Part] = [top_plane[e.first : e.first + e.n] for e in squeeze]
    for e, top in zip(squeeze, compress_all(compressors()[1], frames), strict=True):
        tops.append((e, [_GROUP_HEAD.pack(3, k, e.head, len(top)), top]))
    for e, parts in tops:
        start, size = where[e.chunk]
        j, n = e.first, e.n
        if sum(len(p) for p in parts) + (k - 1) * n + (size - k * n) > size:
            yield e.chunk, _raw(span[start : start + size])
            continue
        if k == 4:
            parts += [rest[2 * j : 2 * (j + n)], rest[2 * whole + j : 2 * whole + j + n]]
        else:
            parts.append(rest[j : j + n])
        parts.append(span[start : start + e.head])
        parts.append(span[start + e.head + k * n : start + size])
        yield e.chunk, parts


def encode_chunk(data: memoryview, codec: ChunkCodec, offset: int = 0) -> bytes:
    """The blob for ``data`` (the chunk at ``offset`` in its object)."""
    parts = encode_chunks(data, offset, [len(data)], codec, [True])[0]
    assert parts is not None
    return b"".join(parts)


def decode_chunks(blobs: Sequence[memoryview], sizes: Sequence[int], out: memoryview) -> None:
    """Decode consecutive chunks' blobs into ``out`` (exactly their total size).

    Raises:
        ValueError: a blob is malformed (unknown codec byte, bad lengths,
            undecodable zstd). Integrity is checked by the caller's hashing.
    """
    if sum(sizes) != len(out):
        raise ValueError("chunk sizes do not add up to the output")
    frames: list[memoryview] = []
    frame_sizes: list[int] = []
    targets: list[_Group] = []
    zstd_at: list[tuple[int, int]] = []  # (output position, frame number)
    pos = 0
    for blob, size in zip(blobs, sizes, strict=True):
        if not blob:
            raise ValueError("empty chunk blob")
        code = blob[0]
        if code == 0:
            if len(blob) - 1 != size:
                raise ValueError("raw chunk blob has the wrong length")
            out[pos : pos + size] = blob[1:]
        elif code == 1:
            zstd_at.append((pos, len(frames)))
            frames.append(blob[1:])
            frame_sizes.append(size)
        elif code == 3:
            group = _parse_group(blob, size, pos, len(frames))
            targets.append(group)
            frames.append(blob[_GROUP_HEAD.size : group.rest])
            frame_sizes.append(group.n)
        elif code == 4:
            targets.append(_parse_group(blob, size, pos, -1))
        else:
            raise ValueError(f"unknown chunk codec byte {code}")
        pos += size
    try:
        decoded = _decompress_all(frames, frame_sizes)
    except zstandard.ZstdError as exc:
        raise ValueError(f"undecodable chunk blob: {exc}") from exc
    for at, frame in zstd_at:
        out[at : at + frame_sizes[frame]] = decoded[frame]
    if targets:
        _merge(targets, decoded, out)


def decode_run(data: memoryview, spans: Sequence[tuple[int, int, int]], out: memoryview) -> None:
    """Decode consecutive chunks whose blobs lie in ``data`` into ``out``.

    ``spans`` holds (offset in ``data``, blob length, chunk size) per chunk,
    in output order. Raw and packed blobs are decoded in one call without the
    GIL where the C accelerator is built; zstd blobs go through
    :func:`decode_chunks`, a run of consecutive ones at a time.

    Raises:
        ValueError: as :func:`decode_chunks`, or a span lies outside ``data``.
    """
    layout = np.array(spans, dtype=np.int64).reshape(-1, 3)
    left = planes.decode_run(data, layout, out)
    if not left:
        return
    ends = np.cumsum(layout[:, 2]).tolist()
    i = 0
    while i < len(left):
        j = i + 1
        while j < len(left) and left[j] == left[j - 1] + 1:
            j += 1
        first, last = left[i], left[j - 1]
        start = ends[first] - spans[first][2]
        blobs = [_blob(data, spans[b]) for b in left[i:j]]
        decode_chunks(blobs, [spans[b][2] for b in left[i:j]], out[start : ends[last]])
        i = j


def _blob(data: memoryview, span: tuple[int, int, int]) -> memoryview:
    offset, length, _ = span
    if offset < 0 or length < 0 or offset + length > len(data):
        raise ValueError("chunk blob lies outside its pack's run")
    return data[offset : offset + length]


class _Group(NamedTuple):
    """A byte-grouped blob (codec 3 or 4) to merge: where it goes, how it is laid out."""

    pos: int  # output position
    k: int  # element width
    head: int  # bytes before the first whole element
    n: int  # whole elements
    rest: int  # where the rest of the elements starts in the blob
    frame: int  # number of the top bytes' zstd frame in the batch (-1: packed)
    blob: memoryview


def _parse_group(blob: memoryview, size: int, pos: int, frame: int) -> _Group:
    if len(blob) < _GROUP_HEAD.size:
        raise ValueError("byte-grouped chunk: blob too short")
    _, k, head, count = _GROUP_HEAD.unpack_from(blob)
    if k not in (2, 4) or head >= k or head > size:
        raise ValueError(f"byte-grouped chunk: bad element width {k} or head {head}")
    n = (size - head) // k
    # count is the zstd frame's length (codec 3) or the number of escapes (4).
    top = count if frame >= 0 else planes.TABLE + (n + 1) // 2 + count
    rest = _GROUP_HEAD.size + top
    if rest + (k - 1) * n + (size - k * n) != len(blob):
        raise ValueError("byte-grouped chunk: payload has the wrong length")
    return _Group(pos, k, head, n, rest, frame, blob)


def _merge(targets: list[_Group], decoded: list[memoryview], out: memoryview) -> None:
    """Put the byte planes of byte-grouped chunks back together in ``out``."""
    for pos, k, head, n, rest, frame, blob in targets:
        raw = rest + (k - 1) * n
        end = pos + head + k * n
        if frame >= 0:
            planes.merge(out[pos + head : end], k, decoded[frame], blob[rest:raw])
        else:
            codes = _PACKED_HEAD.size + planes.TABLE
            escapes = codes + (n + 1) // 2
            table = blob[_PACKED_HEAD.size : codes]
            planes.merge_packed(
                out[pos + head : end],
                k,
                table,
                blob[codes:escapes],
                blob[escapes:rest],
                blob[rest:raw],
            )
        out[pos : pos + head] = blob[raw : raw + head]
        out[end : end + len(blob) - raw - head] = blob[raw + head :]


def decode_chunk(blob: memoryview, size: int) -> bytes:
    """The bytes of one chunk from its blob.

    Raises:
        ValueError: as :func:`decode_chunks`.
    """
    out = bytearray(size)
    decode_chunks([blob], [size], memoryview(out))
    return bytes(out)


def choose_chunk_codec(probe: memoryview) -> ChunkCodec:
    """The codec for an object whose first bytes are ``probe`` (FORMAT 3.4).

    Of the codecs in decoding-speed order, the first whose probe size is
    within 5 % of the raw size of the smallest: compression must save 5 % to
    be used, and a slower codec must save 5 % more than a faster one.
    """
    sample = probe[:_PROBE]
    if len(sample) < 4096:
        return ChunkCodec.RAW
    sizes = {c: len(encode_chunk(sample, c)) for c in _SPEED_ORDER}
    smallest = min(sizes.values())
    return next(c for c in _SPEED_ORDER if sizes[c] <= smallest + _MIN_SAVING * len(sample))
