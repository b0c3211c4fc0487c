"""Tests: metrics, parameters and artifacts for a sub-population of an experiment."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import fsspec

from scribestore.core.artifact_set import ArtifactEntry, ArtifactSet
from scribestore.exception import FrozenError, ScribeStoreError
from scribestore.manifest.schema import (
    ArtifactRecord,
    TestRecord,
    checked_parameter,
    jsonable_metric,
    jsonable_params,
)

if TYPE_CHECKING:
    from scribestore.core.stored import PickleTrust
    from scribestore.store.objects import ObjectStore

__all__ = ["ReadOnlyTest", "Test"]


class Test:
    """Metrics, parameters and artifacts for a sub-population of an experiment.

    Made by :meth:`Experiment.log_test`, or directly as lazyscribe allows.
    ``objects`` and ``saved`` (keyword-only) are scribestore's: the object
    store its saved artifacts are in, and whether it is as saved (unchanged).
    """

    __test__ = False  # not a pytest test class

    name: str
    description: str | None
    metrics: dict[str, Any]
    parameters: dict[str, Any]
    path: Path
    _fs: Any
    _artifacts: ArtifactSet
    _objects: ObjectStore | None
    _trust: PickleTrust | None
    _dirty: bool

    def __init__(
        self,
        name: str,
        description: str | None = None,
        metrics: dict[str, Any] | None = None,
        parameters: dict[str, Any] | None = None,
        artifacts: list[ArtifactEntry] | None = None,
        path: Path | None = None,
        fs: Any = None,
        *,
        objects: ObjectStore | None = None,
        saved: bool = False,
    ) -> None:
        set_field = object.__setattr__
        set_field(self, "name", name)
        set_field(self, "description", description)
        set_field(self, "metrics", dict(metrics or {}))
        set_field(self, "parameters", dict(parameters or {}))
        set_field(self, "path", Path(".") if path is None else Path(path))
        set_field(self, "_fs", fs)
        set_field(self, "_artifacts", ArtifactSet(f"test {name!r}", artifacts))
        set_field(self, "_objects", objects)
        # Shared with the owning experiment; None: the process default.
        set_field(self, "_trust", None)
        # Metrics or parameters changed since the last save.
        set_field(self, "_dirty", not saved)

    @property
    def fs(self) -> Any:
        """The fsspec filesystem of the test's experiment (local when made alone)."""
        if self._fs is None:
            object.__setattr__(self, "_fs", fsspec.filesystem("file"))
        return self._fs

    def __setattr__(self, key: str, value: Any) -> None:
        if self.read_only and not key.startswith("_"):
            raise FrozenError(f"test {self.name!r} is read-only; cannot set {key!r}")
        super().__setattr__(key, value)
        super().__setattr__("_dirty", True)

    @property
    def read_only(self) -> bool:
        """Whether this test can be changed (a :class:`ReadOnlyTest` cannot)."""
        return False

    def __eq__(self, other: object) -> bool:
        """lazyscribe's equality: name, description, metrics, parameters, artifacts."""
        if not isinstance(other, Test):
            return NotImplemented
        return _key(self) == _key(other)

    __hash__ = None  # type: ignore[assignment]

    @property
    def has_unsaved(self) -> bool:
        """Whether the test changed (a metric, parameter or artifact) since it was saved."""
        return self._dirty or self._artifacts.dirty

    @property
    def store(self) -> ObjectStore | None:
        """The object store of this test's saved artifacts; None while it is in no project."""
        return self._objects

    def attach(self, objects: ObjectStore | None, trust: PickleTrust | None) -> None:
        """Load artifacts from ``objects``; pickles only while ``trust`` allows them."""
        object.__setattr__(self, "_objects", objects)
        object.__setattr__(self, "_trust", trust)

    def mark_saved(self, record: TestRecord, objects: ObjectStore) -> None:
        """After a save: the artifacts are the saved ``record``'s, in ``objects``."""
        self._artifacts.mark_saved(record.artifacts)
        object.__setattr__(self, "_objects", objects)
        object.__setattr__(self, "_dirty", False)

    def saved_artifacts(self) -> list[ArtifactRecord]:
        """The artifacts that are saved (each references an object)."""
        return self._artifacts.saved()

    @property
    def objects(self) -> ObjectStore:
        """The object store this test's saved artifacts are in.

        Raises:
            ScribeStoreError: the test belongs to no experiment in a project yet.
        """
        if self._objects is None:
            raise ScribeStoreError(
                f"test {self.name!r} is in no project yet: log it with Experiment.log_test "
                "on an experiment of a project"
            )
        return self._objects

    def _check_writable(self) -> None:
        if self.read_only:
            raise FrozenError(f"test {self.name!r} is read-only (its project was opened so)")

    def log_metric(self, name: str, value: float | int) -> None:
        """Record metric ``name`` (overwrites)."""
        self._check_writable()
        self.metrics[name] = jsonable_metric(name, value)
        object.__setattr__(self, "_dirty", True)

    def log_parameter(self, name: str, value: Any) -> None:
        """Record parameter ``name`` (overwrites)."""
        self._check_writable()
        self.parameters[name] = checked_parameter(name, value)
        object.__setattr__(self, "_dirty", True)

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
        self._artifacts.log(
            name, value, handler, fname=fname, overwrite=overwrite, params=writer_kwargs
        )

    def load_artifact(self, name: str, validate: bool = True, **reader_kwargs: Any) -> Any:
        """Load a saved artifact, verified (see :meth:`Experiment.load_artifact`)."""
        return self._artifacts.load(
            self._objects, name, validate=validate, reader_kwargs=reader_kwargs, trust=self._trust
        )

    @property
    def artifacts(self) -> list[Any]:
        """The artifacts, as their handlers' lazyscribe artifact objects."""
        return self._artifacts.objects()

    def to_dict(self) -> dict[str, Any]:
        """The test as a plain dict."""
        return {
            "name": self.name,
            "description": self.description,
            "metrics": dict(self.metrics),
            "parameters": dict(self.parameters),
            "artifacts": self._artifacts.metadata(),
        }

    def to_record(self, objects: ObjectStore) -> TestRecord:
        """Store pending artifact bytes in ``objects``; the record to save (for its experiment).

        Raises:
            SaveError: an artifact cannot be serialized or stored.
        """
        return TestRecord(
            name=self.name,
            description=self.description,
            metrics=dict(self.metrics),
            parameters=jsonable_params(self.parameters),
            artifacts=self._artifacts.store(objects, self._objects or objects),
        )

    def __repr__(self) -> str:
        return f"<{type(self).__module__}.{type(self).__name__} {self.name!r}>"


class ReadOnlyTest(Test):
    """A test that cannot be changed: setting an attribute or logging raises
    :class:`FrozenError` (an ``attrs.exceptions.FrozenInstanceError``). The
    tests of experiments in projects opened read-only are of this type."""

    __test__ = False

    @property
    def read_only(self) -> bool:
        """Always True."""
        return True


def _key(test: Test) -> tuple[Any, ...]:
    return (test.name, test.description, test.metrics, test.parameters, test.artifacts)
