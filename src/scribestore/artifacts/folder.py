"""The ``folder`` handler: a directory tree as one artifact version.

A folder is stored as one deterministic POSIX tar stream (PAX headers):
its files and directories in sorted order, each with its relative name,
size and permission bits, and nothing that varies between two copies of the
same tree (times, owners), so the same tree always gives the same bytes and
the same hash. The stream is produced while it is stored, and the object
store chunks it as it reads it (nothing is spooled): content-defined
chunking deduplicates each file's bytes against other versions, as it does
for files logged alone. Restoring extracts into a
temporary directory beside the destination, which becomes the destination
only after the whole stream was verified.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import stat
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, ClassVar

from scribestore.artifacts.base import ArtifactHandler
from scribestore.artifacts.localfile import fsync_dir
from scribestore.exception import (
    ArtifactLoadError,
    ContentChangedError,
    InvalidNameError,
    ScribeStoreError,
)
from scribestore.manifest.schema import validate_fname
from scribestore.storage.base import BLOCK_SIZE
from scribestore.store.chunks import CopyingRawIO

__all__ = ["FolderHandler"]

_BLOCK = tarfile.BLOCKSIZE  # 512


class FolderHandler(ArtifactHandler):
    """A local directory, stored as one version; restored to a directory.

    The value logged is a path to a directory. Regular files and
    directories are stored (a symbolic link to a file is stored as that
    file); a link to a directory, a device, FIFO or socket is refused when
    the folder is logged. Loading without ``dest`` gives the verified tar
    stream; with ``dest`` the tree is restored there.
    """

    alias: ClassVar[str] = "folder"
    suffix: ClassVar[str] = "tar"
    streams_path: ClassVar[bool] = True

    def source_path(self, value: Any) -> str:
        """The absolute path of the directory named by ``value``, checked entry by entry.

        Raises:
            TypeError: ``value`` is not a ``str`` or ``os.PathLike`` of ``str``.
            FileNotFoundError: nothing exists there, or it is not a directory.
            ValueError: it holds a link to a directory or a special file.
        """
        if not isinstance(value, (str, os.PathLike)) or not isinstance(os.fspath(value), str):
            raise TypeError(f"the 'folder' handler takes a str or os.PathLike path, not {value!r}")
        path = os.path.abspath(os.fspath(value))
        if not os.path.isdir(path):
            raise FileNotFoundError(f"no directory to log at {path}")
        for _ in _entries(path):
            pass
        return path

    def open_source(self, path: str) -> IO[bytes]:
        """The tar stream of the directory at ``path``, made as it is read."""
        return io.BufferedReader(_Chunks(_tar_stream(path)), BLOCK_SIZE)

    def source_size(self, path: str) -> int | None:
        """Bytes of the tar stream of ``path`` (headers included); None when the
        tree cannot be read now (the save reports why)."""
        total = 2 * _BLOCK
        try:
            for rel, full, kind in _entries(path):
                info = _info(rel, full, kind)
                total += len(_header(info)) + info.size + (-info.size % _BLOCK)
        except (OSError, ValueError):
            return None
        return total

    def write(self, value: Any, buf: IO[bytes], **params: Any) -> None:
        """Write the tar stream of the directory named by ``value`` into ``buf``."""
        _no_params(params)
        shutil.copyfileobj(self.open_source(self.source_path(value)), buf, BLOCK_SIZE)

    def read(self, buf: IO[bytes], **params: Any) -> bytes:
        """The tar stream as bytes (prefer ``dest=`` to restore the tree)."""
        _no_params(params)
        return buf.read()

    def load_stream(
        self,
        stream: IO[bytes],
        dest: str | os.PathLike[str] | None = None,
        fname: str | None = None,
        **params: Any,
    ) -> Any:
        """The stored folder: ``stream`` (the tar) itself, or the tree restored at ``dest``.

        ``dest`` must not exist, or be an empty directory. The tree is
        extracted into a temporary directory beside it, which replaces it
        only once the stream reached its verified end; ``fname`` is ignored.

        Returns:
            ``stream``, or the :class:`pathlib.Path` of the restored tree.

        Raises:
            FileExistsError: ``dest`` exists and is not an empty directory.
            FileNotFoundError: the directory that would hold ``dest`` is missing.
            ArtifactLoadError: the archive holds an entry that is not a plain
                file or directory with a safe relative name (nothing is restored).
            IntegrityError: from ``stream``; nothing is restored.
        """
        _no_params(params)
        if dest is None:
            return stream
        target = Path(os.fspath(dest)).absolute()
        if target.exists() and not (target.is_dir() and not any(target.iterdir())):
            raise FileExistsError(
                f"cannot restore a folder into {target}: it exists and is not empty"
            )
        if not target.parent.is_dir():
            raise FileNotFoundError(f"cannot restore into {target}: no {target.parent}")
        tmp = target.parent / f".{target.name}.tmp-{uuid.uuid4().hex[:12]}"
        tmp.mkdir()
        try:
            modes = _extract(stream, tmp)
            while stream.read(BLOCK_SIZE):  # to the verified end
                pass
            # Directory modes last: a read-only directory can be filled (and
            # removed again on failure) until the whole stream checked out.
            for path, mode in reversed(modes):
                with contextlib.suppress(OSError):
                    os.chmod(path, mode)
            if target.exists():
                target.rmdir()
            tmp.rename(target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        fsync_dir(str(target.parent))
        return target


def _no_params(params: dict[str, Any]) -> None:
    if params:
        raise TypeError(f"the 'folder' handler takes no parameters, got {sorted(params)}")


def _entries(root: str) -> Iterator[tuple[str, str, str]]:
    """``(relative name, full path, "dir" | "file")`` for everything under ``root``, sorted.

    Raises:
        ValueError: a link to a directory, a device, FIFO or socket, or a
            name that could not be restored (``\\``, NUL).
        OSError: a directory cannot be listed (it is never skipped silently).
    """

    def unreadable(exc: OSError) -> None:
        raise exc

    for dirpath, dirnames, filenames in os.walk(root, followlinks=False, onerror=unreadable):
        dirnames.sort()
        rel_dir = os.path.relpath(dirpath, root).replace(os.sep, "/")
        for name in sorted(dirnames + filenames):
            full = os.path.join(dirpath, name)
            rel = name if rel_dir == "." else f"{rel_dir}/{name}"
            try:
                validate_fname(rel)
            except InvalidNameError as exc:
                raise ValueError(f"{full} has a name a restore could not write: {exc}") from None
            mode = os.stat(full).st_mode  # follows a link to a file
            if name in dirnames and os.path.islink(full):
                raise ValueError(f"{full} is a link to a directory; log the directory itself")
            if stat.S_ISDIR(mode):
                yield rel, full, "dir"
            elif stat.S_ISREG(mode):
                yield rel, full, "file"
            else:
                raise ValueError(f"{full} is not a regular file or directory")


def _info(rel: str, full: str, kind: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(rel)
    st = os.stat(full)
    info.mode = stat.S_IMODE(st.st_mode)
    info.type = tarfile.DIRTYPE if kind == "dir" else tarfile.REGTYPE
    info.size = 0 if kind == "dir" else st.st_size
    # Nothing that differs between two copies of one tree.
    info.mtime, info.uid, info.gid, info.uname, info.gname = 0, 0, 0, "", ""
    return info


def _header(info: tarfile.TarInfo) -> bytes:
    return info.tobuf(format=tarfile.PAX_FORMAT, encoding="utf-8", errors="strict")


def _tar_stream(root: str) -> Iterator[bytes]:
    """The tar of ``root``, in pieces.

    Raises:
        ScribeStoreError: a file changed size while it was being read.
    """
    for rel, full, kind in _entries(root):
        info = _info(rel, full, kind)
        yield _header(info)
        if kind == "dir":
            continue
        left = info.size
        with open(full, "rb") as f:
            while left and (block := f.read(min(BLOCK_SIZE, left))):
                left -= len(block)
                yield block
            if left or f.read(1):
                raise ContentChangedError(f"{full} changed while it was being stored; log it again")
        yield b"\0" * (-info.size % _BLOCK)
    yield b"\0" * (2 * _BLOCK)


class _Chunks(CopyingRawIO):
    """A readable stream over an iterator of byte strings (read straight into
    a store's windows: it only copies into the buffers it is given)."""

    def __init__(self, pieces: Iterator[bytes]) -> None:
        super().__init__()
        self._pieces = pieces
        # A view, so handing out part of a piece copies only what is handed out.
        self._left = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._left:
            piece = next(self._pieces, None)
            if piece is None:
                return 0
            self._left = memoryview(piece)
        n = min(len(buffer), len(self._left))
        buffer[:n] = self._left[:n]
        self._left = self._left[n:]
        return n


def _extract(stream: IO[bytes], into: Path) -> list[tuple[Path, int]]:
    """Restore the tar ``stream`` under ``into``: plain files and directories only.

    Returns:
        Each directory made and its mode, for the caller to set last.

    Raises:
        ArtifactLoadError: not a tar stream, or an entry of another kind,
            with an unsafe name, or that cannot be written (a name twice, a
            file where a directory is).
    """
    try:
        with tarfile.open(fileobj=stream, mode="r|", encoding="utf-8") as archive:
            return _extract_members(archive, into)
    except tarfile.TarError as exc:
        raise ArtifactLoadError(f"the stored folder is not a readable tar archive: {exc}") from None
    except OSError as exc:
        if isinstance(exc, ScribeStoreError):
            raise
        raise ArtifactLoadError(f"the stored folder cannot be restored: {exc}") from None


def _extract_members(archive: tarfile.TarFile, into: Path) -> list[tuple[Path, int]]:
    modes: list[tuple[Path, int]] = []
    for member in archive:
        try:
            rel = validate_fname(member.name)
        except InvalidNameError as exc:
            raise ArtifactLoadError(f"the stored folder holds an unsafe name: {exc}") from None
        path = into.joinpath(*rel.split("/"))
        if member.isdir():
            path.mkdir(parents=True, exist_ok=True)
            modes.append((path, member.mode & 0o777))
            continue
        if not member.isreg() or member.issparse():
            raise ArtifactLoadError(
                f"the stored folder holds {member.name!r}, which is not a plain file "
                "or directory; nothing was restored"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        source = archive.extractfile(member)
        assert source is not None
        with open(path, "xb") as out:
            shutil.copyfileobj(source, out, BLOCK_SIZE)
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(OSError):
            os.chmod(path, member.mode & 0o777)
    return modes
