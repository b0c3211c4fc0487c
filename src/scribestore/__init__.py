"""scribestore: a content-addressed storage engine for versioned ML artifacts.

The public surface is re-exported here; everything else is internal.
"""

from __future__ import annotations

from scribestore.errors import (
    AmbiguousVersionError,
    ArtifactLoadError,
    ArtifactLogError,
    ArtifactNotFoundError,
    BinaryArtifactError,
    CorruptManifestError,
    CorruptObjectError,
    HandlerRegistrationError,
    IntegrityError,
    InvalidDigestError,
    InvalidNameError,
    InvalidVersionError,
    ObjectNotFoundError,
    ReadOnlyError,
    SaveError,
    ScribeStoreError,
    StorageError,
    UnknownHandlerError,
    UnsupportedFormatError,
    VersionNotFoundError,
)
from scribestore.objects import ObjectInfo, ObjectReader, ObjectStore, StoreStats
from scribestore.repository import Repository

__version__ = "0.1.0"

__all__ = [
    "AmbiguousVersionError",
    "ArtifactLoadError",
    "ArtifactLogError",
    "ArtifactNotFoundError",
    "BinaryArtifactError",
    "CorruptManifestError",
    "CorruptObjectError",
    "HandlerRegistrationError",
    "IntegrityError",
    "InvalidDigestError",
    "InvalidNameError",
    "InvalidVersionError",
    "ObjectInfo",
    "ObjectNotFoundError",
    "ObjectReader",
    "ObjectStore",
    "ReadOnlyError",
    "Repository",
    "SaveError",
    "ScribeStoreError",
    "StorageError",
    "StoreStats",
    "UnknownHandlerError",
    "UnsupportedFormatError",
    "VersionNotFoundError",
    "__version__",
]
