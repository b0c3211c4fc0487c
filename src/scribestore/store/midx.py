"""Merged pack indexes: the entries of many packs in one sorted file (FORMAT 3.6).

A merged index is derived data. It is written beside the packs' own indexes,
never instead of them, so a damaged or missing merged index costs only the
time of loading the per-pack indexes. Lookups are binary searches over the
file's sorted digests, so its entries stay in one buffer instead of a
Python object each: a store of 20 GiB of chunks is about 17 MiB of index.
"""

from __future__ import annotations

import bisect
import secrets
import struct
import time
from typing import TYPE_CHECKING, Any, Literal

import blake3
import numpy as np

from scribestore.exception import CorruptPackError, UnsupportedFormatError
from scribestore.store.layout import merged_index_path
from scribestore.store.packs import PACK_FORMAT_VERSION, ChunkLocation

if TYPE_CHECKING:
    from collections.abc import Container, Iterable, Iterator, Mapping, Sequence

    from numpy.typing import NDArray


__all__ = [
    "MERGED_FORMAT_VERSION",
    "MergedIndex",
    "Table",
    "digest_array",
    "encode_merged",
    "new_merged_id",
]

MERGED_FORMAT_VERSION = 1
_MAGIC = b"SSMX"
# magic, version, newest pack format among its packs, 2 zero bytes, pack count, entry count
_HEAD = struct.Struct("<4sBB2xIQ")
# pack id (16 raw bytes) and the pack's length
_PACK = struct.Struct("<16sQ")
_CHECKSUM = 32
# Bytes per entry over the columns: digest, pack number, offset, blob length, chunk size.
_ENTRY_BYTES = 32 + 4 + 8 + 4 + 4
#: A pack's length and its (digest, location) entries.
Table = tuple[int, list[tuple[bytes, ChunkLocation]]]


def new_merged_id() -> str:
    """A fresh merged index id: the time in ns (16 hex digits), then 16 random ones.

    Ids sort by the time they were made, so the newest is the greatest.
    """
    return f"{time.time_ns():016x}{secrets.token_hex(8)}"


def encode_merged(tables: Mapping[str, Table]) -> bytes:
    """The merged index of ``tables`` (pack id -> its length and entries).

    Every entry is kept, duplicates too: a chunk held by two packs has two
    entries, so a reader still finds it when one of the packs is deleted.
    """
    pack_ids = sorted(tables)
    number = {pack_id: n for n, pack_id in enumerate(pack_ids)}
    digests = bytearray()
    columns: list[list[int]] = [[], [], [], []]
    for pack_id in pack_ids:
        for digest, location in tables[pack_id][1]:
            digests += digest
            columns[0].append(number[pack_id])
            columns[1].append(location.offset)
            columns[2].append(location.length)
            columns[3].append(location.size)
    keys = np.frombuffer(bytes(digests), dtype=">u8").reshape(-1, 4)
    # lexsort sorts by its last key first: the digest's first 8 bytes, then the next.
    order = np.lexsort((keys[:, 3], keys[:, 2], keys[:, 1], keys[:, 0]))
    count = len(order)
    head = _HEAD.pack(_MAGIC, MERGED_FORMAT_VERSION, PACK_FORMAT_VERSION, len(pack_ids), count)
    packs = b"".join(_PACK.pack(bytes.fromhex(p), tables[p][0]) for p in pack_ids)
    parts = [
        head,
        packs,
        np.frombuffer(bytes(digests), dtype="V32")[order].tobytes(),
        np.asarray(columns[0], dtype="<u4")[order].tobytes(),
        np.asarray(columns[1], dtype="<u8")[order].tobytes(),
        np.asarray(columns[2], dtype="<u4")[order].tobytes(),
        np.asarray(columns[3], dtype="<u4")[order].tobytes(),
    ]
    body = b"".join(parts)
    return body + blake3.blake3(body, max_threads=blake3.blake3.AUTO).digest()


def digest_array(digests: Sequence[bytes]) -> NDArray[np.void]:
    """``digests`` (32 raw bytes each) as one array of 32-byte items.

    This is what :meth:`MergedIndex.search` takes.

    Raises:
        ValueError: a digest is not 32 bytes long.
    """
    if any(len(digest) != 32 for digest in digests):
        raise ValueError("a chunk digest is not 32 bytes long")
    return np.frombuffer(b"".join(digests), dtype="V32")


