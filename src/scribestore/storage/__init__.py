"""Storage backends: the only package that touches a filesystem library.

:func:`open_storage` turns a path or URL into a :class:`Storage`: local paths
and ``file://`` URLs get :class:`LocalStorage`, ``memory://`` gets
:class:`MemoryStorage`, ``s3://`` gets :class:`S3Storage`, and any other fsspec
protocol gets the generic :class:`FsspecStorage`.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, TypeVar

from scribestore.exception import ScribeStoreError, StorageError, StorageTimeoutError
from scribestore.storage.base import NotRegularFileError, Storage, check_relpath
from scribestore.storage.local import DEFAULT_LOCK_TIMEOUT, LocalStorage

__all__ = [
    "LocalStorage",
    "NotRegularFileError",
    "Storage",
    "check_relpath",
    "checked",
    "join_url",
    "open_storage",
    "read_if_exists",
    "split_file_url",
    "split_url",
]


if TYPE_CHECKING:
    from collections.abc import Callable

T = TypeVar("T")


def split_url(url: str | os.PathLike[str]) -> tuple[str, str]:
    """``(protocol, rest)`` of a path or URL; protocol ``""`` means local disk."""
    text = os.fspath(url)
    if "://" in text:
        protocol, rest = text.split("://", 1)
        protocol = protocol.lower()
        if protocol == "file":
            return "", rest
        return protocol, rest
    return "", text


def join_url(base: str, name: str) -> str:
    """``name`` inside the directory ``base`` (path or URL)."""
    protocol, _ = split_url(base)
    if protocol:
        return base.rstrip("/") + "/" + name
    return os.path.join(base, name)


def split_file_url(fpath: str) -> tuple[str, str]:
    """``(directory URL, file name)`` of a file path or URL.

    Raises:
        ValueError: a URL without a directory or a file name.
    """
    protocol, rest = split_url(fpath)
    if protocol:
        directory, _, name = fpath.rstrip("/").rpartition("/")
        if not name or directory.endswith("://"):
            raise ValueError(f"{fpath!r} needs a directory and a file name")
        return directory, name
    full = os.path.abspath(rest)
    return os.path.dirname(full), os.path.basename(full)


def read_if_exists(storage: Storage, path: str, label: str) -> bytes | None:
    """Content of ``path``, or None when it does not exist.

    Raises:
        StorageError: the backend failed; ``label`` names what was read.
    """
    try:
        return storage.read_bytes(path)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise StorageError(f"cannot read {label}: {exc}") from exc


def checked(storage: Storage, call: Callable[[], T], subject: str, *, hint: str = "") -> T:
    """The result of ``call``, a call on ``storage``; its OSErrors become StorageError.

    FileNotFoundError passes through (callers decide what a missing file
    means), and so do errors already in the scribestore tree.

    Raises:
        StorageTimeoutError: ``call`` timed out.
        StorageError: ``call`` raised another OSError; the message names the
            store, ``subject`` and, when given, ``hint`` (what to do).
    """
    try:
        return call()
    except (ScribeStoreError, FileNotFoundError):
        raise
    except TimeoutError as exc:
        tail = f"; {hint}" if hint else ""
        raise StorageTimeoutError(
            f"storage at {storage.url} timed out on {subject}: {exc}{tail}"
        ) from exc
    except OSError as exc:
        tail = f"; {hint}" if hint else ""
        raise StorageError(f"storage at {storage.url} failed on {subject}: {exc}{tail}") from exc


def open_storage(url: str | os.PathLike[str], **storage_options: Any) -> Storage:
    """The backend for ``url`` (a directory); ``storage_options`` go to fsspec.

    Raises:
        ValueError: the URL's protocol is not known to fsspec.
    """
    protocol, rest = split_url(url)
    if not protocol:
        fsync = bool(storage_options.pop("fsync", True))
        lock_timeout = float(storage_options.pop("lock_timeout", DEFAULT_LOCK_TIMEOUT))
        if storage_options:
            raise ValueError(f"unknown storage options for a local path: {sorted(storage_options)}")
        return LocalStorage(rest, fsync=fsync, lock_timeout=lock_timeout)

    import fsspec

    text = os.fspath(url).rstrip("/")
    if protocol in ("s3", "s3a"):
        from scribestore.storage.s3 import S3Storage, s3_filesystem

        fs, root = s3_filesystem(text, storage_options)
        return S3Storage(fs, root, text)
    fs, root = fsspec.core.url_to_fs(text, **storage_options)
    if protocol == "memory":
        from scribestore.storage.fsspec import MemoryStorage

        return MemoryStorage(fs, root, text)
    from scribestore.storage.fsspec import FsspecStorage

    return FsspecStorage(fs, root, text)
