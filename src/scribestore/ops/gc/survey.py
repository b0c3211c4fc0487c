"""gc's survey: the store as listed before the sweep, taken without a lease.

Lists objects, packs, temp files and the chunks that live and young recipes
use; writers go on meanwhile, and the sweep re-marks under the gc lease.
"""

from __future__ import annotations

import contextlib

import msgspec

from scribestore.exception import (
    CorruptObjectError,
    ObjectNotFoundError,
    StorageError,
    UnsupportedFormatError,
)
from scribestore.ops.gc.report import RETRY_HINT
from scribestore.progress import Progress, null
from scribestore.storage import Storage, checked
from scribestore.store.hashing import is_digest
from scribestore.store.layout import (
    CONDEMNED_EXT,
    LOCKS_DIR,
    PACK_DIR,
    TMP_PREFIX,
    orphan_packs,
    parse_pack_name,
)
from scribestore.store.objects import ObjectStore
from scribestore.store.packs import PackTable, read_pack_table

__all__ = ["Survey", "add_chunks", "survey_store"]


class Survey(msgspec.Struct, kw_only=True):
    """The store as listed before the sweep."""

    candidates: list[str]
    kept: set[str]
    kept_young: int
    temp_files: list[str]
    #: Every pack with a readable table: its length and entries.
    packs: dict[str, PackTable]
    skipped_packs: list[str]
    condemned: set[str]
    live_chunks: set[bytes]
    chunks_known: bool
    orphans: list[str] = msgspec.field(default_factory=list)


def chunks_of(store: ObjectStore, digest: str) -> list[bytes] | None:
    """A recipe's chunk digests; [] for a loose or vanished object, None if unreadable."""
    try:
        return store.recipe_chunks(digest) or []
    except ObjectNotFoundError:
        return []
    except (CorruptObjectError, UnsupportedFormatError):
        return None


def survey_store(
    store: ObjectStore, live: set[str], grace_s: float, progress: Progress = null
) -> Survey:
    """List objects and packs; collect the chunks that live and young recipes use.

    ``progress`` counts the listed files as they are looked at.
    """
    listing = checked(
        store.storage, lambda: list(store.storage.list()), "the listing", hint=RETRY_HINT
    )
    progress.start(len(listing), "gc: surveying")
    try:
        return _survey(store, listing, live, grace_s, progress)
    finally:
        progress.close()


def _survey(
    store: ObjectStore, listing: list[str], live: set[str], grace_s: float, progress: Progress
) -> Survey:
    storage = store.storage
    survey = Survey(
        candidates=[],
        kept=set(),
        kept_young=0,
        temp_files=[],
        packs={},
        skipped_packs=[],
        condemned=set(),
        live_chunks=set(),
        chunks_known=True,
    )
    for path in listing:
        progress.advance(1)
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
        add_chunks(store, survey, base)
    # Every index on its own: two packs may hold the same chunk, and each one
    # must be judged (a digest-keyed map would hide one of them).
    names = checked(storage, lambda: sorted(storage.list(PACK_DIR)), PACK_DIR, hint=RETRY_HINT)
    survey.orphans = orphan_packs(names)
    for parsed in filter(None, map(parse_pack_name, names)):
        pack_id = parsed.pack_id
        if parsed.kind == CONDEMNED_EXT:
            survey.condemned.add(pack_id)
        elif parsed.kind == "idx":
            try:
                table = read_table(storage, pack_id)
            except (ValueError, FileNotFoundError):
                survey.skipped_packs.append(pack_id)
                continue
            survey.packs[pack_id] = table
    return survey


def read_table(storage: Storage, pack_id: str) -> PackTable:
    """A pack's entries, from its index or (the index damaged) the pack itself."""
    try:
        return read_pack_table(storage, pack_id)
    except (FileNotFoundError, ValueError):
        raise
    except OSError as exc:
        raise StorageError(
            f"garbage collection in {storage.url} failed on pack {pack_id}: {exc}"
        ) from exc


def add_chunks(store: ObjectStore, survey: Survey, digest: str) -> None:
    chunks = chunks_of(store, digest)
    if chunks is None:
        survey.chunks_known = False  # a damaged recipe: which packs it needs is unknown
    else:
        survey.live_chunks.update(chunks)
