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

import contextlib
import datetime as dt
import os
from functools import partial
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec

from scribestore.exception import (
    CorruptObjectError,
    MissingManifestError,
    ObjectNotFoundError,
    ScribeStoreError,
    StorageError,
    UnsupportedFormatError,
)
from scribestore.manifest.schema import decode_project, decode_repository
from scribestore.storage import (
    join_url,
    open_storage,
    read_if_exists,
    split_file_url,
)
from scribestore.store.hashing import is_digest
from scribestore.store.layout import (
    CONDEMNED_EXT,
    LOCKS_DIR,
    PACK_DIR,
    TMP_PREFIX,
    condemned_path,
    index_path,
    object_path,
    orphan_packs,
    pack_path,
    parse_pack_name,
)
from scribestore.store.objects import ObjectStore, RegisteredManifest
from scribestore.store.packs import PackTable, read_pack_table

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from scribestore.storage import Storage

__all__ = ["DEFAULT_GRACE", "GcReport", "collect_garbage"]

DEFAULT_GRACE = dt.timedelta(hours=1)
_T = TypeVar("_T")


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


class _Marks(msgspec.Struct, kw_only=True):
    """What the registered manifests reference, and which manifests were read."""

    live: set[str]
    seen: list[str]
    forgotten: list[RegisteredManifest]


class _Survey(msgspec.Struct, kw_only=True):
    """The store as listed before the sweep."""

    candidates: list[str]
    kept: set[str]
    kept_young: int
    temp_files: list[str]
    pack_chunks: dict[str, list[bytes]]
    skipped_packs: list[str]
    condemned: set[str]
    live_chunks: set[bytes]
    chunks_known: bool
    orphans: list[str] = msgspec.field(default_factory=list)


def _io(storage: Storage, call: Callable[[], _T], subject: str) -> _T:
    """Run a storage call; OSErrors other than not-found become StorageError."""
    try:
        return call()
    except (ScribeStoreError, FileNotFoundError):
        raise
    except OSError as exc:
        raise StorageError(
            f"garbage collection in {storage.url} failed on {subject}: {exc}; "
            "check that the store is writable and reachable, then run gc again"
        ) from exc


def _manifest_digests(url: str, kind: str, storage_options: dict[str, Any]) -> set[str] | None:
    """Digests a manifest references; None if it does not exist.

    Raises:
        CorruptManifestError, UnsupportedFormatError: it cannot be read.
    """
    directory, name = split_file_url(url)
    storage = open_storage(directory, **storage_options)
    data = read_if_exists(storage, name, f"manifest {url}")
    if data is None:
        return None
    if kind == "project":
        project = decode_project(data, where=url)
        return {
            a.hash
            for exp in project.experiments
            for a in [*exp.artifacts, *(t_a for t in exp.tests for t_a in t.artifacts)]
        }
    repo = decode_repository(data, where=url)
    return {v.hash for versions in repo.artifacts.values() for v in versions}


def _mark(
    store: ObjectStore,
    extra: list[tuple[str, str]],
    forget: set[str],
    options: dict[str, Any],
    *,
    strict: bool,
) -> _Marks:
    """Mark from every registered manifest and every extra one.

    Without ``strict`` (the survey, which holds no lease) a registered
    manifest that does not exist yet is passed over: a first save registers
    its manifest before committing it, and the mark under the gc lease,
    when no save is in flight, is the one that decides.

    Raises:
        MissingManifestError: (``strict``) a registered manifest is not where
            its record says, and ``forget`` does not name it.
        CorruptObjectError: a registry record cannot be decoded.
        CorruptManifestError, UnsupportedFormatError: a manifest cannot be read.
    """
    records = store.registered_manifests()
    refs = [(r.url, r.kind) for r in records] + extra + _discovered(store, options)
    marks = _Marks(live=set(), seen=[], forgotten=[])
    missing: list[str] = []
    for url, kind in dict.fromkeys(refs):
        if url in forget:
            continue
        digests = _manifest_digests(url, kind, options)
        if digests is None:
            missing.append(url)
            continue
        marks.live |= digests
        marks.seen.append(url)
    if missing and strict:
        raise MissingManifestError(
            f"garbage collection stopped before deleting anything: {len(missing)} registered "
            f"manifest(s) of {store.url} cannot be found, first {missing[0]}. If the store "
            "was moved, or that manifest is on another filesystem, make it reachable; if it "
            "was deleted on purpose, run gc again forgetting it (forget=[url], or "
            "`scribestore gc --forget URL`)"
        )
    marks.forgotten = [r for r in records if r.url in forget]
    return marks


