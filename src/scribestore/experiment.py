"""Experiments and their tests: metrics, parameters, tags and artifacts.

Experiments are made by :meth:`scribestore.Project.log` and saved by
:meth:`scribestore.Project.save`. Their artifacts live in the project's
content-addressed object store, one version per name.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import getpass
import re
import secrets
import unicodedata
from typing import TYPE_CHECKING, Any

from scribestore.artifacts import get_handler
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
    ReadOnlyError,
    SaveError,
)
from scribestore.manifest.schema import (
    ArtifactRecord,
    ExperimentRecord,
    TestRecord,
    jsonable_params,
    validate_name,
)
from scribestore.manifest.versions import utcnow

if TYPE_CHECKING:
    from collections.abc import Iterator

    from scribestore.repository import Repository
    from scribestore.store.objects import ObjectStore

__all__ = ["Experiment", "Test", "slugify"]

_ONE_MICRO = dt.timedelta(microseconds=1)


def slugify(text: str) -> str:
    """Lowercase ASCII words joined by ``-`` (as lazyscribe makes slugs)."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")


@dataclasses.dataclass
class PendingArtifact:
    """An artifact logged but not yet saved."""

    name: str
    value: Any
    handler: str
    params: dict[str, Any]
    created_at: dt.datetime
    fname: str
    environment: dict[str, str]
    stored: tuple[str, int] | None = None


ArtifactEntry = ArtifactRecord | PendingArtifact


def _artifact_dict(entry: ArtifactEntry) -> dict[str, Any]:
    stored = (entry.hash, entry.size) if isinstance(entry, ArtifactRecord) else entry.stored
    return {
        "name": entry.name,
        "hash": stored[0] if stored else None,
        "size": stored[1] if stored else None,
        "created_at": entry.created_at.isoformat(timespec="microseconds"),
        "handler": entry.handler,
        "fname": entry.fname,
        "params": dict(entry.params),
        "environment": dict(entry.environment),
        "saved": isinstance(entry, ArtifactRecord),
    }


