"""Chunked objects: content-defined chunks in packs, plus a recipe object.

See docs/FORMAT.md sections 3.3-3.5. Writing cuts the content with FastCDC,
stores only chunks no pack holds yet, publishes the packs, and only then the
recipe under the whole content's digest. Reading is
:mod:`scribestore.store.chunk_stream`.

Work is split so that the two cores of a small machine both stay busy: the
calling thread cuts and hashes chunks (which hold the GIL), one thread
encodes new chunks into packs (byte planes, packing and zstd run without the
GIL), one hashes the whole content (the object's name, or the proof that it
did not change since it was named: FORMAT 4.3), and the pack writer
publishes full packs.
"""

from __future__ import annotations

import io
import itertools
import socket
import struct
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, TYPE_CHECKING, NamedTuple, Protocol

import blake3
import numpy as np
from pyfastcdc import FastCDC

from scribestore.store import planes
from scribestore.store.blobcodec import (
    ChunkCodec,
    Part,
    choose_chunk_codec,
    encode_chunks,
)
from scribestore.store.loose import LOOSE_LIMIT
from scribestore.store.pack_index import PackIndex
from scribestore.store.packs import PackWriter

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Sequence

    from numpy.typing import NDArray

    from scribestore.storage import Storage

__all__ = [
    "CHUNK_THRESHOLD",
    "Batch",
    "BlobSink",
    "BufferWindows",
    "ChunkWrite",
    "CopyingRawIO",
    "FileWindows",
    "RecipeEntry",
    "StreamWindows",
    "first_chunk",
    "parse_recipe",
    "recipe_digests",
    "store_packed",
    "write_chunks",
]

#: Content at least this large is chunked.
CHUNK_THRESHOLD = LOOSE_LIMIT
AVG_CHUNK = 64 << 10
MIN_CHUNK = 16 << 10
MAX_CHUNK = 256 << 10
_RECIPE_ENTRY = struct.Struct("<32sQ")
_RECIPE_DTYPE = np.dtype([("digest", "V32"), ("size", "<u8")])
# The content is cut one window at a time, in _RING recycled buffers, and
# encoded in batches of about _BATCH bytes; at most _DEPTH batches are in
# flight, which bounds memory to the ring and a few batches.
WINDOW = 8 << 20
_RING = 4
_BATCH = 4 << 20
_DEPTH = 6

RecipeEntry = tuple[bytes, int]


def new_chunker() -> FastCDC:
    """The chunker every writer uses: the parameters are part of the format."""
    return FastCDC(AVG_CHUNK, min_size=MIN_CHUNK, max_size=MAX_CHUNK, normalized_chunking=1)


def first_chunk(prefix: memoryview) -> memoryview:
    """The first chunk of any content that starts with ``prefix``.

    ``prefix`` must hold at least :data:`MAX_CHUNK` bytes or the whole
    content: a cut depends only on the bytes before it, and the first cut
    falls within the first :data:`MAX_CHUNK` bytes.
    """
    view = prefix[:MAX_CHUNK]
    return view[: next(iter(new_chunker().cut_buf(view))).length] if len(view) else view


def parse_recipe(payload: bytes | memoryview, size: int) -> list[RecipeEntry]:
    """The (chunk digest, chunk size) list of a recipe payload.

    Raises:
        ValueError: the payload is malformed or its sizes do not add up to ``size``.
    """
    _recipe_table(payload, size)
    return list(_RECIPE_ENTRY.iter_unpack(payload))


def recipe_digests(payload: bytes | memoryview, size: int) -> NDArray[np.void]:
    """The chunk digests of a recipe payload, in order, as 32-byte items (no entry made).

    Raises:
        ValueError: as :func:`parse_recipe`.
    """
    return np.ascontiguousarray(_recipe_table(payload, size)["digest"])


def _recipe_table(payload: bytes | memoryview, size: int) -> NDArray[np.void]:
    """The recipe as a structured array, checked in bulk before anything is made per chunk."""
    if len(payload) % _RECIPE_ENTRY.size:
        raise ValueError("recipe length is not a whole number of entries")
    table = np.frombuffer(payload, dtype=_RECIPE_DTYPE)
    sizes = table["size"]
    if len(sizes) and (int(sizes.min()) == 0 or int(sizes.max()) > MAX_CHUNK):
        raise ValueError(f"recipe names a chunk of 0 or more than {MAX_CHUNK} bytes")
    if int(sizes.sum(dtype=np.uint64)) != size:
        raise ValueError("recipe chunk sizes do not add up to the object's size")
    return table