def _discovered(store: ObjectStore, options: dict[str, Any]) -> list[tuple[str, str]]:
    """Manifests beside the object store (in the store's tree), registered or not.

    Marking from them too means a deleted or damaged registry record of the
    usual layout cannot make gc delete what they reference.
    """
    tree = store.tree_url
    if tree is None:
        return []
    storage = open_storage(tree, **options)
    found = []
    for name in _io(storage, storage.list_files, tree):
        if not name.endswith(".json"):
            continue
        with contextlib.suppress(FileNotFoundError):
            head = _io(storage, partial(storage.read_range, name, 0, 4096), name)
            kind = _manifest_kind(head)
            if kind is not None:
                found.append((join_url(tree, name), kind))
    return found


def _manifest_kind(head: bytes) -> str | None:
    """``"repository"``/``"project"`` if ``head`` starts a scribestore manifest."""
    for kind in ("repository", "project"):
        if b'"format":"scribestore.' + kind.encode() + b'"' in head.replace(b" ", b""):
            return kind
    return None


def _chunks_of(store: ObjectStore, digest: str) -> list[bytes] | None:
    """A recipe's chunk digests; [] for a loose or vanished object, None if unreadable."""
    try:
        return store.recipe_chunks(digest) or []
    except ObjectNotFoundError:
        return []
    except (CorruptObjectError, UnsupportedFormatError):
        return None


def _survey(store: ObjectStore, live: set[str], grace_s: float) -> _Survey:
    """List objects and packs; collect the chunks that live and young recipes use."""
    storage = store.storage
    survey = _Survey(
        candidates=[],
        kept=set(),
        kept_young=0,
        temp_files=[],
        pack_chunks={},
        skipped_packs=[],
        condemned=set(),
        live_chunks=set(),
        chunks_known=True,
    )
    for path in _io(storage, lambda: list(storage.list()), "the listing"):
        parts = path.split("/")
        base = parts[-1]
        if parts[0] == LOCKS_DIR:
            continue  # leases are written before they are held: never gc's to remove
        if base.startswith(TMP_PREFIX):
            with contextlib.suppress(StorageError):  # finished (renamed) meanwhile
                if store.age(path) > grace_s:
                    survey.temp_files.append(path)
            continue
        if len(parts) != 2 or not is_digest(base) or parts[0] != base[:2]:
            continue
        if base not in live and store.age(path) > grace_s:
            survey.candidates.append(base)
            continue
        survey.kept.add(base)
        survey.kept_young += base not in live
        _add_chunks(store, survey, base)
    # Every index on its own: two packs may hold the same chunk, and each one
    # must be judged (a digest-keyed map would hide one of them).
    names = _io(storage, lambda: sorted(storage.list(PACK_DIR)), PACK_DIR)
    survey.orphans = orphan_packs(names)
    for parsed in filter(None, map(parse_pack_name, names)):
        pack_id = parsed.pack_id
        if parsed.kind == CONDEMNED_EXT:
            survey.condemned.add(pack_id)
        elif parsed.kind == "idx":
            try:
                table = _read_table(storage, pack_id)
            except (ValueError, FileNotFoundError):
                survey.skipped_packs.append(pack_id)
                continue
            survey.pack_chunks[pack_id] = [digest for digest, _ in table.entries]
    return survey


