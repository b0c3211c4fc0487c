"""Experiments and their tests: metrics, parameters, tags and artifacts.

Experiments are made by :meth:`scribestore.Project.log` and saved by
:meth:`scribestore.Project.save`. Their artifacts live in the project's
content-addressed object store, one version per name.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import os
import secrets
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fsspec

from scribestore.artifacts.naming import slugify
from scribestore.core.artifact_set import ArtifactSet, copy_object
from scribestore.core.pending import PendingArtifact
from scribestore.core.stored import (
    PickleTrust,
)
from scribestore.exception import (
    ArtifactLogError,
    FrozenError,
    ReadOnlyError,
    ScribeStoreError,
)
from scribestore.manifest.schema import (
    ArtifactRecord,
    ExperimentRecord,
    checked_parameter,
    jsonable_metric,
    jsonable_params,
    validate_name,
)
from scribestore.manifest.versions import to_utc, utcnow
from scribestore.registry import registry
from scribestore.storage import split_url
from scribestore.test import ReadOnlyTest, Test

if TYPE_CHECKING:
    from collections.abc import Iterator

    from scribestore.repository import Repository
    from scribestore.store.objects import ObjectStore

__all__ = ["Experiment", "ReadOnlyExperiment", "ReadOnlyTest", "Test", "slugify"]

_ONE_MICRO = dt.timedelta(microseconds=1)


_PUBLIC_FIELDS = frozenset(
    {"name", "author", "last_updated_by", "metrics", "parameters", "tags", "dependencies"}
    | {"created_at", "last_updated", "slug", "short_slug", "tests", "project", "dir"}
)
#: Timestamps: stored as aware UTC; naive values are taken to be UTC (lazyscribe's).
_TIMES = frozenset({"created_at", "last_updated"})


class Experiment:
    """One experiment: made by :meth:`Project.log`, saved by :meth:`Project.save`.

    Can also be made directly, as in lazyscribe (``Experiment(name,
    project=Path("project.json"))``), and joined to a project with
    :meth:`Project.append`; its artifacts are stored when that project saves.

    Attributes:
        name, slug (name plus creation time), short_slug (slugified name),
        author, last_updated_by, created_at, last_updated (UTC datetimes;
        naive ones assigned are taken as UTC), metrics, parameters, tags,
        dependencies, tests, artifacts, dirty, ``project`` (the project
        manifest), ``dir``/``path``/``fs`` (lazyscribe's directory, the
        experiment's folder under it, and its filesystem), and ``id``, the
        random identifier concurrent saves merge by.

    Experiments compare equal, as in lazyscribe, when their name, authors,
    metrics, parameters, times, slugs, tests, artifacts and tags are equal;
    they order by creation time (by last update for one slug).
    """

    # Shared with the owning project (set by it); None: the process default.
    _trust: PickleTrust | None = None

    def __init__(
        self,
        name: str,
        project: str | os.PathLike[str] = "project.json",
        dir: str | os.PathLike[str] | None = None,
        fs: Any = None,
        author: str | None = None,
        last_updated_by: str | None = None,
        metrics: dict[str, Any] | None = None,
        parameters: dict[str, Any] | None = None,
        created_at: dt.datetime | None = None,
        last_updated: dt.datetime | None = None,
        dependencies: dict[str, Experiment] | None = None,
        short_slug: str | None = None,
        slug: str | None = None,
        tests: list[Test] | None = None,
        tags: list[str] | None = None,
        *,
        objects: ObjectStore | None = None,
    ) -> None:
        validate_name(name, kind="experiment")
        now = to_utc(created_at) if created_at is not None else utcnow()
        self._read_only = False
        self.id = secrets.token_hex(16)
        self.name = name
        self.project = _as_path(project)
        self.dir = _as_path(dir) if dir is not None else _parent(self.project)
        self._fs = fs
        self.author = author if author is not None else getpass.getuser()
        self.last_updated_by = last_updated_by if last_updated_by is not None else self.author
        self.created_at = now
        # Its own clock reading, as lazyscribe's field default is.
        self.last_updated = last_updated if last_updated is not None else utcnow()
        self.short_slug = short_slug if short_slug is not None else slugify(name)
        self.slug = slug if slug is not None else slugify(f"{name}-{now:%Y%m%d%H%M%S}")
        self.metrics: dict[str, Any] = {
            k: jsonable_metric(k, v) for k, v in (metrics or {}).items()
        }
        self.parameters: dict[str, Any] = {
            k: checked_parameter(k, v) for k, v in (parameters or {}).items()
        }
        self.tags: list[str] = list(tags or [])
        self.dependencies: dict[str, Any] = dict(dependencies or {})
        self.tests: list[Test] = list(tests or [])
        self._artifacts = ArtifactSet(f"experiment {self.slug!r}")
        self._objects = objects
        self.dirty = True
        self._lock = threading.RLock()
        object.__setattr__(self, "_read_only", self._frozen_class())

    @classmethod
    def _frozen_class(cls) -> bool:
        return False

    def __setattr__(self, key: str, value: Any) -> None:
        public = key in _PUBLIC_FIELDS
        if (public or key == "dirty") and getattr(self, "_read_only", False):
            raise FrozenError(
                f"experiment {self.slug!r} is read-only; open its project with mode='w+' to edit it"
            )
        if key in _TIMES and isinstance(value, dt.datetime):
            value = to_utc(value)
        super().__setattr__(key, value)
        if public:
            super().__setattr__("dirty", True)

    @property
    def lock(self) -> threading.RLock:
        """The lock changes to this experiment are made under (its project's save
        holds it too); hold it to make several changes from one thread at once."""
        return self._lock

    def _touch(self) -> None:
        if self._read_only:
            raise FrozenError(
                f"experiment {self.slug!r} is read-only; open its project with mode='w+' to edit it"
            )
        now = utcnow()
        self.last_updated = max(now, self.last_updated + _ONE_MICRO)
        self.dirty = True

    @property
    def path(self) -> Path:
        """The experiment's folder under :attr:`dir` (lazyscribe's; scribestore keeps
        artifact bytes in the object store, not there)."""
        if isinstance(self.dir, Path):
            return self.dir / self.slug
        return Path(split_url(self.dir)[1]) / self.slug  # lazyscribe's: without the protocol

    @property
    def fs(self) -> Any:
        """The fsspec filesystem of :attr:`dir` (local when made alone)."""
        if self._fs is None:
            object.__setattr__(self, "_fs", fsspec.filesystem("file"))
        return self._fs

    @property
    def objects(self) -> ObjectStore:
        """The object store this experiment's saved artifacts are in.

        Raises:
            ScribeStoreError: the experiment was made alone and joined no project yet.
        """
        if self._objects is None:
            raise ScribeStoreError(
                f"experiment {self.slug!r} is in no project yet: add it with Project.append"
            )
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
        value = jsonable_metric(name, value)
        with self._lock:
            self._touch()
            self.metrics[name] = value

    def log_parameter(self, name: str, value: Any) -> None:
        """Record parameter ``name`` (overwrites).

        Raises:
            ParameterError: JSON cannot hold ``value`` (refused now, so the
                save cannot fail on it).
        """
        value = checked_parameter(name, value)
        with self._lock:
            self._touch()
            self.parameters[name] = value

    def tag(self, *tags: str, overwrite: bool = False) -> None:
        """Add tags, or with ``overwrite`` replace them (no tags and overwrite: clear)."""
        with self._lock:
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
        with self._lock:
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
            self._touch()  # raises FrozenError
        test = Test(
            name, description, path=self.path / slugify(name), fs=self._fs, objects=self._objects
        )
        test.attach(self._objects, self._trust)
        yield test
        with self._lock:
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
                f"cannot promote {name!r}: repository {repository.url} is read-only"
            )
        latest = repository.latest_created_at(name)
        if latest is not None and latest >= entry.created_at:
            raise ArtifactLogError(
                f"artifact {name!r} of experiment {self.slug!r} (created "
                f"{entry.created_at.isoformat()}) is not newer than the latest version in "
                f"repository {repository.url} (created {latest.isoformat()})"
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
        if not repository.objects.same_location(self.objects):
            copy_object(self.objects, repository.objects, entry.hash, f"artifact {name!r}")
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
        if self._objects is None or self._objects.same_location(objects):
            object.__setattr__(self, "_objects", objects)
            for test in self.tests:
                if test.store is None or test.store.same_location(objects):
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
            test.attach(test.store, self._trust)

    # --- serialization -------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The experiment as lazyscribe's plain dict: times as naive UTC ISO text in
        whole seconds, dependencies as ``"project|slug"`` references, artifacts
        as their metadata (:meth:`Repository.get_artifact_metadata`'s keys)."""
        return {
            "name": self.name,
            "author": self.author,
            "last_updated_by": self.last_updated_by,
            "metrics": dict(self.metrics),
            "parameters": dict(self.parameters),
            "created_at": _lazy_time(self.created_at),
            "last_updated": _lazy_time(self.last_updated),
            "dependencies": sorted(self._dependency_refs().values()),
            "short_slug": self.short_slug,
            "slug": self.slug,
            "tests": [t.to_dict() for t in self.tests],
            "artifacts": self._artifacts.metadata(),
            "tags": list(self.tags),
        }

    def _dependency_refs(self) -> dict[str, str]:
        """Dependencies as lazyscribe writes them: ``"<project>|<slug>"``, the
        project by its registered name when it has one."""
        refs = {}
        for key, dep in self.dependencies.items():
            if isinstance(dep, str):
                refs[key] = dep
            else:
                where = registry.search(dep.project) or os.fspath(dep.project)
                refs[key] = f"{where}|{dep.slug}"
        return refs

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
            dependencies=self._dependency_refs(),
            tests=[t.to_record(objects) for t in self.tests],
            artifacts=self._artifacts.store(objects, self._objects or objects),
        )

    def mark_saved(self, record: ExperimentRecord, objects: ObjectStore) -> None:
        """After a save: artifacts and tests now refer to saved records in ``objects``."""
        self._artifacts.mark_saved(record.artifacts)
        for test, saved in zip(self.tests, record.tests, strict=True):
            test.mark_saved(saved, objects)
        object.__setattr__(self, "_objects", objects)
        object.__setattr__(self, "dirty", False)

    @classmethod
    def from_record(
        cls, record: ExperimentRecord, *, project: str, objects: ObjectStore, read_only: bool
    ) -> Experiment:
        """The experiment saved as ``record`` (a :class:`ReadOnlyExperiment` when ``read_only``)."""
        kind: type[Experiment] = ReadOnlyExperiment if read_only else Experiment
        exp = kind.__new__(kind)
        fields: dict[str, Any] = {
            "_read_only": False,
            "_lock": threading.RLock(),
            "_fs": None,
            "id": record.id,
            "name": record.name,
            "project": _as_path(project),
            "dir": _parent(_as_path(project)),
            "author": record.author,
            "last_updated_by": record.last_updated_by,
            "created_at": record.created_at,
            "last_updated": record.last_updated,
            "short_slug": record.short_slug,
            "slug": record.slug,
            "metrics": dict(record.metrics),
            "parameters": dict(record.parameters),
            "tags": list(record.tags),
            "dependencies": dict(record.dependencies),
            "_artifacts": ArtifactSet(f"experiment {record.slug!r}", list(record.artifacts)),
            "_objects": objects,
            "dirty": False,
        }
        exp.__dict__.update(fields)
        test_kind: type[Test] = ReadOnlyTest if read_only else Test
        exp.__dict__["tests"] = [
            test_kind(
                t.name,
                t.description,
                t.metrics,
                t.parameters,
                list(t.artifacts),
                path=exp.path / slugify(t.name),
                objects=objects,
                saved=True,
            )
            for t in record.tests
        ]
        exp.__dict__["_read_only"] = read_only
        return exp

    # --- comparison ------------------------------------------------------------------

    def __eq__(self, other: object) -> bool:
        """lazyscribe's equality (see the class docstring)."""
        if not isinstance(other, Experiment):
            return NotImplemented
        return _key(self) == _key(other)

    __hash__ = None  # type: ignore[assignment]

    def __lt__(self, other: Experiment) -> bool:
        if self.slug == other.slug:
            return self.last_updated < other.last_updated
        return self.created_at < other.created_at

    def __gt__(self, other: Experiment) -> bool:
        if self.slug == other.slug:
            return self.last_updated > other.last_updated
        return self.created_at > other.created_at

    def __le__(self, other: Experiment) -> bool:
        return self == other or self < other

    def __ge__(self, other: Experiment) -> bool:
        return self == other or self > other

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        del state["_lock"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        object.__setattr__(self, "__dict__", {**state, "_lock": threading.RLock()})

    def __repr__(self) -> str:
        return f"<{type(self).__module__}.{type(self).__name__} {self.slug!r}>"


class ReadOnlyExperiment(Experiment):
    """An experiment that cannot be changed: setting an attribute or logging
    raises :class:`FrozenError` (an ``attrs.exceptions.FrozenInstanceError``,
    as lazyscribe's frozen experiments raise). Projects opened in mode ``"r"``
    or ``"a"`` hold their saved experiments as this type."""

    @classmethod
    def _frozen_class(cls) -> bool:
        return True


def _key(exp: Experiment) -> tuple[Any, ...]:
    return (
        exp.name,
        exp.author,
        exp.last_updated_by,
        exp.metrics,
        exp.parameters,
        exp.created_at,
        exp.last_updated,
        exp.short_slug,
        exp.slug,
        exp.tests,
        exp.artifacts,
        exp.tags,
    )


def _as_path(location: str | os.PathLike[str]) -> Any:
    """A manifest location as lazyscribe holds it: a Path; a URL stays its text."""
    text = os.fspath(location)
    return text if "://" in text else Path(text)


def _parent(location: Any) -> Any:
    if isinstance(location, Path):
        return location.parent
    return location.rsplit("/", 1)[0]


def _lazy_time(when: dt.datetime) -> str:
    return to_utc(when).replace(tzinfo=None).isoformat(timespec="seconds")
