"""Experiments and their tests: metrics, parameters, tags and artifacts.

Experiments are made by :meth:`scribestore.Project.log` and saved by
:meth:`scribestore.Project.save`. Their artifacts live in the project's
content-addressed object store, one version per name.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import secrets
from typing import TYPE_CHECKING, Any

from scribestore.artifacts.naming import slugify
from scribestore.core.artifact_set import ArtifactSet, copy_object
from scribestore.core.pending import PendingArtifact
from scribestore.core.stored import (
    PickleTrust,
)
from scribestore.exception import (
    ArtifactLogError,
    ReadOnlyError,
)
from scribestore.manifest.schema import (
    ArtifactRecord,
    ExperimentRecord,
    jsonable_params,
    validate_name,
)
from scribestore.manifest.versions import utcnow
from scribestore.test import Test

if TYPE_CHECKING:
    from collections.abc import Iterator

    from scribestore.repository import Repository
    from scribestore.store.objects import ObjectStore

__all__ = ["Experiment", "Test", "slugify"]

_ONE_MICRO = dt.timedelta(microseconds=1)


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
    def objects(self) -> ObjectStore:
        """The object store this experiment's saved artifacts are in."""
        return self._objects

    def saved_artifacts(self) -> list[ArtifactRecord]:
        """The artifacts that are saved (each references an object)."""
        return self._artifacts.saved()

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
        self._artifacts.log(
            name, value, handler, fname=fname, overwrite=overwrite, params=writer_kwargs
        )

    def load_artifact(self, name: str, validate: bool = True, **reader_kwargs: Any) -> Any:
        """Load a saved artifact, verified against its hash.

        Raises:
            ArtifactLoadError: no artifact ``name``, not saved yet, or (with
                ``validate``) written in an incompatible environment.
            UntrustedPickleError: the artifact is a pickle and the project does
                not trust pickles (``Project(..., trust_pickle=False)``).
            IntegrityError: the stored bytes do not match the recorded hash.
        """
        return self._artifacts.load(
            self._objects, name, validate=validate, reader_kwargs=reader_kwargs, trust=self._trust
        )

    @contextlib.contextmanager
    def log_test(self, name: str, description: str | None = None) -> Iterator[Test]:
        """A context manager yielding a :class:`Test`, added when the block exits cleanly."""
        if self._read_only:
            self._touch()  # raises ReadOnlyError
        test = Test(name, description, self._objects)
        test.attach(self._objects, self._trust)
        yield test
        self._touch()
        self.tests.append(test)

    @property
    def artifacts(self) -> list[Any]:
        """The artifacts, as their handlers' lazyscribe artifact objects (``name``,
        ``fname``, ``value``, ``created_at``, ``dirty``, handler fields); the hash
        and size are in :meth:`to_dict`."""
        return self._artifacts.objects()

    @property
    def has_unsaved(self) -> bool:
        """Whether the experiment or any artifact in it changed since the last save."""
        return self.dirty or self._artifacts.dirty or any(t.has_unsaved for t in self.tests)

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
        latest = repository.latest_created_at(name)
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
            repository.queue_version(name, value=entry.value, **common)
            return
        if not repository.objects.same_location(self._objects):
            copy_object(self._objects, repository.objects, entry.hash, f"artifact {name!r}")
        pending = repository.queue_version(name, stored=(entry.hash, entry.size), **common)
        try:
            repository.save()
        except BaseException:
            repository.discard_queued(name, pending.version)
            raise

    def use_store(self, objects: ObjectStore) -> None:
        """Read through ``objects`` if it is where this experiment's artifacts are (its project's).

        A project shares its live store with its experiments after unpickling.
        """
        if self._objects.same_location(objects):
            self._objects = objects
            for test in self.tests:
                if test.objects.same_location(objects):
                    test.attach(objects, self._trust)

    def join_trust(self, trust: PickleTrust) -> None:
        """Load this experiment's (and its tests') artifacts only while ``trust`` allows.

        Trusts add up: an experiment in several projects loads pickles only
        while every one of them trusts pickles.
        """
        if self._trust is None:
            object.__setattr__(self, "_trust", trust.derive(f"experiment {self.slug!r}"))
        else:
            self._trust.add_parent(trust)
        for test in self.tests:
            test.attach(test.objects, self._trust)

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
            "artifacts": self._artifacts.metadata(),
        }

    def to_record(self, objects: ObjectStore) -> ExperimentRecord:
        """Store pending artifact bytes in ``objects``; the record its project saves.

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
            tests=[t.to_record(objects) for t in self.tests],
            artifacts=self._artifacts.store(objects, self._objects),
        )

    def mark_saved(self, record: ExperimentRecord, objects: ObjectStore) -> None:
        """After a save: artifacts and tests now refer to saved records in ``objects``."""
        self._artifacts.mark_saved(record.artifacts)
        for test, saved in zip(self.tests, record.tests, strict=True):
            test.mark_saved(saved, objects)
        self._objects = objects
        self.dirty = False

    @classmethod
    def from_record(
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
