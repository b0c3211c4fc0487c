"""gc's sweep: delete what is dead, under the gc lease (FORMAT 7.2).

Objects no manifest references go at once; a pack whose chunks are all dead
is first condemned (a marker), and deleted with its index by a later run
once the marker is older than the grace period, unless a save has used one
of its chunks meanwhile (the pack is then rescued).
"""

from __future__ import annotations

import contextlib
from functools import partial

from scribestore.ops.gc.mark import Marks
from scribestore.ops.gc.report import RETRY_HINT, GcReport
from scribestore.ops.gc.survey import Survey
from scribestore.storage import Storage, checked
from scribestore.store.layout import condemned_path, index_path, object_path, pack_path
from scribestore.store.objects import ObjectStore

__all__ = ["sweep"]


def sweep(
    store: ObjectStore,
    survey: Survey,
    first: Marks,
    again: Marks,
    grace_s: float,
    *,
    dry_run: bool,
) -> GcReport:
    """Delete what is dead (only under the gc lease unless ``dry_run``)."""
    storage = store.storage
    doomed = [d for d in survey.candidates if d not in again.live]
    freed = 0
    for digest in doomed:
        path = object_path(digest)
        with contextlib.suppress(FileNotFoundError):
            freed += checked(storage, partial(storage.size, path), path, hint=RETRY_HINT)
            if not dry_run:
                checked(storage, partial(storage.delete, path), path, hint=RETRY_HINT)
    deleted_packs: list[str] = []
    condemned: list[str] = []
    rescued: list[str] = []
    if survey.chunks_known:
        for pack_id, chunk_digests in sorted(survey.pack_chunks.items()):
            dead = not any(d in survey.live_chunks for d in chunk_digests)
            if pack_id in survey.condemned and not dead:
                rescued.append(pack_id)
                if not dry_run:
                    delete_quietly(storage, condemned_path(pack_id))
            elif pack_id in survey.condemned:
                if store.age(condemned_path(pack_id)) > grace_s:
                    freed += pack_size(storage, pack_id)
                    deleted_packs.append(pack_id)
                    if not dry_run:
                        for name_of in (index_path, pack_path, condemned_path):
                            delete_quietly(storage, name_of(pack_id))
            elif dead and store.age(index_path(pack_id)) > grace_s:
                condemned.append(pack_id)
                if not dry_run:
                    marker = condemned_path(pack_id)
                    checked(
                        storage, partial(storage.write_new, marker, (b"",)), marker, hint=RETRY_HINT
                    )
    orphaned: list[str] = []
    for pack_id in survey.orphans:
        paths = [p(pack_id) for p in (pack_path, condemned_path)]
        present = [p for p in paths if exists(storage, p)]
        if present and all(store.age(p) > grace_s for p in present):
            orphaned.append(pack_id)
            freed += pack_size(storage, pack_id)
            if not dry_run:
                for path in present:
                    delete_quietly(storage, path)
    for path in survey.temp_files:
        with contextlib.suppress(FileNotFoundError):
            freed += checked(storage, partial(storage.size, path), path, hint=RETRY_HINT)
            if not dry_run:
                checked(storage, partial(storage.delete, path), path, hint=RETRY_HINT)
    return GcReport(
        dry_run=dry_run,
        manifests=tuple(dict.fromkeys([*first.seen, *again.seen])),
        referenced_objects=len(again.live),
        deleted_objects=tuple(doomed),
        deleted_packs=tuple(deleted_packs),
        condemned_packs=tuple(condemned),
        rescued_packs=tuple(rescued),
        skipped_packs=tuple(survey.skipped_packs),
        orphaned_packs=tuple(orphaned),
        forgotten=tuple(r.url for r in again.forgotten),
        deleted_temp_files=len(survey.temp_files),
        kept_young=survey.kept_young,
        freed_bytes=freed,
    )


def pack_size(storage: Storage, pack_id: str) -> int:
    total = 0
    for path in (pack_path(pack_id), index_path(pack_id)):
        with contextlib.suppress(FileNotFoundError):
            total += checked(storage, partial(storage.size, path), path, hint=RETRY_HINT)
    return total


def exists(storage: Storage, path: str) -> bool:
    return checked(storage, partial(storage.exists, path), path, hint=RETRY_HINT)


def delete_quietly(storage: Storage, path: str) -> None:
    """Delete ``path``; already gone is fine."""
    with contextlib.suppress(FileNotFoundError):
        checked(storage, lambda: storage.delete(path), path, hint=RETRY_HINT)
