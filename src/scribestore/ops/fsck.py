"""Store-level check: every object and every packed chunk, referenced or not.

:func:`check_store` reads every loose object and recipe to its verified end
(a recipe read also proves each of its chunks can be found and decoded), then
decodes every chunk of every pack and checks it against its own digest. It
reports problems; it never raises for damaged data.
"""

from __future__ import annotations

import contextlib
import os
from typing import TYPE_CHECKING, Any, Literal

import blake3
import msgspec

from scribestore.exception import (
    StorageError,
    UnsupportedFormatError,
)
from scribestore.ops.journal import check_journal
from scribestore.ops.verify import check_object
from scribestore.storage import NotRegularFileError
from scribestore.store.blobcodec import decode_chunk
from scribestore.store.layout import (
    MERGED_EXT,
    PACK_DIR,
    TMP_PREFIX,
    condemned_path,
    index_path,
    merged_index_path,
    object_path,
    orphan_packs,
    pack_path,
    parse_pack_name,
)
from scribestore.store.midx import MergedIndex
from scribestore.store.objects import ObjectStore
from scribestore.store.packs import ChunkLocation, read_own_table, read_pack_table, rewrite_index

if TYPE_CHECKING:
    from scribestore.storage import Storage

__all__ = ["FsckProblem", "FsckReport", "RepairReport", "check_store", "repair_store"]

FsckKind = Literal["corrupt", "missing", "unsupported"]


class FsckProblem(msgspec.Struct, frozen=True, kw_only=True):
    """One damaged or missing thing in a store."""

    kind: FsckKind
    path: str
    message: str
    digest: str | None = None


class FsckReport(msgspec.Struct, frozen=True, kw_only=True):
    """The result of :func:`check_store`."""

    objects_checked: int
    packs_checked: int
    chunks_checked: int
    problems: tuple[FsckProblem, ...]

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems


def _check_object(store: ObjectStore, digest: str) -> FsckProblem | None:
    outcome = check_object(store, digest)
    if outcome.kind is None:
        return None
    return FsckProblem(
        kind=outcome.kind, path=object_path(digest), digest=digest, message=outcome.detail
    )


def _check_merged(storage: Storage, merged_id: str) -> list[FsckProblem]:
    """A merged index must parse and agree with the index of every pack it covers."""
    path = merged_index_path(merged_id)
    advice = (
        "it is derived data, so no chunk is lost (readers use the packs' own indexes): "
        "`scribestore fsck --repair` or gc writes a new one"
    )
    try:
        merged = MergedIndex(merged_id, storage.read_bytes(path))
    except FileNotFoundError:
        return []  # replaced by gc meanwhile
    except NotRegularFileError as exc:
        message = f"not a regular file ({exc.strerror}); {advice}"
        return [FsckProblem(kind="corrupt", path=path, message=message)]
    except UnsupportedFormatError as exc:
        return [FsckProblem(kind="unsupported", path=path, message=str(exc))]
    except ValueError as exc:
        return [FsckProblem(kind="corrupt", path=path, message=f"{exc}; {advice}")]
    disagree = []
    for pack_id, (total, entries) in merged.tables(merged.packs).items():
        try:
            table = read_pack_table(storage, pack_id)
        except (FileNotFoundError, ValueError):
            continue  # deleted since (it no longer counts), or reported with its pack
        if table.total != total or sorted(table.entries) != sorted(entries):
            disagree.append(pack_id)
    if not disagree:
        return []
    message = f"disagrees with the index of packs {', '.join(disagree)}; {advice}"
    return [FsckProblem(kind="corrupt", path=path, message=message)]


