"""Where each chunk of a store is: its merged indexes plus the packs published since.

A :class:`PackIndex` reads the newest merged indexes (FORMAT 3.6), its
*levels*, and the per-pack indexes of the packs they do not cover, the
*tail*. Entries of a merged index count only for packs the last listing
showed with an index, so a pack gc deleted is never read through it.

Writers keep the levels to a large *base* and a small *delta*, as a
log-structured merge tree does: once the tail holds :data:`DELTA_AT` packs
they write a new delta covering the old delta and the tail, and once the
delta holds an eighth of the base (see :data:`MERGE_AT`) a new base covering
everything. Opening a store so costs one listing, two merged indexes and at
most one small index, and the base is rewritten only every few packs.
"""

from __future__ import annotations

import contextlib
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING

import numpy as np

from scribestore.exception import UnsupportedFormatError
from scribestore.storage import NotRegularFileError
from scribestore.store.layout import PACK_DIR, merged_index_path, pack_names
from scribestore.store.midx import MergedIndex, Table, digest_array, encode_merged, new_merged_id
from scribestore.store.packs import ChunkLocation, read_pack_table

if TYPE_CHECKING:
    from collections.abc import Iterator, Sequence

    from numpy.typing import NDArray

    from scribestore.storage import Storage

__all__ = ["DELTA_AT", "LEVELS", "MERGE_AT", "MERGE_MIN", "PackIndex", "parsed_merged"]

#: Packs outside the base after which a writer writes a new base covering
#: them all: an eighth of the packs the base covers, at least
#: :data:`MERGE_MIN`, at most :data:`MERGE_AT`. The eighth keeps the
#: rewriting of entries to a few times their number; the cap bounds the delta.
MERGE_AT = 16
MERGE_MIN = 8
#: Packs in the tail after which a writer writes a new delta.
DELTA_AT = 2
#: Merged indexes a reader uses at most, newest first.
LEVELS = 4