class MergedIndex:
    """A parsed merged index: chunk digest -> every location it records."""

    def __init__(self, merged_id: str, data: bytes) -> None:
        """Parse and check a merged index file.

        Raises:
            UnsupportedFormatError: it is of a newer format (a ``ValueError`` too).
            CorruptPackError: it is malformed or fails its checksum.
        """
        self.id = merged_id
        where = merged_index_path(merged_id)
        if len(data) < _HEAD.size + _CHECKSUM or data[:4] != _MAGIC:
            raise CorruptPackError(f"merged index {where} has a bad header")
        _, version, pack_version, pack_count, count = _HEAD.unpack_from(data)
        if version > MERGED_FORMAT_VERSION:
            raise UnsupportedFormatError(
                f"merged index {where} uses format version {version}, newer than the "
                f"{MERGED_FORMAT_VERSION} this scribestore reads; upgrade scribestore"
            )
        if pack_version > PACK_FORMAT_VERSION:
            # Its packs may hold blobs this reader cannot decode: their own
            # indexes say which (and are refused one by one).
            raise UnsupportedFormatError(
                f"merged index {where} covers packs of format {pack_version}, newer than the "
                f"{PACK_FORMAT_VERSION} this scribestore reads; upgrade scribestore"
            )
        body = len(data) - _CHECKSUM
        if body != _HEAD.size + pack_count * _PACK.size + count * _ENTRY_BYTES or version == 0:
            raise CorruptPackError(f"merged index {where} is truncated or has a bad header")
        view = memoryview(data)
        if blake3.blake3(view[:body], max_threads=blake3.blake3.AUTO).digest() != data[body:]:
            raise CorruptPackError(f"merged index {where} fails its checksum")
        at = _HEAD.size
        packs = [_PACK.unpack_from(data, at + n * _PACK.size) for n in range(pack_count)]
        #: Pack ids, in the order entries number them.
        self.packs: tuple[str, ...] = tuple(raw.hex() for raw, _ in packs)
        self.totals: dict[str, int] = {raw.hex(): total for raw, total in packs}
        at += pack_count * _PACK.size
        self._data = data
        self._first = at
        # Each digest as four big-endian words: the first orders the entries.
        self._whole = np.frombuffer(data, dtype="V32", count=count, offset=at)
        words = np.frombuffer(data, dtype=">u8", count=4 * count, offset=at).reshape(-1, 4)
        self._keys = np.ascontiguousarray(words[:, 0], dtype=np.uint64)
        at += 32 * count
        pack = np.frombuffer(data, dtype="<u4", count=count, offset=at)
        offset = np.frombuffer(data, dtype="<u8", count=count, offset=at + 4 * count)
        length = np.frombuffer(data, dtype="<u4", count=count, offset=at + 12 * count)
        size = np.frombuffer(data, dtype="<u4", count=count, offset=at + 16 * count)
        self._check(where, pack, offset, length, size)
        # Native copies, read one entry at a time through memoryviews (a
        # memoryview item is a Python int; a numpy item is slower to make).
        self._pack = _native(pack, "I")
        self._offset = _native(offset, "Q")
        self._length = _native(length, "I")
        self._size = _native(size, "I")
        self._key_view = _native(self._keys, "Q")

    def _check(
        self,
        where: str,
        pack: NDArray[np.uint32],
        offset: NDArray[np.uint64],
        length: NDArray[np.uint32],
        size: NDArray[np.uint32],
    ) -> None:
        if not len(pack):
            return
        if np.any(self._keys[1:] < self._keys[:-1]) or not self._ties_sorted():
            raise CorruptPackError(f"merged index {where} is not sorted")
        if int(pack.max()) >= len(self.packs):
            raise CorruptPackError(f"merged index {where} names a pack it does not list")
        if len(self.totals) != len(self.packs):
            raise CorruptPackError(f"merged index {where} lists a pack twice")
        totals = np.asarray([self.totals[p] for p in self.packs], dtype=np.uint64)[pack]
        # offset <= total first, so total - offset cannot wrap around.
        if np.any(offset > totals) or np.any(length > totals - offset) or np.any(offset < 8):
            raise CorruptPackError(f"merged index {where} points past the end of a pack")
        if np.any(size == 0) or np.any(length == 0):
            raise CorruptPackError(f"merged index {where} has an empty entry")

    def _ties_sorted(self) -> bool:
        """Whether digests whose first 8 bytes are equal are in order too."""
        ties = np.flatnonzero(self._keys[1:] == self._keys[:-1]).tolist()
        return all(self._digest(i) <= self._digest(i + 1) for i in ties)

    def __len__(self) -> int:
        """How many entries it holds (a chunk in two packs counts twice)."""
        return len(self._keys)

    def _location(self, i: int) -> ChunkLocation:
        return ChunkLocation(
            self.packs[self._pack[i]], self._offset[i], self._length[i], self._size[i]
        )

    def _digest(self, i: int) -> bytes:
        at = self._first + 32 * i
        return self._data[at : at + 32]

    def find(self, digest: bytes) -> list[ChunkLocation]:
        """Every location the index records for ``digest`` (32 raw bytes)."""
        key = int.from_bytes(digest[:8], "big")
        i = bisect.bisect_left(self._key_view, key)
        found = []
        while i < len(self._key_view) and self._key_view[i] == key:
            if self._digest(i) == digest:
                found.append(self._location(i))
            i += 1
        return found

    def first(self, digests: Sequence[bytes]) -> list[int]:
        """For each digest, the position of its first entry, or -1: one vectorized search."""
        found: list[int] = self.search(digest_array(digests)).tolist()
        return found

    def search(self, wanted: NDArray[np.void]) -> NDArray[np.intp]:
        """:meth:`first` of an array from :func:`digest_array`, as an array."""
        count = len(self._keys)
        if not len(wanted) or not count:
            return np.full(len(wanted), -1, dtype=np.intp)
        keys = np.ascontiguousarray(wanted).view(">u8")[::4].astype(np.uint64)
        at = np.searchsorted(self._keys, keys)
        near = np.minimum(at, count - 1)
        inside = at < count
        hit = inside & (self._whole[near] == wanted)
        out = np.where(hit, at, -1).astype(np.intp)
        # Digests whose first 8 bytes equal another's: looked for one by one.
        for j in np.flatnonzero(inside & ~hit & (self._keys[near] == keys)).tolist():
            i, key, digest = int(at[j]), int(keys[j]), wanted[j].tobytes()
            while i < count and self._key_view[i] == key and self._digest(i) != digest:
                i += 1
            out[j] = i if i < count and self._digest(i) == digest else -1
        return out

    def pack_mask(self, packs: Container[str]) -> NDArray[np.bool_]:
        """For each pack number, whether its pack is in ``packs``: for :meth:`live`."""
        return np.asarray([p in packs for p in self.packs], dtype=np.bool_)

    def live(
        self, positions: Sequence[int] | NDArray[np.intp], mask: NDArray[np.bool_]
    ) -> NDArray[np.bool_]:
        """For each position (from :meth:`first` or :meth:`search`), whether it
        is >= 0 and its entry's pack is one ``mask`` (from :meth:`pack_mask``)
        marks: checked in bulk, no entry made."""
        where = np.asarray(positions, dtype=np.intp)
        found = where >= 0
        if not found.any():
            return found
        pack = np.frombuffer(self._pack, dtype=np.uint32)[np.where(found, where, 0)]
        ok: NDArray[np.bool_] = found & mask[pack]
        return ok

    def at(self, positions: Sequence[int]) -> list[ChunkLocation]:
        """The entries at ``positions`` (each >= 0, from :meth:`first`), made in bulk."""
        where = np.asarray(positions, dtype=np.intp)
        pack = np.frombuffer(self._pack, dtype=np.uint32)[where].tolist()
        offset = np.frombuffer(self._offset, dtype=np.uint64)[where].tolist()
        length = np.frombuffer(self._length, dtype=np.uint32)[where].tolist()
        size = np.frombuffer(self._size, dtype=np.uint32)[where].tolist()
        packs = self.packs
        return [
            ChunkLocation(packs[p], o, n, z)
            for p, o, n, z in zip(pack, offset, length, size, strict=True)
        ]

    def locations_from(self, i: int, digest: bytes) -> list[ChunkLocation]:
        """The locations of ``digest`` from its first entry ``i`` (from :meth:`first`) on."""
        found = []
        while i < len(self._key_view) and self._digest(i) == digest:
            found.append(self._location(i))
            i += 1
        return found

    def items(self) -> Iterator[tuple[bytes, ChunkLocation]]:
        """Every (digest, location) entry, in digest order."""
        for i in range(len(self._keys)):
            yield self._digest(i), self._location(i)

    def tables(self, packs: Iterable[str]) -> dict[str, Table]:
        """The entries of ``packs`` (those it covers), by pack, for building a new index."""
        chosen = set(packs)
        wanted = {p: n for n, p in enumerate(self.packs) if p in chosen}
        out: dict[str, Table] = {p: (self.totals[p], []) for p in wanted}
        if not wanted:
            return out
        numbers = np.asarray(list(wanted.values()), dtype=np.uint32)
        pack = np.frombuffer(self._pack, dtype=np.uint32)
        for i in np.flatnonzero(np.isin(pack, numbers)).tolist():
            location = self._location(i)
            out[location.pack][1].append((self._digest(i), location))
        return out


def _native(column: NDArray[Any], code: Literal["I", "Q"]) -> memoryview[int]:
    """A column in native byte order, as a memoryview of Python ints."""
    native = np.ascontiguousarray(column, dtype=column.dtype.newbyteorder("="))
    return native.data.cast("B").cast(code)
