"""What Repository and Project share: one manifest file and the object store it uses.

Where the manifest is (path or URL) and where its objects are, the storage
of both, the pickle-trust switch, the read-only check, reading the manifest
(tolerantly, for mode ``"w"``), registering it with its object store,
committing it under a write lease, and pickling.
"""

from __future__ import annotations

import contextlib
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, TypeVar, cast

import fsspec

from scribestore.core.lazyscribe_open import is_lazyscribe, keep_original
from scribestore.core.stored import PickleTrust, commit_manifest, register_with
from scribestore.core.unsaved import watch
from scribestore.exception import (
    CorruptManifestError,
    InvalidVersionError,
    ManifestNotFoundError,
    ReadOnlyError,
    SaveError,
    ScribeStoreError,
)
from scribestore.manifest.schema import decode_project, decode_repository
from scribestore.ops.journal import JournalEntry, ManifestJournal
from scribestore.ops.registry import ManifestKind, ManifestRegistry
from scribestore.storage import join_url, open_storage, read_if_exists, split_file_url, split_url
from scribestore.store.objects import ObjectStore

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from scribestore.store.leases import Lease

__all__ = ["MODES", "ManifestFile"]

#: lazyscribe's modes: read-only, append, write (start empty), write-and-edit.
MODES = ("r", "a", "w", "w+")

_T = TypeVar("_T")
#: Attributes that hold connections or locks: made again when unpickled.
_LIVE = ("_storage", "_objects", "_registry", "_journal", "_unsaved", "_lock", "_converted")


