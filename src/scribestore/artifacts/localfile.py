"""Writing a local file from a verifying stream, all or nothing.

Used by the ``file`` handler and by ``scribestore get``: the bytes go to a
temporary file beside the target, which replaces the target only after the
stream reached its verified end and the data was fsynced.
"""

from __future__ import annotations

import contextlib
import os
import stat
import sys
import tempfile
from typing import IO

from scribestore.progress import Progress, null
from scribestore.storage.base import BLOCK_SIZE
from scribestore.store.reader import ObjectReader

__all__ = ["check_no_link_between", "fsync_dir", "new_file_mode", "write_atomically"]


def check_no_link_between(top: str | os.PathLike[str], target: str | os.PathLike[str]) -> None:
    """Refuse a ``target`` inside directory ``top`` reached through a symlink.

    A stored file name such as ``cfg/model.bin`` comes from a manifest; if
    ``top/cfg`` is a symlink, writing there would land outside ``top``. Only
    the directories between ``top`` and ``target`` are checked: ``target``
    itself, if a symlink, is replaced, never followed.

    Raises:
        ValueError: a directory between them is a symlink.
    """
    base = os.fspath(top)
    rel = os.path.relpath(os.fspath(target), base)
    here = base
    for part in rel.split(os.sep)[:-1]:
        here = os.path.join(here, part)
        if os.path.islink(here):
            raise ValueError(
                f"refusing to write {target}: {here} is a symlink, and a stored file "
                f"name must not lead out of {base}"
            )


def write_atomically(target: str, stream: IO[bytes], *, progress: Progress = null) -> None:
    """Write ``stream`` to its end into ``target``; ``target`` changes only if that succeeds.

    ``progress`` is advanced by the bytes written (its owner starts and closes it).

    Raises:
        FileNotFoundError: the directory that would hold ``target`` is missing.
        IntegrityError: from ``stream``; ``target`` is left untouched and the
            temporary file is removed.
        OSError: writing failed; ``target`` is left untouched.
    """
    parent = os.path.dirname(target) or "."
    if not os.path.isdir(parent):
        raise FileNotFoundError(f"cannot write {target}: directory {parent} does not exist")
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(target)}.", suffix=".tmp", dir=parent)
    try:
        with os.fdopen(fd, "wb", buffering=0) as out:
            sink = _Sink(out, progress)
            if isinstance(stream, ObjectReader):
                stream.copy_to(sink.write)  # checked whole, each byte hashed once
            else:
                while block := stream.read(BLOCK_SIZE):
                    sink.write(memoryview(block))
            # Reaching here means the stream hit its clean (verified) end.
            os.fsync(out.fileno())
        # mkstemp creates 0600; give the file the mode a plain open() would.
        os.chmod(tmp, new_file_mode(target))
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(parent)


# Bytes written between requests to start writing them to disk.
_WRITEBACK = 16 << 20


class _Sink:
    """Writes to an unbuffered file, starting writeback every :data:`_WRITEBACK` bytes."""

    def __init__(self, out: IO[bytes], progress: Progress) -> None:
        self._out = out
        self._progress = progress
        self._written = self._flushed = 0

    def write(self, block: memoryview) -> None:
        """Write all of ``block``.

        Raises:
            OSError: the write failed.
        """
        size = len(block)
        while block:
            block = block[self._out.write(block) or 0 :]  # raw writes may be partial
        self._written += size
        self._progress.advance(size)
        if self._written - self._flushed >= _WRITEBACK:
            _start_writeback(self._out.fileno(), self._flushed, self._written - self._flushed)
            self._flushed = self._written


def _start_writeback(fd: int, offset: int, length: int) -> None:
    """Start writing a range of ``fd`` to disk without waiting for it.

    The final fsync then waits only for the last range: writing to disk
    overlaps reading, decoding and verifying the rest. On Linux
    ``POSIX_FADV_DONTNEED`` starts writeback of the range's dirty pages (and
    drops only pages already clean); elsewhere nothing is done.
    """
    advise = getattr(os, "posix_fadvise", None)
    if advise is not None and sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            advise(fd, offset, length, os.POSIX_FADV_DONTNEED)


def new_file_mode(target: str) -> int:
    """Permission bits for a file replacing ``target``: its own read, write and
    execute bits (never setuid, setgid or sticky: the content is new, as a plain
    write would clear them), or 0o666 minus the umask."""
    try:
        return stat.S_IMODE(os.stat(target).st_mode) & 0o777
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask() -> int:
    # Linux exposes the umask read-only; os.umask() must set it to read it,
    # which briefly changes it for every thread, so it is only the fallback.
    try:
        with open("/proc/self/status", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def fsync_dir(path: str) -> None:
    """Make a rename in directory ``path`` durable (POSIX; failures are ignored)."""
    # Makes the rename durable on POSIX; directories cannot be opened on Windows.
    if os.name != "posix":
        return
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
