"""Reading chunked objects: the decoded chunks of a recipe, in order or from any offset.

See docs/FORMAT.md section 3.5. Adjacent blobs of one pack are fetched with
one ranged read, decoded, and every chunk is checked against its digest in
the recipe before a byte of it is returned; the caller hashes the
reassembled content when it reads it from the start.

Reads are sized to what the consumer asks for until it has read
:data:`STREAM_AFTER` bytes in order; from then on runs are fetched and
decoded a few ahead of it, on threads. A read at an offset therefore fetches
only the chunks that cover it, and a whole load streams at full speed.
"""

from __future__ import annotations

import bisect
import itertools
import queue
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

import blake3

from scribestore.exception import CorruptPackError, UnsupportedFormatError
from scribestore.store.blobcodec import decode_run
from scribestore.store.hashing import hash_chunk
from scribestore.store.layout import pack_path

if TYPE_CHECKING:
    from collections.abc import Callable, Generator, Iterator

    from scribestore.storage import Storage
    from scribestore.store.cache import ChunkCache
    from scribestore.store.chunks import RecipeEntry
    from scribestore.store.pack_index import PackIndex
    from scribestore.store.packs import ChunkLocation

__all__ = [
    "READERS",
    "READ_AHEAD",
    "REMOTE_READERS",
    "REMOTE_READ_AHEAD",
    "STREAM_AFTER",
    "ChunkedStream",
]

# Largest ranged read when fetching adjacent blobs of one pack.
_MAX_RUN = 4 << 20
#: Decoded runs (of at most 4 MiB of blobs) read ahead of a streaming consumer.
READ_AHEAD = 3
READERS = 2
#: The same on a remote storage, where each ranged read waits mostly on the
#: network: more requests in flight, each a run of at most 4 MiB.
REMOTE_READ_AHEAD = 6
REMOTE_READERS = 6
#: Bytes read in order (from the start or from the last seek) before reading ahead.
STREAM_AFTER = 1 << 20

#: A run of recipe entries whose blobs follow each other in one pack:
#: (index of its first entry, first location, blob bytes, (size, location) per chunk).
#: A chunk in the local cache is a run of its own with no location.
Run = tuple[int, "ChunkLocation | None", int, list[tuple[int, "ChunkLocation | None"]]]
#: A decoded run: (its buffer, the decoded bytes, index of its first entry).
Block = tuple[bytearray, memoryview, int]


class _Misplaced(Exception):
    """A run could not be read where a merged index put it, and the index changed."""


def _check_size(entry: RecipeEntry, location: ChunkLocation) -> None:
    if location.size != entry[1]:
        raise ValueError(
            f"chunk {entry[0].hex()} is {entry[1]} bytes in the recipe but {location.size} "
            f"in the index of pack {location.pack}"
        )