def _check_pack(store: ObjectStore, pack_id: str) -> tuple[int, list[FsckProblem]]:
    storage = store.storage
    index_name = index_path(pack_id)
    problems: list[FsckProblem] = []
    try:
        total, entries, damaged_index = read_pack_table(storage, pack_id)
    except FileNotFoundError:
        return 0, []  # deleted by gc meanwhile
    except UnsupportedFormatError as exc:
        return 0, [FsckProblem(kind="unsupported", path=index_name, message=str(exc))]
    except ValueError as exc:
        return 0, [FsckProblem(kind="corrupt", path=index_name, message=str(exc))]
    if damaged_index is not None:
        message = (
            f"{damaged_index}; the pack's own table is intact, so no chunk is lost: "
            "`scribestore fsck --repair` rewrites the index from it"
        )
        problems.append(FsckProblem(kind="corrupt", path=index_name, message=message))
    elif (table_problem := _check_table(storage, pack_id, entries)) is not None:
        problems.append(table_problem)
    try:
        data = memoryview(storage.read_bytes(pack_path(pack_id)))
    except FileNotFoundError:
        msg = f"pack {pack_id} is missing but its index lists {len(entries)} chunks"
        return 0, [FsckProblem(kind="missing", path=pack_path(pack_id), message=msg)]
    if len(data) != total:
        problems.append(
            FsckProblem(
                kind="corrupt",
                path=pack_path(pack_id),
                message=f"pack is {len(data)} bytes, its index says {total}",
            )
        )
    for digest, loc in entries:
        blob = data[loc.offset : loc.offset + loc.length]
        try:
            ok = blake3.blake3(decode_chunk(blob, loc.size)).digest() == digest
        except ValueError:
            ok = False
        if not ok:
            problems.append(
                FsckProblem(
                    kind="corrupt",
                    path=pack_path(pack_id),
                    digest=digest.hex(),
                    message=f"chunk {digest.hex()} at offset {loc.offset} does not match "
                    "its digest",
                )
            )
    return len(entries), problems


def _check_table(
    storage: Storage, pack_id: str, entries: list[tuple[bytes, ChunkLocation]]
) -> FsckProblem | None:
    """A problem if a format-3 pack's own table is damaged or differs from its index."""
    try:
        own = read_own_table(storage, pack_id)
    except FileNotFoundError:
        return None  # reported as a missing pack
    except ValueError as exc:
        why = str(exc)
    else:
        if own is None or own[1] == entries:
            return None
        why = f"pack {pack_id}'s own table differs from its index"
    message = f"{why}; its index is intact, so no chunk is lost"
    return FsckProblem(kind="corrupt", path=pack_path(pack_id), message=message)


def check_store(
    objects: ObjectStore | str | os.PathLike[str], **storage_options: Any
) -> FsckReport:
    """Check every object and every packed chunk of a store, and its journal.

    Raises:
        StorageError: the store cannot be listed.
    """
    store = objects if isinstance(objects, ObjectStore) else ObjectStore(objects, **storage_options)
    problems: list[FsckProblem] = []
    digests = list(store)
    for digest in digests:
        problem = _check_object(store, digest)
        if problem is not None:
            problems.append(problem)
    for path in store.storage.special_files():
        problems.append(
            FsckProblem(
                kind="corrupt",
                path=path,
                message="not a regular file or directory (a symlink, FIFO or device): "
                "scribestore never reads or writes through it; remove it",
            )
        )
    packs = chunks = 0
    for name in store.storage.list(PACK_DIR):
        parsed = parse_pack_name(name)
        if parsed is None and not name.rsplit("/", 1)[-1].startswith(TMP_PREFIX):
            problems.append(
                FsckProblem(
                    kind="corrupt",
                    path=name,
                    message="not the name of a pack, index, merged index or condemned marker: "
                    "scribestore ignores it (a renamed or foreign file); restore its name "
                    "or remove it",
                )
            )
        elif parsed is not None and parsed.kind == "idx":
            count, found = _check_pack(store, parsed.pack_id)
            packs += 1
            chunks += count
            problems.extend(found)
        elif parsed is not None and parsed.kind == MERGED_EXT:
            problems.extend(_check_merged(store.storage, parsed.pack_id))
    for kind, path, message in check_journal(store):
        problems.append(FsckProblem(kind=kind, path=path, message=message))
    return FsckReport(
        objects_checked=len(digests),
        packs_checked=packs,
        chunks_checked=chunks,
        problems=tuple(problems),
    )


