"""The stat cache: a re-log of an unchanged local file costs a stat, not a hashing pass.

When a file is stored, its digest is recorded with what ``stat`` says of it
(device, inode, size, modification and change times in nanoseconds) and the
time its hashing began. Storing the same path again first stats it: if
every field matches, the recorded digest names the content and the file is
not read (the store still checks that the object is there and readable).

As git treats racy index entries, a record is only trusted when the file's
modification and change times are both safely older than the moment its
hashing began (:data:`RACY_NS`): a file written in the same tick of a coarse
clock as it was hashed could change again without its times changing, and is
hashed again next time. The change time counts too because a modification
time can be set back (``cp -p``, ``rsync -t``, ``tar x``).
Changing a file's content changes its change time, which no user can set
back, so a record does not name content a file no longer has, with one
exception: writes to a page of a shared memory map that is already dirty
change no time (documented in docs/large-files.md; turn the cache off for
such files). What is hashed is the opened file, through its descriptor, so a
path retargeted meanwhile cannot pair one file's stat with another's digest.

Records are small files under ``<cache root>/stat/``, one per path, named by
the BLAKE3 of the path; they are written under a temporary name and renamed
into place, so processes share them. ``SCRIBESTORE_STAT_CACHE=off`` turns
the cache off; a record that cannot be read, or names no valid digest, is
ignored.
"""

from __future__ import annotations

import contextlib
import os
import uuid

import blake3
import msgspec

from scribestore.store.cache import cache_root, is_off
from scribestore.store.hashing import is_digest

__all__ = ["RACY_NS", "StatCache", "default_stat_cache"]

#: A record is trusted only if the file was last modified and last changed at
#: least this long before its hashing began (coarse file-system clocks tick in
#: whole seconds).
RACY_NS = 2_000_000_000


class _Record(msgspec.Struct, frozen=True, kw_only=True):
    path: str
    device: int
    inode: int
    size: int
    mtime_ns: int
    ctime_ns: int
    hashed_at_ns: int
    digest: str


def _matches(record: _Record, path: str, st: os.stat_result) -> bool:
    return (
        record.path == path
        and record.device == st.st_dev
        and record.inode == st.st_ino
        and record.size == st.st_size
        and record.mtime_ns == st.st_mtime_ns
        and record.ctime_ns == st.st_ctime_ns
        and max(record.mtime_ns, record.ctime_ns) + RACY_NS <= record.hashed_at_ns
        and is_digest(record.digest)
    )


class StatCache:
    """Digests of local files by path, trusted while their stat is unchanged.

    Args:
        root: the directory of the records (created when first written).
    """

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = os.fspath(root)

    def _record_path(self, path: str) -> str:
        name = blake3.blake3(path.encode("utf-8", "surrogateescape")).hexdigest()[:32]
        return os.path.join(self.root, name[:2], name)

    def lookup(self, path: str, st: os.stat_result) -> str | None:
        """The recorded digest of the file at ``path`` whose stat is ``st``, if
        its record matches every field and is not racy; else None."""
        key = os.path.abspath(path)
        try:
            with open(self._record_path(key), "rb") as f:
                record = msgspec.json.decode(f.read(), type=_Record)
        except (OSError, msgspec.DecodeError):
            return None
        return record.digest if _matches(record, key, st) else None

    def record(self, path: str, st: os.stat_result, digest: str, hashed_at_ns: int) -> None:
        """Remember that the file at ``path``, with stat ``st`` before and after
        hashing began at ``hashed_at_ns``, has content ``digest``. Failures to
        write are ignored: the cache only saves work."""
        key = os.path.abspath(path)
        record = _Record(
            path=key,
            device=st.st_dev,
            inode=st.st_ino,
            size=st.st_size,
            mtime_ns=st.st_mtime_ns,
            ctime_ns=st.st_ctime_ns,
            hashed_at_ns=hashed_at_ns,
            digest=digest,
        )
        target = self._record_path(key)
        tmp = f"{target}.{uuid.uuid4().hex}.tmp"
        try:
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with open(tmp, "wb") as f:
                f.write(msgspec.json.encode(record))
            os.replace(tmp, target)
        except OSError:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


def default_stat_cache() -> StatCache | None:
    """The stat cache under the cache root, or None when ``SCRIBESTORE_STAT_CACHE=off``."""
    if is_off("SCRIBESTORE_STAT_CACHE"):
        return None
    return StatCache(os.path.join(cache_root(), "stat"))