def _read_table(storage: Storage, pack_id: str) -> PackTable:
    """A pack's entries, from its index or (the index damaged) the pack itself."""
    try:
        return read_pack_table(storage, pack_id)
    except (FileNotFoundError, ValueError):
        raise
    except OSError as exc:
        raise StorageError(
            f"garbage collection in {storage.url} failed on pack {pack_id}: {exc}"
        ) from exc


def _add_chunks(store: ObjectStore, survey: _Survey, digest: str) -> None:
    chunks = _chunks_of(store, digest)
    if chunks is None:
        survey.chunks_known = False  # a damaged recipe: which packs it needs is unknown
    else:
        survey.live_chunks.update(chunks)


def collect_garbage(
    objects: ObjectStore | str | os.PathLike[str],
    *,
    grace: dt.timedelta = DEFAULT_GRACE,
    dry_run: bool = False,
    manifests: list[tuple[str, str]] | None = None,
    forget: Iterable[str] = (),
    wait: dt.timedelta | None = None,
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
    first = _mark(store, extra, gone, options, strict=dry_run)
    survey = _survey(store, first.live, grace_s)
    if dry_run:
        return _sweep(store, survey, first, first, grace_s, dry_run=True)
    with store.exclusive(wait=None if wait is None else wait.total_seconds()):
        again = _mark(store, extra, gone, options, strict=True)
        # Saves that committed during the survey: their objects and chunks live.
        for digest in again.live - first.live:
            if digest not in survey.kept:
                survey.kept.add(digest)
                _add_chunks(store, survey, digest)
        for record in again.forgotten:
            store.forget_manifest(record.record)
        return _sweep(store, survey, first, again, grace_s, dry_run=False)


def _sweep(
    store: ObjectStore,
    survey: _Survey,
    first: _Marks,
    again: _Marks,
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
            freed += _io(storage, partial(storage.size, path), path)
            if not dry_run:
                _io(storage, partial(storage.delete, path), path)
    deleted_packs: list[str] = []
    condemned: list[str] = []
    rescued: list[str] = []
    if survey.chunks_known:
        for pack_id, chunk_digests in sorted(survey.pack_chunks.items()):
            dead = not any(d in survey.live_chunks for d in chunk_digests)
            if pack_id in survey.condemned and not dead:
                rescued.append(pack_id)
                if not dry_run:
                    _delete_quietly(storage, condemned_path(pack_id))
            elif pack_id in survey.condemned:
                if store.age(condemned_path(pack_id)) > grace_s:
                    freed += _pack_size(storage, pack_id)
                    deleted_packs.append(pack_id)
                    if not dry_run:
                        for name_of in (index_path, pack_path, condemned_path):
                            _delete_quietly(storage, name_of(pack_id))
            elif dead and store.age(index_path(pack_id)) > grace_s:
                condemned.append(pack_id)
                if not dry_run:
                    marker = condemned_path(pack_id)
                    _io(storage, partial(storage.write_new, marker, (b"",)), marker)
    orphaned: list[str] = []
    for pack_id in survey.orphans:
        paths = [p(pack_id) for p in (pack_path, condemned_path)]
        present = [p for p in paths if _exists(storage, p)]
        if present and all(store.age(p) > grace_s for p in present):
            orphaned.append(pack_id)
            freed += _pack_size(storage, pack_id)
            if not dry_run:
                for path in present:
                    _delete_quietly(storage, path)
    for path in survey.temp_files:
        with contextlib.suppress(FileNotFoundError):
            freed += _io(storage, partial(storage.size, path), path)
            if not dry_run:
                _io(storage, partial(storage.delete, path), path)
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


def _pack_size(storage: Storage, pack_id: str) -> int:
    total = 0
    for path in (pack_path(pack_id), index_path(pack_id)):
        with contextlib.suppress(FileNotFoundError):
            total += _io(storage, partial(storage.size, path), path)
    return total


def _exists(storage: Storage, path: str) -> bool:
    return _io(storage, partial(storage.exists, path), path)


def _delete_quietly(storage: Storage, path: str) -> None:
    """Delete ``path``; already gone is fine."""
    with contextlib.suppress(FileNotFoundError):
        _io(storage, lambda: storage.delete(path), path)
