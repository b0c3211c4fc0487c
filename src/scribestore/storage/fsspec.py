"""Storage over any fsspec filesystem, plus the in-memory variant.

:class:`FsspecStorage` is the generic backend (SFTP, GCS, Azure, ...): a write
goes to a temporary name in the destination directory and is then moved into
place. :class:`MemoryStorage` specialises it for fsspec's ``memory://``
filesystem, whose files are shared objects that must be copied on read.
The S3 backend lives in :mod:`scribestore.storage.s3`.
"""

from __future__ import annotations

import contextlib
import datetime
import io
import secrets
import threading
import zlib
from typing import IO, TYPE_CHECKING, Any, ClassVar

from scribestore.storage.base import TMP_PREFIX, Storage, check_relpath

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

__all__ = ["FsspecStorage", "MemoryStorage"]


_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


def _lock_for(url: str, path: str) -> threading.Lock:
    with _LOCKS_GUARD:
        return _LOCKS.setdefault((url, path), threading.Lock())


class _OSErrorsOnly:
    """An fsspec filesystem whose methods raise only OSErrors.

    Filesystem implementations raise what they like (a ValueError for a mode
    they do not support, say); the storage contract is OSErrors, which the
    layers above turn into StorageError naming the store. The cause is kept.
    """

    def __init__(self, fs: Any) -> None:
        self._fs = fs

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._fs, name)
        if not callable(attr):
            return attr

        def call(*args: Any, **kwargs: Any) -> Any:
            try:
                return attr(*args, **kwargs)
            except (OSError, KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:  # a misbehaving backend: see the class docstring
                raise OSError(f"{type(exc).__name__} from {name}(): {exc}") from exc

        return call


class FsspecStorage(Storage):
    """Files under ``root`` on an fsspec filesystem ``fs``."""

    #: Whether ``fs`` is wrapped so its methods raise only OSErrors (backends
    #: that translate their client's errors themselves say False).
    guard_errors: ClassVar[bool] = True
    remote: ClassVar[bool] = True

    def __init__(self, fs: Any, root: str, url: str) -> None:
        self.fs = _OSErrorsOnly(fs) if self.guard_errors else fs
        self.root = root.rstrip("/")
        self.url = url.rstrip("/")

    def _abs(self, path: str) -> str:
        return f"{self.root}/{check_relpath(path)}"

    def read_bytes(self, path: str) -> bytes:
        return bytes(self.fs.cat_file(self._abs(path)))

    def read_range(self, path: str, start: int, length: int) -> bytes:
        if length <= 0:
            return b""
        return bytes(self.fs.cat_file(self._abs(path), start=start, end=start + length))

    def open_read(self, path: str) -> IO[bytes]:
        f: IO[bytes] = self.fs.open(self._abs(path), "rb")
        return f

    def write_new(self, path: str, chunks: Iterable[bytes | memoryview]) -> bool:
        final = self._abs(path)
        if self.fs.exists(final):
            return False
        tmp = self._write_tmp(final, chunks)
        try:
            # The check and the move under a lock of this process (one of 64,
            # by path): two threads that both wrote a temp file cannot both publish.
            with _lock_for(self.url, f"create-only {zlib.crc32(path.encode()) % 64}"):
                if self.fs.exists(final):
                    return False
                self.fs.mv(tmp, final)
                return True
        finally:
            with contextlib.suppress(FileNotFoundError):
                if self.fs.exists(tmp):
                    self.fs.rm_file(tmp)

    def _write_tmp(self, final: str, chunks: Iterable[bytes | memoryview]) -> str:
        parent = final.rsplit("/", 1)[0]
        tmp = f"{parent}/{TMP_PREFIX}{secrets.token_hex(8)}"
        self.fs.makedirs(parent, exist_ok=True)
        try:
            with self.fs.open(tmp, "wb") as f:
                for chunk in chunks:
                    f.write(chunk)
        except BaseException:
            with contextlib.suppress(Exception):
                self.fs.rm_file(tmp)
            raise
        return tmp

    def write_atomic(self, path: str, data: bytes) -> None:
        final = self._abs(path)
        tmp = self._write_tmp(final, (data,))
        self.fs.mv(tmp, final)

    def update(self, path: str, change: Callable[[bytes | None], bytes]) -> bytes:
        # Generic filesystems offer no lock or conditional write: serialize the
        # writers of this process only. Concurrent writers from several
        # machines need local disk or an object store with conditional writes.
        with _lock_for(self.url, path):
            try:
                current: bytes | None = self.read_bytes(path)
            except FileNotFoundError:
                current = None
            data = change(current)
            self.write_atomic(path, data)
            return data

    def touch(self, path: str) -> None:
        # Rewritten in place: generic filesystems have no portable utime.
        # Between the read and the write a concurrent delete can be undone;
        # generic stores serve writers of one process (see update).
        self.write_atomic(path, self.read_bytes(path))

    def exists(self, path: str) -> bool:
        return bool(self.fs.isfile(self._abs(path)))

    def size(self, path: str) -> int:
        return int(self.fs.size(self._abs(path)))

    def modified(self, path: str) -> datetime.datetime:
        when = self.fs.modified(self._abs(path))
        if not isinstance(when, datetime.datetime):
            raise TypeError(f"{self!r}: modified() returned {when!r}")
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.timezone.utc)
        return when

    def delete(self, path: str) -> None:
        final = self._abs(path)
        if not self.fs.isfile(final):
            raise FileNotFoundError(final)
        self.fs.rm_file(final)

    def list(self, prefix: str = "") -> Iterator[str]:
        top = self._abs(prefix) if prefix else self.root
        try:
            found = self.fs.find(top, detail=True)
        except FileNotFoundError:
            return
        base = self.root + "/"
        for full in sorted(found):
            # Some object stores (SeaweedFS) list a folder emptied of its files
            # as an entry of its own: files only.
            if found[full].get("type") == "directory":
                continue
            if full.startswith(base):
                yield full[len(base) :]

    def list_files(self) -> tuple[str, ...]:
        try:
            found = self.fs.ls(self.root, detail=True)
        except FileNotFoundError:
            return ()
        names = (
            str(f["name"]).rstrip("/").rsplit("/", 1)[-1] for f in found if f["type"] == "file"
        )
        return tuple(sorted(names))


class MemoryStorage(FsspecStorage):
    """fsspec ``memory://``: one process, files held in a shared dict.

    fsspec's memory files are shared objects (one position for all readers) and
    become visible as soon as they are opened for writing, so this backend
    assembles a file completely before publishing it and reads by copy.
    """

    remote: ClassVar[bool] = False

    def open_read(self, path: str) -> IO[bytes]:
        return io.BytesIO(self.read_bytes(path))

    def write_new(self, path: str, chunks: Iterable[bytes | memoryview]) -> bool:
        final = self._abs(path)
        if self.fs.exists(final):
            return False
        data = b"".join(chunks)
        try:
            self.fs.pipe_file(final, data, mode="create")
        except FileExistsError:
            return False
        return True

    def write_atomic(self, path: str, data: bytes) -> None:
        self.fs.pipe_file(self._abs(path), data)

    def touch(self, path: str) -> None:
        with _lock_for(self.url, path):
            data = self.read_bytes(path)
            self.fs.pipe_file(self._abs(path), data)
