"""Chunked objects: content-defined chunks in packs, plus a recipe object.

See docs/FORMAT.md sections 3.3-3.5. Writing chunks the content with FastCDC,
stores only chunks no pack holds yet, publishes the packs, and only then the
recipe under the whole content's digest. Reading fetches each chunk's blob
(adjacent blobs of a pack in one ranged read) and decodes it; the caller
hashes the reassembled content.
"""

from __future__ import annotations

import struct
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import IO, TYPE_CHECKING

import blake3
from pyfastcdc import FastCDC

from scribestore.chunkcodec import ChunkCodec, choose_chunk_codec, decode_chunk, encode_chunk
from scribestore.packs import ChunkLocation, PackIndex, PackWriter, pack_path

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from scribestore._storage import Storage

__all__ = [
    "CHUNK_THRESHOLD",
    "ChunkedStream",
    "RecipeEntry",
    "parse_recipe",
    "write_chunks",
]

#: Content at least this large is chunked.
CHUNK_THRESHOLD = 4 << 20
AVG_CHUNK = 64 << 10
MIN_CHUNK = 16 << 10
MAX_CHUNK = 256 << 10
_RECIPE_ENTRY = struct.Struct("<32sQ")
# Largest ranged read when fetching adjacent blobs of one pack.
_MAX_RUN = 4 << 20
# Worker threads for hashing/encoding chunks and for reading/decoding them.
_WORKERS = 1
# Bytes of chunks per job, and jobs in flight (bounds memory to ~30 MiB).
_BATCH = 4 << 20
_DEPTH = 3

RecipeEntry = tuple[bytes, int]


def new_chunker() -> FastCDC:
    """The chunker every writer uses: the parameters are part of the format."""
    return FastCDC(AVG_CHUNK, min_size=MIN_CHUNK, max_size=MAX_CHUNK, normalized_chunking=1)


def parse_recipe(payload: bytes | memoryview, size: int) -> list[RecipeEntry]:
    """The (chunk digest, chunk size) list of a recipe payload.

    Raises:
        ValueError: the payload is malformed or its sizes do not add up to ``size``.
    """
    if len(payload) % _RECIPE_ENTRY.size:
        raise ValueError("recipe length is not a whole number of entries")
    entries = list(_RECIPE_ENTRY.iter_unpack(payload))
    if sum(s for _, s in entries) != size:
        raise ValueError("recipe chunk sizes do not add up to the object's size")
    return entries


def write_chunks(
    storage: Storage, index: PackIndex, chunks: Iterable[memoryview], probe: memoryview
) -> tuple[bytes, int, int]:
    """Store the chunks of one content; publish their packs.

    This thread cuts, hashes and encodes (FastCDC and BLAKE3 hold the GIL, so
    more threads would not help); the pack writer's thread publishes full
    packs meanwhile, so disk and network time overlap the CPU work.

    Returns:
        The recipe payload, the number of bytes read (so the caller can check
        it against the size it hashed), and the new bytes stored.
    """
    codec = choose_chunk_codec(probe)
    index.refresh()
    writer = PackWriter(storage, index)
    recipe = bytearray()
    size = new_bytes = 0
    try:
        for view in chunks:
            digest = blake3.blake3(view).digest()
            recipe += _RECIPE_ENTRY.pack(digest, len(view))
            if digest not in index and not writer.has(digest):
                if codec is ChunkCodec.RAW:
                    writer.add_raw(digest, view)
                else:
                    writer.add(digest, encode_chunk(view, codec, size), len(view))
                new_bytes += len(view)
            size += len(view)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return bytes(recipe), size, new_bytes


def file_chunks(f: IO[bytes]) -> Iterator[memoryview]:
    """Chunks of a binary file, read through a bounded buffer."""
    for chunk in new_chunker().cut_stream(f):
        yield chunk.data


def buffer_chunks(buf: memoryview) -> Iterator[memoryview]:
    """Chunks of an in-memory buffer (views, no copies)."""
    for chunk in new_chunker().cut_buf(buf):
        yield chunk.data


class ChunkedStream:
    """``read(n)`` over the decoded chunks of a recipe (not verified here)."""

    def __init__(self, storage: Storage, index: PackIndex, recipe: list[RecipeEntry]) -> None:
        self._storage = storage
        self._index = index
        self._recipe = recipe
        self._blocks = self._decoded()
        self._buffer = memoryview(b"")

    def _locate(self, digest: bytes) -> ChunkLocation:
        location = self._index.get(digest)
        if location is None:
            self._index.refresh()
            location = self._index.get(digest)
        if location is None:
            raise FileNotFoundError(f"chunk {digest.hex()} is in no pack")
        return location

    def _runs(self) -> Iterator[tuple[ChunkLocation, int, list[tuple[int, ChunkLocation]]]]:
        """Groups of recipe entries whose blobs follow each other in one pack."""
        i = 0
        while i < len(self._recipe):
            first = self._locate(self._recipe[i][0])
            run = [(self._recipe[i][1], first)]
            end = first.offset + first.length
            while i + len(run) < len(self._recipe) and end - first.offset < _MAX_RUN:
                digest, size = self._recipe[i + len(run)]
                loc = self._locate(digest)
                if loc.pack != first.pack or loc.offset != end:
                    break
                run.append((size, loc))
                end = loc.offset + loc.length
            yield first, end - first.offset, run
            i += len(run)

    def _fetch(
        self, first: ChunkLocation, length: int, run: list[tuple[int, ChunkLocation]]
    ) -> list[bytes | memoryview]:
        """Read one run of blobs with a single ranged read and decode them."""
        data = memoryview(self._storage.read_range(pack_path(first.pack), first.offset, length))
        out: list[bytes | memoryview] = []
        for size, loc in run:
            start = loc.offset - first.offset
            blob = data[start : start + loc.length]
            if len(blob) != loc.length:
                raise ValueError(f"pack {loc.pack} is shorter than its index says")
            chunk = decode_chunk(blob, size)
            if chunk.nbytes != size if isinstance(chunk, memoryview) else len(chunk) != size:
                raise ValueError(f"a chunk of pack {loc.pack} decoded to the wrong size")
            out.append(chunk)
        return out

    def _decoded(self) -> Iterator[bytes | memoryview]:
        # Reads and decodes run on a thread pool, a few runs ahead of the
        # consumer, which hashes what it gets in order.
        pool = ThreadPoolExecutor(_WORKERS, thread_name_prefix="scribestore-read")
        pending: deque[Future[list[bytes | memoryview]]] = deque()
        try:
            for first, length, run in self._runs():
                pending.append(pool.submit(self._fetch, first, length, run))
                while len(pending) > _DEPTH:
                    yield from pending.popleft().result()
            while pending:
                yield from pending.popleft().result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def read(self, n: int = -1) -> bytes | memoryview:
        """Up to ``n`` bytes (all remaining when ``n`` < 0); b"" at the end.

        Returns a view into the current chunk where it can, to save a copy.
        """
        if n < 0:
            parts = [self._buffer, *self._blocks]
            self._buffer = memoryview(b"")
            return b"".join(parts)
        while not self._buffer:
            block = next(self._blocks, None)
            if block is None:
                return b""
            self._buffer = memoryview(block)
        out = self._buffer[:n]
        self._buffer = self._buffer[n:]
        return out

    def close(self) -> None:
        """Nothing to release: every read is a complete ranged read."""
