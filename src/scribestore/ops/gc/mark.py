"""gc's mark: what every manifest that uses a store references.

Marks from every registered manifest, every extra manifest the caller names
and every manifest found beside the store (in its tree), so a deleted or
damaged registry record of the usual layout cannot make gc delete what they
reference.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from functools import partial
from typing import TYPE_CHECKING, Any

import msgspec

from scribestore.exception import (
    CorruptManifestError,
    CorruptObjectError,
    IntegrityError,
    MissingManifestError,
    ObjectNotFoundError,
    UnsupportedFormatError,
)
from scribestore.manifest.schema import decode_project, decode_repository
from scribestore.ops.gc.report import RETRY_HINT
from scribestore.ops.journal import journal_names
from scribestore.ops.registry import ManifestRegistry, RegisteredManifest, tree_of
from scribestore.progress import Progress, null
from scribestore.storage import (
    checked,
    join_url,
    open_storage,
    read_if_exists,
    split_file_url,
    split_url,
)
from scribestore.store.layout import journal_path

if TYPE_CHECKING:
    from scribestore.store.layout import JournalName
    from scribestore.store.objects import ObjectStore

__all__ = ["Marks", "manifest_digests", "mark"]


class Marks(msgspec.Struct, kw_only=True):
    """What the registered manifests and the journal reference, which manifests
    were read, and the journal entries past their retention."""

    live: set[str]
    seen: list[str]
    forgotten: list[RegisteredManifest]
    expired: list[JournalName] = msgspec.field(default_factory=list)
    #: Journal entries whose state is missing or damaged (not restorable).
    unreadable: int = 0


def manifest_digests(url: str, kind: str, storage_options: dict[str, Any]) -> set[str] | None:
    """Digests a manifest references; None if it does not exist.

    Raises:
        CorruptManifestError, UnsupportedFormatError: it cannot be read.
    """
    directory, name = split_file_url(url)
    storage = open_storage(directory, **storage_options)
    data = read_if_exists(storage, name, f"manifest {url}")
    if data is None:
        return None
    return digests_of(data, kind, url)


def digests_of(data: bytes, kind: str, where: str) -> set[str]:
    """Digests the manifest ``data`` of ``kind`` references.

    Raises:
        CorruptManifestError, UnsupportedFormatError: it cannot be read.
    """
    if kind == "project":
        project = decode_project(data, where=where)
        return {
            a.hash
            for exp in project.experiments
            for a in [*exp.artifacts, *(t_a for t in exp.tests for t_a in t.artifacts)]
        }
    repo = decode_repository(data, where=where)
    return {v.hash for versions in repo.artifacts.values() for v in versions}


def mark(
    store: ObjectStore,
    extra: list[tuple[str, str]],
    forget: set[str],
    options: dict[str, Any],
    *,
    strict: bool,
    keep_journal_s: float,
    progress: Progress = null,
    label: str = "gc: marking",
) -> Marks:
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
    records = ManifestRegistry(store).manifests()
    refs = [(r.url, r.kind) for r in records] + extra + discovered(store, options)
    marks = Marks(live=set(), seen=[], forgotten=[])
    missing: list[str] = []
    wanted = [(url, kind) for url, kind in dict.fromkeys(refs) if url not in forget]
    progress.start(len(wanted), label)
    try:
        for url, kind in wanted:
            digests = manifest_digests(url, kind, options_for(url, store.url, options))
            progress.advance(1)
            if digests is None:
                missing.append(url)
                continue
            marks.live |= digests
            marks.seen.append(url)
    finally:
        progress.close()
    if missing and strict:
        raise MissingManifestError(
            f"garbage collection stopped before deleting anything: {len(missing)} registered "
            f"manifest(s) of {store.url} cannot be found, first {missing[0]}. If the store "
            "was moved, or that manifest is on another filesystem, make it reachable; if it "
            "was deleted on purpose, run gc again forgetting it (forget=[url], or "
            "`scribestore gc --forget URL`)"
        )
    marks.forgotten = [r for r in records if r.url in forget]
    mark_journal(store, marks, keep_journal_s)
    return marks


def mark_journal(store: ObjectStore, marks: Marks, keep_s: float) -> None:
    """Entries younger than ``keep_s`` (by the storage's clock, as every age gc
    judges) are roots: their states and all these reference are live; older
    ones are listed in ``marks.expired``.

    A state that cannot be read as a manifest (a damaged manifest that a
    mode "w" save replaced, a lazyscribe one) keeps only its own object: it
    cannot be restored, and it must not stop gc. One that is missing or
    damaged is counted in ``marks.unreadable``.
    """
    storage = store.storage
    now = dt.datetime.now(dt.timezone.utc)
    for name in journal_names(store):
        path = journal_path(name.key, name.time_ns, name.digest)
        try:
            when = checked(storage, partial(storage.modified, path), path, hint=RETRY_HINT)
        except FileNotFoundError:
            continue  # deleted meanwhile
        if (now - when).total_seconds() >= keep_s:
            marks.expired.append(name)
            continue
        marks.live.add(name.digest)
        try:
            data = store.get(name.digest)
        except (IntegrityError, ObjectNotFoundError, CorruptObjectError):
            marks.unreadable += 1
            continue
        kind = manifest_kind(data[:4096])
        if kind is not None:
            with contextlib.suppress(CorruptManifestError, UnsupportedFormatError):
                marks.live |= digests_of(data, kind, f"journal state {name.digest}")


def options_for(url: str, store_url: str, options: dict[str, Any]) -> dict[str, Any]:
    """The storage options to open the manifest at ``url`` with: the store's
    when it is on the same backend, none otherwise (a store copied to S3
    keeps records of manifests on local disk, and the other way round)."""
    return options if split_url(url)[0] == split_url(store_url)[0] else {}


def discovered(store: ObjectStore, options: dict[str, Any]) -> list[tuple[str, str]]:
    """Manifests beside the object store (in the store's tree), registered or not.

    Marking from them too means a deleted or damaged registry record of the
    usual layout cannot make gc delete what they reference.
    """
    tree = tree_of(store.url)
    if tree is None:
        return []
    storage = open_storage(tree, **options)
    found = []
    for name in checked(storage, storage.list_files, tree, hint=RETRY_HINT):
        if not name.endswith(".json"):
            continue
        with contextlib.suppress(FileNotFoundError):
            head = checked(
                storage, partial(storage.read_range, name, 0, 4096), name, hint=RETRY_HINT
            )
            kind = manifest_kind(head)
            if kind is not None:
                found.append((join_url(tree, name), kind))
    return found


def manifest_kind(head: bytes) -> str | None:
    """``"repository"``/``"project"`` if ``head`` starts a scribestore manifest."""
    for kind in ("repository", "project"):
        if b'"format":"scribestore.' + kind.encode() + b'"' in head.replace(b" ", b""):
            return kind
    return None
