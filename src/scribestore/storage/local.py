"""Local-disk storage: plain ``os`` calls for atomic rename and fsync.

Writes go to a temporary name in the destination directory, are fsynced, and
are then published with ``os.link`` (create-only: the first writer wins) or
``os.replace`` (manifests); the directory is fsynced after each publish.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import mmap
import os
import secrets
import socket
import stat
import time
from functools import partial
from typing import IO, TYPE_CHECKING

from scribestore.storage import listing_cache
from scribestore.storage.base import TMP_PREFIX, NotRegularFileError, Storage, check_relpath

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator

__all__ = ["LOCK_SUFFIX", "LocalStorage"]

#: Suffix of the lock file that serializes updates of one manifest.
LOCK_SUFFIX = ".lock"
#: Seconds a manifest update waits for another process's lock before failing.
DEFAULT_LOCK_TIMEOUT = 120.0
# Largest single write() call. Huge writes let Linux allocate large page-cache
# folios, which can stall on memory compaction: here, writing 1 GiB in 32 MiB
# calls took 1.8-2.4 s in 3 of 6 trials, 1 MiB calls 0.23-0.59 s in 8.
_WRITE_PIECE = 1 << 20
# Ranged reads at least this long are memory-mapped, with the pages mapped
# up front (one call instead of a page fault per few pages) where possible.
_MAP_MIN = 256 << 10
_MAP_FLAGS = mmap.MAP_SHARED | getattr(mmap, "MAP_POPULATE", 0)
# Errors meaning "this filesystem has no hard links": fall back to rename.
_NO_LINK = {errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK}


def _walk_error(vanished: list[OSError], exc: OSError) -> None:
    """A directory that could not be read fails the listing, unless it was deleted meanwhile."""
    if not isinstance(exc, FileNotFoundError):
        raise exc
    vanished.append(exc)


class LocalStorage(Storage):
    """Files under a directory on local disk."""

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        fsync: bool = True,
        lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    ) -> None:
        self.root = os.path.abspath(os.fspath(root))
        self.url = self.root
        self._fsync = fsync
        self._lock_timeout = lock_timeout

    def _abs(self, path: str) -> str:
        return os.path.join(self.root, *check_relpath(path).split("/"))

    def _abs_for_write(self, path: str) -> str:
        """The absolute path of ``path``, refusing symlinked directories inside the store.

        A link planted at ``objects/ab`` or ``objects/packs`` would make a
        write land outside the store; the store's own tree is never followed
        through a link when writing (the root itself may be one).

        Raises:
            NotRegularFileError: a directory on the way is a symlink or not a directory.
        """
        full = self._abs(path)
        current = self.root
        for part in check_relpath(path).split("/")[:-1]:
            current = os.path.join(current, part)
            try:
                st = os.lstat(current)
            except FileNotFoundError:
                break  # created by _makedirs, as a real directory
            if not stat.S_ISDIR(st.st_mode):
                raise NotRegularFileError(
                    errno.ELOOP, "a symbolic link or file where a directory belongs", current
                )
        return full

    def _open_regular(self, path: str) -> IO[bytes]:
        """Open ``path`` for reading if it is a regular file, not a link or device.

        Non-blocking open, so a FIFO planted in the store cannot hang a reader.

        Raises:
            NotRegularFileError: it is a symlink, FIFO, device or directory.
        """
        full = self._abs(path)
        try:
            fd = os.open(full, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise NotRegularFileError(errno.ELOOP, "a symbolic link", full) from exc
            raise
        try:
            mode = os.fstat(fd).st_mode
            if not stat.S_ISREG(mode):
                raise NotRegularFileError(errno.EINVAL, "not a regular file", full)
            os.set_blocking(fd, True)
            return os.fdopen(fd, "rb")
        except BaseException:
            os.close(fd)
            raise

    def read_bytes(self, path: str) -> bytes:
        with self._open_regular(path) as f:
            return f.read()

    def read_range(self, path: str, start: int, length: int) -> bytes:
        with self._open_regular(path) as f:
            f.seek(start)
            return f.read(length)

    def read_view(self, path: str, start: int, length: int) -> memoryview:
        # Mapped, not copied: the bytes go from the page cache straight to the
        # decoder. Safe because packs are immutable; an unlinked file stays
        # mapped until the view is dropped.
        if length < _MAP_MIN:
            return super().read_view(path, start, length)
        with self._open_regular(path) as f:
            aligned = start - start % mmap.ALLOCATIONGRANULARITY
            try:
                mapped = mmap.mmap(
                    f.fileno(),
                    start + length - aligned,
                    flags=_MAP_FLAGS,
                    prot=mmap.PROT_READ,
                    offset=aligned,
                )
            except ValueError:  # shorter than asked: read what there is
                f.seek(start)
                return memoryview(f.read(length)).toreadonly()
        return memoryview(mapped)[start - aligned :]

    def open_read(self, path: str) -> IO[bytes]:
        return self._open_regular(path)

    def _write_tmp(self, final: str, chunks: Iterable[bytes | memoryview]) -> str:
        """Write ``chunks`` to a fresh temp file beside ``final``; return its path."""
        directory = os.path.dirname(final)
        self._makedirs(directory)
        tmp = os.path.join(directory, TMP_PREFIX + secrets.token_hex(8))
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            with os.fdopen(fd, "wb", buffering=0) as f:
                for chunk in chunks:
                    view = memoryview(chunk).cast("B")
                    start = 0
                    while start < len(view):
                        written = f.write(view[start : start + _WRITE_PIECE])
                        if not written:
                            raise OSError(errno.EIO, f"short write to {tmp}")
                        start += written
                if self._fsync:
                    os.fsync(f.fileno())
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        return tmp

    def _makedirs(self, directory: str) -> None:
        """Create ``directory`` and its missing parents, each made durable.

        A new directory's entry lives in its parent, so the parent is fsynced
        before anything inside the new directory is published: otherwise a
        power cut could keep a manifest and lose the objects it names.
        """
        missing = []
        path = directory
        while not os.path.isdir(path):
            missing.append(path)
            parent = os.path.dirname(path)
            if parent == path:
                break
            path = parent
        for new in reversed(missing):
            with contextlib.suppress(FileExistsError):
                os.mkdir(new)
            self._fsync_dir(os.path.dirname(new))

    def _fsync_dir(self, directory: str) -> None:
        if not self._fsync:
            return
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def write_new(self, path: str, chunks: Iterable[bytes | memoryview]) -> bool:
        final = self._abs_for_write(path)
        if os.path.exists(final):
            return False
        tmp = self._write_tmp(final, chunks)
        try:
            try:
                os.link(tmp, final)
                created = True
            except FileExistsError:
                created = False
            except OSError as exc:
                if exc.errno not in _NO_LINK:
                    raise
                created = not os.path.exists(final)
                if created:
                    os.replace(tmp, final)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        if created:
            self._fsync_dir(os.path.dirname(final))
        return created

    def write_atomic(self, path: str, data: bytes) -> None:
        final = self._abs_for_write(path)
        tmp = self._write_tmp(final, (data,))
        try:
            os.replace(tmp, final)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self._fsync_dir(os.path.dirname(final))

    def update(self, path: str, change: Callable[[bytes | None], bytes]) -> bytes:
        final = self._abs_for_write(path)
        self._makedirs(os.path.dirname(final))
        # The lock file is never removed: removing it would let two writers hold
        # locks on different inodes. flock is released by the kernel when its
        # holder dies, so a lock left by a dead process is free at once.
        fd = os.open(
            final + LOCK_SUFFIX, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644
        )
        try:
            self._lock(fd, final + LOCK_SUFFIX)
            try:
                os.ftruncate(fd, 0)
                os.pwrite(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode(), 0)
                try:
                    with self._open_regular(path) as f:
                        current: bytes | None = f.read()
                except FileNotFoundError:
                    current = None
                data = change(current)
                self.write_atomic(path, data)
                return data
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)

    def _lock(self, fd: int, lock_path: str) -> None:
        """Take the exclusive lock on ``fd``, waiting at most the lock timeout.

        Raises:
            NotRegularFileError: the lock path is not a regular file.
            TimeoutError: another process held it all that time (named).
        """
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise NotRegularFileError(errno.EINVAL, "not a regular file", lock_path)
        deadline = time.monotonic() + self._lock_timeout
        delay = 0.005
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return
            except BlockingIOError:
                if time.monotonic() > deadline:
                    holder = os.pread(fd, 200, 0).decode(errors="replace").strip()
                    raise TimeoutError(
                        errno.ETIMEDOUT,
                        f"gave up after {self._lock_timeout:.0f} s waiting for the lock held "
                        f"by {holder or 'another process'}; if that process is stopped, "
                        "resume or end it",
                        lock_path,
                    ) from None
                time.sleep(delay)
                delay = min(delay * 2, 0.1)

    def touch(self, path: str) -> None:
        os.utime(self._abs(path))

    def exists(self, path: str) -> bool:
        return os.path.isfile(self._abs(path))

    def size(self, path: str) -> int:
        return os.stat(self._abs(path)).st_size

    def modified(self, path: str) -> datetime.datetime:
        mtime = os.stat(self._abs(path)).st_mtime
        return datetime.datetime.fromtimestamp(mtime, tz=datetime.timezone.utc)

    def delete(self, path: str) -> None:
        os.unlink(self._abs(path))

    def list(self, prefix: str = "") -> Iterator[str]:
        top = self._abs(prefix) if prefix else self.root
        try:
            before = listing_cache.state_of(top)
        except FileNotFoundError:
            return  # missing: nothing under it
        kept = listing_cache.lookup(self.root, top, before)
        if kept is not None:
            yield from kept
            return
        started = time.time_ns()
        found: list[str] = []
        vanished: list[OSError] = []
        flat = True
        for dirpath, dirnames, filenames in os.walk(top, onerror=partial(_walk_error, vanished)):
            flat = flat and not dirnames
            rel = os.path.relpath(dirpath, self.root)
            base = "" if rel == "." else rel.replace(os.sep, "/") + "/"
            found.extend(base + name for name in filenames)
        names = tuple(sorted(found))
        if flat and not vanished:  # a subdirectory's changes do not move its parent's times
            listing_cache.remember(self.root, top, before, started, names)
        yield from names

    def special_files(self) -> tuple[str, ...]:
        found = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            for name in [*dirnames, *filenames]:
                full = os.path.join(dirpath, name)
                mode = os.lstat(full).st_mode
                if not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
                    found.append(os.path.relpath(full, self.root).replace(os.sep, "/"))
        return tuple(sorted(found))

    def list_files(self) -> tuple[str, ...]:
        try:
            with os.scandir(self.root) as entries:
                return tuple(sorted(e.name for e in entries if e.is_file(follow_symlinks=False)))
        except FileNotFoundError:
            return ()

    def local_path(self, path: str) -> str:
        """The absolute local path of ``path`` (local backend only)."""
        return self._abs(path)
