"""Store-level check: every object and every packed chunk, referenced or not.

:func:`check_store` reads every loose object and recipe to its verified end
(a recipe read also proves each of its chunks can be found and decoded), then
decodes every chunk of every pack and checks it against its own digest. It
reports problems; it never raises for damaged data.
"""

from __future__ import annotations

import os
from typing import Any, Literal

import blake3
import msgspec

from scribestore.chunkcodec import decode_chunk
from scribestore.errors import IntegrityError, ObjectNotFoundError, UnsupportedFormatError
from scribestore.objects import ObjectStore, object_path
from scribestore.packs import PACK_DIR, pack_path, parse_index

__all__ = ["FsckProblem", "FsckReport", "check_store"]

FsckKind = Literal["corrupt", "missing", "unsupported"]
_BLOCK = 1 << 20


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
    path = object_path(digest)
    try:
        with store.open(digest) as reader:
            while reader.read(_BLOCK):
                pass
    except UnsupportedFormatError as exc:
        return FsckProblem(kind="unsupported", path=path, digest=digest, message=str(exc))
    except ObjectNotFoundError as exc:
        return FsckProblem(kind="missing", path=path, digest=digest, message=str(exc))
    except IntegrityError as exc:
        return FsckProblem(kind="corrupt", path=path, digest=digest, message=str(exc))
    return None


def _check_pack(store: ObjectStore, index_name: str) -> tuple[int, list[FsckProblem]]:
    storage = store.storage
    pack_id = index_name.rsplit("/", 1)[-1].split(".")[0]
    problems: list[FsckProblem] = []
    try:
        total, entries = parse_index(pack_id, storage.read_bytes(index_name))
    except UnsupportedFormatError as exc:
        return 0, [FsckProblem(kind="unsupported", path=index_name, message=str(exc))]
    except ValueError as exc:
        return 0, [FsckProblem(kind="corrupt", path=index_name, message=str(exc))]
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


def check_store(
    objects: ObjectStore | str | os.PathLike[str], **storage_options: Any
) -> FsckReport:
    """Check every object and every packed chunk of a store.

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
    packs = chunks = 0
    for name in store.storage.list(PACK_DIR):
        if name.endswith(".idx"):
            count, found = _check_pack(store, name)
            packs += 1
            chunks += count
            problems.extend(found)
    return FsckReport(
        objects_checked=len(digests),
        packs_checked=packs,
        chunks_checked=chunks,
        problems=tuple(problems),
    )
