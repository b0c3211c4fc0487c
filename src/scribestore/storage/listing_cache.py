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
times did not move while it was read. ``SCRIBESTORE_LISTING_CACHE=off``
turns the cache off.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from typing import NamedTuple

__all__ = ["RACY_NS", "DirState", "lookup", "remember", "state_of"]

#: A listing is kept only if its directory last changed at least this long
#: before the listing began (coarse file-system clocks tick in whole seconds).
RACY_NS = 2_000_000_000
# Directories whose listing is kept, most recently used last.
_KEEP = 32


class DirState(NamedTuple):
    """What ``stat`` says of a directory that any change of its entries moves."""

    device: int
    inode: int
    mtime_ns: int
    ctime_ns: int


_LISTINGS: OrderedDict[str, tuple[DirState, tuple[str, ...]]] = OrderedDict()
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


def lookup(path: str, state: DirState) -> tuple[str, ...] | None:
    """The listing kept for directory ``path`` in ``state``, or None."""
    if _off():
        return None
    with _LOCK:
        kept = _LISTINGS.get(path)
        if kept is None or kept[0] != state:
            return None
        _LISTINGS.move_to_end(path)
        return kept[1]


def remember(path: str, before: DirState, started_ns: int, names: tuple[str, ...]) -> None:
    """Keep ``names``, listed from ``path`` starting at ``started_ns`` (``time.time_ns()``)
    when it was in state ``before``, if that state is safely old and still current."""
    if _off() or max(before.mtime_ns, before.ctime_ns) > started_ns - RACY_NS:
        return
    try:
        if state_of(path) != before:
            return  # changed while it was read
    except OSError:
        return
    with _LOCK:
        _LISTINGS[path] = (before, names)
        _LISTINGS.move_to_end(path)
        while len(_LISTINGS) > _KEEP:
            _LISTINGS.popitem(last=False)