class ChunkedStream:
    """``read(n)`` and ``seek(pos)`` over the decoded chunks of a recipe.

    Every chunk is checked against its recipe digest before its bytes are
    returned; the whole content is not (the caller hashes it). Runs of
    chunks are decoded into a few recycled buffers, so a view that
    :meth:`read` returns is valid only until the next call.
    """

    def __init__(
        self,
        storage: Storage,
        index: PackIndex,
        recipe: list[RecipeEntry],
        *,
        cache: ChunkCache | None = None,
    ) -> None:
        self._storage = storage
        self._readers, self._ahead = (
            (REMOTE_READERS, REMOTE_READ_AHEAD) if storage.remote else (READERS, READ_AHEAD)
        )
        self._cache = cache
        self._index = index
        self._recipe = recipe
        self._located: list[ChunkLocation | None] | None = None
        self._starts = list(itertools.accumulate((s for _, s in recipe), initial=0))
        #: The content's size: the sum of the recipe's chunk sizes.
        self.size = self._starts[-1]
        self._spare: queue.SimpleQueue[bytearray] = queue.SimpleQueue()
        self._blocks: Generator[Block, None, None] | None = None
        self._current: bytearray | None = None
        self._buffer = memoryview(b"")
        self._pos = 0  # offset of the next byte read returns
        self._since = 0  # where the current in-order reading began

    def _locate(self, entry: int) -> ChunkLocation:
        # Every chunk is located at once, with one search of the merged index.
        located = self._located
        if located is None:
            located = self._located = self._index.locate([d for d, _ in self._recipe])
        digest = self._recipe[entry][0]
        location = located[entry]
        if location is None:
            # Published since the index was loaded (or never loaded): load
            # what is new, and locate every chunk again.
            self._index.refresh()
            located = self._located = self._index.locate([d for d, _ in self._recipe])
            location = located[entry]
        if location is None and self._index.newer:
            newer = next(iter(self._index.newer.values()))
            raise UnsupportedFormatError(
                f"chunk {digest.hex()} is in no pack this scribestore reads; {newer}"
            )
        if location is None and self._index.damaged:
            damaged = ", ".join(sorted(self._index.damaged))
            raise ValueError(
                f"chunk {digest.hex()} is in no readable pack; the indexes of packs "
                f"{damaged} are damaged and may hold it"
            )
        if location is None:
            raise FileNotFoundError(f"chunk {digest.hex()} is in no pack")
        return location

    def _runs(
        self, first: int = 0, stop: int | None = None, *, cached: bool = True
    ) -> Iterator[Run]:
        """Groups of the entries ``first`` to ``stop`` whose blobs follow each other in one pack.

        A group holds at most 4 MiB of blobs and of decoded chunks, unless a
        single chunk is larger. With ``cached``, a chunk the cache holds is a
        group of its own, without a location.
        """
        cache = self._cache if cached else None
        stop = len(self._recipe) if stop is None else stop
        i = first
        while i < stop:
            if cache is not None and cache.has(self._recipe[i][0]):
                yield i, None, 0, [(self._recipe[i][1], None)]
                i += 1
                continue
            head = self._locate(i)
            run: list[tuple[int, ChunkLocation | None]] = [(self._recipe[i][1], head)]
            end = head.offset + head.length
            decoded = self._recipe[i][1]
            while i + len(run) < stop:
                digest, size = self._recipe[i + len(run)]
                if cache is not None and cache.has(digest):
                    break
                loc = self._locate(i + len(run))
                if loc.pack != head.pack or loc.offset != end:
                    break
                if end + loc.length - head.offset > _MAX_RUN or decoded + size > _MAX_RUN:
                    break
                run.append((size, loc))
                end = loc.offset + loc.length
                decoded += size
            yield i, head, end - head.offset, run
            i += len(run)

    def _fetch(
        self,
        start: int,
        first: ChunkLocation | None,
        length: int,
        run: list[tuple[int, ChunkLocation | None]],
        check: bool = True,
    ) -> tuple[bytearray, memoryview]:
        """Read one run of blobs with a single ranged read, decode and verify them
        (or one chunk from the cache); chunks read from packs go to the cache.
        Without ``check`` they are neither verified nor cached.

        Raises:
            CorruptPackError: the pack is short, or a chunk does not hash to
                its name in the recipe.
            ValueError: a blob does not decode.
        """
        if first is None:
            return self._from_cache(start)
        try:
            data = self._read_run(first, length)
            buf, out = self._decode(start, first, data, run, check=check)
        except FileNotFoundError:
            # gc deleted the pack after moving its live chunks: look again.
            self._index.refresh()
            self._located = None
            return self._gather(start, len(run))
        except UnsupportedFormatError:
            raise
        except ValueError:  # short, undecodable or not hashing to its name
            if not self._misplaced(start, run):
                raise
            self._located = None
            return self._gather(start, len(run))
        if self._cache is not None and check:
            at = 0
            for j, (size, _) in enumerate(run):
                self._cache.put(self._recipe[start + j][0], out[at : at + size])
                at += size
        return buf, out

    def _misplaced(self, start: int, run: list[tuple[int, ChunkLocation | None]]) -> bool:
        """Whether a run that failed to read or check was misplaced by a merged
        index rather than damaged: asks the index about each of its chunks
        (see :meth:`PackIndex.confirm`)."""
        located = [(self._recipe[start + j][0], loc) for j, (_, loc) in enumerate(run) if loc]
        try:
            return self._index.confirm(located)
        except OSError:
            return False  # the index cannot be asked: report the damage found

    def _gather(self, start: int, count: int) -> tuple[bytearray, memoryview]:
        """Entries ``start`` to ``start + count`` decoded into one buffer, wherever they are."""
        total = sum(size for _, size in self._recipe[start : start + count])
        buf = self._buffer_for(total)
        out = memoryview(buf)[:total]
        at = 0
        for first, head, length, run in self._runs(start, start + count, cached=False):
            assert head is not None
            part_buf, part = self._decode(first, head, self._read_run(head, length), run)
            out[at : at + len(part)] = part
            at += len(part)
            self._spare.put(part_buf)
        return buf, out

    def _from_cache(self, entry: int) -> tuple[bytearray, memoryview]:
        """Chunk ``entry`` from the cache (checked there), else from its pack."""
        digest, size = self._recipe[entry]
        assert self._cache is not None
        data = self._cache.get(digest)
        if data is None or len(data) != size:  # evicted or damaged meanwhile
            loc = self._locate(entry)
            return self._fetch(entry, loc, loc.length, [(size, loc)])
        buf = self._buffer_for(size)
        out = memoryview(buf)[:size]
        out[:] = data
        return buf, out

    def _buffer_for(self, total: int) -> bytearray:
        try:
            buf = self._spare.get_nowait()
        except queue.Empty:
            buf = bytearray(_MAX_RUN)
        return buf if len(buf) >= total else bytearray(total)

    def _read_run(self, first: ChunkLocation, length: int) -> memoryview:
        data = self._storage.read_view(pack_path(first.pack), first.offset, length)
        if len(data) != length:
            raise CorruptPackError(f"pack {first.pack} is shorter than its index says")
        return memoryview(data)

    def _decode(
        self,
        start: int,
        first: ChunkLocation,
        data: memoryview,
        run: list[tuple[int, ChunkLocation | None]],
        *,
        check: bool = True,
    ) -> tuple[bytearray, memoryview]:
        """Decode one run read by :meth:`_read_run` and (with ``check``) check every
        chunk against the recipe."""
        for j, (_, loc) in enumerate(run):
            if loc is not None:
                _check_size(self._recipe[start + j], loc)
        spans = [(loc.offset - first.offset, loc.length, size) for size, loc in run if loc]
        total = sum(size for size, _ in run)
        buf = self._buffer_for(total)
        out = memoryview(buf)[:total]
        decode_run(data, spans, out)
        if not check:
            return buf, out
        at = 0
        for j, (size, loc) in enumerate(run):
            # Every chunk is checked before the reader sees a byte of it.
            if hash_chunk(out[at : at + size]) != self._recipe[start + j][0]:
                where = f"pack {loc.pack}, offset {loc.offset}" if loc else "cache"
                raise CorruptPackError(
                    f"chunk {self._recipe[start + j][0].hex()} ({where}) does not hash to its name"
                )
            at += size
        return buf, out

    def copy_into(
        self,
        add: Callable[[bytes, memoryview, int], object],
        have: Callable[[bytes], bool],
        advance: Callable[[int], object],
    ) -> str:
        """Pass the stored blob of every chunk that ``have`` lacks to ``add``, verified.

        Every chunk is decoded and checked against its digest before its
        blob is passed on as ``add(digest, blob, size)``, and the whole
        content is hashed once; blobs are passed as stored, never re-encoded,
        and nothing is chunked again. ``advance`` gets the content bytes
        checked.

        Returns:
            The BLAKE3 of the whole content: the caller compares it with the
            object's name before publishing a recipe.

        Raises:
            CorruptPackError, ValueError: a pack is short or a chunk is damaged.
            FileNotFoundError: a chunk is in no pack.
            UnsupportedFormatError: a chunk is in a pack of a newer format.
        """
        whole = blake3.blake3()
        added: set[bytes] = set()
        for start, first, data, run, buf, out in self._raw_runs():
            whole.update(out)
            for j, (size, loc) in enumerate(run):
                digest = self._recipe[start + j][0]
                if loc is not None and digest not in added and not have(digest):
                    at = loc.offset - first.offset
                    add(digest, data[at : at + loc.length], size)
                    added.add(digest)
            self._spare.put(buf)
            advance(len(out))
        return str(whole.hexdigest())

    def _raw_runs(
        self,
    ) -> Iterator[tuple[int, ChunkLocation, memoryview, list[Any], bytearray, memoryview]]:
        """Every run as stored and decoded, each chunk checked: (first entry, first
        location, blobs, run, buffer, decoded). A pack gc deleted since, or a run a
        merged index misplaced, is looked for again, once."""
        pos, retried = 0, False
        while pos < len(self._recipe):
            try:
                for start, first, length, run in self._runs(pos, cached=False):
                    assert first is not None
                    data = self._read_run(first, length)
                    try:
                        buf, out = self._decode(start, first, data, run)
                    except UnsupportedFormatError:
                        raise
                    except ValueError:
                        if retried or not self._misplaced(start, run):
                            raise
                        raise _Misplaced from None
                    retried = False
                    yield start, first, data, run, buf, out
                    pos = start + len(run)
            except (FileNotFoundError, _Misplaced) as exc:
                if retried:
                    raise
                retried = True  # gc moved the chunks, or the index did: locate every one again
                if isinstance(exc, FileNotFoundError):
                    self._index.refresh()  # a misplacement refreshed it already
                self._located = None

    def whole(self) -> Generator[memoryview, None, None]:
        """The whole content in order, decoded; chunks are checked only to be cached.

        For a caller that hashes the whole content and uses none of it
        unless that matches (a restore to a temporary file): chunks are not
        hashed a second time, except those that go to the cache, which holds
        only checked chunks. Each view is valid until the next one.

        Raises:
            As :meth:`read`.
        """
        self._stop()
        self._pos = self._since = 0
        check = self._cache is not None
        try:
            for buf, out, _ in self._decoded(0, len(self._recipe), check=check):
                yield out
                self._spare.put(buf)
                self._pos += len(out)
        finally:
            self._stop()

    def _decoded(
        self, first: int, stop: int, *, check: bool = True
    ) -> Generator[Block, None, None]:
        # Reads and decodes run on threads, a few runs ahead of the consumer,
        # which hashes what it gets in order; decoding mostly runs without the
        # GIL, so all proceed at once.
        pool = ThreadPoolExecutor(self._readers, thread_name_prefix="scribestore-read")
        pending: deque[tuple[int, Future[tuple[bytearray, memoryview]]]] = deque()
        try:
            for start, head, length, run in self._runs(first, stop):
                job = pool.submit(self._fetch, start, head, length, run, check)
                pending.append((start, job))
                while len(pending) > self._ahead:
                    start, job = pending.popleft()
                    yield (*job.result(), start)
            while pending:
                start, job = pending.popleft()
                yield (*job.result(), start)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)

    def _span(self, n: int) -> tuple[int, int]:
        """The entries to fetch for a read of ``n`` bytes at the current offset."""
        first = bisect.bisect_right(self._starts, self._pos) - 1
        if self._pos - self._since >= STREAM_AFTER:
            return first, len(self._recipe)
        stop = bisect.bisect_left(self._starts, self._pos + n)
        return first, min(len(self._recipe), max(first + 1, stop))

    def read(self, n: int) -> bytes | memoryview:
        """Up to ``n`` (> 0) bytes from the current offset; b"" at the end.

        Returns a view into the current decoded run, valid until the next call.
        """
        while not self._buffer:
            self._release()
            if self._pos >= self.size:
                return b""
            if self._blocks is None:
                self._blocks = self._decoded(*self._span(n))
            block = next(self._blocks, None)
            if block is None:
                self._blocks = None
                continue
            self._current, out, entry = block
            self._buffer = out[self._pos - self._starts[entry] :]
        out = self._buffer[:n]
        self._buffer = self._buffer[len(out) :]
        self._pos += len(out)
        return out

    def tell(self) -> int:
        """The offset of the next byte :meth:`read` returns."""
        return self._pos

    def seek(self, pos: int) -> None:
        """Read from offset ``pos`` next (clamped to the size); nothing is fetched yet."""
        pos = max(0, min(pos, self.size))
        ahead = pos - self._pos
        if 0 <= ahead <= len(self._buffer):
            self._buffer = self._buffer[ahead:]  # within the decoded run
            self._pos = pos
            return
        self._stop()
        self._pos = self._since = pos

    def _release(self) -> None:
        if self._current is not None:
            self._spare.put(self._current)  # the caller is done with it
            self._current = None

    def _stop(self) -> None:
        if self._blocks is not None:
            self._blocks.close()
            self._blocks = None
        self._buffer = memoryview(b"")
        self._release()

    def close(self) -> None:
        """Stop reading ahead: cancel queued runs and wait for the reader threads."""
        self._stop()
