"""The on-disk layout of an object store (FORMAT sections 1 and 3).

Every name the engine gives a file is made here, and every name it reads
back from a listing is parsed here, so the layout is defined once:

- objects: ``<2 hex>/<64 hex digest>``; the digest is validated before it
  becomes a path;
- packs: ``packs/<32 hex id>.pack``, its index ``.idx`` and the marker gc
  leaves on a pack it will delete, ``.condemned``; merged indexes of many
  packs, ``packs/<32 hex id>.midx``;
- records of the manifests that use the store, under ``manifests/``;
- leases of writers and gc, under ``locks/``;
- the journal of replaced manifest states, under ``journal/``;
- files still being written start with :data:`TMP_PREFIX`.
"""

from __future__ import annotations

import functools
import re
from typing import TYPE_CHECKING, Literal, NamedTuple

from scribestore.storage.base import BLOCK_SIZE, TMP_PREFIX
from scribestore.store.hashing import validate_digest

if TYPE_CHECKING:
    from collections.abc import Iterable

__all__ = [
    "BLOCK_SIZE",
    "CONDEMNED_EXT",
    "JOURNAL_DIR",
    "LOCKS_DIR",
    "MANIFESTS_DIR",
    "MERGED_EXT",
    "PACK_DIR",
    "TMP_PREFIX",
    "JournalName",
    "PackListing",
    "PackName",
    "check_pack_id",
    "condemned_path",
    "index_path",
    "journal_path",
    "merged_index_path",
    "object_path",
    "orphan_packs",
    "pack_names",
    "pack_path",
    "parse_journal_name",
    "parse_pack_name",
]

#: Where packs and their indexes live.
PACK_DIR = "packs"
#: Extension of the marker gc leaves on a pack it will delete after the grace period.
CONDEMNED_EXT = "condemned"
#: Extension of a merged index, which holds the entries of many packs (FORMAT 3.6).
MERGED_EXT = "midx"
#: Where records of the manifests that use a store live (FORMAT section 7).
MANIFESTS_DIR = "manifests"
#: Where writer and gc leases live (FORMAT section 7).
LOCKS_DIR = "locks"
#: Where the journal of replaced manifest states lives (FORMAT section 7.3).
JOURNAL_DIR = "journal"

_PACK_ID = re.compile(r"[0-9a-f]{32}")
_JOURNAL_NAME = re.compile(r"([0-9a-f]{32})/([0-9]{20})-([0-9a-f]{64})\.json")
PackKind = Literal["pack", "idx", "condemned", "midx"]
_KINDS: tuple[PackKind, ...] = ("pack", "idx", "condemned", "midx")
_PACK_NAME = re.compile(r"([0-9a-f]{32})\.(pack|idx|condemned|midx)")


def object_path(digest: str) -> str:
    """The storage path of ``digest``: the one place a digest becomes a path.

    Raises:
        InvalidDigestError: ``digest`` is not 64 lowercase hex characters.
    """
    validate_digest(digest)
    return f"{digest[:2]}/{digest}"


def check_pack_id(pack_id: str) -> str:
    """``pack_id`` if it is 32 lowercase hex characters.

    Raises:
        ValueError: it is not.
    """
    if not _PACK_ID.fullmatch(pack_id):
        raise ValueError(f"invalid pack id {pack_id!r}")
    return pack_id


def pack_path(pack_id: str) -> str:
    """Storage path of a pack file (the id is validated first)."""
    return f"{PACK_DIR}/{check_pack_id(pack_id)}.pack"


def index_path(pack_id: str) -> str:
    """Storage path of a pack's index (the id is validated first)."""
    return f"{PACK_DIR}/{check_pack_id(pack_id)}.idx"


def condemned_path(pack_id: str) -> str:
    """Storage path of the marker gc leaves on a pack it will delete later."""
    return f"{PACK_DIR}/{check_pack_id(pack_id)}.{CONDEMNED_EXT}"


def merged_index_path(merged_id: str) -> str:
    """Storage path of a merged index (the id is validated first)."""
    return f"{PACK_DIR}/{check_pack_id(merged_id)}.{MERGED_EXT}"


class PackName(NamedTuple):
    """A file under ``packs/`` by what it is: the pack's id and the file's kind."""

    pack_id: str
    kind: PackKind


def parse_pack_name(name: str) -> PackName | None:
    """What a name listed under ``packs/`` is, or None for anything else.

    Temp files, stray names and ids that are not 32 hex characters are None:
    nothing is ever done to a file this function does not recognise.
    """
    found = _PACK_NAME.fullmatch(name, name.rfind("/") + 1)
    return None if found is None else PackName(found[1], found[2])  # type: ignore[arg-type]


class PackListing(NamedTuple):
    """The ids of a listing of ``packs/``, by kind of file."""

    pack: frozenset[str]
    idx: frozenset[str]
    condemned: frozenset[str]
    midx: frozenset[str]


@functools.lru_cache(maxsize=8)
def pack_names(names: tuple[str, ...]) -> PackListing:
    """The ids of the files ``names`` lists under ``packs/``, by kind:
    :func:`parse_pack_name` for a whole listing, with one match per name.
    The last few listings are remembered, since a store is listed on every open."""
    found: dict[str, set[str]] = {kind: set() for kind in _KINDS}
    match = _PACK_NAME.fullmatch
    for name in names:
        parsed = match(name, name.rfind("/") + 1)
        if parsed is not None:
            found[parsed[2]].add(parsed[1])
    return PackListing(**{kind: frozenset(ids) for kind, ids in found.items()})


def orphan_packs(names: Iterable[str]) -> list[str]:
    """Ids of packs (or condemned markers) among ``names`` that have no index.

    Left by killed saves (a pack is published before its index) and killed
    gc runs (an index is deleted before its pack and marker).
    """
    by_kind: dict[str, set[str]] = {
        "pack": set(),
        "idx": set(),
        CONDEMNED_EXT: set(),
        MERGED_EXT: set(),
    }
    for name in names:
        parsed = parse_pack_name(name)
        if parsed is not None:
            by_kind[parsed.kind].add(parsed.pack_id)
    return sorted((by_kind["pack"] | by_kind[CONDEMNED_EXT]) - by_kind["idx"])


class JournalName(NamedTuple):
    """A journal entry by its name: whose, when (ns since the epoch), which state."""

    key: str
    time_ns: int
    digest: str


def journal_path(key: str, time_ns: int, digest: str) -> str:
    """Storage path of a journal entry (key and digest validated first).

    Raises:
        ValueError: ``key`` is not 32 hex characters or ``time_ns`` is out of range.
        InvalidDigestError: ``digest`` is malformed.
    """
    validate_digest(digest)
    if not _PACK_ID.fullmatch(key) or not 0 <= time_ns < 10**20:
        raise ValueError(f"invalid journal entry {key!r}/{time_ns!r}")
    return f"{JOURNAL_DIR}/{key}/{time_ns:020d}-{digest}.json"


def parse_journal_name(path: str) -> JournalName | None:
    """What a path listed under ``journal/`` names, or None for anything else
    (temp files, stray names): nothing is done to a file not recognised here."""
    m = _JOURNAL_NAME.fullmatch(path.removeprefix(JOURNAL_DIR + "/"))
    if m is None:
        return None
    return JournalName(m.group(1), int(m.group(2)), m.group(3))
