"""The scribestore error tree.

Every error raised on purpose by scribestore derives from :class:`ScribeStoreError`.
Leaf classes also inherit the builtin that fits, so ``except LookupError`` or
``except ValueError`` keeps working for code written against plain Python or
lazyscribe. Every message names the object, artifact, version or path involved
and says what to do next.
"""

from __future__ import annotations

from attrs.exceptions import FrozenInstanceError

__all__ = [
    "AmbiguousVersionError",
    "ArtifactError",
    "ArtifactLoadError",
    "ArtifactLogError",
    "ArtifactNotFoundError",
    "BinaryArtifactError",
    "ConfigurationError",
    "ContentChangedError",
    "CorruptManifestError",
    "CorruptObjectError",
    "CorruptPackError",
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
    "ModeError",
    "ObjectNotFoundError",
    "ParameterError",
    "ReadOnlyError",
    "SaveError",
    "ScribeStoreError",
    "StorageError",
    "StorageTimeoutError",
    "UnknownHandlerError",
    "UnsavedChangesWarning",
    "UnsavedError",
    "UnsupportedFormatError",
    "UntrustedPickleError",
    "VersionNotFoundError",
]


class ScribeStoreError(Exception):
    """Base class of every error scribestore raises on purpose."""


#: lazyscribe's name for the base class, so ``except LazyscribeError`` keeps
#: catching everything it caught.
LazyscribeError = ScribeStoreError


# --- data integrity -------------------------------------------------------------


class IntegrityError(ScribeStoreError):
    """Stored bytes do not hash to the digest they are stored under.

    Attributes:
        expected: the digest the data was stored under (or recorded in a manifest).
        actual: the digest of the bytes actually read, or a short description
            (``"truncated"``) when the bytes could not be read to the end.
        artifact: the artifact name, when the read was for an artifact.
        version: the artifact version, when known.
        path: the object path inside the store, when known.
    """

    def __init__(
        self,
        expected: str,
        actual: str,
        *,
        artifact: str | None = None,
        version: int | None = None,
        path: str | None = None,
        detail: str | None = None,
    ) -> None:
        self.expected = expected
        self.actual = actual
        self.artifact = artifact
        self.version = version
        self.path = path
        where = []
        if artifact is not None:
            where.append(f"artifact {artifact!r}")
        if version is not None:
            where.append(f"version {version}")
        if path is not None:
            where.append(f"object {path}")
        subject = ", ".join(where) if where else f"object {expected}"
        msg = f"integrity check failed for {subject}: expected blake3 {expected}, got {actual}"
        if detail:
            msg += f" ({detail})"
        msg += (
            ". The stored bytes are damaged; do not use them. Restore the object from "
            "another copy of the store or log the artifact again."
        )
        super().__init__(msg)

    def __reduce__(self) -> tuple[object, ...]:
        return (
            _rebuild_integrity_error,
            (
                type(self),
                self.expected,
                self.actual,
                self.artifact,
                self.version,
                self.path,
                self.args,
            ),
        )


def _rebuild_integrity_error(
    cls: type[IntegrityError],
    expected: str,
    actual: str,
    artifact: str | None,
    version: int | None,
    path: str | None,
    args: tuple[object, ...],
) -> IntegrityError:
    err = cls.__new__(cls)
    err.expected, err.actual = expected, actual
    err.artifact, err.version, err.path = artifact, version, path
    err.args = args
    return err


class CorruptObjectError(IntegrityError):
    """An object file is not a valid scribestore object (bad header, bad zstd frame)."""


class CorruptPackError(ScribeStoreError, ValueError):
    """A pack or its index is malformed: bad header, truncated, or failing its checksum.

    Readers treat the chunks of such a pack as missing and go on with the
    others; ``scribestore fsck --repair`` rebuilds a damaged index from its
    pack's own table.
    """


# --- lookups ----------------------------------------------------------------------


class ObjectNotFoundError(ScribeStoreError, LookupError):
    """No object with this digest is in the store."""


class ArtifactError(ScribeStoreError):
    """Base class of the errors about logging or loading one artifact."""


class ArtifactLogError(ArtifactError):
    """An artifact could not be logged (for example, a promotion that is not newer)."""


class ArtifactLoadError(ArtifactError):
    """An artifact could not be loaded (not saved yet, or environment mismatch)."""


class ArtifactNotFoundError(ArtifactLoadError, KeyError, ValueError):
    """No artifact with this name.

    A ``KeyError`` (so a ``LookupError``) for ``repo[name]``, a
    ``ValueError`` because lazyscribe's repositories raise ``ValueError`` for
    an unknown artifact name, and an :class:`ArtifactLoadError` because its
    experiments raise that: code written for either catches it.
    """

    def __str__(self) -> str:
        # KeyError would repr() the message.
        return str(self.args[0]) if self.args else ""


