"""Packs: many chunk blobs per file, plus an index of where each chunk is.

See docs/FORMAT.md section 3.4. A :class:`PackWriter` fills a pack in memory
(at most 32 MiB) and hands full packs to one background thread that publishes
the pack and then its index, so disk or network writes overlap the chunking
and hashing of the next pack. A ``PackIndex`` maps chunk digests to their
location (:mod:`scribestore.store.pack_index`).
"""

from __future__ import annotations

import secrets
import struct
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, NamedTuple, Protocol

import blake3

from scribestore.exception import CorruptPackError, UnsupportedFormatError
from scribestore.storage import NotRegularFileError
from scribestore.store.layout import index_path, pack_path

if TYPE_CHECKING:
    from collections.abc import Iterable

    from scribestore.storage import Storage

__all__ = [
    "PACK_TARGET",
    "ChunkLocation",
    "PackTable",
    "PackWriter",
    "Published",
    "parse_index",
    "read_own_table",
    "read_pack_table",
    "rewrite_index",
]

PACK_TARGET = 32 << 20
# Packs published at once by one writer (each holds a pack buffer). With one,
# the encoder waited a median 0.43 s per GiB for slow fsyncs on this shared
# disk; with two, 0.17 s, and log+save took a median 1.59 s against 1.75 s
# (ten alternated runs each), for one more buffer (peak RSS +33 MiB).
_PUBLISHERS = 2
# Two on a remote storage too, although s3fs sends one pack's parts one after
# another: on the test cluster, 1 GiB log+save took a median 11.05 s with two
# and 11.10 s with four (two rounds each), and four cost two more buffers.
#: Largest chunk blob: a maximal chunk stored raw plus its codec byte.
MAX_BLOB = (256 << 10) + 1
#: Version 2 added blob codec 4; version 3 the pack's own table of its blobs
#: and the index checksum. Readers take 1 to 3 and refuse newer ones.
PACK_FORMAT_VERSION = 3
PACK_HEADER = b"SSPK" + bytes((PACK_FORMAT_VERSION, 0, 0, 0))
INDEX_HEADER = b"SSPI" + bytes((PACK_FORMAT_VERSION, 0, 0, 0))
_TOTAL = struct.Struct("<Q")
_ENTRY = struct.Struct("<32sQII4x")
# The end of a version-3 pack: magic, 4 zero bytes, entry count, BLAKE3 of the table.
_FOOTER = struct.Struct("<4s4xQ32s")
_FOOTER_MAGIC = b"SSPT"
_CHECKSUM = 32


class ChunkLocation(NamedTuple):
    """Where a chunk's blob is: pack id, byte offset, blob length, chunk size."""

    pack: str
    offset: int
    length: int
    size: int


def _newer(pack_id: str, version: int) -> UnsupportedFormatError:
    return UnsupportedFormatError(
        f"pack {pack_id} uses pack format version {version}, newer than the "
        f"{PACK_FORMAT_VERSION} this scribestore reads; upgrade scribestore"
    )


def parse_index(pack_id: str, data: bytes) -> tuple[int, list[tuple[bytes, ChunkLocation]]]:
    """The pack length and the entries of an index file.

    Raises:
        UnsupportedFormatError: the index (and its pack) were written by a
            newer scribestore (a ``ValueError`` too).
        CorruptPackError: the index is malformed, or (version 3) fails its checksum.
    """
    if data[:4] != INDEX_HEADER[:4] or len(data) < 16 or data[4] == 0:
        raise CorruptPackError(f"pack index {pack_id} has a bad header")
    if data[4] > PACK_FORMAT_VERSION:
        raise _newer(pack_id, data[4])
    (total,) = _TOTAL.unpack_from(data, 8)
    end = len(data)
    if data[4] >= 3:
        end -= _CHECKSUM
        if end < 16 or blake3.blake3(memoryview(data)[:end]).digest() != data[end:]:
            raise CorruptPackError(f"pack index {pack_id} fails its checksum")
    return total, _entries(pack_id, memoryview(data)[16:end], total, "pack index")


def _entries(
    pack_id: str, table: memoryview, limit: int, what: str
) -> list[tuple[bytes, ChunkLocation]]:
    if len(table) % _ENTRY.size:
        raise CorruptPackError(f"{what} {pack_id} is truncated")
    entries = []
    for digest, offset, length, size in _ENTRY.iter_unpack(table):
        if offset < len(PACK_HEADER) or offset + length > limit:
            raise CorruptPackError(f"{what} {pack_id} points past the end of its pack")
        if length == 0 or size == 0:
            raise CorruptPackError(f"{what} {pack_id} has an empty entry")
        entries.append((digest, ChunkLocation(pack_id, offset, length, size)))
    return entries


