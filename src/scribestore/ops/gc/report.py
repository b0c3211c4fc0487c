"""What a gc run reports."""

from __future__ import annotations

import datetime as dt

import msgspec

__all__ = ["RETRY_HINT", "GcReport"]

#: What a storage failure during gc asks the user to do.
RETRY_HINT = "check that the store is writable and reachable, then run gc again"


class GcReport(msgspec.Struct, frozen=True, kw_only=True):
    """What a gc run found and did (or, with ``dry_run``, would do).

    A dry run reports exactly what the real run would do, with the same
    ``freed_bytes``, ``later_bytes`` and ``next_run_after``.
    """

    dry_run: bool
    manifests: tuple[str, ...]
    referenced_objects: int
    deleted_objects: tuple[str, ...]
    deleted_packs: tuple[str, ...]
    condemned_packs: tuple[str, ...]
    rescued_packs: tuple[str, ...]
    #: Mostly dead packs (REPACK_DEAD) whose live chunks were copied into
    #: new packs; they are condemned too, and a later run deletes them.
    repacked_packs: tuple[str, ...] = ()
    #: Bytes of live chunks those copies took.
    repacked_bytes: int = 0
    #: Packs (or condemned markers) without an index, deleted.
    orphaned_packs: tuple[str, ...] = ()
    #: Packs left alone because their index is damaged or unreadable.
    skipped_packs: tuple[str, ...] = ()
    #: Registry records of manifests the caller said are gone, now removed.
    forgotten: tuple[str, ...] = ()
    #: Journal entries past their retention, deleted (FORMAT 7.3).
    expired_journal: int = 0
    #: Journal entries whose state is missing or damaged: kept until they
    #: expire, but not restorable (what they referenced is not protected).
    unreadable_journal: int = 0
    deleted_temp_files: int
    kept_young: int
    freed_bytes: int
    #: Bytes of packs condemned now (or earlier, still in their grace period)
    #: that only a later run deletes: gc frees a pack in two runs.
    later_bytes: int = 0
    #: When a later run may delete them (UTC); None when nothing waits.
    next_run_after: dt.datetime | None = None
