"""The content-addressed object store.

An object is the bytes of one logical content, stored once under its BLAKE3
digest at ``<root>/<digest[:2]>/<digest>`` with the header of
:mod:`scribestore.store.loose`. This module stores bytes; it knows nothing of
manifests. Every read re-hashes what it returns.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import os
from functools import partial
from typing import IO, TYPE_CHECKING, Any, TypeVar

import msgspec

from scribestore.exception import (
    CorruptObjectError,
    IntegrityError,
    ObjectNotFoundError,
    ScribeStoreError,
    StorageError,
    StorageTimeoutError,
)
from scribestore.storage import (
    NotRegularFileError,
    Storage,
    open_storage,
)
from scribestore.store import loose as codec
from scribestore.store.cache import ChunkCache, default_cache
from scribestore.store.chunk_stream import ChunkedStream
from scribestore.store.chunks import (
    RecipeEntry,
    parse_recipe,
    recipe_digests,
)
from scribestore.store.hashing import (
    is_digest,
)
from scribestore.store.layout import (
    MERGED_EXT,
    PACK_DIR,
    merged_index_path,
    object_path,
    parse_pack_name,
)
from scribestore.store.leases import Lease, LeasePolicy, Leases
from scribestore.store.pack_index import PackIndex
from scribestore.store.reader import ObjectReader
from scribestore.store.repack import RepackResult, repack
from scribestore.store.statcache import default_stat_cache
from scribestore.store.writer import ObjectWriter

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

    import numpy as np
    from numpy.typing import NDArray

    from scribestore.store.packs import ChunkLocation

__all__ = [
    "ObjectInfo",
    "ObjectReader",
    "ObjectStore",
    "StoreStats",
]

_T = TypeVar("_T")


class ObjectInfo(msgspec.Struct, frozen=True):
    """What the store knows of one object without reading its payload."""

    digest: str
    size: int
    stored_size: int
    codec: codec.Codec


class StoreStats(msgspec.Struct, frozen=True):
    """Totals over every object in a store."""

    objects: int
    logical_size: int
    stored_size: int


class ObjectStore(ObjectWriter):
    """Content-addressed, deduplicated, verified object storage.

    Args:
        root: directory path or fsspec URL (``memory://…``, ``s3://bucket/prefix``).
        lease_policy: timings of the leases that keep gc and writers apart
            (docs/FORMAT.md section 7.1); the defaults suit most stores.
        cache: the local cache loads read through: True (default) for the
            one the environment configures when the store is remote (see
            :mod:`scribestore.store.cache`), False for none, or a
            :class:`~scribestore.store.cache.ChunkCache` to use for any store.
        **storage_options: passed to fsspec (e.g. ``endpoint_url`` for S3).
            For local paths only ``fsync`` (default True) and ``lock_timeout``
            (seconds a manifest update waits for another process, default 120).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        lease_policy: LeasePolicy | None = None,
        cache: ChunkCache | bool = True,
        **storage_options: Any,
    ) -> None:
        self._root = os.fspath(root)
        self._options = dict(storage_options)
        self._storage = open_storage(root, **storage_options)
        self._cache_choice = cache
        if isinstance(cache, ChunkCache):
            self._cache: ChunkCache | None = cache
        else:
            self._cache = default_cache() if cache and self._storage.remote else None
        self._leases = Leases(self._storage, lease_policy)
        self._stat_cache = default_stat_cache()
        self._index: PackIndex | None = None
        self._fresh_lease: Lease | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {
            "root": self._root,
            "options": self._options,
            "policy": self._leases.policy,
            "cache": self._cache_choice,
        }

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["root"],
            lease_policy=state["policy"],
            cache=state.get("cache", True),
            **state["options"],
        )

    @property
    def cache(self) -> ChunkCache | None:
        """The local cache loads read through, if any."""
        return self._cache

    @contextlib.contextmanager
    def writing(self) -> Iterator[Lease]:
        """Hold a write lease: gc deletes nothing while it is held.

        Hold it from before storing (or reusing) the objects a manifest will
        name until that manifest is committed, and call the lease's
        ``check()`` right before committing (docs/FORMAT.md section 7.1).
        Re-entrant; :meth:`put` takes one for its own duration.

        Raises:
            LockTimeoutError: a gc held the store for longer than the policy's wait.
            StorageError: the storage failed.
        """
        with self._leases.writing() as lease:
            if self._index is not None and self._fresh_lease is not lease:
                # Packs may have been deleted while no lease was held.
                self._wrap_os(self._index.refresh, "packs")
            self._fresh_lease = lease
            yield lease

    def stale_leases(self) -> list[str]:
        """Paths of the lease files whose holder is gone (FORMAT 7.1).

        Raises:
            StorageError: the leases could not be listed.
        """
        return self._leases.stale()

    def exclusive(self, *, wait: float | None = None) -> contextlib.AbstractContextManager[Lease]:
        """Hold the gc lease: no writer is in flight while it is held (gc's sweep).

        Raises:
            LockTimeoutError: another gc runs, or writers stayed in flight
                longer than ``wait`` seconds (default: the lease policy's).
            StorageError: the storage failed.
        """
        return self._leases.exclusive(wait=wait)

    def age(self, path: str) -> float:
        """Seconds since the storage file ``path`` was last modified (internal API)."""
        when = self._wrap_os(partial(self._storage.modified, path), path)
        return (datetime.datetime.now(datetime.timezone.utc) - when).total_seconds()

    def same_location(self, other: ObjectStore) -> bool:
        """Whether ``other`` reads and writes the very same objects as this store."""
        return self._storage.same_root(other._storage) and self._options == other._options

    @property
    def url(self) -> str:
        """The root of this store as a path or URL."""
        return self._storage.url

    @property
    def storage_options(self) -> dict[str, Any]:
        """The fsspec options this store was opened with (a copy)."""
        return dict(self._options)

    @property
    def storage(self) -> Storage:
        """The storage backend (internal API)."""
        return self._storage

    def __repr__(self) -> str:
        return f"ObjectStore({self.url!r})"

    # --- writing -------------------------------------------------------------

    def _packs(self) -> PackIndex:
        if self._index is None:
            self._index = PackIndex(self._storage)
        return self._index

    # --- reading -------------------------------------------------------------

    def get(
        self,
        digest: str,
        *,
        size: int | None = None,
        artifact: str | None = None,
        version: int | None = None,
    ) -> bytes:
        """The verified content of ``digest``.

        ``size``, when given (the manifest's), must match the object's header
        before anything is read or allocated. ``artifact`` and ``version``
        only label errors for the reader's benefit.

        Raises:
            InvalidDigestError: ``digest`` is malformed (before any I/O).
            ObjectNotFoundError: no such object.
            IntegrityError: the stored bytes do not hash to ``digest``, or
                their size is not ``size``.
        """
        with self.open(digest, size=size, artifact=artifact, version=version) as reader:
            return reader.read()

    def open(
        self,
        digest: str,
        *,
        size: int | None = None,
        artifact: str | None = None,
        version: int | None = None,
        cached: bool = True,
    ) -> ObjectReader:
        """A stream of the content of ``digest``, verified before any byte is returned.

        Loose objects are verified whole on the first read; chunked ones
        chunk by chunk, and the whole content again at the end. ``size``,
        ``artifact`` and ``version`` as for :meth:`get`. With ``cached``
        (and a :attr:`cache`), the object's file and chunks are read from the
        cache when it holds them and kept there when read from the store;
        ``cached=False`` reads the store only (what verify does).

        Raises:
            InvalidDigestError, ObjectNotFoundError: as :meth:`get`.
            IntegrityError: the header disagrees with ``size``; from ``read``,
                bytes that do not match their digest.
        """
        path = object_path(digest)
        cache = self._cache if cached else None
        held = cache.get_file(bytes.fromhex(digest)) if cache is not None else None
        raw: IO[bytes]
        if held is not None:
            raw = io.BytesIO(held)
        else:
            raw = self._object_io(lambda: self._storage.open_read(path), digest)
        try:
            header, chunks, raw = self._object_io(
                lambda: self._open_parts(
                    raw, digest, path, size, artifact, version, cache, fresh=held is None
                ),
                digest,
            )
        except BaseException:
            raw.close()
            raise
        return ObjectReader(
            raw, digest, header, path, artifact=artifact, version=version, chunks=chunks
        )

    def _open_parts(
        self,
        raw: IO[bytes],
        digest: str,
        path: str,
        size: int | None,
        artifact: str | None,
        version: int | None,
        cache: ChunkCache | None,
        *,
        fresh: bool,
    ) -> tuple[codec.ObjectHeader, ChunkedStream | None, IO[bytes]]:
        """The header of an opened object, its chunk stream if it is chunked,
        and the stream to read a loose object's payload from.

        A small object's file and a recipe go to ``cache`` when they were
        read from the store (``fresh``: ``raw`` is not a cached copy).
        """
        head = raw.read(codec.HEADER_SIZE)
        header = codec.decode_header(head, digest=digest, path=path)
        if size is not None and header.size != size:
            raise IntegrityError(
                digest,
                "another size",
                path=path,
                artifact=artifact,
                version=version,
                detail=f"the object header says {header.size} bytes, the manifest {size}",
            )
        keep = cache is not None and fresh
        if header.codec is not codec.Codec.CHUNKED:
            if keep and header.size < codec.LOOSE_LIMIT and cache is not None:
                rest = raw.read()
                raw.close()
                cache.put_file(bytes.fromhex(digest), head + rest)
                raw = io.BytesIO(head + rest)
                raw.seek(codec.HEADER_SIZE)
            return header, None, raw
        payload = raw.read()
        recipe = self._recipe(digest, payload, header.size, path)
        if keep and cache is not None:
            cache.put_file(bytes.fromhex(digest), head + payload)
        return header, ChunkedStream(self._storage, self._packs(), recipe, cache=cache), raw

    def _recipe(self, digest: str, payload: bytes, size: int, path: str) -> list[RecipeEntry]:
        try:
            return parse_recipe(payload, size)
        except ValueError as exc:
            raise CorruptObjectError(digest, "bad recipe", path=path, detail=str(exc)) from exc

    def has(self, digest: str) -> bool:
        """Whether ``digest`` is stored (its content is not read).

        Raises:
            InvalidDigestError: ``digest`` is malformed.
        """
        return self._exists(digest)

    def __contains__(self, digest: object) -> bool:
        return is_digest(digest) and self._exists(str(digest))

    def __iter__(self) -> Iterator[str]:
        """Digests of every stored object, in sorted order."""
        for path in self._wrap_os(lambda: list(self._storage.list()), self.url):
            parts = path.split("/")
            if len(parts) == 2 and is_digest(parts[1]) and parts[0] == parts[1][:2]:
                yield parts[1]

    def stat(self, digest: str) -> ObjectInfo:
        """Header facts of ``digest``: logical size, stored size and codec.

        Raises:
            InvalidDigestError, ObjectNotFoundError, CorruptObjectError.
        """
        path = object_path(digest)
        head = self._object_io(lambda: self._storage.read_range(path, 0, codec.HEADER_SIZE), digest)
        header = codec.decode_header(head, digest=digest, path=path)
        stored = self._object_io(lambda: self._storage.size(path), digest)
        if header.codec is codec.Codec.CHUNKED:
            # The recipe plus each distinct chunk's blob (shared chunks count in full).
            blob = self._object_io(lambda: self._storage.read_bytes(path), digest)
            recipe = self._recipe(digest, blob[codec.HEADER_SIZE :], header.size, path)
            index = self._packs()
            index.refresh()
            distinct = list(dict.fromkeys(d for d, _ in recipe))
            stored += sum(loc.length for loc in index.locate(distinct) if loc is not None)
        return ObjectInfo(digest, header.size, stored, header.codec)

    def stored_bytes(self, digests: Iterable[str]) -> int:
        """Bytes on storage that the objects ``digests`` take together: each
        object file once, and each chunk once however many of them share it.

        Raises:
            InvalidDigestError, ObjectNotFoundError, CorruptObjectError.
        """
        return sum(self.added_bytes(list(dict.fromkeys(digests))))

    def added_bytes(self, digests: Sequence[str]) -> list[int]:
        """For each of ``digests`` in order, the bytes on storage it adds to
        the objects before it: its object file unless an earlier entry is the
        same object, plus its chunks that no earlier entry holds. For the
        versions of an artifact in order, this is what each one cost.

        Raises:
            InvalidDigestError, ObjectNotFoundError, CorruptObjectError.
        """
        added: list[int] = []
        objects: set[str] = set()
        chunks: set[bytes] = set()
        index: PackIndex | None = None
        for digest in digests:
            if digest in objects:
                added.append(0)
                continue
            objects.add(digest)
            path = object_path(digest)
            total = self._object_io(partial(self._storage.size, path), digest)
            # Only a chunked object's file is read whole.
            recipe = self.recipe_chunks(digest) if self.is_chunked(digest) else None
            if recipe:
                if index is None:
                    index = self._packs()
                    index.refresh()
                new = list(dict.fromkeys(c for c in recipe if c not in chunks))
                total += sum(loc.length for loc in index.locate(new) if loc is not None)
                chunks.update(recipe)
            added.append(total)
        return added

    def missing_chunks(self, digest: str) -> int:
        """How many distinct chunks of ``digest`` no pack holds (0 for a loose
        object): more than 0 means it cannot be loaded. Nothing is changed.

        Raises:
            InvalidDigestError, ObjectNotFoundError, CorruptObjectError.
        """
        recipe = self._chunk_digests(digest) if self.is_chunked(digest) else None
        return len(self._missing(recipe)) if recipe is not None else 0

    def _missing(self, chunks: NDArray[np.void]) -> list[bytes]:
        """The distinct ``chunks`` in no pack, after refreshing the indexes if any seem missing."""
        index = self._packs()
        fresh = not index.refreshed
        if fresh:  # nothing is loaded yet: every chunk would seem missing
            self._wrap_os(index.refresh, "packs")
        missing = index.missing(chunks)
        if missing and not fresh:
            self._wrap_os(index.refresh, "packs")
            missing = index.missing(missing)
        return missing

    def is_chunked(self, digest: str) -> bool:
        """Whether ``digest`` is stored as chunks in packs (only its header is read).

        Raises:
            InvalidDigestError, ObjectNotFoundError, CorruptObjectError.
        """
        path = object_path(digest)
        head = self._object_io(lambda: self._storage.read_range(path, 0, codec.HEADER_SIZE), digest)
        return codec.decode_header(head, digest=digest, path=path).codec is codec.Codec.CHUNKED

    def merge_indexes(self) -> str | None:
        """Publish a merged index of every pack, unless the newest one covers
        exactly the packs there are, then delete the merged indexes older than
        the one in use (FORMAT 3.6). Returns that one's id (None: no packs).

        Safe beside writers and readers: a merged index is derived data, and
        one deleted while a reader wanted it costs that reader only time.

        Raises:
            StorageError: the packs could not be listed, read or written.
        """
        index = self._packs()
        self._wrap_os(index.refresh, "packs")
        self._wrap_os(lambda: index.merge(full=True), "packs")
        keep = index.merged_id
        names = self._wrap_os(lambda: list(self._storage.list(PACK_DIR)), self.url)
        for found in filter(None, map(parse_pack_name, names)):
            if found.kind == MERGED_EXT and (keep is None or found.pack_id < keep):
                path = merged_index_path(found.pack_id)
                with contextlib.suppress(FileNotFoundError):
                    self._wrap_os(partial(self._storage.delete, path), path)
        return keep

    def repack(self, keep: Mapping[str, list[tuple[bytes, ChunkLocation]]]) -> RepackResult:
        """Copy the chunks ``keep`` names (pack id -> entries) into new packs,
        each verified first; see :func:`scribestore.store.repack.repack`.

        Only gc calls this, under the gc lease, then condemns the emptied packs.

        Raises:
            StorageError: a new pack could not be written (nothing is emptied).
        """
        index = self._packs()
        self._wrap_os(index.refresh, "packs")
        return self._wrap_os(lambda: repack(self._storage, index, keep), "packs")

    def stats(self) -> StoreStats:
        """Object count, logical bytes, and bytes on storage (objects, packs and indexes)."""
        count = logical = stored = 0
        for digest in self:
            path = object_path(digest)
            head = self._object_io(
                partial(self._storage.read_range, path, 0, codec.HEADER_SIZE), digest
            )
            count += 1
            logical += codec.decode_header(head, digest=digest, path=path).size
            stored += self._object_io(partial(self._storage.size, path), digest)
        for pack_file in self._wrap_os(lambda: list(self._storage.list(PACK_DIR)), self.url):
            stored += self._wrap_os(partial(self._storage.size, pack_file), pack_file)
        return StoreStats(count, logical, stored)

    def delete(self, digest: str) -> None:
        """Remove ``digest`` from the store.

        Raises:
            InvalidDigestError: ``digest`` is malformed.
            ObjectNotFoundError: no such object.
        """
        path = object_path(digest)
        self._object_io(lambda: self._storage.delete(path), digest)

    def recipe_chunks(self, digest: str) -> list[bytes] | None:
        """Chunk digests of a chunked object, or None for a loose one.

        Raises:
            InvalidDigestError, ObjectNotFoundError, CorruptObjectError.
        """
        chunks = self._chunk_digests(digest)
        if chunks is None:
            return None
        joined = chunks.tobytes()
        return [joined[at : at + 32] for at in range(0, len(joined), 32)]

    def _chunk_digests(self, digest: str) -> NDArray[np.void] | None:
        """:meth:`recipe_chunks` as an array (see :func:`recipe_digests`)."""
        path = object_path(digest)
        blob = self._object_io(lambda: self._storage.read_bytes(path), digest)
        header = codec.decode_header(blob[: codec.HEADER_SIZE], digest=digest, path=path)
        if header.codec is not codec.Codec.CHUNKED:
            return None
        try:
            return recipe_digests(memoryview(blob)[codec.HEADER_SIZE :], header.size)
        except ValueError as exc:
            raise CorruptObjectError(digest, "bad recipe", path=path, detail=str(exc)) from exc

    # --- helpers -------------------------------------------------------------

    def _intact(self, digest: str, *, chunks: bool = True) -> bool:
        """Whether ``digest`` is stored and usable, so a put may skip writing it.

        A loose object is verified whole (it is small); a chunked one must
        have a readable recipe whose chunks (with ``chunks``) are all in
        readable packs. A
        stored copy that fails is deleted, so the put that asked writes the
        content again: logging an artifact again repairs it.
        """
        if not self._exists(digest):
            return False
        try:
            recipe = self._chunk_digests(digest)
            if recipe is None:
                self.get(digest)
            elif chunks and (missing := self._missing(recipe)):
                raise ObjectNotFoundError(f"{len(missing)} chunks of {digest} are missing")
        except (IntegrityError, ObjectNotFoundError):
            path = object_path(digest)
            with contextlib.suppress(ObjectNotFoundError):
                self._object_io(lambda: self._storage.delete(path), digest)
            return False
        return True

    def _exists(self, digest: str) -> bool:
        path = object_path(digest)
        return self._object_io(lambda: self._storage.exists(path), digest)

    def _object_io(self, call: Callable[[], _T], digest: str) -> _T:
        """Run ``call`` on object ``digest``; a missing file is a missing object.

        Raises:
            ObjectNotFoundError: ``call`` met no such file.
            CorruptObjectError, StorageError: as :meth:`_wrap_os`.
        """
        try:
            return self._io(call, digest, digest)
        except FileNotFoundError:
            raise ObjectNotFoundError(
                f"object {digest} is not in the store at {self.url}; check the "
                "digest, or that the store URL points at the right objects directory"
            ) from None

    def _wrap_os(self, call: Callable[[], _T], subject: str) -> _T:
        """Run ``call`` on ``subject`` (not an object), its OSErrors mapped to the error tree.

        Raises:
            CorruptObjectError: a path is a symlink, FIFO or device.
            StorageError: the backend failed, or a file is not there.
        """
        try:
            return self._io(call, subject, None)
        except FileNotFoundError:
            raise StorageError(f"not found: {subject} in {self.url}") from None

    def _io(self, call: Callable[[], _T], subject: str, digest: str | None) -> _T:
        """Run ``call``; FileNotFoundError passes through, other OSErrors are mapped."""
        try:
            return call()
        except (ScribeStoreError, FileNotFoundError):
            raise
        except NotRegularFileError as exc:
            raise CorruptObjectError(
                digest or "store-file",
                "not a regular file",
                path=str(exc.filename),
                detail=f"{exc.strerror}: only regular files are read; remove it",
            ) from exc
        except TimeoutError as exc:
            raise StorageTimeoutError(
                f"storage at {self.url} timed out on {subject}: {exc}; check that the "
                "store is reachable, then retry"
            ) from exc
        except OSError as exc:
            raise StorageError(f"storage at {self.url} failed on {subject}: {exc}") from exc
