"""The storage interface every backend implements.

Paths handed to a backend are relative to its root, use ``/`` and never contain
``..``, an empty component or a leading ``/``: :func:`check_relpath` enforces it
so a bug above can never make a backend touch a file outside its root.
"""

from __future__ import annotations

import abc
from typing import IO, TYPE_CHECKING, ClassVar

if TYPE_CHECKING:
    import datetime
    from collections.abc import Callable, Iterable, Iterator

__all__ = ["BLOCK_SIZE", "TMP_PREFIX", "NotRegularFileError", "Storage", "check_relpath"]

#: Names of files being written start with this until they are published;
#: gc deletes old ones, listings of content never include them.
TMP_PREFIX = ".tmp-"
#: Bytes moved per step when streaming a file or object: bounds memory per copy.
BLOCK_SIZE = 4 << 20


class NotRegularFileError(OSError):
    """A path in the store is a symlink, FIFO, device or directory, not a file.

    Backends refuse to read or write through such paths; callers report the
    file as damaged.
    """


def check_relpath(path: str) -> str:
    """Return ``path`` if it is a safe relative path, else raise ValueError."""
    if (
        not path
        or path.startswith("/")
        or "\\" in path
        or "\x00" in path
        or any(part in ("", ".", "..") for part in path.split("/"))
    ):
        raise ValueError(f"unsafe storage path {path!r}")
    return path


class Storage(abc.ABC):
    """A flat namespace of files under one root, with atomic publishes.

    Backends raise :class:`FileNotFoundError` for a missing file and let other
    :class:`OSError` subclasses propagate; callers above translate both into the
    scribestore error tree.
    """

    #: Canonical URL of the root (a plain absolute path for local disk).
    url: str
    #: Whether reads cross a network, so a local cache in front of them pays.
    remote: ClassVar[bool] = False

    @abc.abstractmethod
    def read_bytes(self, path: str) -> bytes:
        """Whole content of ``path``."""

    @abc.abstractmethod
    def read_range(self, path: str, start: int, length: int) -> bytes:
        """Up to ``length`` bytes of ``path`` from ``start`` (fewer at the end)."""

    def read_view(self, path: str, start: int, length: int) -> memoryview:
        """As :meth:`read_range`, as a read-only view (a backend may map the file).

        Only for files that are never modified once published, such as packs.
        """
        return memoryview(self.read_range(path, start, length)).toreadonly()

    @abc.abstractmethod
    def open_read(self, path: str) -> IO[bytes]:
        """A readable binary stream of ``path``."""

    @abc.abstractmethod
    def write_new(self, path: str, chunks: Iterable[bytes | memoryview]) -> bool:
        """Publish ``path`` with the concatenated ``chunks``, create-only.

        ``path`` appears only when complete. If ``chunks`` raises, nothing is
        published and the exception propagates. If ``path`` already exists the
        existing file wins and is left untouched.

        Returns:
            True if this call published the file, False if it already existed.
        """

    @abc.abstractmethod
    def write_atomic(self, path: str, data: bytes) -> None:
        """Replace ``path`` with ``data`` atomically: readers see old or new, never a mix."""

    @abc.abstractmethod
    def touch(self, path: str) -> None:
        """Set the modification time of the existing file ``path`` to now.

        Never creates the file: raises FileNotFoundError if it is gone.
        """

    @abc.abstractmethod
    def exists(self, path: str) -> bool:
        """Whether the file ``path`` exists."""

    @abc.abstractmethod
    def size(self, path: str) -> int:
        """Size in bytes of the file ``path``."""

    @abc.abstractmethod
    def modified(self, path: str) -> datetime.datetime:
        """Last-modified time of ``path`` (timezone-aware UTC)."""

    @abc.abstractmethod
    def delete(self, path: str) -> None:
        """Remove the file ``path``."""

    @abc.abstractmethod
    def list(self, prefix: str = "") -> Iterator[str]:
        """Sorted relative paths of every file under the directory ``prefix`` (recursive)."""

    @abc.abstractmethod
    def list_files(self) -> tuple[str, ...]:
        """Sorted names of the files directly under the root (not recursive)."""

    def special_files(self) -> tuple[str, ...]:
        """Paths under the root that are neither regular files nor directories.

        Symlinks, FIFOs and devices, which no operation reads or writes
        through; only local disk can hold them.
        """
        return ()

    @abc.abstractmethod
    def update(self, path: str, change: Callable[[bytes | None], bytes]) -> bytes:
        """Atomically replace ``path`` with ``change(current)`` and return it.

        ``current`` is the file's content, or None if it does not exist. No other
        ``update`` of the same file commits between the read and the write: a
        lock on local disk and in memory, a conditional write (retried on
        conflict) on object stores. If ``change`` raises, nothing is written.
        """

    def same_root(self, other: Storage) -> bool:
        """Whether ``other`` addresses the same files as this storage."""
        return type(self) is type(other) and self.url == other.url

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r})"