class ArtifactSet:
    """The artifacts of one experiment or test: at most one per name."""

    def __init__(self, owner: str, entries: list[ArtifactEntry] | None = None) -> None:
        self.owner = owner
        self.entries: list[ArtifactEntry] = list(entries or [])

    def log(
        self,
        name: str,
        value: Any,
        handler: str,
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
        value, suffix = prepare_value(name, value, handler)
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
            value=value,
            handler=handler,
            params=dict(params),
            created_at=created_at,
            fname=default_fname(name, created_at, suffix, fname),
            environment=get_handler(handler).environment(),
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
            ArtifactLoadError: there is none.
        """
        index = self._index(name)
        if index is None:
            known = ", ".join(repr(e.name) for e in self.entries) or "none"
            raise ArtifactLoadError(
                f"{self.owner} has no artifact named {name!r} (artifacts: {known})"
            )
        return self.entries[index]

    def load(
        self,
        objects: ObjectStore,
        name: str,
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
        if trust is None:
            trust = PickleTrust.resolve(None, self.owner)
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
            if isinstance(entry, ArtifactRecord):
                if not source.same_location(objects):
                    _copy(source, objects, entry.hash, f"artifact {entry.name!r}")
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
            records.append(_record(entry))
        return records

    def mark_saved(self, records: list[ArtifactRecord]) -> None:
        """Replace pending entries with their saved records."""
        self.entries = list(records)


def _record(entry: PendingArtifact) -> ArtifactRecord:
    assert entry.stored is not None
    return ArtifactRecord(
        name=entry.name,
        hash=entry.stored[0],
        size=entry.stored[1],
        created_at=entry.created_at,
        handler=entry.handler,
        fname=entry.fname,
        params=jsonable_params(entry.params),
        environment=entry.environment,
    )


def _copy(source: ObjectStore, target: ObjectStore, digest: str, label: str) -> int:
    try:
        return source.copy_to(target, digest)
    except Exception as exc:
        raise SaveError(f"could not copy the bytes of {label} into {target.url}: {exc}") from exc


class Test:
    """Metrics, parameters and artifacts for a sub-population of an experiment.

    Made by :meth:`Experiment.log_test`.
    """

    __test__ = False  # not a pytest test class
    # Shared with the owning project (set by it); None: the process default.
    _trust: PickleTrust | None = None

    def __init__(
        self,
        name: str,
        description: str | None,
        objects: ObjectStore,
        *,
        metrics: dict[str, Any] | None = None,
        parameters: dict[str, Any] | None = None,
        artifacts: list[ArtifactEntry] | None = None,
        read_only: bool = False,
    ) -> None:
        self.name = name
        self.description = description
        self.metrics: dict[str, Any] = dict(metrics or {})
        self.parameters: dict[str, Any] = dict(parameters or {})
        self._artifacts = ArtifactSet(f"test {name!r}", artifacts)
        self._objects = objects
        self._read_only = read_only

    def _check_writable(self) -> None:
        if self._read_only:
            raise ReadOnlyError(f"test {self.name!r} is read-only (its project was opened so)")

    def log_metric(self, name: str, value: float | int) -> None:
        """Record metric ``name`` (overwrites)."""
        self._check_writable()
        self.metrics[name] = value

    def log_parameter(self, name: str, value: Any) -> None:
        """Record parameter ``name`` (overwrites)."""
        self._check_writable()
        self.parameters[name] = value

    def log_artifact(
        self,
        name: str,
        value: Any,
        handler: str,
        fname: str | None = None,
        overwrite: bool = False,
        **writer_kwargs: Any,
    ) -> None:
        """Add an artifact, written when the project is saved.

        Raises:
            ArtifactLogError: the name is taken and ``overwrite`` is False.
            ReadOnlyError: the test is read-only.
        """
        self._check_writable()
        self._artifacts.log(name, value, handler, fname, overwrite, writer_kwargs)

    def load_artifact(self, name: str, validate: bool = True, **reader_kwargs: Any) -> Any:
        """Load a saved artifact, verified (see :meth:`Experiment.load_artifact`)."""
        return self._artifacts.load(self._objects, name, validate, reader_kwargs, self._trust)

    @property
    def artifacts(self) -> list[dict[str, Any]]:
        """Metadata of each artifact."""
        return [_artifact_dict(e) for e in self._artifacts.entries]

    def to_dict(self) -> dict[str, Any]:
        """The test as a plain dict."""
        return {
            "name": self.name,
            "description": self.description,
            "metrics": dict(self.metrics),
            "parameters": dict(self.parameters),
            "artifacts": self.artifacts,
        }

    def _to_record(self, objects: ObjectStore) -> TestRecord:
        return TestRecord(
            name=self.name,
            description=self.description,
            metrics=dict(self.metrics),
            parameters=jsonable_params(self.parameters),
            artifacts=self._artifacts.store(objects, self._objects),
        )

    def __repr__(self) -> str:
        return f"<Test {self.name!r}>"


_PUBLIC_FIELDS = frozenset(
    {"name", "author", "last_updated_by", "metrics", "parameters", "tags", "dependencies"}
    | {"created_at", "last_updated", "slug", "short_slug", "tests"}
)


class Experiment:
    """One experiment: made by :meth:`Project.log`, saved by :meth:`Project.save`.

    Attributes:
        name, slug (name plus creation time), short_slug (slugified name),
        author, last_updated_by, created_at, last_updated (UTC datetimes),
        metrics, parameters, tags, dependencies, tests, and ``id``, the random
        identifier concurrent saves merge by.
    """

    # Shared with the owning project (set by it); None: the process default.
    _trust: PickleTrust | None = None

    def __init__(
        self,
        name: str,
        *,
        project: str,
        objects: ObjectStore,
        author: str | None = None,
        created_at: dt.datetime | None = None,
    ) -> None:
        validate_name(name, kind="experiment")
        now = created_at or utcnow()
        self._read_only = False
        self.id = secrets.token_hex(16)
        self.name = name
        self.project = project
        self.author = author if author is not None else getpass.getuser()
        self.last_updated_by = self.author
        self.created_at = now
        self.last_updated = now
        self.short_slug = slugify(name)
        self.slug = slugify(f"{name}-{now:%Y%m%d%H%M%S}")
        self.metrics: dict[str, Any] = {}
        self.parameters: dict[str, Any] = {}
        self.tags: list[str] = []
        self.dependencies: dict[str, str] = {}
        self.tests: list[Test] = []
        self._artifacts = ArtifactSet(f"experiment {self.slug!r}")
        self._objects = objects
        self.dirty = True

    def __setattr__(self, key: str, value: Any) -> None:
        if key in _PUBLIC_FIELDS and getattr(self, "_read_only", False):
            raise ReadOnlyError(
                f"experiment {self.slug!r} is read-only; open its project with mode='w+' to edit it"
            )
        super().__setattr__(key, value)

    def _touch(self) -> None:
        if self._read_only:
            raise ReadOnlyError(
                f"experiment {self.slug!r} is read-only; open its project with mode='w+' to edit it"
            )
        now = utcnow()
        self.last_updated = max(now, self.last_updated + _ONE_MICRO)
        self.dirty = True

    @property
    def read_only(self) -> bool:
        """Whether this experiment can be changed."""
        return self._read_only

    # --- logging ---------------------------------------------------------------------

    def log_metric(self, name: str, value: float | int) -> None:
        """Record metric ``name`` (overwrites)."""
        self._touch()
        self.metrics[name] = value

    def log_parameter(self, name: str, value: Any) -> None:
        """Record parameter ``name`` (overwrites); values JSON cannot hold are saved as repr."""
        self._touch()
        self.parameters[name] = value

    def tag(self, *tags: str, overwrite: bool = False) -> None:
        """Add tags, or with ``overwrite`` replace them (no tags and overwrite: clear)."""
        self._touch()
        if overwrite:
            self.tags = list(tags)
        else:
            self.tags.extend(tags)

    def log_artifact(
        self,
        name: str,
        value: Any,
        handler: str,
        fname: str | None = None,
        overwrite: bool = False,
        **writer_kwargs: Any,
    ) -> None:
        """Add an artifact, written to the object store when the project is saved.

        Raises:
            ArtifactLogError: ``name`` is taken and ``overwrite`` is False.
            InvalidNameError, UnknownHandlerError: bad name or handler.
            ReadOnlyError: the experiment is read-only.
        """
        self._touch()
        self._artifacts.log(name, value, handler, fname, overwrite, writer_kwargs)

    def load_artifact(self, name: str, validate: bool = True, **reader_kwargs: Any) -> Any:
        """Load a saved artifact, verified against its hash.

        Raises:
            ArtifactLoadError: no artifact ``name``, not saved yet, or (with
                ``validate``) written in an incompatible environment.
            UntrustedPickleError: the artifact is a pickle and the project does
                not trust pickles (``Project(..., trust_pickle=False)``).
            IntegrityError: the stored bytes do not match the recorded hash.
        """
        return self._artifacts.load(self._objects, name, validate, reader_kwargs, self._trust)

    @contextlib.contextmanager
    def log_test(self, name: str, description: str | None = None) -> Iterator[Test]:
        """A context manager yielding a :class:`Test`, added when the block exits cleanly."""
        if self._read_only:
            self._touch()  # raises ReadOnlyError
        test = Test(name, description, self._objects)
        test._trust = self._trust
        yield test
        self._touch()
        self.tests.append(test)

    @property
    def artifacts(self) -> list[dict[str, Any]]:
        """Metadata of each artifact (hash and size once saved)."""
        return [_artifact_dict(e) for e in self._artifacts.entries]

    @property
    def has_unsaved(self) -> bool:
        """Whether the experiment or any artifact in it changed since the last save."""
        return self.dirty or self._artifacts.dirty or any(t._artifacts.dirty for t in self.tests)

    # --- promotion -----------------------------------------------------------------

    def promote_artifact(self, repository: Repository, name: str) -> None:
        """Make artifact ``name`` the newest version of ``name`` in ``repository``.

        Unsaved artifact: queued like ``repository.log_artifact``; save the
        repository yourself. Saved artifact: when the repository shares this
        project's object store, one manifest write and no byte copied;
        otherwise the missing bytes are copied (verified) first. Either way the
        repository is saved. The version keeps the artifact's hash, handler
        and creation time.

        Raises:
            ArtifactLoadError: no artifact ``name`` in this experiment.
            ReadOnlyError: the repository is read-only.
            ArtifactLogError: the artifact is not newer than the repository's
                latest version of ``name``.
            SaveError: copying or saving failed; the repository is unchanged.
        """
        entry = self._artifacts.find(name)
        if repository.mode == "r":
            raise ReadOnlyError(
                f"cannot promote {name!r}: repository {repository.fpath} is read-only"
            )
        latest = repository._latest_created_at(name)
        if latest is not None and latest >= entry.created_at:
            raise ArtifactLogError(
                f"artifact {name!r} of experiment {self.slug!r} (created "
                f"{entry.created_at.isoformat()}) is not newer than the latest version in "
                f"repository {repository.fpath} (created {latest.isoformat()})"
            )
        common: dict[str, Any] = {
            "handler": entry.handler,
            "params": dict(entry.params),
            "created_at": entry.created_at,
            "fname": entry.fname,
            "environment": dict(entry.environment),
        }
        if isinstance(entry, PendingArtifact):
            repository._add_version(name, value=entry.value, stored=None, **common)
            return
        if not repository.objects.same_location(self._objects):
            _copy(self._objects, repository.objects, entry.hash, f"artifact {name!r}")
        pending = repository._add_version(
            name, value=None, stored=(entry.hash, entry.size), **common
        )
        try:
            repository.save()
        except BaseException:
            repository._discard(pending)
            raise

    def _set_trust(self, trust: PickleTrust) -> None:
        """Load this experiment's (and its tests') artifacts only while ``trust`` allows.

        Trusts add up: an experiment in several projects loads pickles only
        while every one of them trusts pickles.
        """
        if self._trust is None:
            object.__setattr__(self, "_trust", trust.derive(f"experiment {self.slug!r}"))
        else:
            self._trust.add_parent(trust)
        for test in self.tests:
            test._trust = self._trust

    # --- serialization -------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The experiment as a plain dict (timestamps as ISO strings)."""
        return {
            "id": self.id,
            "name": self.name,
            "slug": self.slug,
            "short_slug": self.short_slug,
            "author": self.author,
            "last_updated_by": self.last_updated_by,
            "created_at": self.created_at.isoformat(timespec="microseconds"),
            "last_updated": self.last_updated.isoformat(timespec="microseconds"),
            "metrics": dict(self.metrics),
            "parameters": dict(self.parameters),
            "tags": list(self.tags),
            "dependencies": dict(self.dependencies),
            "tests": [t.to_dict() for t in self.tests],
            "artifacts": self.artifacts,
        }

    def _to_record(self, objects: ObjectStore) -> ExperimentRecord:
        """Store pending artifact bytes in ``objects`` and return the record to save.

        Raises:
            SaveError: an artifact cannot be serialized or stored.
        """
        return ExperimentRecord(
            id=self.id,
            name=self.name,
            slug=self.slug,
            short_slug=self.short_slug,
            author=self.author,
            last_updated_by=self.last_updated_by,
            created_at=self.created_at,
            last_updated=self.last_updated,
            metrics=dict(self.metrics),
            parameters=jsonable_params(self.parameters),
            tags=list(self.tags),
            dependencies=dict(self.dependencies),
            tests=[t._to_record(objects) for t in self.tests],
            artifacts=self._artifacts.store(objects, self._objects),
        )

    def _mark_saved(self, record: ExperimentRecord, objects: ObjectStore) -> None:
        """After a save: artifacts and tests now refer to saved records in ``objects``."""
        self._artifacts.mark_saved(record.artifacts)
        for test, saved in zip(self.tests, record.tests, strict=True):
            test._artifacts.mark_saved(saved.artifacts)
            test._objects = objects
        self._objects = objects
        self.dirty = False

    @classmethod
    def _from_record(
        cls, record: ExperimentRecord, *, project: str, objects: ObjectStore, read_only: bool
    ) -> Experiment:
        exp = cls.__new__(cls)
        object.__setattr__(exp, "_read_only", False)
        exp.id = record.id
        exp.name = record.name
        exp.project = project
        exp.author = record.author
        exp.last_updated_by = record.last_updated_by
        exp.created_at = record.created_at
        exp.last_updated = record.last_updated
        exp.short_slug = record.short_slug
        exp.slug = record.slug
        exp.metrics = dict(record.metrics)
        exp.parameters = dict(record.parameters)
        exp.tags = list(record.tags)
        exp.dependencies = dict(record.dependencies)
        exp.tests = [
            Test(
                t.name,
                t.description,
                objects,
                metrics=t.metrics,
                parameters=t.parameters,
                artifacts=list(t.artifacts),
                read_only=read_only,
            )
            for t in record.tests
        ]
        exp._artifacts = ArtifactSet(f"experiment {record.slug!r}", list(record.artifacts))
        exp._objects = objects
        exp.dirty = False
        exp._read_only = read_only
        return exp

    def __getstate__(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def __setstate__(self, state: dict[str, Any]) -> None:
        object.__setattr__(self, "__dict__", state)

    def __repr__(self) -> str:
        flag = ", read-only" if self._read_only else ""
        return f"<Experiment {self.slug!r}{flag}>"
