"""Wall-clock timing shared by the benchmarks."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path


def times(fn: Callable[[], object], repeat: int) -> list[float]:
    """Wall time of each of ``repeat`` calls of ``fn``, in seconds."""
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def evict(*roots: Path) -> None:
    """Drop every file under ``roots`` from the page cache, as after a reboot.

    Dirty pages cannot be dropped, so everything is synced first. Only these
    files go cold: other users of this shared machine keep their caches,
    and no privilege is needed (unlike ``/proc/sys/vm/drop_caches``).
    """
    os.sync()
    for root in roots:
        paths = [root] if root.is_file() else [p for p in root.rglob("*") if p.is_file()]
        for path in paths:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)
