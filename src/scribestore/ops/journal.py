"""The journal of manifest states a save replaced (FORMAT section 7.3).

A save that drops what the manifest it replaces held — a mode ``"w"`` save
dropping versions or experiments, a ``"w+"`` save editing experiments in
place, a restore — first stores the replaced manifest as an object and
writes a journal entry naming it, while it holds its write lease. gc treats
entries younger than the journal's retention (default 7 days) as roots, so
every object a journaled state references stays; older entries are
deleted by gc, under its lease, before what only they kept.

An entry is ``journal/<manifest key>/<20-digit ns>-<digest>.json``; its
name holds everything gc needs (the time and the state's object), and its
content says who replaced the state, why, and where the manifest was.
"""

from __future__ import annotations

import datetime as dt
import getpass
import logging
import os
import time
from functools import partial
from typing import TYPE_CHECKING, Literal

import msgspec

from scribestore.exception import IntegrityError, UnsupportedFormatError, VersionNotFoundError
from scribestore.ops.registry import ManifestKind, manifest_key
from scribestore.storage import Storage, checked
from scribestore.store.layout import (
    JOURNAL_DIR,
    TMP_PREFIX,
    JournalName,
    journal_path,
    parse_journal_name,
)

if TYPE_CHECKING:
    from scribestore.store.objects import ObjectStore

__all__ = [
    "DEFAULT_RETENTION",
    "JournalEntry",
    "ManifestJournal",
    "check_journal",
    "current_user",
    "journal_names",
]

logger = logging.getLogger(__name__)

#: How long gc keeps a replaced manifest state (and everything it references).
DEFAULT_RETENTION = dt.timedelta(days=7)


class _Record(msgspec.Struct, frozen=True, kw_only=True):
    """What an entry file holds."""

    url: str
    kind: ManifestKind
    size: int
    replaced_by: str
    reason: str


class JournalEntry(msgspec.Struct, frozen=True, kw_only=True):
    """One replaced manifest state, restorable by its ``id``."""

    #: ``<ns>-<digest>``: what :meth:`ManifestJournal.restore_bytes` takes.
    id: str
    #: When it was replaced (UTC).
    replaced_at: dt.datetime
    replaced_by: str
    #: Why (``"save in mode 'w'"``, ``"restore"``, ...).
    reason: str
    #: The object holding the state's bytes, and their length.
    digest: str
    size: int
    #: Where the manifest was when the state was replaced.
    url: str
    kind: ManifestKind


def current_user() -> str:
    """Who is changing the store, as recorded in the journal and on alias moves:
    the login name, or ``uid:<n>`` where the user id has no name (containers)."""
    try:
        return getpass.getuser()
    except Exception:  # no passwd entry and no USER/LOGNAME: getpwuid raises KeyError
        return f"uid:{os.getuid()}" if hasattr(os, "getuid") else "unknown"


def journal_names(store: ObjectStore) -> list[JournalName]:
    """Every journal entry in ``store`` (of every manifest), by name only.

    Raises:
        StorageError: the journal could not be listed.
    """
    storage = store.storage
    try:
        paths = checked(storage, lambda: list(storage.list(JOURNAL_DIR)), "journal")
    except FileNotFoundError:
        return []
    return [n for n in map(parse_journal_name, paths) if n is not None]


