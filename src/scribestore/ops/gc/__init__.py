"""Garbage collection: delete what no manifest references (docs/FORMAT.md 7.2).

A run has two parts. The *survey* lists the store and marks from every
registered manifest without a lease, so writers go on meanwhile. The *sweep*
holds the gc lease, which excludes writers (FORMAT 7.1): it reads the
manifests again, so whatever a save committed during the survey is spared,
and then deletes. No writer stores or reuses an object while the sweep
decides or deletes, which is what makes a zero grace period safe.

gc never deletes on an incomplete view: a registry record that cannot be
decoded, a registered manifest that cannot be read, and a registered
manifest that cannot be found all stop it before it deletes anything (the
last unless the caller says that manifest is gone, with ``forget``).
"""

from __future__ import annotations

import datetime as dt
import os
from typing import TYPE_CHECKING, Any

from scribestore.ops.gc.mark import mark
from scribestore.ops.gc.report import GcReport
from scribestore.ops.gc.survey import add_chunks, survey_store
from scribestore.ops.gc.sweep import sweep
from scribestore.ops.journal import DEFAULT_RETENTION
from scribestore.ops.registry import ManifestRegistry
from scribestore.progress import Progress, null
from scribestore.store.objects import ObjectStore

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = ["DEFAULT_GRACE", "GcReport", "collect_garbage"]

#: Nothing younger than this is deleted unless the caller says otherwise.
DEFAULT_GRACE = dt.timedelta(hours=1)


def collect_garbage(
    objects: ObjectStore | str | os.PathLike[str],
    *,
    grace: dt.timedelta = DEFAULT_GRACE,
    dry_run: bool = False,
    manifests: list[tuple[str, str]] | None = None,
    forget: Iterable[str] = (),
    wait: dt.timedelta | None = None,
    keep_journal: dt.timedelta = DEFAULT_RETENTION,
    progress: Progress = null,
    **storage_options: Any,
) -> GcReport:
    """Delete objects and packs that no manifest references.

    Args:
        objects: the object store, or its URL.
        grace: nothing younger than this is deleted (default 1 hour). Zero is
            safe for writers that take leases (every scribestore save does).
        dry_run: report what would be deleted and the bytes freed; change nothing.
        manifests: extra ``(url, kind)`` manifests to mark from, ``kind`` being
            ``"repository"`` or ``"project"`` (registered ones are always used).
        forget: URLs of registered manifests that are gone on purpose: they
            are not marked from and their records are removed.
        wait: how long to wait for saves in flight before giving up (default:
            the store's lease policy, 10 minutes).
        keep_journal: how long replaced manifest states stay restorable, with
            everything they reference (default 7 days; see
            :mod:`scribestore.ops.journal`); older journal entries are deleted.
        progress: told of each phase in turn, counting files: the manifests
            marked from, the store's files surveyed, and the objects, packs
            and temp files deleted (or, in a dry run, checked).
        **storage_options: fsspec options for the store and the manifests.

    Raises:
        MissingManifestError: a registered manifest cannot be found (see ``forget``).
        CorruptObjectError: a registry record is damaged.
        CorruptManifestError, UnsupportedFormatError: a manifest cannot be
            read; nothing is deleted.
        LockTimeoutError: another gc is running, or saves stayed in flight
            for longer than ``wait``; nothing is deleted.
        StorageError: the store cannot be listed or changed.
    """
    store = objects if isinstance(objects, ObjectStore) else ObjectStore(objects, **storage_options)
    options = dict(storage_options) or store.storage_options
    extra = list(manifests or [])
    gone = set(forget)
    grace_s = grace.total_seconds()
    keep_s = keep_journal.total_seconds()
    first = mark(
        store, extra, gone, options, strict=dry_run, keep_journal_s=keep_s, progress=progress
    )
    survey = survey_store(store, first.live, grace_s, progress)
    if dry_run:
        return sweep(store, survey, first, first, grace_s, dry_run=True, progress=progress)
    with store.exclusive(wait=None if wait is None else wait.total_seconds()):
        again = mark(
            store,
            extra,
            gone,
            options,
            strict=True,
            keep_journal_s=keep_s,
            progress=progress,
            label="gc: marking again (saves wait)",
        )
        # Saves that committed during the survey: their objects and chunks live.
        for digest in again.live - first.live:
            if digest not in survey.kept:
                survey.kept.add(digest)
                add_chunks(store, survey, digest)
        registry = ManifestRegistry(store)
        for record in again.forgotten:
            registry.forget(record.record)
        return sweep(store, survey, first, again, grace_s, dry_run=False, progress=progress)