def _encode_table(entries: list[tuple[bytes, ChunkLocation]]) -> bytes:
    return b"".join(_ENTRY.pack(d, loc.offset, loc.length, loc.size) for d, loc in entries)


def _encode_index(total: int, table: bytes) -> bytes:
    body = b"".join((INDEX_HEADER, _TOTAL.pack(total), table))
    return body + blake3.blake3(body).digest()


def read_own_table(
    storage: Storage, pack_id: str
) -> tuple[int, list[tuple[bytes, ChunkLocation]]] | None:
    """The length and entries of a pack from the table at its end, if it has one.

    None for packs of formats 1 and 2, which end with their last blob.

    Raises:
        FileNotFoundError: the pack is gone.
        UnsupportedFormatError: the pack is of a newer format.
        CorruptPackError: the pack or its table is damaged.
    """
    path = pack_path(pack_id)
    try:
        total = storage.size(path)
        head = storage.read_range(path, 0, len(PACK_HEADER))
        if total < len(PACK_HEADER) + _FOOTER.size or head[:4] != PACK_HEADER[:4]:
            raise CorruptPackError(f"pack {pack_id} is too short or has a bad header")
        if head[4] > PACK_FORMAT_VERSION:
            raise _newer(pack_id, head[4])
        if head[4] < 3:
            return None
        footer = storage.read_range(path, total - _FOOTER.size, _FOOTER.size)
        if len(footer) != _FOOTER.size:
            raise CorruptPackError(f"pack {pack_id} changed size while being read")
        magic, count, checksum = _FOOTER.unpack(footer)
        start = total - _FOOTER.size - count * _ENTRY.size
        if magic != _FOOTER_MAGIC or start < len(PACK_HEADER):
            raise CorruptPackError(f"pack {pack_id} has a damaged table")
        table = storage.read_range(path, start, count * _ENTRY.size)
    except NotRegularFileError as exc:
        raise CorruptPackError(f"{path} is not a regular file ({exc.strerror})") from exc
    if blake3.blake3(table).digest() != checksum:
        raise CorruptPackError(f"pack {pack_id} has a damaged table")
    return total, _entries(pack_id, memoryview(table), start, "pack")


class PackTable(NamedTuple):
    """A pack's length and entries, and why its index was not used (if it was not)."""

    total: int
    entries: list[tuple[bytes, ChunkLocation]]
    #: None when the entries came from the index; else why the index was
    #: unusable, and the entries came from the pack's own table.
    damaged_index: str | None


def read_pack_table(storage: Storage, pack_id: str) -> PackTable:
    """The entries of a published pack: from its index, or from the pack itself.

    A damaged index (malformed, failing its checksum, or not a regular file)
    costs nothing while the pack's own table (format 3) is intact.

    Raises:
        FileNotFoundError: the index is gone (gc deleted the pack).
        UnsupportedFormatError: the pack is of a newer format.
        CorruptPackError: the index is damaged and the pack has no usable table;
            the message says why for both.
        OSError: the index or pack could not be read.
    """
    name = index_path(pack_id)
    try:
        total, entries = parse_index(pack_id, storage.read_bytes(name))
        return PackTable(total, entries, None)
    except NotRegularFileError as exc:
        why = f"{name} is not a regular file ({exc.strerror})"
    except UnsupportedFormatError:
        raise
    except ValueError as exc:
        why = str(exc)
    try:
        own = read_own_table(storage, pack_id)
    except FileNotFoundError as exc:
        raise CorruptPackError(f"{why}; its pack is missing") from exc
    except UnsupportedFormatError:
        raise
    except ValueError as exc:
        raise CorruptPackError(f"{why}; {exc}") from exc
    if own is None:
        raise CorruptPackError(f"{why}; its pack (format 1 or 2) holds no copy of the index")
    return PackTable(own[0], own[1], why)


def rewrite_index(storage: Storage, pack_id: str, table: PackTable) -> None:
    """Replace a pack's index (atomically) with one holding ``table``'s entries.

    Raises:
        OSError: the index could not be written.
    """
    index = _encode_index(table.total, _encode_table(table.entries))
    storage.write_atomic(index_path(pack_id), index)


class Published(Protocol):
    """What a :class:`PackWriter` tells of each pack it has published."""

    def add(self, pack_id: str, total: int, entries: list[tuple[bytes, ChunkLocation]]) -> None:
        """Record a published pack's entries."""


