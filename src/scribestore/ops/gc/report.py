"""What a gc run reports."""

from __future__ import annotations

import msgspec

__all__ = ["RETRY_HINT", "GcReport"]

#: What a storage failure during gc asks the user to do.
RETRY_HINT = "check that the store is writable and reachable, then run gc again"


class GcReport(msgspec.Struct, frozen=True, kw_only=True):
    """What a gc run found and did (or, with ``dry_run``, would do)."""

    dry_run: bool
    manifests: tuple[str, ...]
    referenced_objects: int
    deleted_objects: tuple[str, ...]
    deleted_packs: tuple[str, ...]
    condemned_packs: tuple[str, ...]
    rescued_packs: tuple[str, ...]
    #: Packs (or condemned markers) without an index, deleted.
    orphaned_packs: tuple[str, ...] = ()
    #: Packs left alone because their index is damaged or unreadable.
    skipped_packs: tuple[str, ...] = ()
    #: Registry records of manifests the caller said are gone, now removed.
    forgotten: tuple[str, ...] = ()
    deleted_temp_files: int
    kept_young: int
    freed_bytes: int
