"""gc's sweep: delete what is dead, under the gc lease (FORMAT 7.2).

Objects no manifest references go at once; a pack whose chunks are all dead
is first condemned (a marker), and deleted with its index by a later run
once the marker is older than the grace period, unless a live chunk is held
only there (the pack is then rescued). A pack at least REPACK_DEAD dead has
its live chunks copied into new packs first, and is condemned the same way.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from functools import partial

import msgspec

from scribestore.ops.gc.mark import Marks
from scribestore.ops.gc.report import RETRY_HINT, GcReport
from scribestore.ops.gc.survey import Survey
from scribestore.progress import Progress, null
from scribestore.storage import Storage, checked
from scribestore.store.layout import (
    condemned_path,
    index_path,
    journal_path,
    object_path,
    pack_path,
)
from scribestore.store.objects import ObjectStore

__all__ = ["REPACK_DEAD", "sweep"]

#: A pack whose dead chunks take at least this share of its bytes is repacked:
#: its live chunks are copied into new packs and it is condemned.
REPACK_DEAD = 0.5


def sweep(
    store: ObjectStore,
    survey: Survey,
    first: Marks,
    again: Marks,
    grace_s: float,
    *,
    dry_run: bool,
    progress: Progress = null,
) -> GcReport:
    """Delete what is dead (only under the gc lease unless ``dry_run``).

    ``progress`` counts the journal entries, objects, packs and temp files
    deleted (in a dry run: checked).
    """
    doomed = [d for d in survey.candidates if d not in again.live]
    total = len(again.expired) + len(doomed) + len(survey.packs) + len(survey.orphans)
    progress.start(total + len(survey.temp_files), "gc: checking" if dry_run else "gc: deleting")
    try:
        return _sweep(store, survey, first, again, doomed, grace_s, dry_run, progress)
    finally:
        progress.close()


def _sweep(
    store: ObjectStore,
    survey: Survey,
    first: Marks,
    again: Marks,
    doomed: list[str],
    grace_s: float,
    dry_run: bool,
    progress: Progress,
) -> GcReport:
    now = dt.datetime.now(dt.timezone.utc)
    storage = store.storage
    for name in again.expired:  # entries first: none may name a state after it is deleted
        if not dry_run:
            delete_quietly(storage, journal_path(name.key, name.time_ns, name.digest))
        progress.advance(1)
    freed = 0
    for digest in doomed:
        progress.advance(1)
        path = object_path(digest)
        with contextlib.suppress(FileNotFoundError):
            freed += checked(storage, partial(storage.size, path), path, hint=RETRY_HINT)
            if not dry_run:
                checked(storage, partial(storage.delete, path), path, hint=RETRY_HINT)
    packs = _sweep_packs(store, survey, grace_s, dry_run=dry_run, progress=progress)
    freed += packs.freed
    orphaned: list[str] = []
    for pack_id in survey.orphans:
        progress.advance(1)
        paths = [p(pack_id) for p in (pack_path, condemned_path)]
        present = [p for p in paths if exists(storage, p)]
        if present and all(store.age(p) > grace_s for p in present):
            orphaned.append(pack_id)
            freed += pack_size(storage, pack_id)
            if not dry_run:
                for path in present:
                    delete_quietly(storage, path)
    for path in survey.temp_files:
        progress.advance(1)
        with contextlib.suppress(FileNotFoundError):
            freed += checked(storage, partial(storage.size, path), path, hint=RETRY_HINT)
            if not dry_run:
                checked(storage, partial(storage.delete, path), path, hint=RETRY_HINT)
    if not dry_run:
        store.merge_indexes()  # over the packs that are left
    return GcReport(
        dry_run=dry_run,
        manifests=tuple(dict.fromkeys([*first.seen, *again.seen])),
        referenced_objects=len(again.live),
        deleted_objects=tuple(doomed),
        deleted_packs=tuple(packs.deleted),
        condemned_packs=tuple(packs.condemned),
        rescued_packs=tuple(packs.rescued),
        repacked_packs=tuple(packs.repacked),
        repacked_bytes=packs.repacked_bytes,
        skipped_packs=tuple(survey.skipped_packs),
        orphaned_packs=tuple(orphaned),
        forgotten=tuple(r.url for r in again.forgotten),
        expired_journal=len(again.expired),
        unreadable_journal=again.unreadable,
        deleted_temp_files=len(survey.temp_files),
        kept_young=survey.kept_young,
        freed_bytes=freed,
        later_bytes=packs.later_bytes,
        next_run_after=None if packs.wait_s is None else now + dt.timedelta(seconds=packs.wait_s),
    )


class _Packs(msgspec.Struct, kw_only=True):
    """What the sweep did (or would do) to packs."""

    deleted: list[str]
    condemned: list[str]
    rescued: list[str]
    #: Mostly dead packs whose live chunks were copied into new packs.
    repacked: list[str] = msgspec.field(default_factory=list)
    repacked_bytes: int = 0
    freed: int = 0
    #: Bytes of condemned packs that a later run deletes.
    later_bytes: int = 0
    #: Seconds until a later run may delete them all (None: nothing waits).
    wait_s: float | None = None


def _sweep_packs(
    store: ObjectStore, survey: Survey, grace_s: float, *, dry_run: bool, progress: Progress
) -> _Packs:
    """Condemn dead packs, repack mostly dead ones, then delete condemned ones
    past the grace period unless they hold a live chunk no other pack has."""
    out = _Packs(deleted=[], condemned=[], rescued=[])
    if not survey.chunks_known:
        progress.advance(len(survey.packs))  # judged: every pack is kept
        return out  # a damaged recipe: which packs it needs is unknown
    live = survey.live_chunks
    dead, mostly_dead, kept = [], [], []
    for pack_id, table in sorted(survey.packs.items()):
        if pack_id in survey.condemned:
            continue
        live_bytes = sum(loc.length for digest, loc in table.entries if digest in live)
        old = store.age(index_path(pack_id)) > grace_s
        if not live_bytes and old:
            dead.append(pack_id)
        elif old and live_bytes <= (1 - REPACK_DEAD) * table.total:
            mostly_dead.append(pack_id)
        else:
            kept.append(pack_id)
    held = {d for p in kept for d, _ in survey.packs[p].entries}
    emptied = _repack(store, survey, mostly_dead, held, out, dry_run=dry_run)
    kept.extend(p for p in mostly_dead if p not in emptied)
    held.update(d for p in emptied for d, _ in survey.packs[p].entries if d in live)
    for pack_id in [*dead, *emptied]:
        progress.advance(1)
        _condemn(store, pack_id, grace_s, out, dry_run=dry_run)
    progress.advance(len(kept))
    for pack_id in sorted(survey.condemned & survey.packs.keys()):
        progress.advance(1)
        entries = survey.packs[pack_id].entries
        needed = any(d in live and d not in held for d, _ in entries)
        _judge_condemned(store, pack_id, needed, grace_s, out, dry_run=dry_run)
    return out


def _repack(
    store: ObjectStore,
    survey: Survey,
    packs: list[str],
    held: set[bytes],
    out: _Packs,
    *,
    dry_run: bool,
) -> list[str]:
    """Copy the live chunks of ``packs`` that no kept pack holds; the packs emptied."""
    live = survey.live_chunks
    keep = {p: [(d, loc) for d, loc in survey.packs[p].entries if d in live] for p in packs}
    keep = {p: [(d, loc) for d, loc in entries if d not in held] for p, entries in keep.items()}
    if dry_run:
        out.repacked = list(packs)
        out.repacked_bytes = sum(loc.length for es in keep.values() for _, loc in es)
        return list(packs)
    if not packs:
        return []
    done = store.repack(keep)
    out.repacked = list(done.emptied)
    out.repacked_bytes = done.copied_bytes
    return list(done.emptied)


def _condemn(
    store: ObjectStore, pack_id: str, grace_s: float, out: _Packs, *, dry_run: bool
) -> None:
    storage = store.storage
    out.condemned.append(pack_id)
    _later(out, pack_size(storage, pack_id), grace_s)
    if not dry_run:
        marker = condemned_path(pack_id)
        checked(storage, partial(storage.write_new, marker, (b"",)), marker, hint=RETRY_HINT)


def _judge_condemned(
    store: ObjectStore, pack_id: str, needed: bool, grace_s: float, out: _Packs, *, dry_run: bool
) -> None:
    """Rescue a condemned pack that is needed, else delete it once its grace is over."""
    storage = store.storage
    if needed:
        out.rescued.append(pack_id)
        if not dry_run:
            delete_quietly(storage, condemned_path(pack_id))
        return
    age = store.age(condemned_path(pack_id))
    if age > grace_s:
        out.freed += pack_size(storage, pack_id)
        out.deleted.append(pack_id)
        if not dry_run:
            for name_of in (index_path, pack_path, condemned_path):
                delete_quietly(storage, name_of(pack_id))
    else:
        _later(out, pack_size(storage, pack_id), grace_s - age)


def _later(out: _Packs, size: int, wait_s: float) -> None:
    out.later_bytes += size
    out.wait_s = max(out.wait_s or 0.0, wait_s)


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
