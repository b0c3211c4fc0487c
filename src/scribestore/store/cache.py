"""A local cache of chunks, small objects and recipes in front of remote stores.

Entries are files named by their BLAKE3 digest under ``<root>/<kind>/<xx>/``:
``chunks`` hold chunk content, checked against its name on every read;
``files`` hold the stored file of a small object or of a chunked object's
recipe (what the store keeps under the object's name), after the BLAKE3 of
that file, which is checked on every read (the content it describes is then
checked as any stored object is).
An entry that fails its check is deleted and read from the store again.
Entries are written under a temporary name and renamed into place, so any
number of processes share one cache; reading an entry refreshes its
modification time, and pruning deletes the least recently used entries
until the cache fits its limit.

Configuration (read when a store is opened):

- ``SCRIBESTORE_CACHE``: ``off`` disables the cache.
- ``SCRIBESTORE_CACHE_DIR``: where it lives (default
  ``$XDG_CACHE_HOME/scribestore``, else ``~/.cache/scribestore``).
- ``SCRIBESTORE_CACHE_SIZE``: its limit in bytes (default 10 GiB).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import blake3
import msgspec

from scribestore.exception import ConfigurationError

if TYPE_CHECKING:
    from collections.abc import Iterator

__all__ = ["CacheInfo", "ChunkCache", "cache_root", "default_cache", "is_off"]

DEFAULT_LIMIT = 10 << 30
_KINDS = ("chunks", "files")


class CacheInfo(msgspec.Struct, frozen=True, kw_only=True):
    """What a cache holds: its directory, entries, bytes and limit."""

    root: str
    entries: int
    bytes: int
    limit: int


class ChunkCache:
    """A size-bounded, content-addressed cache on local disk (see the module docs).

    Args:
        root: the cache directory (created when first written).
        limit: bytes the cache may hold; pruning deletes the least recently
            used entries beyond it.
    """

    def __init__(self, root: str | os.PathLike[str], *, limit: int = DEFAULT_LIMIT) -> None:
        self.root = Path(root)
        self.limit = limit
        self._added = 0

    def _path(self, kind: str, digest: bytes) -> Path:
        name = digest.hex()
        return self.root / kind / name[:2] / name

    def _read(self, kind: str, digest: bytes) -> bytes | None:
        path = self._path(kind, digest)
        try:
            data = path.read_bytes()
            os.utime(path)  # most recently used
        except OSError:
            return None
        return data

    def get(self, digest: bytes) -> bytes | None:
        """The chunk named ``digest``, checked, or None when it is not cached intact."""
        data = self._read("chunks", digest)
        if data is None:
            return None
        if blake3.blake3(data).digest() != digest:
            self._drop("chunks", digest)
            return None
        return data

    def get_file(self, digest: bytes) -> bytes | None:
        """The stored file of object ``digest``, checked against its checksum, or None."""
        data = self._read("files", digest)
        if data is None or len(data) < 32:
            return None
        if blake3.blake3(data[32:]).digest() != data[:32]:
            self._drop("files", digest)
            return None
        return data[32:]

    def put(self, digest: bytes, data: bytes | memoryview) -> None:
        """Keep chunk ``data`` (already checked against ``digest``); failures are ignored."""
        self._write("chunks", digest, [data])

    def put_file(self, digest: bytes, blob: bytes) -> None:
        """Keep the stored file of object ``digest`` with its checksum."""
        self._write("files", digest, [blake3.blake3(blob).digest(), blob])

    def has(self, digest: bytes) -> bool:
        """Whether chunk ``digest`` has an entry (it is checked when read)."""
        return self._path("chunks", digest).exists()

    def _write(self, kind: str, digest: bytes, parts: list[bytes | memoryview]) -> None:
        path = self._path(kind, digest)
        if path.exists():
            return
        # A cache that cannot be written (full disk, read-only) only costs speed.
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".tmp-{uuid.uuid4().hex}")
            with tmp.open("wb") as f:
                for part in parts:
                    f.write(part)
            os.replace(tmp, path)
            self._added += sum(len(p) for p in parts)
            if self._added > self.limit // 10:
                self._added = 0
                self.prune()

    def _drop(self, kind: str, digest: bytes) -> None:
        with contextlib.suppress(OSError):
            self._path(kind, digest).unlink()

    def _entries(self) -> Iterator[tuple[float, int, Path]]:
        for kind in _KINDS:
            with contextlib.suppress(FileNotFoundError):
                for shard in os.scandir(self.root / kind):
                    for entry in os.scandir(shard.path):
                        with contextlib.suppress(FileNotFoundError):
                            st = entry.stat()
                            yield st.st_mtime, st.st_size, Path(entry.path)

    def info(self) -> CacheInfo:
        """Entries and bytes held now."""
        sizes = [size for _, size, _ in self._entries()]
        return CacheInfo(
            root=str(self.root), entries=len(sizes), bytes=sum(sizes), limit=self.limit
        )

    def prune(self, limit: int | None = None) -> tuple[int, int]:
        """Delete the least recently used entries until at most ``limit`` bytes remain.

        Returns:
            (entries deleted, bytes freed).
        """
        keep = self.limit if limit is None else limit
        entries = sorted(self._entries(), reverse=True)  # newest first
        total = deleted = freed = 0
        for _, size, path in entries:
            total += size
            if total > keep:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
                    deleted += 1
                    freed += size
        return deleted, freed


def is_off(variable: str) -> bool:
    """Whether the environment variable ``variable`` says ``off`` (or 0, false, no)."""
    return os.environ.get(variable, "").strip().lower() in {"off", "0", "false", "no"}


def cache_root() -> str:
    """Where local caches live: ``SCRIBESTORE_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/scribestore``, else ``~/.cache/scribestore``."""
    root = os.environ.get("SCRIBESTORE_CACHE_DIR")
    if root:
        return root
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "scribestore")


def default_cache() -> ChunkCache | None:
    """The cache the environment configures (see the module docs), or None when off.

    Raises:
        ConfigurationError: ``SCRIBESTORE_CACHE_SIZE`` is not a whole number of bytes.
    """
    if is_off("SCRIBESTORE_CACHE"):
        return None
    text = os.environ.get("SCRIBESTORE_CACHE_SIZE", "").strip()
    try:
        limit = int(text) if text else DEFAULT_LIMIT
    except ValueError:
        raise ConfigurationError(
            f"SCRIBESTORE_CACHE_SIZE={text!r} is not a number of bytes"
        ) from None
    return ChunkCache(cache_root(), limit=limit)