class PackWriter:
    """Collects chunk blobs into packs and publishes them in the background.

    Blobs are copied (or encoded in place, through :meth:`room`) into a pack
    buffer; a full buffer goes to one of two background threads that publish
    the pack and then its index while the next buffer fills, so fsyncs (or
    uploads) overlap each other and the filling of the next pack; memory
    stays at three pack buffers. Use :meth:`add` for each new chunk, then
    :meth:`close` (which waits until every pack and its index are published)
    or :meth:`abort`.
    """

    def __init__(self, storage: Storage, index: Published, *, target: int = PACK_TARGET) -> None:
        self._storage = storage
        self._index = index
        self._target = target
        # Fixed-size buffers written by slice assignment: growing a bytearray
        # by appends would copy it again and again.
        self._capacity = target + MAX_BLOB
        self._spare: list[bytearray] = []
        self._buffer = self._new_buffer()
        # Copies go through a memoryview: assigning to a bytearray slice from
        # another object copies the source into a temporary bytearray first.
        self._view = memoryview(self._buffer)
        self._used = len(PACK_HEADER)
        self._entries: list[tuple[bytes, ChunkLocation]] = []
        self._pack_id = secrets.token_hex(16)
        self._inflight: deque[Future[bytearray]] = deque()
        self._pool = ThreadPoolExecutor(_PUBLISHERS, thread_name_prefix="scribestore-pack")

    def _new_buffer(self) -> bytearray:
        buf = self._spare.pop() if self._spare else bytearray(self._capacity)
        buf[: len(PACK_HEADER)] = PACK_HEADER
        return buf

    def add(
        self, digest: bytes, parts: Iterable[bytes | bytearray | memoryview], size: int
    ) -> None:
        """Append one chunk's blob, given as parts (at most :data:`MAX_BLOB` bytes in all)."""
        offset = self._used
        for part in parts:
            end = self._used + len(part)
            self._view[self._used : end] = part
            self._used = end
        self._record(digest, offset, size)

    def room(self) -> memoryview:
        """The free space of the pack being filled, for blobs written in place.

        Valid until the next call that adds or seals; record what was written
        with :meth:`added`.
        """
        return self._view[self._used :]

    def added(self, blobs: Iterable[tuple[bytes, int, int]]) -> None:
        """Record blobs written in place at the start of :meth:`room`, in order.

        Each is (chunk digest, blob length, chunk size); the pack is sealed if
        it has reached its target size.
        """
        for digest, length, size in blobs:
            location = ChunkLocation(self._pack_id, self._used, length, size)
            self._entries.append((digest, location))
            self._used += length
        if self._used >= self._target:
            self.seal()

    def _record(self, digest: bytes, offset: int, size: int) -> None:
        length = self._used - offset
        self._entries.append((digest, ChunkLocation(self._pack_id, offset, length, size)))
        if self._used >= self._target:
            self.seal()

    def seal(self) -> None:
        """Send the pack being filled to be published and start a new one."""
        if not self._entries:
            return
        while len(self._inflight) >= _PUBLISHERS:
            self._spare.append(self._inflight.popleft().result())
        full, used, entries, pack_id = self._buffer, self._used, self._entries, self._pack_id
        self._inflight.append(self._pool.submit(self._publish, pack_id, full, used, entries))
        self._buffer = self._new_buffer()
        self._view = memoryview(self._buffer)
        self._used = len(PACK_HEADER)
        self._entries = []
        self._pack_id = secrets.token_hex(16)

    def _publish(
        self,
        pack_id: str,
        data: bytearray,
        used: int,
        entries: list[tuple[bytes, ChunkLocation]],
    ) -> bytearray:
        # Pack first, then its index: an index never points at a missing pack.
        # The pack ends with its own copy of the table, so a damaged index
        # can be rebuilt from it.
        table = _encode_table(entries)
        footer = _FOOTER.pack(_FOOTER_MAGIC, len(entries), blake3.blake3(table).digest())
        with memoryview(data) as view:
            self._storage.write_new(pack_path(pack_id), (view[:used], table, footer))
        total = used + len(table) + len(footer)
        self._storage.write_new(index_path(pack_id), (_encode_index(total, table),))
        self._index.add(pack_id, total, entries)
        return data

    def close(self) -> None:
        """Publish the last pack and wait for every pack to be published.

        Raises:
            OSError: publishing a pack failed.
        """
        try:
            self.seal()
            while self._inflight:
                self._inflight.popleft().result()
        finally:
            self._pool.shutdown(wait=True)

    def abort(self) -> None:
        """Stop: drop the unsealed pack and wait for the writer thread to finish."""
        self._entries = []
        self._pool.shutdown(wait=True, cancel_futures=True)
