"""Where each chunk of a store is: its merged index plus the packs published since.

A :class:`PackIndex` reads the newest merged index (FORMAT 3.6) and the
per-pack indexes of the packs it does not cover, the *tail*. Entries of the
merged index count only for packs the last listing showed with an index, so
a pack gc deleted is never read through it. Writers merge the tail into a new
merged index once it holds :data:`MERGE_AT` packs, so opening a store costs
one listing, one merged index and at most that many small indexes.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

from scribestore.exception import UnsupportedFormatError
from scribestore.storage import NotRegularFileError
from scribestore.store.layout import (
    CONDEMNED_EXT,
    MERGED_EXT,
    PACK_DIR,
    merged_index_path,
    parse_pack_name,
)
from scribestore.store.midx import MergedIndex, Table, encode_merged, new_merged_id
from scribestore.store.packs import ChunkLocation, read_pack_table

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Sequence

    from scribestore.storage import Storage

__all__ = ["MERGE_AT", "MERGE_MIN", "PackIndex"]

#: Packs outside the merged index after which a writer merges them into a
#: new one: an eighth of the packs it covers, at least :data:`MERGE_MIN`.
#: Capped so a store of any size opens with at most this many small indexes;
#: the eighth keeps the rewriting of entries to a few times their number.
MERGE_AT = 16
MERGE_MIN = 8


class PackIndex:
    """Chunk digest (32 raw bytes) -> :class:`ChunkLocation`, for one store."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        # The tail: packs loaded one by one, and the ones this process published.
        self._entries: dict[bytes, ChunkLocation] = {}
        self._tables: dict[str, Table] = {}
        self._merged: MergedIndex | None = None
        # Packs with an index at the last listing, and those published since by this process.
        self._live: set[str] = set()
        # Packs gc has condemned: still readable, never deduplicated against.
        self._condemned: set[str] = set()
        #: Packs whose index could not be parsed: pack id -> why.
        self.damaged: dict[str, str] = {}
        #: Packs whose index is of a newer format than this reader knows.
        self.newer: dict[str, str] = {}
        #: Merged indexes that could not be used: id -> why (their packs were
        #: loaded one by one instead).
        self.unusable_merged: dict[str, str] = {}
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()

    @property
    def merged_id(self) -> str | None:
        """The id of the merged index in use, if any."""
        return None if self._merged is None else self._merged.id

    @property
    def covered(self) -> tuple[str, ...]:
        """The packs the merged index in use covers."""
        return () if self._merged is None else self._merged.packs

    @property
    def tail(self) -> int:
        """How many packs are indexed outside the merged index."""
        return len(self._tables)

    def refresh(self) -> None:
        """Load what was published since the last refresh.

        Packs deleted since then are forgotten. An index that cannot be
        parsed is skipped and recorded in :attr:`damaged`, so the chunks of
        every other pack stay readable.

        Raises:
            OSError: the pack directory or an index could not be read.
        """
        with self._refreshing:  # threads copying into one store share its index
            self._refresh()

    def _refresh(self) -> None:
        # Packs this process publishes are added while the listing runs:
        # only the packs known before it can have been deleted by gc.
        with self._lock:
            known = set(self._tables)
        try:
            names = list(self._storage.list(PACK_DIR))
        except FileNotFoundError:
            return
        parsed = [found for found in map(parse_pack_name, names) if found is not None]
        listed = {found.pack_id for found in parsed if found.kind == "idx"}
        condemned = {found.pack_id for found in parsed if found.kind == CONDEMNED_EXT}
        with self._lock:
            gone = not listed.issuperset(known)
            if gone:
                # gc deleted packs: start again, so no entry points at a deleted pack.
                self._tables = {p: t for p, t in self._tables.items() if p not in known}
            if gone or condemned != self._condemned:
                # A chunk also held by a pack gc has not condemned is found there.
                self._entries = _entries_of(self._tables, condemned)
            self._condemned = condemned
            self._live = listed | set(self._tables)
        self._use_merged(sorted(f.pack_id for f in parsed if f.kind == MERGED_EXT))
        covered = set() if self._merged is None else set(self._merged.packs)
        with self._lock:
            loaded = set(self._tables)
        for pack_id in sorted(listed - covered - loaded):
            try:
                table = read_pack_table(self._storage, pack_id)
            except FileNotFoundError:
                continue  # deleted by gc meanwhile
            except UnsupportedFormatError as exc:
                self.newer[pack_id] = str(exc)
                continue
            except ValueError as exc:
                # One damaged index costs only the chunks in its pack.
                self.damaged[pack_id] = str(exc)
                continue
            self.damaged.pop(pack_id, None)
            self.add(pack_id, table.total, table.entries)

    def _use_merged(self, merged_ids: list[str]) -> None:
        """Use the newest merged index that can be read (they sort by age)."""
        if self._merged is not None and self._merged.id not in merged_ids:
            with self._lock:
                self._merged = None  # deleted: its packs are loaded one by one, or from a newer one
        for merged_id in reversed(merged_ids):
            if self._merged is not None and self._merged.id >= merged_id:
                return
            try:
                merged = _read_merged(self._storage, merged_id)
            except FileNotFoundError:
                continue  # deleted by gc since the listing
            except NotRegularFileError as exc:
                self.unusable_merged[merged_id] = f"not a regular file ({exc.strerror})"
                continue
            except ValueError as exc:  # damaged, or of a newer format
                self.unusable_merged[merged_id] = str(exc)
                continue
            self._adopt(merged)
            return

    def _adopt(self, merged: MergedIndex) -> None:
        with self._lock:
            self._merged = merged
            # Chunks of the tail that it covers are found there now.
            if any(p in self._tables for p in merged.packs):
                self._tables = {p: t for p, t in self._tables.items() if p not in merged.totals}
                self._entries = _entries_of(self._tables, self._condemned)

    def add(self, pack_id: str, total: int, entries: list[tuple[bytes, ChunkLocation]]) -> None:
        """Record a published pack's entries."""
        with self._lock:
            self._tables[pack_id] = (total, entries)
            self._live.add(pack_id)
            condemned = self._condemned
            for digest, location in entries:
                held = self._entries.setdefault(digest, location)
                if held.pack in condemned and location.pack not in condemned:
                    self._entries[digest] = location

    def get(self, digest: bytes) -> ChunkLocation | None:
        """The location of a chunk, or None if no loaded index has it.

        A pack gc has not condemned is preferred.
        """
        location = self._entries.get(digest)
        if location is not None and location.pack not in self._condemned:
            return location
        merged = self._merged
        return location if merged is None else self._choose(location, merged.find(digest))

    def _choose(
        self, location: ChunkLocation | None, found: list[ChunkLocation]
    ) -> ChunkLocation | None:
        """The best of a tail location and merged ones: live, and not condemned if one is."""
        for candidate in found:
            if candidate.pack in self._live:
                if candidate.pack not in self._condemned:
                    return candidate
                location = location or candidate
        return location

    def locate(self, digests: Sequence[bytes]) -> list[ChunkLocation | None]:
        """:meth:`get` for each of ``digests``, with one batched search of the merged index."""
        out = [self._entries.get(d) for d in digests]
        merged = self._merged
        if merged is None:
            return out
        condemned = self._condemned
        ask = [j for j, loc in enumerate(out) if loc is None or loc.pack in condemned]
        if not ask:
            return out
        firsts = merged.first([digests[j] for j in ask])
        found = [(j, first) for j, first in zip(ask, firsts, strict=True) if first >= 0]
        live = self._live
        for (j, first), location in zip(found, merged.at([f for _, f in found]), strict=True):
            if location.pack in live and location.pack not in condemned:
                out[j] = location  # the first entry will do: the common case
            else:
                out[j] = self._choose(out[j], merged.locations_from(first, digests[j]))
        return out

    def __contains__(self, digest: object) -> bool:
        """Whether a new chunk with this digest may reuse a stored one."""
        location = self.get(digest) if isinstance(digest, bytes) else None
        return location is not None and location.pack not in self._condemned

    def reusable(self, digests: Sequence[bytes]) -> list[bool]:
        """``digest in self`` for each of ``digests``, with one batched search."""
        condemned = self._condemned
        return [loc is not None and loc.pack not in condemned for loc in self.locate(digests)]

    def missing(self, digests: Iterable[bytes]) -> list[bytes]:
        """The distinct ``digests`` no loaded index has, in order."""
        rest = [d for d in dict.fromkeys(digests) if d not in self._entries]
        merged = self._merged
        if merged is None or not rest:
            return rest
        live = self._live
        firsts = merged.first(rest)
        return [
            digest
            for digest, first, ok in zip(rest, firsts, merged.live(firsts, live), strict=True)
            if not ok
            and (first < 0 or not any(f.pack in live for f in merged.locations_from(first, digest)))
        ]

    def items(self) -> Iterator[tuple[bytes, ChunkLocation]]:
        """Every loaded (digest, location): one per digest."""
        seen = dict(self._entries)
        if self._merged is not None:
            for digest, location in self._merged.items():
                if location.pack in self._live:
                    seen.setdefault(digest, location)
        return iter(list(seen.items()))

    def merge(self, *, at: int | None = None) -> str | None:
        """Publish a merged index of every loaded pack if the tail holds ``at``
        packs or more (default: see :data:`MERGE_AT`).

        With ``at=0`` it is published unless the one in use already covers
        exactly the live packs. Returns the new merged index's id, or None.

        Raises:
            OSError: it could not be written.
        """
        with self._refreshing:
            merged = self._merged
            with self._lock:
                tables = {p: t for p, t in self._tables.items() if p in self._live}
                live = set(self._live)
            covered = 0 if merged is None else len(merged.packs)
            limit = min(MERGE_AT, max(MERGE_MIN, covered // 8)) if at is None else at
            stale = merged is not None and not live.issuperset(merged.packs)
            due = len(tables) >= max(limit, 1)
            if not due and not (limit == 0 and (stale or (merged is None and bool(live)))):
                return None
            if merged is not None:
                tables.update(merged.tables(live))
            merged_id = new_merged_id()
            data = encode_merged(tables)
            try:
                made = MergedIndex(merged_id, data)  # checked before anyone can read it
            except ValueError:
                return None  # a pack index holds an entry no merged index may: keep the tail
            self._storage.write_new(merged_index_path(merged_id), (data,))
            self._adopt(made)
            if merged is not None:
                # Replaced: readers that still want it load the new one, or
                # the per-pack indexes, so it need not wait for gc.
                with contextlib.suppress(OSError):
                    self._storage.delete(merged_index_path(merged.id))
            return merged_id


# Merged indexes parsed in this process, by store and id: a merged index is
# never changed once written, so opening the store again reads it again only
# if it was replaced.
_PARSED: OrderedDict[tuple[str, str], MergedIndex] = OrderedDict()
_PARSED_LOCK = threading.Lock()
_PARSED_KEEP = 2


def _read_merged(storage: Storage, merged_id: str) -> MergedIndex:
    key = (storage.url, merged_id)
    with _PARSED_LOCK:
        if key in _PARSED:
            _PARSED.move_to_end(key)
            return _PARSED[key]
    merged = MergedIndex(merged_id, storage.read_bytes(merged_index_path(merged_id)))
    with _PARSED_LOCK:
        _PARSED[key] = merged
        while len(_PARSED) > _PARSED_KEEP:
            _PARSED.popitem(last=False)
    return merged


def _entries_of(tables: dict[str, Table], condemned: set[str]) -> dict[bytes, ChunkLocation]:
    """One location per digest, in a pack gc has not condemned when there is one."""
    entries: dict[bytes, ChunkLocation] = {}
    for pass_condemned in (False, True):
        for pack_id, (_, table) in tables.items():
            if (pack_id in condemned) is pass_condemned:
                for digest, location in table:
                    entries.setdefault(digest, location)
    return entries
