"""Manifest schemas and their encoding: msgspec Structs, no I/O.

See docs/FORMAT.md section 5. Decoding checks the envelope first, so a newer
format version is refused with :class:`UnsupportedFormatError` before its
content is interpreted, and anything malformed raises
:class:`CorruptManifestError`.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import blake3
import msgspec

from scribestore.exception import (
    CorruptManifestError,
    InvalidNameError,
    ParameterError,
    UnsupportedFormatError,
)

if TYPE_CHECKING:
    from collections.abc import Mapping

__all__ = [
    "ALIAS_PATTERN",
    "PROJECT_FORMAT",
    "PROJECT_FORMAT_VERSION",
    "REPOSITORY_FORMAT",
    "REPOSITORY_FORMAT_VERSION",
    "AliasMove",
    "AliasTarget",
    "ArtifactRecord",
    "ArtifactVersion",
    "ExperimentRecord",
    "ProjectManifest",
    "RepositoryManifest",
    "TestRecord",
    "decode_project",
    "decode_repository",
    "encode_manifest",
    "jsonable_params",
    "validate_fname",
    "validate_name",
]

REPOSITORY_FORMAT = "scribestore.repository"
#: Version 2 added the ``checksum`` field; version 3 the ``aliases`` field,
#: written only by manifests that have aliases (so readers of version 2
#: refuse them instead of dropping the aliases on their next save).
REPOSITORY_FORMAT_VERSION = 3
#: The version written when a repository has no aliases.
_REPOSITORY_PLAIN_VERSION = 2

Digest = Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{64}\Z")]
#: An export file name: a relative path of ``/``-separated components (lazyscribe
#: 2.2.1 allows subfolders), none empty, ``.`` or ``..``, and no ``\`` or NUL.
_FNAME_COMPONENT = r"(?!\.\.?(?:/|\Z))[^/\\\x00]+"
_FNAME_PATTERN = rf"^{_FNAME_COMPONENT}(?:/{_FNAME_COMPONENT})*\Z"
FileName = Annotated[str, msgspec.Meta(pattern=_FNAME_PATTERN)]
_FNAME_RE = re.compile(_FNAME_PATTERN)
UtcTime = Annotated[dt.datetime, msgspec.Meta(tz=True)]
# Bounded to int64 (msgspec's limit for constraints): sizes beyond it cannot exist.
NonNegative = Annotated[int, msgspec.Meta(ge=0, le=2**63 - 1)]
Param = str | int | float | bool | None | list[Any] | dict[str, Any]


class ArtifactVersion(msgspec.Struct, frozen=True, kw_only=True):
    """One saved version of an artifact."""

    version: NonNegative
    hash: Digest
    size: NonNegative
    created_at: UtcTime
    handler: str
    fname: FileName
    expiry: UtcTime | None = None
    params: dict[str, Param] = msgspec.field(default_factory=dict)
    environment: dict[str, str] = msgspec.field(default_factory=dict)


#: An alias name: a letter or digit, then letters, digits, ``.``, ``_`` or ``-``.
ALIAS_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}\Z"
AliasName = Annotated[str, msgspec.Meta(pattern=ALIAS_PATTERN)]


class AliasTarget(msgspec.Struct, frozen=True, kw_only=True):
    """The version an alias points at, by what identifies it across renumbering."""

    #: The version's number when the alias was moved (for people; not used to find it).
    version: NonNegative
    created_at: UtcTime
    hash: Digest


class AliasMove(msgspec.Struct, frozen=True, kw_only=True):
    """One move of an alias: where to (``None``: removed), when and by whom."""

    target: AliasTarget | None
    moved_at: UtcTime
    moved_by: str


class RepositoryManifest(msgspec.Struct, frozen=True, kw_only=True):
    """The content of ``repository.json``."""

    format: str = REPOSITORY_FORMAT
    format_version: int = REPOSITORY_FORMAT_VERSION
    #: BLAKE3 of the document's compact encoding with this field empty (FORMAT 5).
    checksum: str = ""
    artifacts: dict[str, list[ArtifactVersion]] = msgspec.field(default_factory=dict)
    #: Artifact name -> alias name -> its moves, oldest first (the last is current).
    aliases: dict[str, dict[AliasName, list[AliasMove]]] = msgspec.field(default_factory=dict)


PROJECT_FORMAT = "scribestore.project"
#: Version 2 added the ``checksum`` field; version 1 documents are still read.
PROJECT_FORMAT_VERSION = 2


class ArtifactRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One saved artifact of an experiment or test (experiments keep one version)."""

    name: str
    hash: Digest
    size: NonNegative
    created_at: UtcTime
    handler: str
    fname: FileName
    params: dict[str, Param] = msgspec.field(default_factory=dict)
    environment: dict[str, str] = msgspec.field(default_factory=dict)


class TestRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A test of an experiment: metrics and artifacts of a sub-population."""

    name: str
    description: str | None = None
    metrics: dict[str, Any] = msgspec.field(default_factory=dict)
    parameters: dict[str, Any] = msgspec.field(default_factory=dict)
    artifacts: list[ArtifactRecord] = msgspec.field(default_factory=list)


class ExperimentRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One experiment in ``project.json``.

    ``id`` is a random identifier that concurrent saves merge by; ``slug`` is
    the name people use (name plus creation time, as lazyscribe makes it).
    """

    id: Annotated[str, msgspec.Meta(pattern=r"^[0-9a-f]{32}\Z")]
    name: str
    slug: str
    short_slug: str
    author: str
    last_updated_by: str
    created_at: UtcTime
    last_updated: UtcTime
    metrics: dict[str, Any] = msgspec.field(default_factory=dict)
    parameters: dict[str, Any] = msgspec.field(default_factory=dict)
    tags: list[str] = msgspec.field(default_factory=list)
    dependencies: dict[str, str] = msgspec.field(default_factory=dict)
    tests: list[TestRecord] = msgspec.field(default_factory=list)
    artifacts: list[ArtifactRecord] = msgspec.field(default_factory=list)


class ProjectManifest(msgspec.Struct, frozen=True, kw_only=True):
    """The content of ``project.json``."""

    format: str = PROJECT_FORMAT
    format_version: int = PROJECT_FORMAT_VERSION
    #: BLAKE3 of the document's compact encoding with this field empty (FORMAT 5).
    checksum: str = ""
    experiments: list[ExperimentRecord] = msgspec.field(default_factory=list)


class _Envelope(msgspec.Struct):
    format: str
    format_version: int


_M = TypeVar("_M", bound=msgspec.Struct)
_ZERO = dt.timedelta(0)


def validate_name(name: object, *, kind: str = "artifact") -> str:
    """Return ``name`` if it is a usable artifact (or experiment) name.

    A name is any non-empty string that could not escape a directory if used
    as a path: no NUL, not absolute, no ``..`` component.

    Raises:
        InvalidNameError: otherwise.
    """
    if not isinstance(name, str) or not name:
        raise InvalidNameError(f"{kind} name must be a non-empty string, not {name!r}")
    parts = name.replace("\\", "/").split("/")
    if (
        "\x00" in name
        or name.startswith(("/", "\\"))
        or (len(name) >= 2 and name[1] == ":" and name[0].isalpha())
        or any(part in ("..", ".") for part in parts)
    ):
        raise InvalidNameError(
            f"invalid {kind} name {name!r}: a name may not be absolute, contain NUL, "
            "or have a '.' or '..' path component"
        )
    return name


def validate_fname(fname: object) -> str:
    """Return ``fname`` if it is a safe relative file name (what exports write to):
    ``model.json`` or ``weights/model.json``.

    Raises:
        InvalidNameError: it is empty, absolute, has an empty, ``.`` or ``..``
            component, or contains ``\\`` or NUL, so it could name a file
            outside its directory.
    """
    if not isinstance(fname, str) or _FNAME_RE.match(fname) is None:
        raise InvalidNameError(
            f"file name must be a relative path of plain components ('model.json', "
            f"'weights/model.json': no empty, '.' or '..' component, no '\\' or NUL), "
            f"not {fname!r}"
        )
    return fname


def _checksum(manifest: RepositoryManifest | ProjectManifest) -> str:
    unsealed = msgspec.structs.replace(manifest, checksum="")
    return blake3.blake3(msgspec.json.encode(unsealed)).hexdigest()


def encode_manifest(manifest: RepositoryManifest | ProjectManifest) -> bytes:
    """JSON bytes of ``manifest`` with its checksum, indented for people who read it."""
    version = type(manifest)().format_version
    if isinstance(manifest, RepositoryManifest) and not manifest.aliases:
        version = _REPOSITORY_PLAIN_VERSION
    current = msgspec.structs.replace(manifest, format_version=version)
    sealed = msgspec.structs.replace(current, checksum=_checksum(current))
    return msgspec.json.format(msgspec.json.encode(sealed), indent=1) + b"\n"