class ManifestNotFoundError(ScribeStoreError, FileNotFoundError):
    """A manifest opened read-only (mode ``"r"``) does not exist.

    The message names the path or URL that was tried.
    """


class ExperimentNotFoundError(ScribeStoreError, KeyError):
    """No experiment with this slug or short slug in the project."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class VersionNotFoundError(ScribeStoreError, LookupError, ValueError):
    """The artifact exists but no version matches the request.

    Also a ``ValueError`` for the same compatibility reason as
    :class:`ArtifactNotFoundError`.
    """


class AmbiguousVersionError(VersionNotFoundError):
    """A second-precision timestamp matches several versions; the message lists them."""


# --- bad input --------------------------------------------------------------------


class InvalidDigestError(ScribeStoreError, ValueError):
    """A digest that is not 64 lowercase hexadecimal characters."""


class InvalidNameError(ScribeStoreError, ValueError):
    """An artifact or experiment name that is empty or could escape the store."""


class InvalidVersionError(ScribeStoreError, ValueError):
    """A version that is neither an int, a datetime, nor an ISO timestamp string."""


class ConfigurationError(ScribeStoreError, ValueError):
    """An environment variable that configures scribestore has a value it cannot use."""


class UnknownHandlerError(ScribeStoreError, ValueError):
    """No artifact handler is registered under this name."""


class BinaryArtifactError(ScribeStoreError, ValueError):
    """A text-only operation (a diff) was asked of an artifact stored in binary form."""


class HandlerRegistrationError(ScribeStoreError, ValueError):
    """A handler class or entry point is invalid, or its alias is already taken."""


class ModeError(ScribeStoreError, RuntimeError):
    """An operation needs the manifest open in another mode (a release needs ``"r"``)."""


class UnsavedError(ArtifactLoadError, RuntimeError):
    """An operation needs every version saved first (``filter``, ``create_release``)."""


class ParameterError(ScribeStoreError, TypeError):
    """A metric or parameter value that JSON cannot hold (refused when logged)."""


class FrozenError(ScribeStoreError, FrozenInstanceError):
    """A read-only experiment or test was changed (an attribute set, or a
    ``log_*`` call): what lazyscribe raises for its frozen objects, so
    ``except attrs.exceptions.FrozenInstanceError`` catches it."""

    def __init__(self, message: str) -> None:
        AttributeError.__init__(self, message)


class ReadOnlyError(ScribeStoreError, PermissionError):
    """A write was attempted on something opened read-only (mode ``"r"``)."""


class UntrustedPickleError(ScribeStoreError, PermissionError):
    """A load would run code from the store (``pickle``), and the store is not trusted.

    Raised before any byte is read when a repository or project was opened with
    ``trust_pickle=False`` (or ``SCRIBESTORE_TRUST_PICKLE=0`` in the environment).
    """


# --- formats ----------------------------------------------------------------------


class UnsupportedFormatError(ScribeStoreError, ValueError):
    """Data written by a newer (or unknown) scribestore format version."""


class CorruptManifestError(ScribeStoreError, ValueError):
    """A manifest that is truncated, not JSON, or does not match the schema."""


# --- operations -------------------------------------------------------------------


class SaveError(ScribeStoreError):
    """A save failed; the previously saved manifest is intact."""


class StorageError(ScribeStoreError, OSError):
    """The storage backend failed (I/O error, permission, network)."""


class StorageTimeoutError(StorageError, TimeoutError):
    """The storage backend did not answer in time (a network store's time-out).

    The message names the store and what was being read or written.
    """


class ContentChangedError(ScribeStoreError):
    """A file or stream changed while it was being stored; nothing was stored.

    Retry once the file is no longer being written.
    """


class MigrationError(ScribeStoreError, ValueError):
    """A lazyscribe store could not be imported; nothing was imported.

    The source is not a lazyscribe manifest that can be imported, a file it
    lists is missing, or the destination holds conflicting versions.
    """


class LockTimeoutError(ScribeStoreError, TimeoutError):
    """A lease or lock stayed held by another process for longer than the wait allowed.

    The message names the holder (process id and machine) and the lock file.
    """


class LeaseLostError(ScribeStoreError):
    """A writer's lease was taken over as stale before it committed; nothing was committed."""


class MissingManifestError(ScribeStoreError, LookupError):
    """A manifest registered with a store cannot be found, so gc cannot know what it uses.

    The message names the manifest and says how to tell gc it is gone.
    """


class UnsavedChangesWarning(UserWarning):
    """A Repository or Project was discarded (or the program ended) before its changes were saved.

    The message says what was lost. Call ``save()`` before the object goes
    out of scope.
    """
