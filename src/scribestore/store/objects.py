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
import tempfile
import threading
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from functools import partial
from typing import IO, TYPE_CHECKING, Any, TypeVar, cast

import msgspec

from scribestore.exception import (
    ContentChangedError,
    CorruptObjectError,
    IntegrityError,
    ObjectNotFoundError,
    ScribeStoreError,
    StorageError,
    StorageTimeoutError,
)
from scribestore.progress import Progress, null
from scribestore.storage import (
    NotRegularFileError,
    Storage,
    open_storage,
)
from scribestore.store import loose as codec
from scribestore.store.chunks import (
    CHUNK_THRESHOLD,
    BufferWindows,
    ChunkedStream,
    ChunkWrite,
    FileWindows,
    RecipeEntry,
    Windows,
    first_chunk,
    parse_recipe,
    write_chunks,
)
from scribestore.store.hashing import (
    Hasher,
    hash_bytes,
    hash_chunk,
    hash_file,
    is_digest,
)
from scribestore.store.layout import BLOCK_SIZE, PACK_DIR, object_path
from scribestore.store.leases import Lease, LeasePolicy, Leases
from scribestore.store.packs import PackIndex
from scribestore.store.reader import ObjectReader

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

__all__ = [
    "ObjectInfo",
    "ObjectReader",
    "ObjectStore",
    "StoreStats",
]

# Streams are spooled to a temp file once they exceed this size.
_SPOOL_MAX = 16 << 20

_T = TypeVar("_T")

Source = bytes | bytearray | memoryview | IO[bytes] | os.PathLike[str]


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


class _Prepared(msgspec.Struct, frozen=True):
    """A source whose digest and size are known: a local file or an in-memory buffer."""

    digest: str
    size: int
    path: str | None
    data: bytes | memoryview | None


