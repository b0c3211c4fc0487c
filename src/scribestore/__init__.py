"""scribestore: a content-addressed storage engine for versioned ML artifacts.

The public surface is re-exported here; everything else is internal.
"""

from __future__ import annotations

from scribestore.exception import (
    AmbiguousVersionError,
    ArtifactError,
    ArtifactLoadError,
    ArtifactLogError,
    ArtifactNotFoundError,
    BinaryArtifactError,
    ContentChangedError,
    CorruptManifestError,
    CorruptObjectError,
    CorruptPackError,
    ExperimentNotFoundError,
    FrozenError,
    HandlerRegistrationError,
    IntegrityError,
    InvalidDigestError,
    InvalidNameError,
    InvalidVersionError,
    LazyscribeError,
    LeaseLostError,
    LockTimeoutError,
    ManifestNotFoundError,
    MigrationError,
    MissingManifestError,
    ParameterError,
    ObjectNotFoundError,
    ReadOnlyError,
    SaveError,
    ScribeStoreError,
    StorageError,
    StorageTimeoutError,
    UnknownHandlerError,
    UnsavedChangesWarning,
    UnsupportedFormatError,
    UntrustedPickleError,
    VersionNotFoundError,
)
from scribestore.experiment import Experiment
from scribestore.ops.verify import Problem, VerifyReport
from scribestore.project import Project
from scribestore.repository import Repository
from scribestore.store.objects import ObjectInfo, ObjectReader, ObjectStore, StoreStats
from scribestore.test import Test

__version__ = "0.1.0"

__all__ = [
    "AmbiguousVersionError",
    "ArtifactError",
    "ArtifactLoadError",
    "ArtifactLogError",
    "ArtifactNotFoundError",
    "BinaryArtifactError",
    "ContentChangedError",
    "CorruptManifestError",
    "CorruptObjectError",
    "CorruptPackError",
    "Experiment",
    "ExperimentNotFoundError",
    "FrozenError",
    "HandlerRegistrationError",
    "IntegrityError",
    "InvalidDigestError",
    "InvalidNameError",
    "InvalidVersionError",
    "LazyscribeError",
    "LeaseLostError",
    "LockTimeoutError",
    "ManifestNotFoundError",
    "MigrationError",
    "MissingManifestError",
    "ParameterError",
    "ObjectInfo",
    "ObjectNotFoundError",
    "ObjectReader",
    "ObjectStore",
    "Problem",
    "Project",
    "ReadOnlyError",
    "Repository",
    "SaveError",
    "ScribeStoreError",
    "StorageError",
    "StorageTimeoutError",
    "StoreStats",
    "Test",
    "UnknownHandlerError",
    "UnsavedChangesWarning",
    "UnsupportedFormatError",
    "UntrustedPickleError",
    "VerifyReport",
    "VersionNotFoundError",
    "__version__",
]
