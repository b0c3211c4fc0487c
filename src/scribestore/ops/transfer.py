"""Copying objects between stores: what promotion, project saves and push/pull use.

Each object is copied with its digest already known (see
:meth:`scribestore.store.objects.ObjectStore.copy_to`): a chunked object's
blobs go over as stored, verified chunk by chunk and hashed once as a whole,
with nothing spooled, re-chunked or re-encoded.
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

import msgspec

from scribestore.progress import PartOf, Progress, null

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from scribestore.store.objects import ObjectStore

__all__ = ["WORKERS", "TransferReport", "transfer"]

#: Objects copied at once.
WORKERS = 4


class TransferReport(msgspec.Struct, frozen=True, kw_only=True):
    """What a transfer did.

    Attributes:
        copied: digests copied into the target, in the order asked.
        present: digests the target already held intact (nothing was copied).
        bytes_copied: content bytes of the copied objects.
    """

    copied: tuple[str, ...]
    present: int
    bytes_copied: int


def transfer(
    source: ObjectStore,
    target: ObjectStore,
    digests: Iterable[str],
    *,
    progress: Progress = null,
    sizes: Mapping[str, int] | None = None,
    workers: int = WORKERS,
) -> TransferReport:
    """Copy every object of ``digests`` that ``target`` lacks from ``source``.

    Each distinct digest is handled once; small objects up to ``workers``
    at a time (on object storage each request waits mostly on the network),
    chunked ones in order, so chunks they share are copied once. When both
    stores are the same location nothing is read. ``progress`` is started
    once and advanced by the content bytes checked; with ``sizes`` (each
    digest's content bytes, when the caller knows them) its total is theirs,
    and an object ``target`` already holds advances it by its size, so the
    bar ends full.

    Raises:
        InvalidDigestError, ObjectNotFoundError, IntegrityError: a source
            object is malformed, missing or damaged; the objects copied before
            it stay in ``target`` (unreferenced, for gc to collect).
        StorageError: either store failed.
    """
    wanted = list(dict.fromkeys(digests))
    if source.same_location(target):
        return TransferReport(copied=(), present=len(wanted), bytes_copied=0)
    total = sum(sizes[d] for d in wanted) if sizes is not None else None
    progress.start(total, f"copying {len(wanted)} objects")
    part = PartOf(progress)
    done: dict[str, int | None] = {}
    try:
        with target.writing(), ThreadPoolExecutor(max(1, workers)) as pool:
            chunked = dict(zip(wanted, pool.map(source.is_chunked, wanted), strict=True))
            # Small objects several at once; chunked ones one after another,
            # so chunks they share are copied once, by the first.
            loose = [d for d in wanted if not chunked[d]]
            copy = functools.partial(_copy, source, target, part, sizes or {})
            done.update(zip(loose, pool.map(copy, loose), strict=True))
            done.update((d, copy(d)) for d in wanted if chunked[d])
    finally:
        progress.close()
    copied = [d for d in wanted if done[d] is not None]
    return TransferReport(
        copied=tuple(copied),
        present=len(wanted) - len(copied),
        bytes_copied=sum(size for size in done.values() if size is not None),
    )


def _copy(
    source: ObjectStore,
    target: ObjectStore,
    progress: Progress,
    sizes: Mapping[str, int],
    digest: str,
) -> int | None:
    copied = source.copy_to(target, digest, progress=progress)
    if copied is None:
        progress.advance(sizes.get(digest, 0))  # already there: its share of the bar is done
    return copied
