"""Tests: metrics, parameters and artifacts for a sub-population of an experiment."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from scribestore.core.artifact_set import ArtifactEntry, ArtifactSet
from scribestore.exception import ReadOnlyError
from scribestore.manifest.schema import ArtifactRecord, TestRecord, jsonable_params

if TYPE_CHECKING:
    from scribestore.core.stored import PickleTrust
    from scribestore.store.objects import ObjectStore

__all__ = ["Test"]


class Test:
    """Metrics, parameters and artifacts for a sub-population of an experiment.

    Made by :meth:`Experiment.log_test`.
    """

    __test__ = False  # not a pytest test class

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
        # Shared with the owning experiment; None: the process default.
        self._trust: PickleTrust | None = None

    @property
    def has_unsaved(self) -> bool:
        """Whether an artifact of this test is not saved yet."""
        return self._artifacts.dirty

    def attach(self, objects: ObjectStore, trust: PickleTrust | None) -> None:
        """Load artifacts from ``objects``; pickles only while ``trust`` allows them."""
        self._objects = objects
        self._trust = trust

    def mark_saved(self, record: TestRecord, objects: ObjectStore) -> None:
        """After a save: the artifacts are the saved ``record``'s, in ``objects``."""
        self._artifacts.mark_saved(record.artifacts)
        self._objects = objects

    def saved_artifacts(self) -> list[ArtifactRecord]:
        """The artifacts that are saved (each references an object)."""
        return self._artifacts.saved()

    @property
    def objects(self) -> ObjectStore:
        """The object store this test's saved artifacts are in."""
        return self._objects

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
            artifacts=self._artifacts.store(objects, self._objects),
        )

    def __repr__(self) -> str:
        return f"<Test {self.name!r}>"