class BufferWindows:
    """Windows of an in-memory buffer: views of immutable bytes, copies of anything else."""

    def __init__(self, view: memoryview) -> None:
        self._view = view
        self.size = len(view)

    @property
    def view(self) -> memoryview:
        """The whole buffer (not a private copy)."""
        return self._view

    def window(self, start: int, length: int, into: bytearray) -> memoryview:
        """``length`` bytes from ``start`` (in ``into`` unless the buffer is immutable)."""
        if isinstance(self._view.obj, bytes):
            return self._view[start : start + length]
        out = memoryview(into)[:length]
        out[:] = self._view[start : start + length]
        return out


class FileWindows:
    """Windows of an open file, read into private buffers."""

    def __init__(self, f: IO[bytes], size: int) -> None:
        self._f = f
        self.size = size

    @property
    def file(self) -> IO[bytes]:
        """The open file."""
        return self._f

    def window(self, start: int, length: int, into: bytearray) -> memoryview:
        """``length`` bytes from ``start`` in ``into`` (fewer if the file shrank).

        Raises:
            OSError: the file cannot be read.
        """
        self._f.seek(start)
        out = memoryview(into)[:length]
        got = 0
        while got < length:
            n = self._f.readinto(out[got:])  # type: ignore[attr-defined]
            if not n:
                break
            got += n
        return out[:got]


_NO_DATA = (
    "put() needs a blocking binary stream; this one had no data ready (a non-blocking "
    "stream returns None), and an end cannot be told from a pause"
)


class CopyingRawIO(io.RawIOBase):
    """Base of streams whose ``readinto`` only copies into the buffer it is
    given, and keeps no reference to it.

    :class:`StreamWindows` reads such streams straight into its window
    buffers. Any other stream (the standard library's file, memory and
    socket streams apart) is read with ``read``, and what it returns is
    copied: a stream given a view of a window could write into it after its
    bytes were hashed, and the chunks stored would not be the bytes named.
    """


def _fills_privately(stream: object) -> bool:
    """Whether ``stream.readinto`` may be given a view of a window buffer."""
    kind = type(stream)
    if kind in (io.FileIO, io.BytesIO, socket.SocketIO):
        return True  # exact types: a subclass may override readinto
    if kind in (io.BufferedReader, io.BufferedRandom):
        # A large read goes straight to the raw stream's readinto.
        try:
            return _fills_privately(stream.raw)  # type: ignore[attr-defined]
        except ValueError:  # detached
            return False
    return isinstance(stream, CopyingRawIO)


def _byte_view(block: bytes | bytearray | memoryview) -> memoryview:
    """``block`` as a flat view of unsigned bytes."""
    view = memoryview(block)
    if view.format == "B" and view.ndim == 1:
        return view
    return view.cast("B") if view.c_contiguous else memoryview(view.tobytes())


class StreamWindows:
    """Windows of a binary stream read once, forward, without spooling it.

    Its size is unknown until the stream ends, so :attr:`size` is a bound no
    stream reaches and the chunking pass ends at the first short window. A
    window starts where the last cut of the one before it fell, no more than
    :data:`MAX_CHUNK` bytes back, so those bytes are kept between windows.
    """

    size = 1 << 62

    def __init__(self, head: bytes, stream: IO[bytes], block: int) -> None:
        self._tail = memoryview(head)  # the bytes from _tail_start to what has been read
        self._tail_start = 0
        self._stream = stream
        self._block = block
        self._ended = False
        self._direct = _fills_privately(stream)
        # Bytes a read returned beyond what was asked, for the next window.
        self._pending = memoryview(b"")
        #: What reading the stream raised, so the caller can tell it from a store failure.
        self.read_error: OSError | None = None

    def window(self, start: int, length: int, into: bytearray) -> memoryview:
        """``length`` bytes from ``start`` in ``into`` (fewer once the stream ends).

        Raises:
            TypeError: the stream returned text, or None (non-blocking).
            ValueError: ``start`` lies before the bytes kept (a stream is read
                forward only).
            OSError: reading the stream failed.
        """
        carry = start - self._tail_start
        if not 0 <= carry <= len(self._tail):
            raise ValueError(f"a stream is read forward only; window at {start} is out of reach")
        if len(self._tail) - carry > length:
            # Read beyond this window already (a head or a read longer than
            # asked): those bytes come first next time.
            beyond = bytes(self._tail[carry + length :])
            self._pending = memoryview(beyond + bytes(self._pending))
            self._tail = self._tail[: carry + length]
        out = memoryview(into)[:length]
        got = len(self._tail) - carry
        out[:got] = self._tail[carry:]
        while got < length and not self._ended:
            try:
                n = self._read_into(out[got : got + min(self._block, length - got)])
            except OSError as exc:
                self.read_error = exc
                raise
            self._ended = n == 0
            got += n
        keep = max(0, got - MAX_CHUNK)
        self._tail, self._tail_start = memoryview(bytes(out[keep:got])), start + keep
        return out[:got]

    def _read_into(self, out: memoryview) -> int:
        """Copy the stream's next bytes into ``out``: at most ``len(out)``, 0 at its end.

        Raises:
            TypeError: the stream returned text, or None (non-blocking).
            OSError: reading failed, or ``readinto`` returned an impossible count.
        """
        if self._pending:
            n = min(len(out), len(self._pending))
            out[:n] = self._pending[:n]
            self._pending = self._pending[n:]
            return n
        if self._direct:
            n = self._stream.readinto(out)  # type: ignore[attr-defined]
            if n is None:
                raise TypeError(_NO_DATA)
            if not isinstance(n, int) or not 0 <= n <= len(out):
                raise OSError(f"the stream's readinto() returned {n!r} for {len(out)} bytes")
            return n
        block = self._stream.read(len(out))
        if block is None:
            raise TypeError(_NO_DATA)
        if not isinstance(block, (bytes, bytearray, memoryview)):
            raise TypeError("put() needs a binary stream; this one returned text")
        view = _byte_view(block)
        n = min(len(out), len(view))
        out[:n] = view[:n]
        if len(view) > n:  # more than asked: kept, copied, as the stream may reuse it
            self._pending = memoryview(bytes(view[n:]))
        return n


