"""Listings of flat local directories, reused while the directory is unchanged.

Opening a store lists ``packs/``, two names per pack, so that gc can never
delete a pack under a reader unnoticed. On local disk the listing of a
directory without subdirectories is kept per process with what ``stat``
says of the directory (device, inode, modification and change times in
nanoseconds), and is reused while all four are the same: creating,
deleting or renaming an entry sets both times of its directory (POSIX), as
git's untracked cache relies on.

As for racy index entries in git, a listing is only kept when the
directory's times are safely older than the moment the listing began
(:data:`RACY_NS`), so an entry added in the same clock tick as the last
change cannot hide behind unchanged times, and only when the directory's
times did not move while it was read. That rule needs the file system's
clock to be this machine's: listings are kept only on Linux file systems
known to be local (:data:`LOCAL_TYPES`, looked up in
``/proc/self/mountinfo`` by device), never on NFS, SMB or FUSE mounts.
``SCRIBESTORE_LISTING_CACHE=off`` turns the cache off.
"""

from __future__ import annotations

import functools
import os
import threading
from collections import OrderedDict
from typing import NamedTuple

__all__ = ["LOCAL_TYPES", "RACY_NS", "DirState", "lookup", "remember", "state_of"]

#: A listing is kept only if its directory last changed at least this long
#: before the listing began (coarse file-system clocks tick in whole seconds).
RACY_NS = 2_000_000_000
#: File systems whose times come from this machine's clock.
LOCAL_TYPES = frozenset(
    {"ext2", "ext3", "ext4", "xfs", "btrfs", "tmpfs", "zfs", "f2fs", "overlay", "bcachefs"}
)
# Directories whose listing is kept, most recently used last.
_KEEP = 32


class DirState(NamedTuple):
    """What ``stat`` says of a directory that any change of its entries moves."""

    device: int
    inode: int
    mtime_ns: int
    ctime_ns: int


# (storage root, directory) -> its state and its names, relative to the root.
_LISTINGS: OrderedDict[tuple[str, str], tuple[DirState, tuple[str, ...]]] = OrderedDict()
_LOCK = threading.Lock()


def state_of(path: str) -> DirState:
    """The state of directory ``path``.

    Raises:
        OSError: it cannot be stat'ed (FileNotFoundError when it is missing).
    """
    st = os.stat(path)
    return DirState(st.st_dev, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)


def _off() -> bool:
    value = os.environ.get("SCRIBESTORE_LISTING_CACHE", "").strip().lower()
    return value in {"off", "0", "false", "no"}


@functools.lru_cache(maxsize=64)
def is_local(device: int) -> bool:
    """Whether the file system of ``device`` (an ``st_dev``) is of a type in
    :data:`LOCAL_TYPES`; False where that cannot be told."""
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
    except OSError:
        return False
    wanted = f"{os.major(device)}:{os.minor(device)}"
    for line in lines:
        fields = line.split()
        if len(fields) > 2 and fields[2] == wanted and "-" in fields[3:]:
            kind = fields[fields.index("-", 3) + 1 :][:1]
            return bool(kind) and kind[0] in LOCAL_TYPES
    return False


def lookup(root: str, path: str, state: DirState) -> tuple[str, ...] | None:
    """The listing kept for directory ``path`` under ``root`` in ``state``, or None."""
    if _off():
        return None
    with _LOCK:
        kept = _LISTINGS.get((root, path))
        if kept is None or kept[0] != state:
            return None
        _LISTINGS.move_to_end((root, path))
        return kept[1]


def remember(
    root: str, path: str, before: DirState, started_ns: int, names: tuple[str, ...]
) -> None:
    """Keep ``names``, listed from ``path`` under ``root`` starting at
    ``started_ns`` (``time.time_ns()``) when it was in state ``before``, if
    that state is safely old, still current, and on a local file system."""
    if _off() or max(before.mtime_ns, before.ctime_ns) > started_ns - RACY_NS:
        return
    try:
        if state_of(path) != before or not is_local(before.device):
            return  # changed while it was read, or its times may not be ours
    except OSError:
        return
    with _LOCK:
        _LISTINGS[(root, path)] = (before, names)
        _LISTINGS.move_to_end((root, path))
        while len(_LISTINGS) > _KEEP:
            _LISTINGS.popitem(last=False)
