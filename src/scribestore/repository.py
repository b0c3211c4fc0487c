"""The versioned artifact Repository, with lazyscribe's API.

A repository is a manifest (``repository.json``) listing, for each artifact
name, its versions in order; each version names the object holding its bytes
in a content-addressed :class:`~scribestore.store.objects.ObjectStore`. Nothing is
written until :meth:`Repository.save`, which stores objects first and then
replaces the manifest atomically, merging versions other writers committed
meanwhile.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

from scribestore.artifacts import get_handler
from scribestore.core.aliases import (
    Aliases,
    AliasInfo,
    alias_selector,
    current_aliases,
    keep_live,
    resolve,
    validate_alias,
    with_alias_moved,
)
from scribestore.core.artifact_objects import ObjectCache, metadata
from scribestore.core.lazyscribe_open import repository_versions
from scribestore.core.manifest_file import ManifestFile
from scribestore.core.pending import PendingArtifact
from scribestore.core.stored import (
    bytes_to_store,
    default_fname,
    is_stored,
    load_stored,
    open_stored,
    prepare_value,
    store_value,
)
from scribestore.core.version_diff import version_diff
from scribestore.core.version_merge import drops_versions, merge_versions
from scribestore.core.version_queue import VersionQueue
from scribestore.exception import (
    ArtifactLoadError,
    ArtifactNotFoundError,
    CorruptManifestError,
    InvalidVersionError,
    SaveError,
    UnsavedError,
)
from scribestore.manifest.schema import (
    AliasMove,
    ArtifactVersion,
    RepositoryManifest,
    decode_repository,
    encode_manifest,
    validate_fname,
    validate_name,
)
from scribestore.manifest.versions import (
    Match,
    VersionSelector,
    check_match,
    parse_expiry,
    select,
    select_as_of,
    to_utc,
)
from scribestore.ops.journal import current_user
from scribestore.ops.verify import Reference, VerifyReport, verify_references
from scribestore.progress import PartOf, Progress, null
from scribestore.store.objects import ObjectReader

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from scribestore.ops.registry import ManifestKind
    from scribestore.store.leases import Lease

__all__ = ["Repository"]

Entry = ArtifactVersion | PendingArtifact


class Repository(ManifestFile):
    """Versioned artifacts in a content-addressed store.

    Args:
        fpath: path or URL of ``repository.json`` (``memory://…``, ``s3://…``).
        mode: ``"r"`` read-only; ``"a"`` and ``"w+"`` load the saved versions and
            allow new ones; ``"w"`` starts empty (its first save replaces the
            versions that were saved when it was opened).
        objects: URL of the object store; default ``objects/`` beside the manifest.
        trust_pickle: whether loads may run code stored in the repository
            (the ``pickle`` handler). ``False`` refuses such loads with
            :class:`UntrustedPickleError`; ``None`` (default) takes the
            environment variable ``SCRIBESTORE_TRUST_PICKLE`` (``0`` refuses),
            and trusts when it is unset, as lazyscribe does. Also an attribute.
        **storage_options: fsspec options for both (e.g. ``endpoint_url``).

    Raises:
        ValueError: an unknown ``mode``.
        TypeError: ``trust_pickle`` is not a bool or None.
        CorruptManifestError, UnsupportedFormatError: the manifest cannot be read.
    """

    kind: ClassVar[ManifestKind] = "repository"

    def __init__(
        self,
        fpath: str | os.PathLike[str] = "repository.json",
        mode: str = "w+",
        *,
        objects: str | os.PathLike[str] | None = None,
        trust_pickle: bool | None = None,
        **storage_options: Any,
    ) -> None:
        self._open_manifest(fpath, mode, objects, trust_pickle, storage_options)
        self._committed: dict[str, list[ArtifactVersion]] = {}
        self._queued = VersionQueue(self.url)
        self._unsaved.versions = self._queued.items
        # (name, created_at, hash) of saved versions whose expiry changed -> expiry.
        self._expiry_updates: dict[tuple[str, dt.datetime, str], dt.datetime | None] = {}
        # Mode "w": the saved versions, at open, that the first save drops,
        # by (name, created_at, hash): versions others commit later are kept.
        self._baseline: set[tuple[str, dt.datetime, str]] = set()
        # Mode "w" until its first save: a damaged manifest is replaced (and journaled).
        self._replacing = mode == "w"
        self._cache = ObjectCache()
        self._aliases: Aliases = {}
        if mode == "w":
            self._baseline = {
                (name, v.created_at, v.hash)
                for name, vs in self._read_saved(tolerant=True).artifacts.items()
                for v in vs
            }
        else:
            self._set_saved(self._read_saved(tolerant=False))

    def load(self) -> None:
        """Read the saved versions again (lazyscribe's ``load``): versions other
        writers saved since are then visible. Queued versions stay queued,
        numbered after the saved ones.

        Raises:
            ManifestNotFoundError: mode ``"r"`` and the manifest is gone.
            CorruptManifestError, UnsupportedFormatError: it cannot be read.
        """
        with self._lock:
            self._set_saved(self._read_saved(tolerant=False))
            self._prune_objects()
            for name in self._queued.names():
                self._queued.renumber(name, self._saved_count(name))

    def saved_versions(self) -> dict[str, tuple[ArtifactVersion, ...]]:
        """The saved versions of each artifact, as last read or saved (a copy)."""
        with self._lock:
            return {name: tuple(vs) for name, vs in self._committed.items()}

    def _prune_objects(self) -> None:
        if len(self._cache):  # most repositories never make an object
            self._cache.prune({(name, e.created_at) for name, e in self._entries()})

    def _read_saved(self, *, tolerant: bool) -> RepositoryManifest:
        manifest = self._read_manifest(self._decode, tolerant=tolerant)
        return RepositoryManifest() if manifest is None else manifest

    def _set_saved(self, manifest: RepositoryManifest) -> None:
        self._committed = dict(manifest.artifacts)
        self._aliases = dict(manifest.aliases)

    def _decode(self, data: bytes, *, fresh: bool = False) -> RepositoryManifest:
        """A saved manifest: scribestore's, or lazyscribe's opened in place (in
        mode ``"w"``, which starts empty, lazyscribe's versions are not read)."""
        return self._decoded(
            data,
            lambda raw: decode_repository(raw, where=self.url),
            lambda raw: RepositoryManifest(
                artifacts={}
                if self.mode == "w"
                else repository_versions(
                    raw, url=self.url, objects=self._objects, options=self.storage_options
                )
            ),
            fresh=fresh,
        )

    def __repr__(self) -> str:
        return f"Repository({self.url!r}, mode={self.mode!r})"

    # --- logging -----------------------------------------------------------------

    def log_artifact(
        self,
        name: str,
        value: Any,
        handler: str,
        fname: str | None = None,
        *,
        skip_unchanged: bool = False,
        **writer_kwargs: Any,
    ) -> None:
        """Add a new version of artifact ``name``; it is written by :meth:`save`.

        With ``skip_unchanged``, :meth:`save` adds the version only if its
        bytes or handler differ from the newest saved version of ``name``
        (as saved when the save commits, other writers' versions included).

        Raises:
            ReadOnlyError: the repository is open in mode ``"r"``.
            InvalidNameError: ``name`` is empty or could escape the store, or
                ``fname`` is not a plain file name.
            UnknownHandlerError: no handler is registered as ``handler``.
            ArtifactLogError: the ``file`` handler was not given an existing file.
        """
        self._check_writable("log an artifact")
        prepared = prepare_value(name, value, handler, writer_kwargs)
        with self._lock:
            saved = self._committed.get(name)
            created_at = self._queued.next_created_at(name, saved[-1] if saved else None)
            self._queued.add(
                PendingArtifact(
                    name=name,
                    value=prepared.value,
                    handler=handler,
                    params=dict(writer_kwargs),
                    created_at=created_at,
                    fname=default_fname(name, created_at, prepared, fname),
                    environment=prepared.environment,
                    skip_unchanged=skip_unchanged,
                ),
                len(saved or ()),
            )

    # --- queuing versions with a given origin -------------------------------------

    def latest_created_at(self, name: str) -> dt.datetime | None:
        """Creation time of the newest version of ``name``, saved or queued (None: no version)."""
        versions = self._versions(name)
        return max(v.created_at for v in versions) if versions else None

    def queue_version(
        self,
        name: str,
        *,
        handler: str,
        created_at: dt.datetime,
        fname: str,
        value: Any = None,
        stored: tuple[str, int] | None = None,
        params: Mapping[str, Any] | None = None,
        environment: Mapping[str, str] | None = None,
        expiry: dt.datetime | None = None,
    ) -> PendingArtifact:
        """Queue a version of ``name`` that keeps its origin's creation time and expiry.

        What promotion and migration use: the version is numbered after the
        saved and queued versions of ``name`` and written by :meth:`save`.
        ``stored`` is the ``(hash, size)`` of bytes already in this
        repository's object store (``value`` is then not serialized; save
        checks the bytes are still there); otherwise ``value`` is serialized
        by ``handler`` with ``params`` at save time, and checked now as
        ``log_artifact`` checks it. ``environment`` is what the handler
        recorded where the bytes were written. The creation time is kept as
        given, even if it is older than the newest version (lazyscribe
        stores from several machines can hold such versions): callers that
        need order, like promotion, check it themselves.

        Returns:
            The queued version; ``discard_queued(name, version)`` removes it again.

        Raises:
            ReadOnlyError: the repository was opened read-only.
            InvalidNameError: ``name`` or ``fname`` is not allowed.
            UnknownHandlerError: no handler is registered as ``handler``.
            ArtifactLogError: (no ``stored``) the handler refuses ``value``, or
                a path handler was not given an existing file.
        """
        self._check_writable("add a version")
        validate_fname(fname)
        if stored is None:
            value = prepare_value(name, value, handler, params or {}).value
        else:
            validate_name(name)
            get_handler(handler)
        pending = PendingArtifact(
            name=name,
            value=value,
            handler=handler,
            params=dict(params or {}),
            created_at=to_utc(created_at),
            fname=fname,
            environment=dict(environment or {}),
            expiry=None if expiry is None else to_utc(expiry),
            stored=stored,
            copied=stored is not None,
        )
        with self._lock:
            return self._queued.add(pending, self._saved_count(name))

    def discard_queued(self, name: str, version: int | None = None) -> int:
        """Drop queued (not yet saved) versions of ``name``: ``version``, or all of them.

        The versions of ``name`` queued after a dropped one move down, so the
        numbers stay dense. Saved versions are never touched.

        Returns:
            How many versions were dropped.

        Raises:
            VersionNotFoundError: ``version`` is given and is not a queued
                version of ``name`` (saved already, or never queued).
        """
        with self._lock:
            return self._queued.discard(name, version, self._saved_count(name))

    # --- saving ------------------------------------------------------------------

    def save(self, *, progress: Progress = null) -> None:
        """Write new versions: objects first, then the manifest, atomically.

        Versions that other writers saved since this repository was opened are
        kept; this repository's new versions are numbered after them.
        ``progress`` is started with the bytes of the queued files (None when
        a queued value's size is only known once serialized) and advanced as
        the bytes are stored.

        Raises:
            ReadOnlyError: the repository is open in mode ``"r"``.
            SaveError: a value could not be serialized or stored, or the manifest
                could not be written. The saved manifest is unchanged and every
                unsaved version stays pending, so a retry saves them all.
        """
        self._check_writable("save")
        with self._lock:
            self._save_locked(progress)

    def _save_locked(self, progress: Progress) -> None:
        progress.start(bytes_to_store(self._queued), f"saving {self._manifest_name}")
        try:
            with self._saving() as lease:
                merged = self._save_under(lease, PartOf(progress))
        finally:
            progress.close()
        for pending in self._queued:  # their objects keep the logged values
            # After the commit: a handler that cannot describe the value must
            # not fail a save that is done; its object is made later.
            with contextlib.suppress(Exception):
                self._cache.get(pending.name, pending)
        self._set_saved(merged)
        self._prune_objects()
        self._queued.clear()
        self._expiry_updates = {}
        self._baseline = set()
        self._replacing = False

    def _save_under(self, lease: Lease, progress: Progress) -> RepositoryManifest:
        """Store pending values and commit the manifest while ``lease`` is held."""
        for pending in self._queued:
            label = f"version {pending.version} of artifact {pending.name!r}"
            if pending.stored is not None and not is_stored(
                self._objects, pending.stored[0], label
            ):
                if pending.value is None:
                    raise SaveError(
                        f"the bytes of {label} (object {pending.stored[0]}) are no longer "
                        f"in {self._objects.url}: garbage collection removed them before "
                        "they were committed; promote the artifact again"
                    )
                pending.stored = None
            if pending.stored is None:
                pending.stored = self._store(pending, progress)
        merged: list[RepositoryManifest] = []

        def change(current: bytes | None) -> bytes:
            self._keep_lazyscribe_original(current)
            on_disk = self._on_disk(current)
            merged[:] = [self._merge(on_disk)]
            if on_disk is None or drops_versions(on_disk.artifacts, merged[0].artifacts):
                self._keep_replaced(current, f"save in mode {self.mode!r}")
            return encode_manifest(merged[0])

        self._commit(change, lease)
        return merged[0]

    def _store(self, pending: PendingArtifact, progress: Progress) -> tuple[str, int]:
        """Serialize ``pending`` into the object store; return (hash, size)."""
        try:
            return store_value(
                self._objects, pending.handler, pending.value, pending.params, progress=progress
            )
        except Exception as exc:
            raise SaveError(
                f"could not save version {pending.version} of artifact {pending.name!r} "
                f"with handler {pending.handler!r}: {exc}. Nothing was saved; fix the "
                "value and call save() again"
            ) from exc

    def _on_disk(self, current: bytes | None) -> RepositoryManifest | None:
        """The saved manifest ``current`` decoded afresh; None when it is corrupt
        and this is a mode ``"w"`` save, which replaces it."""
        if current is None:
            return RepositoryManifest()
        try:
            return self._decode(current, fresh=True)
        except CorruptManifestError:
            if self._replacing:
                return None
            raise

    def _merge(self, on_disk: RepositoryManifest | None) -> RepositoryManifest:
        """The manifest to write: what is saved now, plus this repository's changes."""
        on_disk = on_disk or RepositoryManifest()
        artifacts, _ = merge_versions(
            dict(on_disk.artifacts),
            dropped=self._baseline,
            expiries=self._expiry_updates,
            pending=self._queued.items,
            environment_of=lambda p: self._cache.environment(p.name, p),
        )
        aliases = keep_live(on_disk.aliases, artifacts)
        return RepositoryManifest(artifacts=artifacts, aliases=aliases)

    # --- finding versions --------------------------------------------------------

    def _saved_count(self, name: str) -> int:
        return len(self._committed.get(name, ()))

    def _versions(self, name: str) -> list[Entry]:
        saved: list[Entry] = list(self._committed.get(name, ()))
        saved.extend(self._queued.of(name))
        return saved

    def _find(self, name: str, version: VersionSelector, match: str) -> Entry:
        check_match(match)
        versions = self._versions(name)
        if not versions:
            raise ArtifactNotFoundError(self._no_artifact(name))
        alias = alias_selector(version)
        if alias is None:
            return select(name, versions, version, match)
        if match != "exact":
            raise InvalidVersionError(f"an alias ({version!r}) selects exactly; use match='exact'")
        return resolve(self._aliases, name, alias, self._committed.get(name, ()), self.url)

    def _no_artifact(self, name: object) -> str:
        known = sorted({*self._committed, *self._queued.names()})
        listing = ", ".join(repr(n) for n in known[:20]) if known else "none"
        more = f" and {len(known) - 20} more" if len(known) > 20 else ""
        return f"no artifact named {name!r} in repository {self.url} (artifacts: {listing}{more})"

    def _saved(self, entry: Entry, action: str) -> ArtifactVersion:
        if isinstance(entry, PendingArtifact):
            raise ArtifactLoadError(
                f"cannot {action} version {entry.version} of artifact {entry.name!r}: it "
                "has not been saved yet; call save() first"
            )
        return entry

    # --- aliases -------------------------------------------------------------------

    def set_alias(
        self, name: str, alias: str, version: VersionSelector = None, match: Match = "exact"
    ) -> AliasInfo:
        """Point ``alias`` of artifact ``name`` at a saved version (default: the newest),
        moving it if it points elsewhere; written at once, recorded with who and when.

        ``version="@alias"`` then selects that version wherever a version is taken.

        Raises:
            ReadOnlyError: mode ``"r"``.
            InvalidVersionError: ``alias`` is not an alias name (see :func:`validate_alias`).
            ArtifactNotFoundError, VersionNotFoundError: no such version.
            ArtifactLoadError: the version is not saved yet.
            SaveError: the manifest could not be written; nothing changed.
        """
        self._check_writable("set an alias")
        validate_alias(alias)
        with self._lock:
            target = self._saved(self._find(name, version, match), "alias")
            self._move_alias(name, alias, target)
        return next(a for a in current_aliases(self._aliases, name) if a.alias == alias)

    def remove_alias(self, name: str, alias: str) -> None:
        """Remove ``alias`` of artifact ``name`` (its history is kept); written at once.

        Raises:
            ReadOnlyError: mode ``"r"``.
            VersionNotFoundError: ``name`` has no such alias.
            SaveError: the manifest could not be written, or another writer
                removed the alias first; nothing changed.
        """
        self._check_writable("remove an alias")
        validate_alias(alias)
        with self._lock:
            resolve(self._aliases, name, alias, self._committed.get(name, ()), self.url)
            self._move_alias(name, alias, None)

    def _move_alias(self, name: str, alias: str, target: ArtifactVersion | None) -> None:
        by = current_user()
        written: list[Aliases] = []

        def change(current: bytes | None) -> bytes:
            self._keep_lazyscribe_original(current)
            manifest = with_alias_moved(
                self._on_disk(current) or RepositoryManifest(), name, alias, target, by
            )
            written[:] = [manifest.aliases]
            return encode_manifest(manifest)

        with self._saving() as lease:
            self._commit(change, lease)
        self._aliases = written[0]

    def aliases(self, name: str | None = None) -> list[AliasInfo]:
        """The aliases that point at a version (of ``name``, or of every artifact), as
        last read or written, sorted by artifact and alias."""
        with self._lock:
            return current_aliases(self._aliases, name)

    def alias_history(self, name: str, alias: str) -> list[AliasMove]:
        """Every move of ``alias`` of ``name``, oldest first (empty: never set).

        Raises:
            InvalidVersionError: ``alias`` is not an alias name.
        """
        validate_alias(alias)
        with self._lock:
            return list(self._aliases.get(name, {}).get(alias, ()))

    # --- loading -----------------------------------------------------------------

    def load_artifact(
        self,
        name: str,
        validate: bool = True,
        version: VersionSelector = None,
        match: Match = "exact",
        **reader_kwargs: Any,
    ) -> Any:
        """Load one version of an artifact, verified against its hash.

        Args:
            name: the artifact name.
            validate: check that this environment can read what the handler
                recorded (e.g. the Python version for ``pickle``).
            version: ``None`` for the newest unexpired version, an ``int``
                (0-indexed), a ``datetime``, an ISO timestamp string, or
                ``"@alias"`` (see :meth:`set_alias`).
            match: ``"exact"`` or ``"asof"`` (newest version at that time).
            **reader_kwargs: passed to the handler's reader.

        Raises:
            ArtifactNotFoundError: no artifact ``name``.
            VersionNotFoundError: no version matches.
            InvalidVersionError: a malformed version.
            ValueError: a bad ``match``, or ``asof`` with an int.
            ArtifactLoadError: the version is not saved yet, or ``validate`` found
                an environment mismatch.
            UntrustedPickleError: the version is a pickle and the repository
                does not trust pickles (see ``trust_pickle``); nothing is read.
            IntegrityError: the stored bytes do not match the recorded hash.
        """
        entry = self._saved(self._find(name, version, match), "load")
        environment = self._cache.environment(name, entry)
        if environment != entry.environment:
            entry = msgspec.structs.replace(entry, environment=environment)
        return load_stored(
            self._objects,
            name,
            entry,
            validate=validate,
            version=entry.version,
            reader_kwargs=reader_kwargs,
            trust=self._trust,
        )

    def open_artifact(
        self, name: str, version: VersionSelector = None, match: Match = "exact"
    ) -> ObjectReader:
        """A binary stream of the stored bytes of a version, verified as it is read.

        Raises:
            As :meth:`load_artifact`; :class:`IntegrityError` is raised by
            ``read`` in place of the clean end of a damaged stream.
        """
        entry = self._saved(self._find(name, version, match), "open")
        return open_stored(self._objects, name, entry, entry.version)

    def _search_artifact_versions(
        self, name: str, version: VersionSelector = None, match: Match = "exact"
    ) -> Any:
        """lazyscribe's lookup (its tests and plugins call it): the artifact
        object of the version selected as :meth:`load_artifact` selects it."""
        return self._cache.get(name, self._find(name, version, match))

    def get_artifact_metadata(
        self, name: str, version: VersionSelector = None, match: Match = "exact"
    ) -> dict[str, Any]:
        """Metadata of one version: name, version, hash, size, created_at, expiry,
        handler, fname, params, environment and saved.

        Raises:
            As :meth:`load_artifact`, without the loading errors.
        """
        entry = self._find(name, version, match)
        return metadata(entry, self._cache.get(name, entry))

    def set_artifact_expiry(
        self,
        name: str,
        version: VersionSelector = None,
        match: Match = "exact",
        expiry: dt.datetime | str | None = None,
    ) -> None:
        """Set when a version expires (``None``: now). Saved by :meth:`save`.

        Expired versions are skipped by ``version=None`` and ``match="asof"``
        loads; exact loads still find them.

        Raises:
            ReadOnlyError: mode ``"r"``.
            InvalidVersionError: ``expiry`` is not a datetime or timestamp string.
        """
        self._check_writable("set an expiry")
        with self._lock:
            self._set_expiry(name, version, match, expiry)

    def _set_expiry(
        self, name: str, version: VersionSelector, match: Match, expiry: dt.datetime | str | None
    ) -> None:
        entry = self._find(name, version, match)
        when = parse_expiry(expiry)
        if isinstance(entry, PendingArtifact):
            entry.expiry = when
            return
        versions = self._committed[name]
        versions[entry.version] = msgspec.structs.replace(entry, expiry=when)
        self._expiry_updates[(name, entry.created_at, entry.hash)] = when

    def get_version_diff(
        self,
        name: str,
        version: VersionSelector | tuple[VersionSelector, VersionSelector],
        match: Match = "exact",
    ) -> str:
        """Unified diff between two versions of a text artifact.

        ``version`` is a pair of versions, or one version compared with the newest.
        The diff is lazyscribe's: the lines of :func:`difflib.unified_diff` of
        the two texts' lines, joined by newlines; comparing a version with
        itself logs a warning.

        Raises:
            ArtifactLoadError: a version is not saved yet.
            BinaryArtifactError: the artifact uses a binary handler (a ValueError).
            IntegrityError: stored bytes do not match their hash.
        """
        if isinstance(version, tuple):
            if len(version) != 2:
                raise InvalidVersionError(f"give two versions to compare, not {version!r}")
            found = sorted(
                (self._find(name, v, match) for v in version), key=lambda e: e.created_at
            )
        else:
            found = [self._find(name, version, match), self._find(name, None, "exact")]
        old, new = (self._saved(entry, "diff") for entry in found)
        return version_diff(self._objects, name, old, new)

    def filter(
        self, version: dt.datetime | str | Sequence[tuple[str, VersionSelector]]
    ) -> Repository:
        """A read-only repository with one version per artifact.

        ``version`` is a time (each artifact's newest unexpired version as of
        then; artifacts with none are left out) or a list of ``(name, version)``
        pairs selected exactly.

        Raises:
            UnsavedError: this repository has unsaved versions (an ArtifactLoadError
                and a RuntimeError, as lazyscribe raises).
            ArtifactNotFoundError, VersionNotFoundError: a listed pair matches nothing.
        """
        if self._queued:
            raise UnsavedError(
                f"repository {self.url} has unsaved versions; call save() before filter()"
            )
        chosen: dict[str, list[ArtifactVersion]] = {}
        if isinstance(version, (dt.datetime, str)):
            chosen = {name: [v] for name, v in select_as_of(self._committed, version).items()}
        else:
            for name, selector in version:
                entry = self._saved(self._find(name, selector, "exact"), "filter")
                chosen[name] = [entry]
        view = Repository.__new__(Repository)
        view.__dict__.update(self.__dict__)
        view.mode = "r"
        view._committed = chosen
        view._queued = VersionQueue(self.url)
        view._expiry_updates = {}
        view._baseline = set()
        view._replacing = False
        view._trust = self._trust.derive(f"a filtered view of repository {self.url}")
        return view

    # --- checking ------------------------------------------------------------------

    def verify(self, *, progress: Progress = null) -> VerifyReport:
        """Re-hash the object of every saved version this repository knows.

        Checks the versions read when the repository was opened or merged at
        its last save (unsaved versions reference nothing yet; reopen to
        check versions other writers saved since). Each distinct object is
        read once, to its verified end, however many versions share it;
        ``progress`` is advanced by the bytes read.

        Returns:
            A :class:`VerifyReport` with one :class:`Problem` per version whose
            object is missing, damaged or of a wrong size. Data problems are
            reported, never raised.

        Raises:
            StorageError: the storage backend itself failed.
        """
        references = [
            Reference(self._objects, entry.hash, entry.size, artifact=name, version=entry.version)
            for name, versions in self._committed.items()
            for entry in versions
        ]
        return verify_references(references, progress=progress)

    # --- container protocol --------------------------------------------------------

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and bool(self._versions(name))

    def __getitem__(self, name: str) -> Any:
        """The artifact object of the first version of ``name``, as lazyscribe
        gives it (see :attr:`artifacts`; the newest: :meth:`get_artifact_metadata`).

        Raises:
            ArtifactNotFoundError: no artifact ``name`` (a KeyError).
        """
        versions = self._versions(name) if isinstance(name, str) else []
        if not versions:
            raise ArtifactNotFoundError(self._no_artifact(name))
        return self._cache.get(name, versions[0])

    def _entries(self) -> Iterator[tuple[str, Entry]]:
        names = list(self._committed)
        names.extend(n for n in self._queued.names() if n not in self._committed)
        for name in dict.fromkeys(names):
            for entry in self._versions(name):
                yield name, entry

    @property
    def artifacts(self) -> list[Any]:
        """Every version, saved then unsaved by name, as its handler's lazyscribe
        artifact object (``name``, ``fname``, ``value``, ``version``,
        ``created_at``, ``expiry``, ``dirty``, handler fields). The objects
        are made once: what is changed on them is what loads check. Hash and
        size: :meth:`get_artifact_metadata`."""
        return [self._cache.get(name, e) for name, e in self._entries()]

    def __iter__(self) -> Iterator[dict[str, Any]]:
        """One metadata dict per version (as :meth:`get_artifact_metadata`), in
        the order of :attr:`artifacts`."""
        for name, entry in self._entries():
            yield metadata(entry, self._cache.get(name, entry))

    def __getstate__(self) -> dict[str, Any]:
        state = super().__getstate__()
        del state["_cache"]
        state["_committed"] = {
            name: msgspec.json.encode(versions) for name, versions in self._committed.items()
        }
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        committed = state.pop("_committed")
        super().__setstate__(state)
        self._cache = ObjectCache()
        self._unsaved.versions = self._queued.items
        self._committed = {
            name: msgspec.json.decode(raw, type=list[ArtifactVersion])
            for name, raw in committed.items()
        }