class ManifestJournal:
    """The journal of one manifest in one object store."""

    def __init__(self, store: ObjectStore, url: str, kind: ManifestKind) -> None:
        self._store = store
        self._url = url
        self._kind = kind
        self._key = manifest_key(store.url, url)

    def record(self, data: bytes, *, reason: str) -> str:
        """Keep ``data``, the manifest about to be replaced; return the entry's id.

        Call it while holding a write lease, before the manifest is replaced.

        Raises:
            StorageError: the state or its entry could not be written (the
                caller must not replace the manifest then).
        """
        digest = self._store.put(data)
        time_ns = time.time_ns()
        path = journal_path(self._key, time_ns, digest)
        record = _Record(
            url=self._url,
            kind=self._kind,
            size=len(data),
            replaced_by=current_user(),
            reason=reason,
        )
        storage = self._store.storage
        checked(
            storage,
            partial(storage.write_new, path, (msgspec.json.encode(record),)),
            path,
        )
        return f"{time_ns:020d}-{digest}"

    def entries(self) -> list[JournalEntry]:
        """The replaced states of this manifest, oldest first.

        An entry whose file cannot be decoded is left out, with a logged warning.

        Raises:
            StorageError: the journal could not be read.
        """
        storage = self._store.storage
        found = []
        for name in sorted(journal_names(self._store)):
            if name.key != self._key:
                continue
            path = journal_path(name.key, name.time_ns, name.digest)
            try:
                record = _read_record(storage, path)
            except FileNotFoundError:
                continue  # expired meanwhile
            except ValueError as exc:
                # One damaged entry must not hide the others from a restore.
                logger.warning("journal entry %s is damaged and left out: %s", path, exc)
                continue
            found.append(
                JournalEntry(
                    id=f"{name.time_ns:020d}-{name.digest}",
                    replaced_at=dt.datetime.fromtimestamp(name.time_ns / 1e9, dt.timezone.utc),
                    replaced_by=record.replaced_by,
                    reason=record.reason,
                    digest=name.digest,
                    size=record.size,
                    url=record.url,
                    kind=record.kind,
                )
            )
        return found

    def restore_bytes(self, entry_id: str) -> bytes:
        """The verified bytes of the state journaled as ``entry_id``.

        Raises:
            VersionNotFoundError: this manifest has no such entry (expired, or
                never recorded).
            IntegrityError: the stored state does not match its hash.
            StorageError: it could not be read.
        """
        ids = {e.id: e for e in self.entries()}
        entry = ids.get(entry_id)
        if entry is None:
            listing = ", ".join(list(ids)[-5:]) or "none"
            raise VersionNotFoundError(
                f"no journal entry {entry_id!r} for {self._url} in {self._store.url} "
                f"(latest: {listing}); see `scribestore journal ls`"
            )
        return self._store.get(entry.digest, size=entry.size)


def check_journal(store: ObjectStore) -> list[tuple[Literal["corrupt", "missing"], str, str]]:
    """What is wrong with the journal of ``store``, as (kind, path, message)
    with kind ``"corrupt"`` or ``"missing"``: a file under ``journal/`` that
    is not an entry, an entry file that does not decode, and an entry whose
    state object is missing or of another size. (The state objects' bytes
    are checked with every other object.)

    Raises:
        StorageError: the journal could not be listed or read.
    """
    storage = store.storage
    try:
        paths = checked(storage, lambda: list(storage.list(JOURNAL_DIR)), "journal")
    except FileNotFoundError:
        return []
    problems: list[tuple[Literal["corrupt", "missing"], str, str]] = []
    for path in paths:
        name = parse_journal_name(path)
        if name is None:
            if not path.rsplit("/", 1)[-1].startswith(TMP_PREFIX):  # not an in-flight write
                problems.append(("corrupt", path, "not the name of a journal entry; remove it"))
            continue
        try:
            record = _read_record(storage, path)
        except FileNotFoundError:
            continue  # expired meanwhile
        except ValueError as exc:
            problems.append(("corrupt", path, f"journal entry does not decode: {exc}"))
            continue
        if not store.has(name.digest):
            message = f"the journaled state {name.digest} is missing: it cannot be restored"
            problems.append(("missing", path, message))
            continue
        try:
            size = store.stat(name.digest).size
        except (IntegrityError, UnsupportedFormatError) as exc:
            problems.append(("corrupt", path, f"the journaled state is damaged: {exc}"))
            continue
        if size != record.size:
            message = f"the journaled state is {size} bytes, the entry says {record.size}"
            problems.append(("corrupt", path, message))
    return problems


#: An entry is a few hundred bytes; anything larger is not one (and is not read).
MAX_ENTRY_BYTES = 64 * 1024


def _read_record(storage: Storage, path: str) -> _Record:
    """The entry at ``path``.

    Raises:
        FileNotFoundError: it is gone.
        ValueError: it is too large to be an entry, or does not decode.
        StorageError: it could not be read.
    """
    size = checked(storage, partial(storage.size, path), path)
    if size > MAX_ENTRY_BYTES:
        raise ValueError(f"{size} bytes, more than an entry's {MAX_ENTRY_BYTES}")
    raw = checked(storage, partial(storage.read_bytes, path), path)
    try:
        return msgspec.json.decode(raw, type=_Record)
    except msgspec.DecodeError as exc:
        raise ValueError(str(exc)) from exc
