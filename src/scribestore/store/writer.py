"""Writing objects: put, and copying an object into another store.

:class:`ObjectWriter` is the writing half of
:class:`~scribestore.store.objects.ObjectStore`, which supplies the storage,
the pack index, the leases and the error mapping it relies on. New content
is named before it is published (FORMAT 4.3): a loose object under the
BLAKE3 of its bytes, a chunked one after its chunks' packs are published
(FORMAT 4.5).
"""

from __future__ import annotations

import abc
import contextlib
import io
import os
import stat
import threading
import time
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import IO, TYPE_CHECKING, Any, TypeVar, cast

import msgspec
import zstandard

from scribestore.exception import (
    ArtifactLogError,
    ContentChangedError,
    CorruptObjectError,
    IntegrityError,
    ObjectNotFoundError,
    ScribeStoreError,
    StorageError,
)
from scribestore.progress import Progress, null
from scribestore.store import loose as codec
from scribestore.store.chunk_stream import ChunkedStream
from scribestore.store.chunks import (
    CHUNK_THRESHOLD,
    BufferWindows,
    ChunkWrite,
    FileWindows,
    RecipeEntry,
    StreamWindows,
    Windows,
    first_chunk,
    write_chunks,
)
from scribestore.store.hashing import Hasher, hash_bytes, hash_chunk, hash_file
from scribestore.store.layout import BLOCK_SIZE, object_path
from scribestore.store.pack_index import PackIndex
from scribestore.store.packs import PackWriter
from scribestore.store.statcache import StatCache

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from scribestore.storage import Storage
    from scribestore.store.leases import Lease
    from scribestore.store.reader import ObjectReader

__all__ = ["ObjectWriter", "Source"]

#: What :meth:`ObjectWriter.put` stores: bytes, a binary stream or a file path.
Source = bytes | bytearray | memoryview | IO[bytes] | os.PathLike[str]

_T = TypeVar("_T")


class _Prepared(msgspec.Struct, frozen=True):
    """A source whose digest and size are known: a local file or an in-memory buffer."""

    digest: str
    size: int
    path: str | None
    data: bytes | memoryview | None