class PackIndex:
    """Chunk digest (32 raw bytes) -> :class:`ChunkLocation`, for one store."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        # The tail: packs loaded one by one, and the ones this process published.
        self._entries: dict[bytes, ChunkLocation] = {}
        self._tables: dict[str, Table] = {}
        # The merged indexes in use, newest first, and largest first for lookups.
        self._levels: tuple[MergedIndex, ...] = ()
        self._by_size: tuple[MergedIndex, ...] = ()
        # Per merged index, which of its pack numbers are live (made when first
        # needed), for the live packs as of the listing numbered _listing.
        self._masks: dict[str, NDArray[np.bool_]] = {}
        self._listing = 0
        self._refreshed = False
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
        # Merged indexes that disagreed with a pack's own index: never used again.
        self._distrusted: set[str] = set()
        self._lock = threading.Lock()
        self._refreshing = threading.Lock()

    @property
    def merged_id(self) -> str | None:
        """The id of the newest merged index in use, if any."""
        return self._levels[0].id if self._levels else None

    @property
    def levels(self) -> tuple[str, ...]:
        """The ids of the merged indexes in use, newest first."""
        return tuple(merged.id for merged in self._levels)

    @property
    def covered(self) -> tuple[str, ...]:
        """The packs the merged indexes in use cover."""
        return tuple(dict.fromkeys(p for merged in self._levels for p in merged.packs))

    @property
    def tail(self) -> int:
        """How many packs are indexed outside the merged indexes."""
        return len(self._tables)

    @property
    def refreshed(self) -> bool:
        """Whether :meth:`refresh` has listed the packs at least once."""
        return self._refreshed

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
            self._refreshed = True

    def _refresh(self) -> None:
        # Packs this process publishes are added while the listing runs:
        # only the packs known before it can have been deleted by gc.
        with self._lock:
            known = set(self._tables)
        try:
            names = tuple(self._storage.list(PACK_DIR))
        except FileNotFoundError:
            return
        found = pack_names(names)
        listed, condemned = set(found.idx), set(found.condemned)
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
            self._masks = {}
            self._listing += 1
        self._use_merged(sorted(found.midx), listed)
        covered = set(self.covered)
        with self._lock:
            loaded = set(self._tables)
        for pack_id in sorted(listed - covered - loaded):
            self._load(pack_id)

    def _load(self, pack_id: str) -> None:
        try:
            table = read_pack_table(self._storage, pack_id)
        except FileNotFoundError:
            return  # deleted by gc meanwhile
        except UnsupportedFormatError as exc:
            self.newer[pack_id] = str(exc)
            return
        except ValueError as exc:
            # One damaged index costs only the chunks in its pack.
            self.damaged[pack_id] = str(exc)
            return
        self.damaged.pop(pack_id, None)
        self.add(pack_id, table.total, table.entries)

    def _use_merged(self, merged_ids: list[str], listed: set[str]) -> None:
        """Use the newest merged indexes that can be read (they sort by age),
        older ones only while the newer leave packs uncovered."""
        _forget_parsed(self._storage.url, set(merged_ids))
        current = {merged.id: merged for merged in self._levels}
        chosen: list[MergedIndex] = []
        uncovered = set(listed)
        for merged_id in reversed(merged_ids):
            if len(chosen) == LEVELS or (chosen and len(uncovered) < DELTA_AT):
                break
            if merged_id in self._distrusted:
                continue
            merged = current.get(merged_id) or self._read(merged_id)
            if merged is not None and (not chosen or not uncovered.isdisjoint(merged.packs)):
                chosen.append(merged)
                uncovered.difference_update(merged.packs)
        self._adopt(tuple(chosen))

    def _read(self, merged_id: str) -> MergedIndex | None:
        try:
            return _read_merged(self._storage, merged_id)
        except FileNotFoundError:
            return None  # deleted since the listing
        except NotRegularFileError as exc:
            self.unusable_merged[merged_id] = f"not a regular file ({exc.strerror})"
        except ValueError as exc:  # damaged, or of a newer format
            self.unusable_merged[merged_id] = str(exc)
        return None

    def _adopt(self, levels: tuple[MergedIndex, ...]) -> None:
        with self._lock:
            self._levels = levels
            self._by_size = tuple(sorted(levels, key=len, reverse=True))
            covered = {p for merged in levels for p in merged.packs}
            # Chunks of the tail they cover are found there now.
            if not covered.isdisjoint(self._tables):
                self._tables = {p: t for p, t in self._tables.items() if p not in covered}
                self._entries = _entries_of(self._tables, self._condemned)

    def add(self, pack_id: str, total: int, entries: list[tuple[bytes, ChunkLocation]]) -> None:
        """Record a published pack's entries."""
        with self._lock:
            self._tables[pack_id] = (total, entries)
            self._live.add(pack_id)
            self._masks = {}
            self._listing += 1
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
        found = [found for merged in self._by_size for found in merged.find(digest)]
        return self._choose(location, found)

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
        """:meth:`get` for each of ``digests``, with one batched search per merged index."""
        out = [self._entries.get(d) for d in digests]
        condemned = self._condemned
        live = self._live
        for merged in self._by_size:
            ask = [j for j, loc in enumerate(out) if loc is None or loc.pack in condemned]
            if not ask:
                break
            firsts = merged.first([digests[j] for j in ask])
            found = [(j, first) for j, first in zip(ask, firsts, strict=True) if first >= 0]
            for (j, first), location in zip(found, merged.at([f for _, f in found]), strict=True):
                if location.pack in live and location.pack not in condemned:
                    out[j] = location  # the first entry will do: the common case
                else:
                    out[j] = self._choose(out[j], merged.locations_from(first, digests[j]))
        return out

    def confirm(self, run: Sequence[tuple[bytes, ChunkLocation]]) -> bool:
        """After chunks of one pack could not be read or checked where they were
        located (``run``: digest and location each): whether to locate them again.

        A merged index is derived from the per-pack indexes, and one that
        passes its checksum can still disagree with them (a faulty writer).
        When a location came from merged indexes and its pack's own index
        does not record it, those merged indexes are set aside for this
        index (listed in :attr:`unusable_merged`, never used again) and the
        per-pack indexes of their packs are loaded, so each chunk is found
        where its pack's index says, or in no pack; True is returned. True
        also when the index no longer gives one of the locations (a refresh
        moved it). False when every location is what the pack's own index
        records: the damage is in the pack.

        Raises:
            OSError: the pack's index or the pack directory could not be read.
        """
        if any(self.get(digest) != location for digest, location in run):
            return True
        with self._lock:
            merged = [(d, loc) for d, loc in run if self._entries.get(d) != loc]
            levels = self._levels
        if not merged:
            return False  # all from the tail, which holds the packs' own indexes
        try:
            own = dict(read_pack_table(self._storage, merged[0][1].pack).entries)
        except FileNotFoundError:
            self.refresh()  # deleted by gc meanwhile: its chunks are elsewhere now
            return True
        except ValueError:
            return False  # its own index is damaged or newer: nothing better to go by
        wrong = [(d, loc) for d, loc in merged if own.get(d) != loc]
        if not wrong:
            return False
        digest, location = wrong[0]
        held = own.get(digest)
        why = (
            f"locates chunk {digest.hex()} at offset {location.offset} of pack "
            f"{location.pack}, where that pack's own index has "
            + (f"it at offset {held.offset}" if held else "no such chunk")
        )
        suspects = {m.id for m in levels for d, loc in wrong if loc in m.find(d)}
        with self._refreshing:
            for merged_id in suspects:
                self.unusable_merged[merged_id] = why
            self._distrusted |= suspects
            _forget_parsed(self._storage.url, exclude=suspects)
            self._adopt(tuple(m for m in self._levels if m.id not in self._distrusted))
            self._refresh()
        return True

    def __contains__(self, digest: object) -> bool:
        """Whether a new chunk with this digest may reuse a stored one."""
        location = self.get(digest) if isinstance(digest, bytes) else None
        return location is not None and location.pack not in self._condemned

    def reusable(self, digests: Sequence[bytes]) -> list[bool]:
        """``digest in self`` for each of ``digests``, with one batched search."""
        condemned = self._condemned
        return [loc is not None and loc.pack not in condemned for loc in self.locate(digests)]

    def missing(self, digests: Sequence[bytes] | NDArray[np.void]) -> list[bytes]:
        """The distinct ``digests`` no loaded index has, in order.

        ``digests`` may be an array from :func:`~scribestore.store.midx.digest_array`
        or :func:`~scribestore.store.chunks.recipe_digests`: a recipe of
        thousands of chunks is then searched without an object per chunk.

        Raises:
            ValueError: a digest is not 32 bytes long.
        """
        wanted = digests if isinstance(digests, np.ndarray) else digest_array(digests)
        held = np.zeros(len(wanted), dtype=np.bool_)
        with self._lock:
            live, listing = set(self._live), self._listing
        for merged in self._by_size:
            ask = np.flatnonzero(~held)
            if not len(ask):
                break
            firsts = merged.search(wanted[ask])
            ok = merged.live(firsts, self._mask(merged, live, listing))
            held[ask[ok]] = True
            # A first entry in a pack that is gone: a later entry may be in a live one.
            for j in np.flatnonzero((firsts >= 0) & ~ok).tolist():
                found = merged.locations_from(int(firsts[j]), wanted[ask[j]].tobytes())
                held[ask[j]] = any(f.pack in live for f in found)
        joined = wanted[~held].tobytes()  # one copy, then cheap slices
        rest = dict.fromkeys(joined[at : at + 32] for at in range(0, len(joined), 32))
        return [d for d in rest if d not in self._entries]

    def _mask(self, merged: MergedIndex, live: set[str], listing: int) -> NDArray[np.bool_]:
        """Which of ``merged``'s packs are in ``live``, the live packs of listing ``listing``."""
        with self._lock:
            mask = self._masks.get(merged.id) if listing == self._listing else None
        if mask is None:
            mask = merged.pack_mask(live)
            with self._lock:
                if listing == self._listing:  # no refresh meanwhile: still current
                    self._masks[merged.id] = mask
        return mask

    def items(self) -> Iterator[tuple[bytes, ChunkLocation]]:
        """Every loaded (digest, location): one per digest."""
        seen = dict(self._entries)
        for merged in self._by_size:
            for digest, location in merged.items():
                if location.pack in self._live:
                    seen.setdefault(digest, location)
        return iter(list(seen.items()))

    def merge(self, *, full: bool = False) -> str | None:
        """Publish a merged index when one is due, and delete those it replaces.

        A new delta covers the packs outside the base once the tail holds
        :data:`DELTA_AT` packs; a new base covers every pack once those
        outside the base reach its share (see :data:`MERGE_AT`), or, with
        ``full``, unless a single merged index covers exactly the live packs.
        Returns the new merged index's id, or None.

        Raises:
            OSError: it could not be written.
        """
        with self._refreshing:
            levels = self._levels
            with self._lock:
                tables = {p: t for p, t in self._tables.items() if p in self._live}
                live = set(self._live)
            newer = {p for merged in levels[:-1] for p in merged.packs if p in live}
            pending = len(tables) + len(newer)
            if full:
                exact = len(levels) == 1 and set(levels[0].packs) == live
                due = bool(live) and not exact
            else:
                base = len(levels[-1].packs) if levels else 0
                due = len(tables) >= DELTA_AT
                limit = min(MERGE_AT, max(MERGE_MIN, base // 8))
                full = not levels or len(levels) > 2 or pending >= limit
            if not due:
                return None
            replaced = levels if full else levels[:-1]
            for merged in replaced:
                tables.update(merged.tables(live))
            made = self._publish(tables)
            if made is None:
                return None
            self._adopt((made,) if full else (made, levels[-1]))
            for merged in replaced:
                # Readers that still want it load the new one, or the
                # per-pack indexes, so it need not wait for gc.
                with contextlib.suppress(OSError):
                    self._storage.delete(merged_index_path(merged.id))
            return made.id

    def _publish(self, tables: dict[str, Table]) -> MergedIndex | None:
        """Write the merged index of ``tables``, checked before anyone can read it."""
        merged_id = new_merged_id()
        data = encode_merged(tables)
        try:
            made = MergedIndex(merged_id, data)
        except ValueError:
            return None  # a pack index holds an entry no merged index may: keep the tail
        self._storage.write_new(merged_index_path(merged_id), (data,))
        return made


# Merged indexes parsed in this process, by store and id: a merged index is
# never changed once written, so opening the store again reads it again only
# if it was replaced.
_PARSED: OrderedDict[tuple[str, str], MergedIndex] = OrderedDict()
_PARSED_LOCK = threading.Lock()
_PARSED_KEEP = 2 * LEVELS


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


def parsed_merged(url: str) -> tuple[str, ...]:
    """The ids of the merged indexes of store ``url`` kept parsed in this process."""
    with _PARSED_LOCK:
        return tuple(merged_id for key, merged_id in _PARSED if key == url)


def _forget_parsed(
    url: str, listed: set[str] | None = None, *, exclude: set[str] | None = None
) -> None:
    """Drop the parsed merged indexes of store ``url`` that are no longer
    ``listed``, and those in ``exclude``."""
    with _PARSED_LOCK:
        for key in [k for k in _PARSED if k[0] == url]:
            if (listed is not None and key[1] not in listed) or key[1] in (exclude or ()):
                del _PARSED[key]


def _entries_of(tables: dict[str, Table], condemned: set[str]) -> dict[bytes, ChunkLocation]:
    """One location per digest, in a pack gc has not condemned when there is one."""
    entries: dict[bytes, ChunkLocation] = {}
    for pass_condemned in (False, True):
        for pack_id, (_, table) in tables.items():
            if (pack_id in condemned) is pass_condemned:
                for digest, location in table:
                    entries.setdefault(digest, location)
    return entries
