"""Repacking: copy the chunks still needed out of mostly-dead packs (FORMAT 7.2).

gc decides which packs to repack and which of their chunks live; this module
copies those chunks, as stored, into new packs. Every chunk is decoded and
checked against its digest before it is copied, and a pack with a chunk that
fails is left whole, so repacking never turns damage into a clean-looking copy.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import msgspec

from scribestore.storage import NotRegularFileError
from scribestore.store.blobcodec import decode_chunk
from scribestore.store.hashing import hash_chunk
from scribestore.store.layout import pack_path
from scribestore.store.packs import PackWriter

if TYPE_CHECKING:
    from collections.abc import Mapping

    from scribestore.storage import Storage
    from scribestore.store.pack_index import PackIndex
    from scribestore.store.packs import ChunkLocation

__all__ = ["RepackResult", "repack"]


class RepackResult(msgspec.Struct, frozen=True, kw_only=True):
    """What :func:`repack` copied."""

    #: Packs whose chunks were all copied: nothing needs them any more.
    emptied: tuple[str, ...]
    #: Packs left whole, with why: gone, or a chunk that does not verify.
    skipped: dict[str, str]
    #: Bytes of blobs copied into new packs.
    copied_bytes: int


def repack(
    storage: Storage, index: PackIndex, keep: Mapping[str, list[tuple[bytes, ChunkLocation]]]
) -> RepackResult:
    """Copy the chunks ``keep`` names (pack id -> entries) into new packs.

    The new packs and their indexes are published before this returns, so
    the caller may then condemn the emptied packs.

    Raises:
        OSError: a new pack could not be written (nothing is emptied).
    """
    writer = PackWriter(storage, index)
    emptied: list[str] = []
    skipped: dict[str, str] = {}
    copied = 0
    done: set[bytes] = set()  # a chunk two emptied packs held is copied once
    try:
        for pack_id, entries in sorted(keep.items()):
            try:
                data = memoryview(storage.read_bytes(pack_path(pack_id)))
            except FileNotFoundError:
                skipped[pack_id] = "the pack is gone"
                continue
            except NotRegularFileError as exc:
                skipped[pack_id] = f"the pack is not a regular file ({exc.strerror})"
                continue
            blobs = []
            for digest, loc in entries:
                blob = data[loc.offset : loc.offset + loc.length]
                if not _verified(blob, digest, loc.size):
                    skipped[pack_id] = f"chunk {digest.hex()} does not verify"
                    break
                blobs.append((digest, blob, loc.size))
            else:
                # Verified whole before anything is copied, so a damaged
                # pack is never partly moved.
                for digest, blob, size in blobs:
                    if digest not in done:
                        writer.add(digest, (blob,), size)
                        done.add(digest)
                        copied += len(blob)
                emptied.append(pack_id)
        writer.close()
    except BaseException:
        writer.abort()
        raise
    return RepackResult(emptied=tuple(emptied), skipped=skipped, copied_bytes=copied)


def _verified(blob: memoryview, digest: bytes, size: int) -> bool:
    try:
        return len(blob) > 0 and hash_chunk(decode_chunk(blob, size)) == digest
    except ValueError:
        return False