class ObjectWriter(abc.ABC):
    """The write path of an object store (see :class:`~scribestore.store.objects.ObjectStore`)."""

    _storage: Storage
    #: Digests of local files by their stat (None: off); see :mod:`.statcache`.
    _stat_cache: StatCache | None = None

    @property
    @abc.abstractmethod
    def url(self) -> str:
        """The root of the store as a path or URL."""

    @abc.abstractmethod
    def writing(self) -> contextlib.AbstractContextManager[Lease]:
        """Hold a write lease: gc deletes nothing while it is held."""

    @abc.abstractmethod
    def get(self, digest: str) -> bytes:
        """The verified content of ``digest``."""

    @abc.abstractmethod
    def open(self, digest: str) -> ObjectReader:
        """A verifying stream of the content of ``digest``."""

    @abc.abstractmethod
    def _packs(self) -> PackIndex:
        """The pack index of the store."""

    @abc.abstractmethod
    def _intact(self, digest: str, *, chunks: bool = True) -> bool:
        """Whether ``digest`` is stored and usable."""

    @abc.abstractmethod
    def _recipe(self, digest: str, payload: bytes, size: int, path: str) -> list[RecipeEntry]:
        """The parsed recipe of a chunked object."""

    @abc.abstractmethod
    def _object_io(self, call: Callable[[], _T], digest: str) -> _T:
        """``call`` on object ``digest``, its OSErrors mapped to the error tree."""

    @abc.abstractmethod
    def _wrap_os(self, call: Callable[[], _T], subject: str) -> _T:
        """``call`` on ``subject``, its OSErrors mapped to the error tree."""

    def put(self, data: Source, *, progress: Progress = null) -> str:
        """Store ``data`` and return its digest (lowercase hex BLAKE3-256).

        ``data`` is bytes-like, a readable binary stream, or a local file path.
        Streams and files are read in blocks, never whole. Content already in
        the store is not written again. A stream is read with ``read`` (which
        may return more than asked), and what it returns is copied; only the
        standard library's file, memory and socket streams, and
        :class:`~scribestore.store.chunks.CopyingRawIO` streams, are read with
        ``readinto`` straight into the store's buffers, so no other stream can
        change bytes after they were hashed.

        Raises:
            TypeError: ``data`` is none of the accepted kinds, or a stream
                returned text or (non-blocking) None.
            StorageError: the backend failed; nothing was published.
            ScribeStoreError: a file or stream changed while it was being stored.
            ArtifactLogError: a path names a directory, FIFO, socket or device.
            OSError: reading a stream failed (its own error, or a ``readinto``
                count it cannot have read); nothing was published.
        """
        return self.put_sized(data, progress=progress)[0]

    def put_sized(self, data: Source, *, progress: Progress = null) -> tuple[str, int]:
        """As :meth:`put`, returning ``(digest, size in bytes)``.

        ``progress`` is started with the content's size and advanced as bytes
        are stored (at once for content already stored). A stream of chunked
        size is stored as it is read, so its size is known only at its end:
        its progress is started with ``None``.
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
        f, before = _open_source(path)
        with f:
            known = self._stat_cache.lookup(path, before) if self._stat_cache else None
            # The stat cache names unchanged content without reading it; the
            # object must still be stored whole (a re-log repairs lost chunks).
            if known is not None and self._intact(known):
                progress.start(before.st_size, "storing")
                progress.advance(before.st_size)
                return known, before.st_size
            hashed_at = time.time_ns()
            # Everything below reads the opened file, never the path again:
            # the path may name another file by now (a symlink retargeted).
            if before.st_size >= CHUNK_THRESHOLD:
                digest, size = self._put_large(FileWindows(f, before.st_size), f, progress)
            else:
                data = f.read()
                named = hash_bytes(data)
                if not _same_file(before, os.fstat(f.fileno())):
                    raise ContentChangedError(
                        f"{path} changed while it was being stored (its size, modification "
                        "or change time moved during the read); nothing was stored. Do not "
                        "modify a file while logging it, then retry."
                    )
                digest, size = self._put_prepared(_Prepared(named, len(data), None, data), progress)
            if self._stat_cache is not None and _same_file(before, os.fstat(f.fileno())):
                self._stat_cache.record(path, before, digest, hashed_at)
        return digest, size

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
            opened = source.file if isinstance(source, FileWindows) else None
            path = None if opened is None else opened.name
            # Hashed through the open file: the one the chunking pass reads.
            named = None if opened is None else pool.submit(hash_file, opened, stop=stop.is_set)
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
        # Content below the chunking threshold is held whole and named first.
        # Larger content is chunked as it is read and named by the chunking
        # pass itself (FORMAT 4.3): nothing is spooled, and chunks already
        # stored are not written again.
        head = _read_head(stream, CHUNK_THRESHOLD)
        if len(head) < CHUNK_THRESHOLD:
            return self._put_prepared(_Prepared(hash_bytes(head), len(head), None, head), progress)
        progress.start(None, "storing")
        self._wrap_os(self._packs().refresh, "packs")
        source = StreamWindows(head, stream, BLOCK_SIZE)
        try:
            done = self._write_chunks(source, memoryview(head)[: codec.PROBE_SIZE * 4], progress)
        except StorageError:
            if source.read_error is not None:
                raise source.read_error from None  # the caller's stream failed, not the store
            raise
        # A damaged stored copy fails this check and is deleted, so the
        # recipe just written replaces it.
        if not self._intact(done.digest):
            self._publish_recipe(done.digest, done.size, done.recipe)
        return done.digest, done.size

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
        chunks = encode_loose(digest, size, chosen, probe, f, progress)
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
        done = self._wrap_os(
            lambda: write_chunks(self._storage, self._packs(), source, probe, progress.advance),
            "packs",
        )
        self._merge_due()
        return done

    def _merge_due(self) -> None:
        """Merge the tail of pack indexes once it is long (FORMAT 3.6)."""
        # A merged index is derived data: failing to write one costs only speed.
        with contextlib.suppress(OSError):
            self._packs().merge()

    def _publish_recipe(self, digest: str, size: int, recipe: bytes) -> None:
        header = codec.encode_header(codec.Codec.CHUNKED, size)
        self._object_io(
            lambda: self._storage.write_new(object_path(digest), (header, recipe)), digest
        )

    def copy_to(
        self, target: ObjectWriter, digest: str, *, progress: Progress = null
    ) -> int | None:
        """Copy object ``digest`` into ``target`` unless an intact copy is there.

        The digest is known, so nothing is spooled and nothing is hashed
        twice: a loose object is read and verified, then written under its
        name; a chunked one is copied blob by blob as stored (each chunk
        decoded and checked, the whole content hashed once), then its recipe
        is published. Nothing is published in ``target`` unless the bytes
        match ``digest``. ``progress`` gets the content bytes.

        Returns:
            The number of content bytes copied, or None when ``target`` had it.

        Raises:
            InvalidDigestError, ObjectNotFoundError, IntegrityError: the source
                object is malformed, missing or damaged.
            StorageError: either store failed.
        """
        with target.writing():
            if target._intact(digest):
                return None
            path = object_path(digest)
            head = self._object_io(
                lambda: self._storage.read_range(path, 0, codec.HEADER_SIZE), digest
            )
            header = codec.decode_header(head, digest=digest, path=path)
            if header.codec is not codec.Codec.CHUNKED and header.size >= CHUNK_THRESHOLD:
                # A loose object from before chunking: streamed into put, which
                # chunks it, instead of held in memory.
                with self.open(digest) as reader:
                    return target.put_sized(cast("IO[bytes]", reader), progress=progress)[1]
            progress.start(header.size, "copying")
            try:
                blob = self._object_io(lambda: self._storage.read_bytes(path), digest)
                if header.codec is not codec.Codec.CHUNKED:
                    _check_loose(blob, digest, path)
                    progress.advance(header.size)
                    # Verified, so copied as stored: not re-encoded or hashed again.
                    target._object_io(lambda: target._storage.write_new(path, (blob,)), digest)
                else:
                    recipe = bytes(blob[codec.HEADER_SIZE :])
                    entries = self._recipe(digest, recipe, header.size, path)
                    self._copy_chunks(target, digest, path, entries, progress)
                    target._publish_recipe(digest, header.size, recipe)
            finally:
                progress.close()
            return header.size

    def _copy_chunks(
        self,
        target: ObjectWriter,
        digest: str,
        path: str,
        entries: list[RecipeEntry],
        progress: Progress,
    ) -> None:
        """The chunks of ``entries`` that ``target`` lacks, into new packs of ``target``."""
        index = target._packs()
        target._wrap_os(index.refresh, "packs")
        stream = ChunkedStream(self._storage, self._packs(), entries)
        writer = PackWriter(target._storage, index)

        def add(chunk: bytes, blob: memoryview, size: int) -> None:
            # Target failures are the target's: mapped here, so what is left
            # below is about reading the source.
            target._wrap_os(lambda: writer.add(chunk, (blob,), size), "packs")

        try:
            whole = stream.copy_into(add, index.__contains__, progress.advance)
            if whole != digest:
                raise IntegrityError(digest, whole, path=path, detail="its recipe is damaged")
            target._wrap_os(writer.close, "packs")
            target._merge_due()
        except BaseException as exc:
            writer.abort()
            mapped = _source_error(exc, self.url, digest, path)
            if mapped is exc:
                raise
            raise mapped from exc


def _check_loose(blob: bytes, digest: str, path: str) -> None:
    """Check a whole loose object file (header and payload) against its name.

    Stricter than a reader: a zstd frame must state its content size and be
    followed by nothing, since the file is copied byte for byte.

    Raises:
        CorruptObjectError: the header or payload does not decode, or bytes
            follow the payload.
        IntegrityError: the content does not hash to ``digest``.
    """
    header = codec.decode_header(blob[: codec.HEADER_SIZE], digest=digest, path=path)
    payload = memoryview(blob)[codec.HEADER_SIZE :]
    data: bytes | memoryview = payload
    if header.codec is codec.Codec.ZSTD:
        try:
            if zstandard.frame_content_size(payload) != header.size:
                raise zstandard.ZstdError("the frame does not state the object's size")
            # Bounded: the frame states the size, and zstd holds it to that.
            frame = zstandard.ZstdDecompressor().decompressobj()
            data = frame.decompress(payload)
            if frame.unused_data or not frame.eof:
                raise zstandard.ZstdError("bytes follow the zstd frame, or it is cut short")
        except zstandard.ZstdError as exc:
            raise CorruptObjectError(digest, "undecodable", path=path, detail=str(exc)) from exc
    actual = hash_bytes(data)
    if len(data) != header.size or actual != digest:
        raise IntegrityError(digest, actual, path=path, detail="the stored copy is damaged")


def _source_error(exc: BaseException, url: str, digest: str, path: str) -> BaseException:
    """What a failure while reading ``digest`` from the store at ``url`` is, for the caller."""
    if isinstance(exc, ScribeStoreError) or not isinstance(exc, Exception):
        return exc
    if isinstance(exc, FileNotFoundError):
        return ObjectNotFoundError(
            f"object {digest} in {url} is incomplete: {exc}; restore the pack from another "
            "copy of that store"
        )
    if isinstance(exc, ValueError):
        return CorruptObjectError(digest, "damaged chunk", path=path, detail=str(exc))
    if isinstance(exc, OSError):
        return StorageError(f"storage at {url} failed reading object {digest}: {exc}")
    return exc


def encode_loose(
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


def _nonblocking(path: str, flags: int) -> int:
    # A FIFO opened for reading blocks until a writer comes; non-blocking, it
    # opens at once and is refused below.
    return os.open(path, flags | getattr(os, "O_NONBLOCK", 0))


def _open_source(path: str) -> tuple[IO[bytes], os.stat_result]:
    """Open the file to store at ``path``, refusing anything but a regular file;
    return it with its ``stat``.

    Raises:
        ArtifactLogError: ``path`` is a directory, FIFO, socket or device.
        OSError: it cannot be opened.
    """
    refused = ArtifactLogError(
        f"cannot store {path}: it is not a regular file (a directory, FIFO, socket or "
        "device); only regular files are stored by path"
    )
    try:
        f = open(path, "rb", opener=_nonblocking)  # noqa: SIM115 - returned open
    except IsADirectoryError:
        raise refused from None
    try:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            raise refused
        if hasattr(os, "O_NONBLOCK"):
            os.set_blocking(f.fileno(), True)
    except BaseException:
        f.close()
        raise
    return f, st


def _read_head(stream: IO[bytes], limit: int) -> bytes:
    """Up to ``limit`` bytes from the start of ``stream`` (fewer only if it ends first).

    Raises:
        TypeError: the stream returned text, or None (non-blocking).
        OSError: reading the stream failed.
    """
    parts: list[bytes] = []
    got = 0
    while got < limit:
        block = stream.read(min(BLOCK_SIZE, limit - got))
        if block is None:
            raise TypeError("put() needs a blocking binary stream; this one had no data ready")
        if not isinstance(block, (bytes, bytearray, memoryview)):
            raise TypeError("put() needs a binary stream; this one returned text")
        part = bytes(block)  # a copy the stream cannot change, counted in bytes
        if not part:
            break
        parts.append(part)
        got += len(part)
    return b"".join(parts)


def _probe(source: BufferWindows | FileWindows) -> memoryview:
    """The first bytes of a chunked object's content: what its codec is chosen on."""
    return source.window(0, codec.PROBE_SIZE * 4, bytearray(codec.PROBE_SIZE * 4))


def _same_file(a: os.stat_result, b: os.stat_result) -> bool:
    """Whether two stats of one open file show it unchanged in between."""
    fields = ("st_dev", "st_ino", "st_size", "st_mtime_ns", "st_ctime_ns")
    return all(getattr(a, n) == getattr(b, n) for n in fields)


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
