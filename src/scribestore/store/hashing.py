"""BLAKE3 digests: computing them and validating them.

A digest is the lowercase hex BLAKE3-256 of an object's logical (uncompressed,
unchunked) content: exactly what ``b3sum`` prints for the exported bytes.
"""

from __future__ import annotations

import mmap
import os
import re
from typing import IO, TYPE_CHECKING

import blake3

from scribestore.exception import InvalidDigestError

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

__all__ = [
    "DIGEST_HEX_LEN",
    "HashStopped",
    "Hasher",
    "hash_bytes",
    "hash_chunk",
    "hash_chunks",
    "hash_file",
    "is_digest",
    "validate_digest",
]

DIGEST_HEX_LEN = 64
_DIGEST_RE = re.compile(r"[0-9a-f]{64}")
# Below this size the thread pool costs more than it saves.
_PARALLEL_MIN = 1 << 20
# A multiple of mmap.ALLOCATIONGRANULARITY on every platform we know of;
# hashing 1 GiB took the same time in 16 and 64 MiB windows here.
_MMAP_WINDOW = 16 << 20


class HashStopped(Exception):
    """:func:`hash_file` was told to stop before it finished."""


def is_digest(value: object) -> bool:
    """Return True when ``value`` is a str of exactly 64 lowercase hex characters."""
    return isinstance(value, str) and _DIGEST_RE.fullmatch(value) is not None


def validate_digest(value: object) -> str:
    """Return ``value`` unchanged if it is a well-formed digest.

    Raises:
        InvalidDigestError: ``value`` is not 64 lowercase hexadecimal characters.
            Raised before any I/O, so a value such as ``../../etc/passwd`` never
            becomes a path.
    """
    if not is_digest(value):
        shown = repr(value) if len(repr(value)) <= 80 else repr(value)[:77] + "..."
        raise InvalidDigestError(
            f"invalid object digest {shown}: a digest is 64 lowercase hexadecimal "
            "characters (the BLAKE3-256 hex of the content)"
        )
    assert isinstance(value, str)
    return value


class Hasher:
    """Incremental BLAKE3-256 hasher that also counts the bytes it has seen."""

    __slots__ = ("_h", "size")

    def __init__(self) -> None:
        # Single-threaded: streaming updates are small (chunks, read blocks),
        # where a thread pool costs more than it saves.
        self._h = blake3.blake3()
        self.size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        """Feed more content."""
        self._h.update(data)
        self.size += len(data)

    def hexdigest(self) -> str:
        """The lowercase hex digest of everything fed so far."""
        return str(self._h.hexdigest())


def hash_bytes(data: bytes | bytearray | memoryview) -> str:
    """Digest of an in-memory buffer (multi-threaded above 1 MiB)."""
    threads = blake3.blake3.AUTO if len(data) >= _PARALLEL_MIN else 1
    return str(blake3.blake3(data, max_threads=threads).hexdigest())


def hash_chunk(data: bytes | bytearray | memoryview) -> bytes:
    """The raw 32-byte digest of a chunk (one thread: chunks are small)."""
    return bytes(blake3.blake3(data).digest())


def hash_chunks(chunks: Iterable[bytes]) -> tuple[str, int]:
    """Digest and total size of the concatenation of ``chunks``."""
    h = Hasher()
    for chunk in chunks:
        h.update(chunk)
    return h.hexdigest(), h.size


def hash_file(
    path: str | os.PathLike[str] | IO[bytes], *, stop: Callable[[], bool] | None = None
) -> tuple[str, int]:
    """Digest and size of a local file, via mmap and all cores.

    ``path`` is a path, or an open file (hashed through its descriptor, so
    what is hashed is the file that was opened, whatever its path names
    meanwhile; small ones are read with ``pread``, leaving its position).
    The file is mapped one window at a time and each window is unmapped
    before the next, so resident memory stays bounded by the window (16 MiB)
    however large the file is; no byte is copied into the process. ``stop``
    is asked before each window whether to give up.

    Raises:
        OSError: the file cannot be opened or read.
        HashStopped: ``stop`` returned True.
    """
    if hasattr(path, "fileno"):
        return _hash_descriptor(path.fileno(), str(getattr(path, "name", "<file>")), stop)
    with open(path, "rb") as f:
        return _hash_descriptor(f.fileno(), os.fspath(path), stop)


def _hash_descriptor(fd: int, name: str, stop: Callable[[], bool] | None) -> tuple[str, int]:
    size = os.fstat(fd).st_size
    if size < _PARALLEL_MIN:
        data = os.pread(fd, size, 0)
        return hash_bytes(data), len(data)
    digest = blake3.blake3(max_threads=blake3.blake3.AUTO)
    offset = 0
    while offset < size:
        if stop is not None and stop():
            raise HashStopped(name)
        length = min(_MMAP_WINDOW, size - offset)
        with mmap.mmap(fd, length, access=mmap.ACCESS_READ, offset=offset) as mm:
            digest.update(mm)
        offset += length
    return str(digest.hexdigest()), size