def _verify_checksum(
    manifest: RepositoryManifest | ProjectManifest, data: bytes, where: str
) -> None:
    """From format version 2 on, the checksum must match the content.

    The checksum covers the decoded content, so a repeated key (which a
    decoder silently collapses) is looked for separately: a document that is
    not byte for byte what :func:`encode_manifest` writes, and every
    version-1 document, is scanned for duplicate keys.

    Raises:
        CorruptManifestError: the checksum is missing or does not match (the
            file was damaged or edited by hand), or a version-1 document
            repeats a key.
    """
    if manifest.format_version < 2:
        _refuse_duplicate_keys(data, where)
        return
    if manifest.checksum != _checksum(manifest):
        raise CorruptManifestError(
            f"manifest {where} fails its checksum (stored {manifest.checksum[:64]!r}): it "
            "was damaged or edited by hand; restore it from a backup or the previous "
            "version of the file"
        )
    # What this library wrote re-encodes to the same bytes and has no repeated
    # key; only other documents need the slower scan.
    if msgspec.json.format(msgspec.json.encode(manifest), indent=1) + b"\n" != data:
        _refuse_duplicate_keys(data, where)


# What msgspec can raise on hostile input besides DecodeError: RecursionError
# for deep nesting, UnicodeDecodeError for invalid UTF-8 inside strings,
# OverflowError for out-of-range numbers or dates. (Not ValueError at large: it
# would hide schema bugs as "corrupt manifest".)
_DECODE_FAILURES = (msgspec.DecodeError, RecursionError, UnicodeError, OverflowError)


def _decode(data: bytes, type_: type[_M], where: str, what: str) -> _M:
    """``data`` decoded as ``type_``; anything that fails is a corrupt manifest."""
    try:
        return msgspec.json.decode(data, type=type_)
    except _DECODE_FAILURES as exc:
        detail = str(exc)[:300] or type(exc).__name__
        raise CorruptManifestError(
            f"manifest {where} {what} ({detail}); restore it from a backup or the "
            "previous version of the file"
        ) from None


def _check_envelope(data: bytes, expected: str, supported: int, where: str) -> None:
    envelope = _decode(data, _Envelope, where, "is not a scribestore manifest")
    if envelope.format != expected:
        raise CorruptManifestError(
            f"manifest {where} has format {envelope.format[:100]!r}, expected {expected!r}"
        )
    version = envelope.format_version
    if version < 1:
        raise CorruptManifestError(
            f"manifest {where} has format version {str(version)[:30]}; versions start at 1"
        )
    if version > supported:
        raise UnsupportedFormatError(
            f"manifest {where} has format version {str(version)[:30]}; this scribestore "
            f"reads versions 1 to {supported}. Upgrade scribestore to read it."
        )


def _refuse_duplicate_keys(data: bytes, where: str) -> None:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        keys = [k for k, _ in items]
        if len(set(keys)) != len(keys):
            dup = next(k for k in keys if keys.count(k) > 1)
            raise CorruptManifestError(
                f"manifest {where} has the key {dup[:100]!r} twice in one object; a "
                "reader would silently drop one of them. Restore it from a backup"
            )
        return dict(items)

    try:
        json.loads(data, object_pairs_hook=pairs)
    except CorruptManifestError:
        raise
    except (ValueError, RecursionError) as exc:  # bytes msgspec tolerated, JSON does not
        raise CorruptManifestError(
            f"manifest {where} is not valid JSON ({str(exc)[:200]}); restore it from a backup"
        ) from None


def _check_utc(when: dt.datetime | None, where: str, field: str) -> None:
    # Writers store UTC ("Z"); another offset could overflow when converted.
    if when is not None and when.utcoffset() != _ZERO:
        raise CorruptManifestError(
            f"manifest {where}: {field} {when.isoformat()} is not in UTC; timestamps "
            "must end in Z or +00:00"
        )