class ManifestFile:
    """A manifest file (``repository.json``, ``project.json``) and its object store.

    Subclasses set :attr:`kind` and call :meth:`_open_manifest` from their
    ``__init__``.
    """

    kind: ClassVar[ManifestKind]
    #: Where the manifest is, as given (a path or a URL with its protocol).
    url: str
    mode: str
    storage_options: dict[str, Any]
    objects_url: str

    def _open_manifest(
        self,
        fpath: str | os.PathLike[str],
        mode: str,
        objects: str | os.PathLike[str] | None,
        trust_pickle: bool | None,
        storage_options: dict[str, Any],
    ) -> None:
        """Resolve where the manifest and its objects are, and connect to both.

        Raises:
            ValueError: an unknown ``mode``, or a URL without a file name.
            TypeError: ``trust_pickle`` is not a bool or None.
        """
        if mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}; got {mode!r}")
        self.url = os.fspath(fpath)
        # Shared with everything loaded through this manifest (filtered views,
        # experiments, tests): setting it here applies to all of them.
        self._trust = PickleTrust.resolve(trust_pickle, f"{self.kind} {self.url}")
        self.mode = mode
        self.storage_options = dict(storage_options)
        self._dir, self._manifest_name = split_file_url(self.url)
        self.objects_url = (
            os.fspath(objects) if objects is not None else join_url(self._dir, "objects")
        )
        # Serializes changes from threads sharing this object (lazyscribe's mutex).
        self._lock = threading.RLock()
        # A lazyscribe manifest read, and what it was converted to (see _decoded).
        self._converted: tuple[bytes, Any] | None = None
        self._connect()
        self._unsaved = watch(self, f"{self.kind} {self.url}")

    def _connect(self) -> None:
        self._storage = open_storage(self._dir, **self.storage_options)
        self._objects = ObjectStore(self.objects_url, **self.storage_options)
        self._registry = ManifestRegistry(self._objects)
        self._journal = ManifestJournal(
            self._objects, join_url(self._dir, self._manifest_name), self.kind
        )

    def load(self) -> None:
        """Read the saved manifest again (each kind defines what that keeps)."""
        raise NotImplementedError

    def journal(self) -> list[JournalEntry]:
        """The replaced states of this manifest that can be restored, oldest first.

        A save records the manifest it replaces when it drops something the
        manifest held (mode ``"w"`` dropping versions or experiments, ``"w+"``
        changing experiments in place) and so does :meth:`restore`; gc keeps
        each state, and everything it references, for its retention (7 days
        by default).

        Raises:
            StorageError: the journal could not be read.
        """
        return self._journal.entries()

    def restore(self, entry_id: str) -> None:
        """Make the journaled state ``entry_id`` the saved manifest again.

        The manifest it replaces is journaled first, so a restore can be
        undone; versions or experiments saved after that state are then in
        the journal only. Then the saved manifest is read again (not in mode
        ``"w"``, whose next save starts from what was saved when it opened).

        Raises:
            ReadOnlyError: mode ``"r"``.
            InvalidVersionError: ``entry_id`` is not a string.
            VersionNotFoundError: no such entry (expired, or never recorded).
            IntegrityError: the journaled state is damaged.
            CorruptManifestError, UnsupportedFormatError: it is not a manifest
                of this kind that this scribestore reads.
            SaveError: it could not be written; the manifest is unchanged.
        """
        self._check_writable("restore a manifest")
        if not isinstance(entry_id, str):
            raise InvalidVersionError(f"a journal entry id is a string, not {entry_id!r}")
        with self._lock:
            # Under the write lease: gc cannot delete what the state references
            # between reading it and committing it.
            with self._saving() as lease:
                try:
                    data = self._restorable(entry_id)
                except ScribeStoreError as exc:  # reported as itself, not as a SaveError
                    refused: ScribeStoreError | None = exc
                else:
                    refused = None
                    self._commit(self._restoring(entry_id, data), lease)
            if refused is not None:
                raise refused
            if self.mode != "w":
                self.load()

    def _restorable(self, entry_id: str) -> bytes:
        """The verified state ``entry_id``, checked to be a manifest of this kind."""
        data = self._journal.restore_bytes(entry_id)
        decode = decode_repository if self.kind == "repository" else decode_project
        decode(data, where=f"journal entry {entry_id} of {self.url}")
        return data

    def _restoring(self, entry_id: str, data: bytes) -> Callable[[bytes | None], bytes]:
        def change(current: bytes | None) -> bytes:
            self._keep_lazyscribe_original(current)
            if current is not None and current != data:
                self._keep_replaced(current, f"restore of {entry_id}")
            return data

        return change

    def _keep_replaced(self, current: bytes | None, reason: str) -> None:
        """Journal ``current``, about to be replaced, while a write lease is held.

        Raises:
            StorageError: it could not be kept (the caller must not replace it).
        """
        if current is not None:
            self._journal.record(current, reason=reason)

    def _read_manifest(self, decode: Callable[[bytes], _T], *, tolerant: bool) -> _T | None:
        """The decoded manifest, or None when there is none (or, ``tolerant``, it is corrupt).

        Raises:
            ManifestNotFoundError: there is none and the mode is ``"r"``: a
                mistyped path must not read as an empty manifest.
            CorruptManifestError: (not ``tolerant``) it cannot be decoded.
            UnsupportedFormatError: it was written by a newer scribestore.
            StorageError: it could not be read.
        """
        data = read_if_exists(self._storage, self._manifest_name, f"manifest {self.url}")
        if data is None:
            if self.mode == "r":
                raise ManifestNotFoundError(
                    f"no {self.kind} manifest at {self.url}: check the path (mode 'r' "
                    "opens only an existing manifest; mode 'a' creates it on the first save)"
                )
            return None
        try:
            return decode(data)
        except CorruptManifestError:
            if tolerant:
                return None
            raise

    def _decoded(
        self,
        data: bytes,
        native: Callable[[bytes], _T],
        lazyscribe: Callable[[bytes], _T],
        *,
        fresh: bool,
    ) -> _T:
        """``data`` decoded: by ``native``, or, when it is a lazyscribe manifest, by
        ``lazyscribe`` (which stores its files' bytes in the object store).

        A conversion is reused for the same content unless ``fresh``: saves
        convert afresh under their write lease, so the bytes they commit are
        stored (again) where garbage collection respects them.

        Raises:
            CorruptManifestError, UnsupportedFormatError: it cannot be decoded.
            MigrationError: (lazyscribe) a file it lists is missing.
        """
        if not is_lazyscribe(data):
            return native(data)
        if not fresh and self._converted is not None and self._converted[0] == data:
            return cast("_T", self._converted[1])
        result = lazyscribe(data)
        self._converted = (data, result)
        return result

    def _keep_lazyscribe_original(self, current: bytes | None) -> None:
        """Before ``current`` is replaced: keep it beside the manifest if it is lazyscribe's.

        Raises:
            ScribeStoreError: the copy could not be written (nothing is saved).
        """
        if current is not None and is_lazyscribe(current):
            keep_original(self._storage, self._manifest_name, current, self.url)

    @property
    def objects(self) -> ObjectStore:
        """The object store holding the artifact bytes."""
        return self._objects

    @property
    def fpath(self) -> Path:
        """The manifest's path without its protocol, as lazyscribe has it
        (``s3://bucket/repository.json`` gives ``bucket/repository.json``);
        :attr:`url` keeps the protocol."""
        return Path(split_url(self.url)[1])

    @property
    def protocol(self) -> str:
        """The fsspec protocol of the manifest's location (``"file"`` for a local path)."""
        return split_url(self.url)[0] or "file"

    @property
    def dir(self) -> Path:
        """The directory of :attr:`fpath`."""
        return self.fpath.parent

    @property
    def fs(self) -> fsspec.AbstractFileSystem:
        """An fsspec filesystem for :attr:`protocol` with this manifest's storage options."""
        return fsspec.filesystem(self.protocol, **self.storage_options)

    @property
    def trust_pickle(self) -> bool:
        """Whether loads may run code from the store (``pickle``); settable.

        Raises:
            TypeError: (set) a value that is not a bool.
        """
        return self._trust.allows()

    @trust_pickle.setter
    def trust_pickle(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise TypeError(f"trust_pickle must be True or False, not {value!r}")
        # In place: views and experiments derive from this trust and follow it.
        self._trust.trusted = value
        self._trust.setting = value

    def _check_writable(self, action: str) -> None:
        """Raise ReadOnlyError when opened in mode ``"r"``."""
        if self.mode == "r":
            raise ReadOnlyError(
                f"cannot {action}: {self.kind} {self.url} is open read-only (mode='r'); "
                "open it with mode='a' to add to it"
            )

    @contextlib.contextmanager
    def _saving(self) -> Iterator[Lease]:
        """Hold a write lease with the manifest registered; map failures to SaveError.

        Raises:
            ReadOnlyError: mode ``"r"``.
            SaveError: the lease could not be taken, or the registration failed.
        """
        self._check_writable("save")
        try:
            with self._objects.writing() as lease:
                register_with(self._registry, join_url(self._dir, self._manifest_name), self.kind)
                yield lease
        except SaveError:
            raise
        except ScribeStoreError as exc:  # the write lease could not be taken
            raise SaveError(f"could not save {self.kind} {self.url}: {exc}") from exc

    def _commit(self, change: Callable[[bytes | None], bytes], lease: Lease) -> None:
        """Replace the manifest with ``change(current)`` while ``lease`` holds.

        Raises:
            SaveError: it could not be written; the saved manifest is unchanged.
        """
        commit_manifest(
            self._storage,
            self._manifest_name,
            change,
            lease=lease,
            label=f"{self.kind} {self.url}",
        )

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for live in _LIVE:
            state.pop(live, None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.RLock()
        self._converted = None
        self._connect()
        self._unsaved = watch(self, f"{self.kind} {self.url}")
