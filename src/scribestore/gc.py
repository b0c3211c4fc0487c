"""Garbage collection: delete what no manifest references.

Marks from every manifest registered with the object store (each Repository
and Project registers itself before storing anything), then deletes
unreferenced loose objects and packs. Safety rules (docs/guarantees.md):

- Nothing younger than the grace period (default 1 h) is deleted, and a young
  recipe keeps its chunks alive, so a save in flight keeps its objects.
- Right before deleting, the manifests are read again and anything now
  referenced is spared.
- Packs are reclaimed in two runs: the first marks a dead pack *condemned*
  (writers stop deduplicating against it, readers can still read it); a later
  run at least a grace period afterwards deletes it if it is still dead, or
  lifts the mark if a new version uses it again.
- A manifest that cannot be read stops gc before it deletes anything: what it
  references cannot be known.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from typing import Any

import msgspec

from scribestore._storage import open_storage, read_if_exists, split_file_url
from scribestore.errors import StorageError
from scribestore.hashing import is_digest
from scribestore.manifest import decode_project, decode_repository
from scribestore.objects import ObjectStore, object_path
from scribestore.packs import (
    CONDEMNED_EXT,
    PACK_DIR,
    condemned_path,
    index_path,
    pack_path,
    parse_index,
)

__all__ = ["DEFAULT_GRACE", "GcReport", "collect_garbage"]

DEFAULT_GRACE = dt.timedelta(hours=1)
_TMP_PREFIX = ".tmp-"


class GcReport(msgspec.Struct, frozen=True, kw_only=True):
    """What a gc run found and did (or, with ``dry_run``, would do)."""

    dry_run: bool
    manifests: tuple[str, ...]
    referenced_objects: int
    deleted_objects: tuple[str, ...]
    deleted_packs: tuple[str, ...]
    condemned_packs: tuple[str, ...]
    rescued_packs: tuple[str, ...]
    deleted_temp_files: int
    kept_young: int
    freed_bytes: int


def _manifest_digests(url: str, kind: str, storage_options: dict[str, Any]) -> set[str] | None:
    """Digests a manifest references; None if it no longer exists.

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
    store: ObjectStore, extra: list[tuple[str, str]], options: dict[str, Any]
) -> tuple[set[str], list[str]]:
    refs = [(r.url, r.kind) for r in store.registered_manifests()] + extra
    live: set[str] = set()
    seen: list[str] = []
    for url, kind in dict.fromkeys(refs):
        digests = _manifest_digests(url, kind, options)
        if digests is not None:
            live |= digests
            seen.append(url)
    return live, seen


def collect_garbage(
    objects: ObjectStore | str | os.PathLike[str],
    *,
    grace: dt.timedelta = DEFAULT_GRACE,
    dry_run: bool = False,
    manifests: list[tuple[str, str]] | None = None,
    **storage_options: Any,
) -> GcReport:
    """Delete objects and packs that no manifest references.

    Args:
        objects: the object store, or its URL.
        grace: nothing younger than this is deleted (default 1 hour).
        dry_run: report what would be deleted and the bytes freed; change nothing.
        manifests: extra ``(url, kind)`` manifests to mark from, ``kind`` being
            ``"repository"`` or ``"project"`` (registered ones are always used).
        **storage_options: fsspec options for the store and the manifests.

    Raises:
        CorruptManifestError, UnsupportedFormatError: a manifest cannot be
            read; nothing is deleted.
        StorageError: the store cannot be listed or changed.
    """
    store = objects if isinstance(objects, ObjectStore) else ObjectStore(objects, **storage_options)
    options = dict(storage_options) or dict(getattr(store, "_options", {}))
    storage = store.storage
    extra = list(manifests or [])
    live, seen = _mark(store, extra, options)
    grace_s = grace.total_seconds()

    candidates: list[str] = []
    kept_young = 0
    live_chunks: set[bytes] = set()
    temp_files: list[str] = []
    for path in list(storage.list()):
        parts = path.split("/")
        base = parts[-1]
        if base.startswith(_TMP_PREFIX):
            with contextlib.suppress(StorageError):  # finished (renamed) meanwhile
                if store.age(path) > grace_s:
                    temp_files.append(path)
            continue
        if len(parts) != 2 or not is_digest(base) or parts[0] != base[:2]:
            continue
        young = store.age(path) <= grace_s
        if base in live or young:
            chunks = store.recipe_chunks(base)
            if chunks:
                live_chunks.update(chunks)
            if base not in live:
                kept_young += 1
            continue
        candidates.append(base)

    # Read the manifests again: a save that finished meanwhile may use a candidate.
    live_again, seen_again = _mark(store, extra, options)
    spared = [d for d in candidates if d in live_again]
    for digest in spared:
        chunks = store.recipe_chunks(digest)
        if chunks:
            live_chunks.update(chunks)
    doomed = [d for d in candidates if d not in live_again]

    # Every index on its own: two packs may hold the same chunk, and each one
    # must be judged (a digest-keyed map would hide one of them).
    names = set(storage.list(PACK_DIR))
    pack_chunks: dict[str, list[bytes]] = {}
    for name in sorted(names):
        pack_id, _, ext = name.rsplit("/", 1)[-1].partition(".")
        if ext == "idx":
            _total, entries = parse_index(pack_id, storage.read_bytes(name))
            pack_chunks[pack_id] = [digest for digest, _ in entries]
    condemned_now = {
        n.rsplit("/", 1)[-1].split(".")[0] for n in names if n.endswith("." + CONDEMNED_EXT)
    }

    freed = 0
    deleted_packs: list[str] = []
    condemned: list[str] = []
    rescued: list[str] = []
    for digest in doomed:
        freed += storage.size(object_path(digest))
        if not dry_run:
            storage.delete(object_path(digest))
    for pack_id, chunk_digests in sorted(pack_chunks.items()):
        dead = not any(d in live_chunks for d in chunk_digests)
        if pack_id in condemned_now:
            if not dead:
                rescued.append(pack_id)
                if not dry_run:
                    storage.delete(condemned_path(pack_id))
            elif store.age(condemned_path(pack_id)) > grace_s:
                freed += storage.size(pack_path(pack_id)) + storage.size(index_path(pack_id))
                deleted_packs.append(pack_id)
                if not dry_run:
                    storage.delete(index_path(pack_id))
                    storage.delete(pack_path(pack_id))
                    storage.delete(condemned_path(pack_id))
        elif dead and store.age(index_path(pack_id)) > grace_s:
            condemned.append(pack_id)
            if not dry_run:
                storage.write_new(condemned_path(pack_id), (b"",))
    for path in temp_files:
        with contextlib.suppress(FileNotFoundError):
            freed += storage.size(path)
            if not dry_run:
                storage.delete(path)
    return GcReport(
        dry_run=dry_run,
        manifests=tuple(dict.fromkeys([*seen, *seen_again])),
        referenced_objects=len(live_again),
        deleted_objects=tuple(doomed),
        deleted_packs=tuple(deleted_packs),
        condemned_packs=tuple(condemned),
        rescued_packs=tuple(rescued),
        deleted_temp_files=len(temp_files),
        kept_young=kept_young,
        freed_bytes=freed,
    )