class ObjectStore:
    """Content-addressed, deduplicated, verified object storage.

    Args:
        root: directory path or fsspec URL (``memory://…``, ``s3://bucket/prefix``).
        lease_policy: timings of the leases that keep gc and writers apart
            (docs/FORMAT.md section 7.1); the defaults suit most stores.
        **storage_options: passed to fsspec (e.g. ``endpoint_url`` for S3).
            For local paths only ``fsync`` (default True) and ``lock_timeout``
            (seconds a manifest update waits for another process, default 120).
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        lease_policy: LeasePolicy | None = None,
        **storage_options: Any,
    ) -> None:
        self._root = os.fspath(root)
        self._options = dict(storage_options)
        self._storage = open_storage(root, **storage_options)
        self._leases = Leases(self._storage, lease_policy)
        self._index: PackIndex | None = None
        self._fresh_lease: Lease | None = None

    def __getstate__(self) -> dict[str, Any]:
        return {"root": self._root, "options": self._options, "policy": self._leases.policy}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(  # type: ignore[misc]
            state["root"], lease_policy=state["policy"], **state["options"]
        )

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

    def copy_to(self, target: ObjectStore, digest: str, *, progress: Progress = null) -> int:
        """Copy object ``digest`` into ``target`` unless it is there already.

        The bytes are verified as they are read; nothing is published in
        ``target`` unless they match ``digest``.

        Returns:
            The number of content bytes copied (0 when ``target`` had it).

        Raises:
            InvalidDigestError, ObjectNotFoundError, IntegrityError.
        """
        if target.has(digest):
            return 0
        with self.open(digest) as reader:
            copied, size = target.put_sized(cast("IO[bytes]", reader), progress=progress)
        if copied != digest:  # the reader verified its bytes, so this is a bug
            raise IntegrityError(digest, copied, detail="copy produced other content")
        return size

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

    def put(self, data: Source, *, progress: Progress = null) -> str:
        """Store ``data`` and return its digest (lowercase hex BLAKE3-256).

        ``data`` is bytes-like, a readable binary stream, or a local file path.
        Streams and files are read in blocks, never whole. Content already in
        the store is not written again.

        Raises:
            TypeError: ``data`` is none of the accepted kinds.
            StorageError: the backend failed; nothing was published.
            ScribeStoreError: a file or stream changed while it was being stored.
        """
        return self.put_sized(data, progress=progress)[0]

    def put_sized(self, data: Source, *, progress: Progress = null) -> tuple[str, int]:
        """As :meth:`put`, returning ``(digest, size in bytes)``.

        ``progress`` is started with the content's size once it is known and
        advanced as bytes are stored (at once for content already stored).
        """
        try:
            with self.writing():
                return self._put_any(data, progress)
        finally:
            progress.close()

    def _put_any(self, data: Source, progress: Progress) -> tuple[str, int]:
        if isinstance(data, (bytes, bytearray, memoryview)):
            buf = memoryview(data).cast("B")
            if len(buf) >= CHUNK_THRESHOLD:
                return self._put_large(BufferWindows(buf), None, progress)
            return self._put_prepared(_Prepared(hash_bytes(buf), len(buf), None, buf), progress)
        if isinstance(data, (str, os.PathLike)):
            if isinstance(data, str):
                raise TypeError(
                    "put() takes bytes, a binary stream or an os.PathLike path; "
                    "wrap a path string in pathlib.Path to store the file it names"
                )
            path = os.fspath(data)
            return self._wrap_os(lambda: self._put_file(path, progress), path)
        if hasattr(data, "read"):
            return self._put_stream(data, progress)
        raise TypeError(
            f"put() takes bytes, a binary stream or an os.PathLike path, not {type(data).__name__}"
        )

    def _put_file(self, path: str, progress: Progress) -> tuple[str, int]:
        with open(path, "rb") as f:
            size = os.fstat(f.fileno()).st_size
            if size >= CHUNK_THRESHOLD:
                return self._put_large(FileWindows(f, size), f, progress)
        digest, size = hash_file(path)
        return self._put_prepared(_Prepared(digest, size, path, None), progress)

    def _put_large(
        self, source: BufferWindows | FileWindows, f: IO[bytes] | None, progress: Progress
    ) -> tuple[str, int]:
        """Store content that will be chunked; name it in one pass if it must be new.

        Content whose first chunk no pack holds cannot be stored as a chunked
        object yet, so it is named by the chunking pass itself (FORMAT 4.3).
        Otherwise it may be a re-log: it is named first, by one hashing pass
        on all cores, and chunked only if that name is not stored.
        """
        before = None if f is None else _file_state(f)
        size = source.size
        # A file's hashing pass (all a re-log costs) and the loading of the
        # pack indexes start at once; whichever ends first decides: a stored
        # name ends the put, a first chunk in no pack stops the hashing pass.
        stop = threading.Event()
        pool = ThreadPoolExecutor(2, thread_name_prefix="scribestore-name")
        try:
            path = source.file.name if isinstance(source, FileWindows) else None
            named = None if path is None else pool.submit(hash_file, path, stop=stop.is_set)
            index = self._packs()
            loaded = pool.submit(index.refresh)
            probe = _probe(source)
            first = hash_chunk(first_chunk(probe))
            progress.start(size, "storing")
            racing: list[Future[Any]] = [loaded] if named is None else [loaded, named]
            wait(racing, return_when=FIRST_COMPLETED)
            if named is not None and named.done() and named.exception() is None:
                digest = named.result()[0]
                # Chunks are checked only if the indexes have loaded: a re-log
                # does not wait for them.
                if self._intact(digest, chunks=loaded.done()):
                    progress.advance(size)
                    return digest, size
            self._wrap_os(loaded.result, "packs")
            if first in index:  # stored, or starts like stored content: name it first
                if named is not None and path is not None:
                    digest = self._wrap_os(named.result, path)[0]
                else:
                    digest = hash_bytes(cast("BufferWindows", source).view)
                if self._intact(digest):
                    progress.advance(size)
                else:
                    self._publish_chunked(digest, source, before, probe, progress)
                return digest, size
        finally:
            stop.set()
            pool.shutdown(wait=False)  # a stopped pass ends after its window
        done = self._write_chunks(source, probe, progress)
        if done.size != size or (f is not None and _file_state(f) != before):
            raise ContentChangedError(
                f"the file changed while it was being stored (read {done.size} of {size} "
                "bytes, or its size, modification time or inode changed during the read); "
                "nothing was stored. Do not modify a file while logging it, then retry."
            )
        # Create-only: content already stored whole by another writer keeps its object.
        self._publish_recipe(done.digest, size, done.recipe)
        return done.digest, size

    def _put_stream(self, stream: IO[bytes], progress: Progress) -> tuple[str, int]:
        # The digest names the object, so it must be known before publishing;
        # spool to a temp file (memory while small) while hashing.
        hasher = Hasher()
        with tempfile.SpooledTemporaryFile(max_size=_SPOOL_MAX) as spool:
            while True:
                block = stream.read(BLOCK_SIZE)
                if not block:
                    break
                if not isinstance(block, (bytes, bytearray, memoryview)):
                    raise TypeError("put() needs a binary stream; this one returned text")
                hasher.update(block)
                spool.write(block)
            digest = hasher.hexdigest()
            if self._intact(digest):
                progress.start(hasher.size, "storing")
                progress.advance(hasher.size)
                return digest, hasher.size
            if hasher.size <= _SPOOL_MAX:
                spool.seek(0)
                data = spool.read()
                return self._put_prepared(_Prepared(digest, len(data), None, data), progress)
            spool.flush()
            spool.seek(0)
            progress.start(hasher.size, "storing")
            self._publish(digest, hasher.size, spool, progress)
            return digest, hasher.size

    def _put_prepared(self, src: _Prepared, progress: Progress) -> tuple[str, int]:
        progress.start(src.size, "storing")
        if self._intact(src.digest):
            progress.advance(src.size)
        else:
            if src.data is not None:
                self._publish(src.digest, src.size, _BufferReader(src.data), progress)
            else:
                assert src.path is not None
                with open(src.path, "rb") as f:
                    self._publish(src.digest, src.size, f, progress)
        return src.digest, src.size

    def _publish(
        self, digest: str, size: int, f: IO[bytes] | _BufferReader, progress: Progress
    ) -> None:
        if size >= CHUNK_THRESHOLD:
            source: BufferWindows | FileWindows
            if isinstance(f, _BufferReader):
                source, before = BufferWindows(f.view), None
            else:
                source, before = FileWindows(f, size), _file_state(f)
            self._wrap_os(self._packs().refresh, "packs")
            self._publish_chunked(digest, source, before, _probe(source), progress)
            return
        probe = f.read(codec.PROBE_SIZE)
        chosen = codec.choose_codec(probe, size)
        chunks = _encode(digest, size, chosen, probe, f, progress)
        self._object_io(lambda: self._storage.write_new(object_path(digest), chunks), digest)

    def _publish_chunked(
        self,
        digest: str,
        source: BufferWindows | FileWindows,
        before: tuple[int, int, int, int] | None,
        probe: memoryview,
        progress: Progress,
    ) -> None:
        """Chunks into packs first, then the recipe under ``digest`` (FORMAT 4.5).

        ``digest`` was computed from the source in a first pass; the chunking
        pass hashes the content again (FORMAT 4.3) and a file is also checked
        against its size, mtime, ctime and inode from ``before`` the first
        pass, so the recipe published is that of the content that was named.
        """
        done = self._write_chunks(source, probe, progress)
        after = None if isinstance(source, BufferWindows) else _file_state(source.file)
        if done.size != source.size or done.digest != digest or after != before:
            raise _changed_error(digest, source.size, done.digest, done.size)
        self._publish_recipe(digest, source.size, done.recipe)

    def _write_chunks(self, source: Windows, probe: memoryview, progress: Progress) -> ChunkWrite:
        return self._wrap_os(
            lambda: write_chunks(self._storage, self._packs(), source, probe, progress.advance),
            "packs",
        )

    def _publish_recipe(self, digest: str, size: int, recipe: bytes) -> None:
        header = codec.encode_header(codec.Codec.CHUNKED, size)
        self._object_io(
            lambda: self._storage.write_new(object_path(digest), (header, recipe)), digest
        )

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
    ) -> ObjectReader:
        """A stream of the content of ``digest``, verified before any byte is returned.

        Loose objects are verified whole on the first read; chunked ones
        chunk by chunk, and the whole content again at the end. ``size``,
        ``artifact`` and ``version`` as for :meth:`get`.

        Raises:
            InvalidDigestError, ObjectNotFoundError: as :meth:`get`.
            IntegrityError: the header disagrees with ``size``; from ``read``,
                bytes that do not match their digest.
        """
        path = object_path(digest)
        raw = self._object_io(lambda: self._storage.open_read(path), digest)
        try:
            header, chunks = self._object_io(
                lambda: self._open_parts(raw, digest, path, size, artifact, version), digest
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
    ) -> tuple[codec.ObjectHeader, ChunkedStream | None]:
        """The header of an opened object and, if it is chunked, its chunk stream."""
        header = codec.decode_header(raw.read(codec.HEADER_SIZE), digest=digest, path=path)
        if size is not None and header.size != size:
            raise IntegrityError(
                digest,
                "another size",
                path=path,
                artifact=artifact,
                version=version,
                detail=f"the object header says {header.size} bytes, the manifest {size}",
            )
        if header.codec is not codec.Codec.CHUNKED:
            return header, None
        recipe = self._recipe(digest, raw.read(), header.size, path)
        return header, ChunkedStream(self._storage, self._packs(), recipe)

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
            for chunk_digest in {d for d, _ in recipe}:
                location = index.get(chunk_digest)
                stored += location.length if location else 0
        return ObjectInfo(digest, header.size, stored, header.codec)

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
        path = object_path(digest)
        blob = self._object_io(lambda: self._storage.read_bytes(path), digest)
        header = codec.decode_header(blob[: codec.HEADER_SIZE], digest=digest, path=path)
        if header.codec is not codec.Codec.CHUNKED:
            return None
        return [d for d, _ in self._recipe(digest, blob[codec.HEADER_SIZE :], header.size, path)]

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
            recipe = self.recipe_chunks(digest)
            if recipe is None:
                self.get(digest)
            elif chunks:
                index = self._packs()
                missing = [c for c in recipe if index.get(c) is None]
                if missing:
                    self._wrap_os(index.refresh, "packs")
                    missing = [c for c in missing if index.get(c) is None]
                if missing:
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


def _encode(
    digest: str,
    size: int,
    chosen: codec.Codec,
    probe: bytes,
    f: IO[bytes] | _BufferReader,
    progress: Progress = null,
) -> Iterator[bytes]:
    """Header plus payload of an object, re-hashing the source as it is read.

    The source was hashed in an earlier pass; if it changed since, the last step
    raises and the storage backend publishes nothing.
    """
    yield codec.encode_header(chosen, size)
    hasher = Hasher()
    compressor = (
        codec.make_compressor().compressobj(size=size) if chosen is codec.Codec.ZSTD else None
    )
    block = probe
    while block:
        hasher.update(block)
        progress.advance(len(block))
        if compressor is not None:
            out = compressor.compress(block)
            if out:
                yield out
        else:
            yield block
        block = f.read(BLOCK_SIZE)
    if compressor is not None:
        yield compressor.flush()
    if hasher.size != size or hasher.hexdigest() != digest:
        raise _changed_error(digest, size, hasher.hexdigest(), hasher.size)


def _probe(source: BufferWindows | FileWindows) -> memoryview:
    """The first bytes of a chunked object's content: what its codec is chosen on."""
    return source.window(0, codec.PROBE_SIZE * 4, bytearray(codec.PROBE_SIZE * 4))


def _file_state(f: IO[bytes]) -> tuple[int, int, int, int] | None:
    """Size, mtime, ctime and inode of a real file (None for other streams)."""
    try:
        st = os.fstat(f.fileno())
    except (AttributeError, OSError, io.UnsupportedOperation):
        return None
    return (st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino)


def _changed_error(digest: str, size: int, actual: str, actual_size: int) -> ContentChangedError:
    return ContentChangedError(
        f"the content changed while it was being stored (expected {size} bytes with "
        f"blake3 {digest}, read {actual_size} bytes with blake3 {actual}); nothing was "
        "stored. Do not modify a file while logging it, then retry."
    )


class _BufferReader:
    """``read(n)`` over an in-memory buffer without copying it first."""

    def __init__(self, data: bytes | memoryview) -> None:
        self._view = memoryview(data)
        self._pos = 0

    @property
    def view(self) -> memoryview:
        """The whole buffer."""
        return self._view

    def read(self, n: int = -1) -> bytes:
        end = len(self._view) if n < 0 else min(len(self._view), self._pos + n)
        out = bytes(self._view[self._pos : end])
        self._pos = end
        return out