def decode_repository(data: bytes, *, where: str) -> RepositoryManifest:
    """Decode and validate ``repository.json`` content read from ``where``.

    Raises:
        UnsupportedFormatError: written by a newer format version.
        CorruptManifestError: truncated, not JSON, wrong schema, or versions
            that are not numbered 0, 1, 2, ... in order.
    """
    _check_envelope(data, REPOSITORY_FORMAT, REPOSITORY_FORMAT_VERSION, where)
    manifest = _decode(data, RepositoryManifest, where, "does not match the schema")
    for name, versions in manifest.artifacts.items():
        try:
            validate_name(name)
        except InvalidNameError as exc:
            raise CorruptManifestError(f"manifest {where}: {exc}") from None
        for index, entry in enumerate(versions):
            if entry.version != index:
                raise CorruptManifestError(
                    f"manifest {where}: artifact {name!r} lists version "
                    f"{str(entry.version)[:30]} at position {index}; versions must be "
                    "numbered 0, 1, 2, ..."
                )
            label = f"version {index} of artifact {name!r}"
            _check_utc(entry.created_at, where, f"created_at of {label}")
            _check_utc(entry.expiry, where, f"expiry of {label}")
    _check_aliases(manifest, where)
    _verify_checksum(manifest, data, where)
    return manifest


def _check_aliases(manifest: RepositoryManifest, where: str) -> None:
    if manifest.aliases and manifest.format_version < 3:
        raise CorruptManifestError(
            f"manifest {where} has aliases but format version {manifest.format_version}; "
            "aliases need version 3"
        )
    for name, aliases in manifest.aliases.items():
        for alias, moves in aliases.items():
            label = f"alias {alias!r} of artifact {name[:100]!r}"
            if not moves:
                raise CorruptManifestError(f"manifest {where}: {label} has no moves")
            for move in moves:
                _check_utc(move.moved_at, where, f"moved_at of {label}")
                if move.target is not None:
                    _check_utc(move.target.created_at, where, f"target of {label}")


def decode_project(data: bytes, *, where: str) -> ProjectManifest:
    """Decode and validate ``project.json`` content read from ``where``.

    Raises:
        UnsupportedFormatError: written by a newer format version.
        CorruptManifestError: truncated, not JSON, wrong schema, or two
            experiments with one id, or artifact names that could escape.
    """
    _check_envelope(data, PROJECT_FORMAT, PROJECT_FORMAT_VERSION, where)
    manifest = _decode(data, ProjectManifest, where, "does not match the schema")
    seen: set[str] = set()
    for exp in manifest.experiments:
        if exp.id in seen:
            raise CorruptManifestError(f"manifest {where}: experiment id {exp.id} appears twice")
        seen.add(exp.id)
        _check_utc(exp.created_at, where, f"created_at of experiment {exp.id}")
        _check_utc(exp.last_updated, where, f"last_updated of experiment {exp.id}")
        records = [*exp.artifacts, *(a for t in exp.tests for a in t.artifacts)]
        for record in records:
            try:
                validate_name(record.name)
            except InvalidNameError as exc:
                raise CorruptManifestError(f"manifest {where}: {exc}") from None
            _check_utc(record.created_at, where, f"created_at of artifact {record.name!r}")
    _verify_checksum(manifest, data, where)
    return manifest


def _numpy_scalar(obj: Any) -> Any:
    # numpy scalars (np.float64 from a metric computation) are numbers; arrays are not.
    numpy_scalar = type(obj).__module__ == "numpy" and getattr(obj, "ndim", None) == 0
    if numpy_scalar and callable(getattr(obj, "item", None)):
        return obj.item()
    raise TypeError(f"{type(obj).__name__} is not a JSON value")


def _plain(kind: str, name: str, value: Any) -> Any:
    try:
        return msgspec.json.decode(msgspec.json.encode(value, enc_hook=_numpy_scalar))
    except (TypeError, msgspec.EncodeError) as exc:
        raise ParameterError(
            f"{kind} {name!r} cannot be saved: {value!r} is not a JSON value ({exc}); "
            "log a number, string, bool, None, or a list or dict of them"
        ) from None


def jsonable_metric(name: str, value: Any) -> Any:
    """``value`` as the plain JSON value saved for metric ``name`` (numpy scalars
    become Python numbers).

    Raises:
        ParameterError: JSON cannot hold ``value``.
    """
    return _plain("metric", name, value)


def checked_parameter(name: str, value: Any) -> Any:
    """``value`` as the plain JSON value saved for parameter ``name``.

    Raises:
        ParameterError: JSON cannot hold ``value`` (lazyscribe refuses it at
            save; it is refused here when logged, so the save cannot fail).
    """
    return _plain("parameter", name, value)


def jsonable_params(params: Mapping[str, Any]) -> dict[str, Param]:
    """``params`` with every value that JSON cannot hold replaced by its repr."""
    out: dict[str, Param] = {}
    for key, value in params.items():
        try:
            msgspec.json.encode(value)
            out[key] = value
        except (TypeError, msgspec.EncodeError):
            out[key] = repr(value)
    return out
