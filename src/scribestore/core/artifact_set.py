"""The artifacts of one experiment or test: at most one per name, saved or pending."""

from __future__ import annotations

import contextlib
import datetime as dt
from typing import TYPE_CHECKING, Any

import msgspec

from scribestore.core.artifact_objects import ObjectCache, metadata
from scribestore.core.pending import PendingArtifact
from scribestore.core.stored import (
    PickleTrust,
    default_fname,
    is_stored,
    load_stored,
    prepare_value,
    store_value,
)
from scribestore.exception import (
    ArtifactLoadError,
    ArtifactLogError,
    ArtifactNotFoundError,
    SaveError,
)
from scribestore.manifest.schema import ArtifactRecord, jsonable_params
from scribestore.manifest.versions import utcnow
from scribestore.ops.transfer import transfer

if TYPE_CHECKING:
    from scribestore.store.objects import ObjectStore

__all__ = ["ArtifactEntry", "ArtifactSet", "copy_object"]

_ONE_MICRO = dt.timedelta(microseconds=1)

ArtifactEntry = ArtifactRecord | PendingArtifact


class ArtifactSet:
    """The artifacts of one experiment or test: at most one per name."""

    def __init__(self, owner: str, entries: list[ArtifactEntry] | None = None) -> None:
        self.owner = owner
        self.entries: list[ArtifactEntry] = list(entries or [])
        self.cache = ObjectCache()

    def __getstate__(self) -> dict[str, Any]:
        # Objects are remade on need; pickling them would write their values again.
        return {"owner": self.owner, "entries": self.entries}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.owner = state["owner"]
        self.entries = state["entries"]
        self.cache = ObjectCache()

    def objects(self) -> list[Any]:
        """The artifact objects, in order (lazyscribe's ``artifacts`` list)."""
        return [self.cache.get(e.name, e) for e in self.entries]

    def metadata(self) -> list[dict[str, Any]]:
        """The metadata of each artifact (:func:`.artifact_objects.metadata`)."""
        return [metadata(e, self.cache.get(e.name, e)) for e in self.entries]

    def log(
        self,
        name: str,
        value: Any,
        handler: str,
        *,
        fname: str | None,
        overwrite: bool,
        params: dict[str, Any],
    ) -> dt.datetime:
        """Add (or with ``overwrite``, replace) artifact ``name``; return its time.

        Raises:
            ArtifactLogError: ``name`` exists and ``overwrite`` is False, or a
                file artifact's path is not a file.
            InvalidNameError, UnknownHandlerError: bad name or handler.
        """
        prepared = prepare_value(name, value, handler, params)
        index = self._index(name)
        if index is not None and not overwrite:
            raise ArtifactLogError(
                f"{self.owner} already has an artifact named {name!r}; use another name "
                "or pass overwrite=True to replace it"
            )
        created_at = utcnow()
        if index is not None and created_at <= self.entries[index].created_at:
            created_at = self.entries[index].created_at + _ONE_MICRO
        entry = PendingArtifact(
            name=name,
            value=prepared.value,
            handler=handler,
            params=dict(params),
            created_at=created_at,
            fname=default_fname(name, created_at, prepared, fname),
            environment=prepared.environment,
        )
        if index is None:
            self.entries.append(entry)
        else:
            self.entries[index] = entry
        return created_at

    def _index(self, name: str) -> int | None:
        for i, entry in enumerate(self.entries):
            if entry.name == name:
                return i
        return None

    def find(self, name: str) -> ArtifactEntry:
        """The artifact ``name``.

        Raises:
            ArtifactNotFoundError: there is none (an ArtifactLoadError too).
        """
        index = self._index(name)
        if index is None:
            known = ", ".join(repr(e.name) for e in self.entries) or "none"
            raise ArtifactNotFoundError(
                f"{self.owner} has no artifact named {name!r} (artifacts: {known})"
            )
        return self.entries[index]

    def load(
        self,
        objects: ObjectStore | None,
        name: str,
        *,
        validate: bool,
        reader_kwargs: dict[str, Any],
        trust: PickleTrust | None,
    ) -> Any:
        """Load artifact ``name``, verified.

        ``trust`` None takes the process default (``SCRIBESTORE_TRUST_PICKLE``).

        Raises:
            ArtifactLoadError: no such artifact, not saved yet, or an
                environment mismatch with ``validate``.
            UntrustedPickleError: a pickle, and pickles are not trusted.
            IntegrityError: the stored bytes do not match the hash.
        """
        entry = self.find(name)
        if isinstance(entry, PendingArtifact):
            raise ArtifactLoadError(
                f"artifact {name!r} of {self.owner} has not been saved yet; save the project first"
            )
        if objects is None:  # saved entries come with their store; a guard for the types
            raise ArtifactLoadError(f"artifact {name!r} of {self.owner} has no object store")
        if trust is None:
            trust = PickleTrust.resolve(None, self.owner)
        environment = self.cache.environment(entry.name, entry)
        if environment != entry.environment:
            entry = msgspec.structs.replace(entry, environment=environment)
        return load_stored(
            objects,
            name,
            entry,
            validate=validate,
            reader_kwargs=reader_kwargs,
            trust=trust,
            label=f"artifact {name!r} of {self.owner}",
        )

    def saved(self) -> list[ArtifactRecord]:
        """The saved artifacts (those that reference an object)."""
        return [e for e in self.entries if isinstance(e, ArtifactRecord)]

    @property
    def dirty(self) -> bool:
        """Whether any artifact is unsaved."""
        return any(isinstance(e, PendingArtifact) for e in self.entries)

    def store(self, objects: ObjectStore, source: ObjectStore) -> list[ArtifactRecord]:
        """Put every artifact's bytes into ``objects``; return the records to save.

        Saved artifacts whose bytes live in another store ``source`` are copied
        (only what ``objects`` lacks, verified). Pending ones keep their stored
        hash, so a retried save does not serialize them again.

        Raises:
            SaveError: a value cannot be serialized or stored.
        """
        records = []
        for entry in self.entries:
            environment = self.cache.environment(entry.name, entry)
            if isinstance(entry, ArtifactRecord):
                if not source.same_location(objects):
                    copy_object(source, objects, entry.hash, f"artifact {entry.name!r}")
                if environment != entry.environment:
                    entry = msgspec.structs.replace(entry, environment=environment)
                records.append(entry)
                continue
            label = f"artifact {entry.name!r} of {self.owner}"
            if entry.stored is not None and not is_stored(objects, entry.stored[0], label):
                entry.stored = None
            if entry.stored is None:
                try:
                    entry.stored = store_value(objects, entry.handler, entry.value, entry.params)
                except Exception as exc:
                    raise SaveError(
                        f"could not save artifact {entry.name!r} of {self.owner} with handler "
                        f"{entry.handler!r}: {exc}. Nothing was saved; fix the value and save again"
                    ) from exc
            records.append(_record(entry, environment))
        return records

    def mark_saved(self, records: list[ArtifactRecord]) -> None:
        """Replace the entries with their saved records; the artifact objects
        (made now for entries that had none) keep the values they were logged
        with, as lazyscribe's do."""
        for entry in self.entries:
            if isinstance(entry, PendingArtifact):
                # After the commit: a handler that cannot describe the value
                # must not fail a save that is done; its object is made later.
                with contextlib.suppress(Exception):
                    self.cache.get(entry.name, entry)
        self.entries = list(records)
        self.cache.prune({(e.name, e.created_at) for e in self.entries})


def _record(entry: PendingArtifact, environment: dict[str, str]) -> ArtifactRecord:
    assert entry.stored is not None
    return ArtifactRecord(
        name=entry.name,
        hash=entry.stored[0],
        size=entry.stored[1],
        created_at=entry.created_at,
        handler=entry.handler,
        fname=entry.fname,
        params=jsonable_params(entry.params),
        environment=environment,
    )


def copy_object(source: ObjectStore, target: ObjectStore, digest: str, label: str) -> int:
    """Copy ``digest`` from ``source`` into ``target`` unless it is there; bytes copied.

    Raises:
        SaveError: it could not be copied; ``label`` names what it holds.
    """
    try:
        return transfer(source, target, [digest]).bytes_copied
    except Exception as exc:
        raise SaveError(f"could not copy the bytes of {label} into {target.url}: {exc}") from exc