class Windows(Protocol):
    """A source of content windows: :class:`BufferWindows`, :class:`FileWindows`
    or :class:`StreamWindows`.

    A window's bytes must not change while they are cut, hashed and encoded:
    the chunks stored must be the bytes that were hashed. Sources copy into
    private buffers unless the content is immutable.
    """

    size: int

    def window(self, start: int, length: int, into: bytearray) -> memoryview: ...


class _Ring:
    """Window buffers, each reused once every job that reads it has finished."""

    def __init__(self, slots: int, size: int) -> None:
        self._slots = slots
        self._size = size
        self._busy: deque[tuple[bytearray, list[Future[None]]]] = deque()
        self._free: list[bytearray] = []

    def take(self) -> bytearray:
        if self._free:
            return self._free.pop()
        if len(self._busy) < self._slots:
            return bytearray(self._size)
        buf, jobs = self._busy.popleft()
        for job in jobs:
            job.result()
        return buf

    def give_back(self, buf: bytearray, jobs: list[Future[None]]) -> None:
        self._busy.append((buf, jobs))


class ChunkWrite(NamedTuple):
    """What :func:`write_chunks` did."""

    recipe: bytes  # the recipe payload
    size: int  # bytes cut, to check against the size that was hashed
    new_bytes: int  # logical bytes of the chunks newly stored
    digest: str  # BLAKE3 of the bytes cut, to check against the object's name


def write_chunks(
    storage: Storage,
    index: PackIndex,
    source: Windows,
    probe: memoryview,
    advance: Callable[[int], object] = lambda n: None,
) -> ChunkWrite:
    """Store the chunks of ``source``'s content; publish their packs.

    Chunks already in ``index`` as loaded are not stored again: the caller
    refreshes it first to see packs other writers have published. Returns
    once every pack holding a new chunk and its index are published.

    Raises:
        OSError: reading the source or publishing a pack failed.
    """
    codec = choose_chunk_codec(probe)
    writer = PackWriter(storage, index)
    encoder = ThreadPoolExecutor(1, thread_name_prefix="scribestore-encode")
    verifier = ThreadPoolExecutor(1, thread_name_prefix="scribestore-verify")
    ring = _Ring(_RING, min(WINDOW, source.size))
    rehash = blake3.blake3()
    chunker = new_chunker()
    recipe = bytearray()
    stored: set[bytes] = set()
    inflight: deque[Future[None]] = deque()
    start = new_bytes = 0
    try:
        while start < source.size:
            length = min(WINDOW, source.size - start)
            buf = ring.take()
            view = source.window(start, length, buf)
            sizes = [c.length for c in chunker.cut_buf(view)] if len(view) else []
            if start + len(view) < source.size and len(view) == length:
                sizes.pop()  # the window cut it short; the next window starts there
            if not sizes:
                break  # the file shrank: the caller sees the short size
            view = view[: sum(sizes)]
            jobs = [verifier.submit(_update, rehash, view)]
            pos = 0
            for batch in _batches(sizes):
                span = view[pos : pos + sum(batch)]
                digests, keep = _hash_batch(span, batch, index, stored, recipe)
                new_bytes += sum(n for n, k in zip(batch, keep, strict=True) if k)
                if any(keep):
                    job = Batch(span, start + pos, batch, keep, digests)
                    jobs.append(encoder.submit(_store_batch, writer, job, codec))
                    inflight.append(jobs[-1])
                pos += len(span)
                while len(inflight) > _DEPTH:
                    inflight.popleft().result()
            ring.give_back(buf, jobs)
            inflight.append(jobs[0])
            start += pos
            advance(pos)
        while inflight:
            inflight.popleft().result()
        writer.close()
    except BaseException:
        encoder.shutdown(wait=True, cancel_futures=True)
        writer.abort()
        raise
    finally:
        encoder.shutdown(wait=True)
        verifier.shutdown(wait=True, cancel_futures=True)
    return ChunkWrite(bytes(recipe), start, new_bytes, str(rehash.hexdigest()))


