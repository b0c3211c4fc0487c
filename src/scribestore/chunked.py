"""Chunked objects: content-defined chunks in packs, plus a recipe object.

See docs/FORMAT.md sections 3.3-3.5. Writing chunks the content with FastCDC,
stores only chunks no pack holds yet, publishes the packs, and only then the
recipe under the whole content's digest. Reading fetches each chunk's blob
(adjacent blobs of a pack in one ranged read) and decodes it; the caller
hashes the reassembled content.
"""

from __future__ import annotations

import struct
from typing import IO, TYPE_CHECKING

import blake3
from pyfastcdc import FastCDC

from scribestore.chunkcodec import ChunkCodec, choose_chunk_codec, decode_chunk, encode_chunk
from scribestore.hashing import Hasher
from scribestore.packs import PackIndex, PackWriter, pack_path

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from scribestore._storage import Storage
    from scribestore.packs import ChunkLocation

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
_MAX_RUN = 8 << 20

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


class ChunkSink:
    """Where new chunks go while one object is written; also builds the recipe."""

    def __init__(self, storage: Storage, index: PackIndex) -> None:
        self._index = index
        self._writer = PackWriter(storage, index)
        self._recipe: list[bytes] = []
        self.new_bytes = 0

    def add(self, data: memoryview, codec: ChunkCodec, offset: int) -> None:
        """Record one chunk; store it unless a pack (or this session) has it."""
        digest = blake3.blake3(data).digest()
        self._recipe.append(_RECIPE_ENTRY.pack(digest, len(data)))
        if digest in self._index or self._writer.has(digest):
            return
        self._writer.add(digest, encode_chunk(data, codec, offset), len(data))
        self.new_bytes += len(data)

    def close(self) -> bytes:
        """Publish every pack; return the recipe payload."""
        self._writer.close()
        return b"".join(self._recipe)

    def abort(self) -> None:
        """Give up; packs already published stay (unreferenced) for gc."""
        self._writer.abort()


def write_chunks(
    storage: Storage, index: PackIndex, chunks: Iterable[memoryview], probe: memoryview
) -> tuple[bytes, str, int, int]:
    """Store the chunks of one content.

    Returns:
        The recipe payload, the digest and size of the content as read (so the
        caller can check the source did not change), and the new bytes stored.
    """
    codec = choose_chunk_codec(probe)
    index.refresh()
    sink = ChunkSink(storage, index)
    hasher = Hasher()
    try:
        for data in chunks:
            sink.add(data, codec, hasher.size)
            hasher.update(data)
        recipe = sink.close()
    except BaseException:
        sink.abort()
        raise
    return recipe, hasher.hexdigest(), hasher.size, sink.new_bytes


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

    def _decoded(self) -> Iterator[bytes]:
        i = 0
        while i < len(self._recipe):
            first = self._locate(self._recipe[i][0])
            run = [(self._recipe[i], first)]
            end = first.offset + first.length
            # Coalesce blobs that follow each other in the same pack.
            while i + len(run) < len(self._recipe) and end - first.offset < _MAX_RUN:
                entry = self._recipe[i + len(run)]
                loc = self._locate(entry[0])
                if loc.pack != first.pack or loc.offset != end:
                    break
                run.append((entry, loc))
                end = loc.offset + loc.length
            data = memoryview(
                self._storage.read_range(pack_path(first.pack), first.offset, end - first.offset)
            )
            for (_digest, size), loc in run:
                start = loc.offset - first.offset
                blob = data[start : start + loc.length]
                if len(blob) != loc.length:
                    raise ValueError(f"pack {loc.pack} is shorter than its index says")
                chunk = decode_chunk(blob, size)
                if len(chunk) != size:
                    raise ValueError(f"a chunk of pack {loc.pack} decoded to the wrong size")
                yield chunk
            i += len(run)

    def read(self, n: int = -1) -> bytes:
        """Up to ``n`` bytes (all remaining when ``n`` < 0); b"" at the end."""
        if n < 0:
            parts = [bytes(self._buffer), *self._blocks]
            self._buffer = memoryview(b"")
            return b"".join(parts)
        while not self._buffer:
            block = next(self._blocks, None)
            if block is None:
                return b""
            self._buffer = memoryview(block)
        out = bytes(self._buffer[:n])
        self._buffer = self._buffer[n:]
        return out

    def close(self) -> None:
        """Nothing to release: every read is a complete ranged read."""
