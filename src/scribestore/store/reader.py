"""Reading objects: a stream of one object's content, verified as it is read."""

from __future__ import annotations

import contextlib
import io
from typing import IO, TYPE_CHECKING, Any

import zstandard

from scribestore.exception import (
    CorruptObjectError,
    IntegrityError,
    ObjectNotFoundError,
    UnsupportedFormatError,
)
from scribestore.store import loose as codec
from scribestore.store import planes
from scribestore.store.chunk_stream import ChunkedStream
from scribestore.store.hashing import Hasher
from scribestore.store.layout import BLOCK_SIZE

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from types import TracebackType

__all__ = ["ObjectReader"]


class ObjectReader(io.RawIOBase):
    """A readable, seekable stream of one object's content, verified as it is read.

    Read from the start to the end, the whole content is checked against its
    digest and size; on a mismatch :class:`IntegrityError` is raised instead
    of the final empty read, so a reader that reaches a clean end has seen
    exactly the stored content.

    :meth:`seek` moves anywhere in a chunked or small object. A read at an
    offset fetches only the chunks that cover it, each checked against its
    own digest before a byte is returned (a small object is checked whole on
    the first read). Seeking back to 0 starts the whole-content check again;
    after any other seek the end is a plain empty read. Large objects from
    before chunking stream in order only (:meth:`seekable` is False).
    ``read(n)`` returns ``n`` bytes unless the end comes first.
    """

    def __init__(
        self,
        raw: IO[bytes],
        digest: str,
        header: codec.ObjectHeader,
        path: str,
        *,
        artifact: str | None = None,
        version: int | None = None,
        chunks: ChunkedStream | None = None,
    ) -> None:
        super().__init__()
        self._artifact = artifact
        self._version = version
        self.digest = digest
        self.size = header.size
        self._path = path
        self._raw = raw
        self._hasher = Hasher()
        self._verified = False
        self._pos = 0
        # True while every byte before _pos was hashed in order from 0.
        self._in_order = True
        self._codec = header.codec
        self._source: IO[bytes] | Any
        if header.codec is codec.Codec.CHUNKED:
            assert chunks is not None
            self._source = chunks  # verifies each chunk before it is returned
        elif header.size < codec.LOOSE_LIMIT:
            self._source = None  # small: read and verified whole before the first byte
        elif header.codec is codec.Codec.ZSTD:
            # Large loose objects predate chunking: verified as they stream.
            self._source = zstandard.ZstdDecompressor().stream_reader(raw, closefd=False)
        else:
            self._source = raw

    def readable(self) -> bool:
        return True

    @property
    def chunked(self) -> bool:
        """Whether the object is stored as chunks, each verified before its bytes
        are returned (so a consumer may decode while it reads)."""
        return self._codec is codec.Codec.CHUNKED

    def seekable(self) -> bool:
        return self._codec is codec.Codec.CHUNKED or self.size < codec.LOOSE_LIMIT

    def tell(self) -> int:
        return self._pos

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        """Move to ``offset`` (from the start, the current offset or the end).

        Raises:
            io.UnsupportedOperation: a large object from before chunking, moved
                anywhere but where it is.
            ValueError: the offset is negative, ``whence`` is unknown, or the
                stream is closed.
        """
        self._checkClosed()
        bases = {io.SEEK_SET: 0, io.SEEK_CUR: self._pos, io.SEEK_END: self.size}
        if whence not in bases:
            raise ValueError(f"invalid whence {whence!r}: use io.SEEK_SET, SEEK_CUR or SEEK_END")
        base = bases[whence]
        pos = base + offset
        if pos < 0:
            raise ValueError(f"negative seek position {pos}")
        if pos == self._pos:
            return pos
        if not self.seekable():
            raise io.UnsupportedOperation(
                f"object {self.digest} predates chunking and reads only in order"
            )
        if self._source is None:
            self._source = io.BytesIO(self._whole())
        self._source.seek(pos)
        self._pos = pos
        self._in_order = pos == 0
        if pos == 0:
            self._hasher = Hasher()
        return pos

    def read(self, size: int | None = -1) -> bytes:
        """``size`` bytes (all that remain when negative), fewer only at the end.

        Raises:
            IntegrityError: (read in order to the end) the content does not
                match its digest.
        """
        if size is None or size < 0:
            return self.readall()
        out = bytearray(size)
        view = memoryview(out)
        got = 0
        while got < size:
            n = self.readinto(view[got:])
            if not n:
                break
            got += n
        del view
        return bytes(out) if got == size else bytes(out[:got])

    def readinto(self, buffer: Any) -> int:
        self._checkClosed()
        view = memoryview(buffer).cast("B")
        if len(view) == 0:
            return 0
        if self._source is None:
            self._source = io.BytesIO(self._whole())
        # Never read past the recorded size: trailing garbage is an integrity error.
        want = min(len(view), max(1, self.size - self._pos + 1))
        with self._reading():
            data = self._source.read(want)
        if data:
            self._pos += len(data)
            if self._in_order:
                self._hasher.update(data)
            if self._pos > self.size:
                raise IntegrityError(
                    self.digest,
                    "longer than recorded",
                    path=self._path,
                    artifact=self._artifact,
                    version=self._version,
                    detail=f"more than the {self.size} bytes in the header",
                )
            n = len(data)
            planes.copy(view[:n], memoryview(data))
            return n
        if self._in_order:
            self._finish()
        return 0

    @contextlib.contextmanager
    def _reading(self) -> Iterator[None]:
        """Errors of the stored bytes as the library's errors."""
        try:
            yield
        except FileNotFoundError as exc:
            raise ObjectNotFoundError(
                f"object {self.digest} is incomplete: {exc}. A pack holding its chunks is "
                "missing; restore it from another copy of the store or log the artifact again"
            ) from exc
        except UnsupportedFormatError:
            raise  # a newer format, not damage
        except (zstandard.ZstdError, ValueError) as exc:
            raise CorruptObjectError(
                self.digest,
                self._hasher.hexdigest(),
                path=self._path,
                artifact=self._artifact,
                version=self._version,
                detail=f"undecodable: {exc}",
            ) from exc

    def copy_to(self, write: Callable[[memoryview], object]) -> int:
        """Pass the whole content, from the start, to ``write`` block by block,
        then check it whole.

        Only for a caller that uses nothing it was given unless this returns,
        such as a restore into a temporary file renamed afterwards. A chunked
        object's chunks are then not checked one by one (unless they go to
        the local cache): the whole content is hashed as it passes, which is
        all the check needs, so each byte is hashed once instead of twice.
        If that check fails, the chunks are read again, checked one by one,
        to name a damaged one. A stream already read from starts again from
        0. Each view is valid only during its call. If this raises, a
        seekable stream is back at 0.

        Returns:
            The bytes passed (the object's size).

        Raises:
            IntegrityError: the content passed is not the stored content (it
                was already passed to ``write``).
            ObjectNotFoundError, CorruptObjectError, UnsupportedFormatError: as :meth:`read`.
            io.UnsupportedOperation: the stream was read from and cannot seek back.
        """
        self._checkClosed()
        if self._pos:
            if not self.seekable():
                raise io.UnsupportedOperation(
                    f"object {self.digest} was read from and reads only in order"
                )
            self.seek(0)
        try:
            if isinstance(self._source, ChunkedStream):
                return self._copy_chunks(self._source, write)
            block = bytearray(BLOCK_SIZE)
            while n := self.readinto(block):
                write(memoryview(block)[:n])
            return self._pos
        except BaseException:
            if self.seekable() and not self.closed:
                self._rewind()
            raise

    def _rewind(self) -> None:
        """Back to offset 0 with nothing hashed, whatever the inner stream read."""
        if self._source is not None:
            self._source.seek(0)
        self._pos = 0
        self._in_order = True
        self._hasher = Hasher()

    def _copy_chunks(self, source: ChunkedStream, write: Callable[[memoryview], object]) -> int:
        self._hasher = Hasher()
        with contextlib.closing(source.whole()) as blocks:
            while True:
                with self._reading():  # errors of the store's bytes, not of ``write``
                    view = next(blocks, None)
                if view is None:
                    break
                self._hasher.update(view)
                write(view)
        # The inner stream is at the end; this one follows it.
        self._pos = self._hasher.size
        self._in_order = True
        try:
            self._finish()
        except IntegrityError:
            self._name_damaged_chunk(source)
            raise
        return self._pos

    def _name_damaged_chunk(self, source: ChunkedStream) -> None:
        """Read ``source`` again with every chunk checked; raise on a damaged one.

        Raises:
            CorruptObjectError: naming the chunk, its pack and offset.
        """
        source.seek(0)
        with self._reading():
            while source.read(BLOCK_SIZE):
                pass

    def _whole(self) -> bytes:
        """The loose object's content, decoded and checked against its digest.

        Raises:
            CorruptObjectError: the payload does not decode within the size
                in the header.
            IntegrityError: the content does not hash to the digest.
        """
        payload = self._raw.read(self.size + 1) if self._codec is codec.Codec.RAW else None
        if payload is None:
            try:
                stored = self._raw.read(codec.stored_bound(self.size))
                payload = codec.decompress(stored, self.size)
            except zstandard.ZstdError as exc:
                raise CorruptObjectError(
                    self.digest,
                    "undecodable",
                    path=self._path,
                    artifact=self._artifact,
                    version=self._version,
                    detail=str(exc),
                ) from exc
        hasher = Hasher()
        hasher.update(payload)
        if hasher.size != self.size or hasher.hexdigest() != self.digest:
            raise IntegrityError(
                self.digest,
                hasher.hexdigest(),
                path=self._path,
                artifact=self._artifact,
                version=self._version,
                detail=f"{hasher.size} of {self.size} bytes",
            )
        return payload

    def _finish(self) -> None:
        actual = self._hasher.hexdigest()
        if self._hasher.size != self.size or actual != self.digest:
            raise IntegrityError(
                self.digest,
                actual,
                path=self._path,
                artifact=self._artifact,
                version=self._version,
                detail=f"read {self._hasher.size} of {self.size} bytes",
            )
        self._verified = True

    def readall(self) -> bytes:
        # Grown as bytes arrive, never sized by the header's claim: a damaged
        # header must not allocate what it announces.
        out = bytearray()
        block = bytearray(min(BLOCK_SIZE, max(1, self.size - self._pos + 1)))
        while n := self.readinto(block):
            out += memoryview(block)[:n]
        return bytes(out)

    @property
    def verified(self) -> bool:
        """True once the whole content has been read and matched its digest."""
        return self._verified

    def close(self) -> None:
        if not self.closed:
            try:
                if isinstance(self._source, ChunkedStream):
                    self._source.close()
                self._raw.close()
            finally:
                super().close()

    def __enter__(self) -> ObjectReader:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