def _update(hasher: blake3.blake3, view: memoryview) -> None:
    hasher.update(view)  # a job like the encoder's (None), not the hasher


def _batches(sizes: list[int]) -> Iterator[list[int]]:
    """Consecutive groups of chunk sizes of about :data:`_BATCH` bytes each."""
    batch: list[int] = []
    total = 0
    for size in sizes:
        batch.append(size)
        total += size
        if total >= _BATCH:
            yield batch
            batch, total = [], 0
    if batch:
        yield batch


def _hash_batch(
    span: memoryview, sizes: list[int], index: PackIndex, stored: set[bytes], recipe: bytearray
) -> tuple[list[bytes], list[bool]]:
    """Digest each chunk, append it to the recipe, and say which ones are new."""
    digests: list[bytes] = []
    pos = 0
    for size in sizes:
        digest = blake3.blake3(span[pos : pos + size]).digest()
        pos += size
        recipe += _RECIPE_ENTRY.pack(digest, size)
        digests.append(digest)
    keep: list[bool] = []
    for digest, reused in zip(digests, index.reusable(digests), strict=True):
        new = not reused and digest not in stored
        if new:
            stored.add(digest)
        keep.append(new)
    return digests, keep


class Batch(NamedTuple):
    """Consecutive chunks of an object for the encoder: their bytes and which are new."""

    span: memoryview  # the chunks' bytes, one after another
    offset: int  # where ``span`` starts in the object
    sizes: Sequence[int]
    keep: Sequence[bool]  # which chunks to store
    digests: Sequence[bytes]


class BlobSink(Protocol):
    """Where encoded blobs go: the part of :class:`~scribestore.store.packs.PackWriter` used."""

    def add(self, digest: bytes, parts: Iterable[Part], size: int) -> None: ...

    def room(self) -> memoryview: ...

    def added(self, blobs: Iterable[tuple[bytes, int, int]]) -> None: ...

    def seal(self) -> None: ...


def _store_batch(sink: BlobSink, batch: Batch, codec: ChunkCodec) -> None:
    """Encode a batch's new chunks and add them to the packs (encoder thread)."""
    if codec.packed and planes.NATIVE:
        store_packed(sink, batch, codec)
        return
    blobs = encode_chunks(batch.span, batch.offset, batch.sizes, codec, batch.keep)
    for digest, size, parts in zip(batch.digests, batch.sizes, blobs, strict=True):
        if parts is not None:
            sink.add(digest, parts, size)


def store_packed(sink: BlobSink, batch: Batch, codec: ChunkCodec) -> None:
    """Encode a batch's new chunks with a packed codec by C, straight into pack buffers.

    The same blobs as :func:`~scribestore.store.blobcodec.encode_chunks` (a test
    checks it), without the intermediate planes and copies: one C call per
    pack buffer. Needs the C accelerator.
    """
    span, offset, sizes, keep, digests = batch
    starts = [0, *itertools.accumulate(sizes)][:-1]
    wanted = [i for i, k in enumerate(keep) if k]
    layout = np.array([(starts[i], sizes[i]) for i in wanted], dtype=np.int64).reshape(-1, 2)
    lengths = np.zeros(len(wanted), dtype=np.int64)
    pos = 0
    while pos < len(wanted):
        done = planes.encode_packed(
            span, codec.width, offset, layout[pos:], sink.room(), lengths[pos:]
        )
        written = lengths[pos : pos + done].tolist()
        chunks = wanted[pos : pos + done]
        sink.added((digests[i], n, sizes[i]) for i, n in zip(chunks, written, strict=True) if n)
        pos += done
        if pos < len(wanted):
            sink.seal()  # no room for the next chunk's largest blob
    fallback = ChunkCodec.GROUP4 if codec.width == 4 else ChunkCodec.GROUP2
    for i, n in zip(wanted, lengths.tolist(), strict=True):
        if not n:  # too many escapes to pack: zstd, as encode_chunks would
            one = span[starts[i] : starts[i] + sizes[i]]
            blob = encode_chunks(one, offset + starts[i], [sizes[i]], fallback, [True])[0]
            assert blob is not None
            sink.add(digests[i], blob, sizes[i])