class RepairReport(msgspec.Struct, frozen=True, kw_only=True):
    """What :func:`repair_store` fixed, and what it could not."""

    removed_orphan_packs: tuple[str, ...]
    removed_stale_leases: tuple[str, ...]
    #: Packs whose damaged index was rewritten from the pack's own table.
    rebuilt_indexes: tuple[str, ...]
    #: Packs whose index is damaged and cannot be rebuilt (a pack of format
    #: 1 or 2, or a damaged pack table). Their chunks are stored again by
    #: logging the affected artifacts again; gc then removes the damaged pack.
    damaged_indexes: tuple[str, ...]
    #: Merged indexes that were damaged or disagreed with their packs'
    #: indexes: deleted, and a new one published over every pack.
    replaced_merged_indexes: tuple[str, ...] = ()


def repair_store(
    objects: ObjectStore | str | os.PathLike[str], **storage_options: Any
) -> RepairReport:
    """Fix what can be fixed without data: leftovers of killed saves and gc runs.

    Holds the gc lease (no save is in flight) while it removes packs and
    condemned markers that have no index and stale leases, and rewrites
    damaged pack indexes from the table each pack (format 3) holds.

    Raises:
        LockTimeoutError: saves stayed in flight, or a gc is running.
        StorageError: the store cannot be listed or changed.
    """
    store = objects if isinstance(objects, ObjectStore) else ObjectStore(objects, **storage_options)
    storage = store.storage
    with store.exclusive():
        stale = store.stale_leases()
        for path in stale:
            with contextlib.suppress(FileNotFoundError):
                storage.delete(path)
        names = list(storage.list(PACK_DIR))
        orphans = orphan_packs(names)
        for pack_id in orphans:
            for path in (pack_path(pack_id), condemned_path(pack_id)):
                with contextlib.suppress(FileNotFoundError):
                    storage.delete(path)
        rebuilt, damaged = _repair_indexes(storage, names)
        merged = _repair_merged(store, names)
    return RepairReport(
        removed_orphan_packs=tuple(orphans),
        removed_stale_leases=tuple(stale),
        rebuilt_indexes=tuple(rebuilt),
        damaged_indexes=tuple(damaged),
        replaced_merged_indexes=tuple(merged),
    )


def _repair_merged(store: ObjectStore, names: list[str]) -> list[str]:
    """Delete damaged merged indexes and publish one over every pack: the ids deleted."""
    deleted = []
    for parsed in filter(None, map(parse_pack_name, names)):
        if parsed.kind != MERGED_EXT:
            continue
        # One of a newer format is left alone: a newer scribestore reads it.
        if any(p.kind == "corrupt" for p in _check_merged(store.storage, parsed.pack_id)):
            with contextlib.suppress(FileNotFoundError):
                store.storage.delete(merged_index_path(parsed.pack_id))
            deleted.append(parsed.pack_id)
    store.merge_indexes()
    return deleted


def _repair_indexes(storage: Storage, names: list[str]) -> tuple[list[str], list[str]]:
    """Rewrite damaged indexes from their packs: (rebuilt, beyond repair)."""
    rebuilt, damaged = [], []
    for name in names:
        parsed = parse_pack_name(name)
        if parsed is None or parsed.kind != "idx":
            continue
        pack_id = parsed.pack_id
        try:
            table = read_pack_table(storage, pack_id)
        except (FileNotFoundError, UnsupportedFormatError):
            continue  # deleted meanwhile, or of a format this reader leaves alone
        except ValueError:
            damaged.append(pack_id)
            continue
        if table.damaged_index is not None:
            try:
                rewrite_index(storage, pack_id, table)
            except OSError as exc:
                raise StorageError(f"could not rewrite {name} in {storage.url}: {exc}") from exc
            rebuilt.append(pack_id)
    return rebuilt, damaged
